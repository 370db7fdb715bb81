"""The ``dsarisk`` command line: init, lab, score, validate, run, compare.

Every failure a user can cause ends in one line on standard error and a
non-zero exit status, never in a traceback.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from . import paths
from .exceptions import DsariskError, InputError, PipelineError, ScoringError
from .inputs import available_years
from .interrupts import ctrl_c_remembered
from .methodology import load_methodology
from .scoring import score_case
from .yamlio import read_text

EXIT_INPUT = 2
EXIT_FAILED = 1
CASE_COLUMNS = ("probability", "inherent", "effectiveness", "residual")
WORKSPACE_HELP = "the workspace (default: the nearest folder at or above this one with a dsarisk.yaml)"


def _date(text: str | None, option: str) -> dt.date | None:
    try:
        return None if text is None else dt.date.fromisoformat(text)
    except ValueError:
        raise InputError(f"'{text}' is not a date (YYYY-MM-DD)", field=option) from None


def _number(text: str, field: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ScoringError(f"'{text}' is not a number", field=field) from None


def _case_from_row(row: dict[str, str]) -> dict[str, object]:
    def given(name: str) -> str | None:
        value = (row.get(name) or "").strip()
        return value or None

    rate = given("rate_pct")
    pct = given("effectiveness_pct")
    return {
        "rate": _number(rate, "rate_pct") if rate else None,
        "probability_label": None if rate else given("probability"),
        "severity_score": given("severity"),
        "scope": given("scope"),
        "scale": given("scale"),
        "remediability": given("remediability"),
        "effectiveness_pct": _number(pct, "effectiveness_pct") if pct else None,
        "effectiveness_label": None if pct else given("effectiveness"),
    }


def _score_cases(method_path: str, cases: Path) -> int:
    method = load_methodology(method_path)
    reader = csv.DictReader(io.StringIO(read_text(cases), newline=""))
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise InputError(f"malformed CSV at line {reader.line_num}: {exc}", file=cases) from None
    fields = list(reader.fieldnames or [])
    if not fields:
        raise InputError("the cases file has no header row", file=cases)
    clash = [c for c in CASE_COLUMNS if c in fields and c not in ("probability", "effectiveness")]
    if clash:
        raise InputError(f"column(s) {', '.join(clash)} are output columns and must not be given", file=cases)
    twice = sorted({f for f in fields if fields.count(f) > 1})
    if twice:
        raise InputError(f"column(s) {', '.join(twice)} appear twice (the last would win silently)", file=cases)
    scored = []
    for number, row in enumerate(rows, start=2):
        if None in row:  # csv puts extra cells under None
            raise InputError("the row has more cells than the header", file=f"{cases}: row {number}")
        try:
            result = score_case(method, **_case_from_row(row))  # type: ignore[arg-type]
        except ScoringError as exc:
            raise ScoringError(exc.message, file=f"{cases}: row {number}", field=exc.field) from None
        scored.append({**row, **{c: getattr(result, c).level for c in CASE_COLUMNS}})
    writer = csv.DictWriter(sys.stdout, fieldnames=fields + [c for c in CASE_COLUMNS if c not in fields])
    writer.writeheader()
    writer.writerows(scored)
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    """Score one case, or a CSV of cases."""
    if args.cases:
        return _score_cases(args.methodology, Path(args.cases))
    missing = [flag for flag, value in (("--rate", args.rate), ("--severity", args.severity),
                                        ("--effectiveness", args.effectiveness)) if value is None]
    if missing:
        raise InputError(f"give {', '.join(missing)} (or --cases FILE)")
    method = load_methodology(args.methodology)
    result = score_case(
        method,
        rate=args.rate,
        severity_score=args.severity,
        effectiveness_pct=args.effectiveness,
    )
    print(json.dumps({"methodology": method.name, **result.as_dict()}, indent=2))
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    """Check a methodology file."""
    method = load_methodology(args.methodology)
    print(f"{args.methodology}: valid methodology '{method.name}'")
    return 0


def _progress_printer() -> tuple[Callable[[str, int, int], None], Callable[[], None]]:
    """A rich progress bar on a terminal, one line per notebook otherwise."""
    if not sys.stderr.isatty():
        def plain(name: str, done: int, total: int) -> None:
            print(f"[{done}/{total}] {name} done", file=sys.stderr, flush=True)
        return plain, lambda: None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   transient=True)
    task = bar.add_task("notebooks", total=None)
    bar.start()

    def update(name: str, done: int, total: int) -> None:
        bar.update(task, completed=done, total=total, description=f"notebooks (last: {name})")
    return update, bar.stop


def cmd_run(args: argparse.Namespace) -> int:
    """Execute a year's notebooks and write its report folder."""
    from .pipeline import run_year

    update, stop = _progress_printer() if args.progress else (None, lambda: None)
    try:
        result = run_year(args.year, data_dir=args.data_dir, out_dir=args.out_dir, jobs=args.jobs,
                          public=args.public, both=args.both, progress=update, command=["dsarisk", *sys.argv[1:]],
                          formats=args.formats)
    finally:
        stop()
    written = " and ".join(str(folder / "report.html") for folder in result.folders)
    print(f"report{'s' if len(result.folders) > 1 else ''} written to {written} in {result.seconds:.1f} s")
    for note in result.notes:
        print(f"dsarisk: note: {note}", file=sys.stderr)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """Compare two years per module, the change split into method and inputs."""
    from .explore import compare_years

    first, second = args.years
    changes = compare_years(first, second, data_dir=args.data_dir,
                            methodology_a=args.methodology_a, methodology_b=args.methodology_b)
    if args.json:
        print(json.dumps({"years": [first, second], "changes": [vars(change) for change in changes]}, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{first} -> {second}: rating changes in bands (method part + inputs part)")
    for column in ("module", "rating", str(first), str(second), "total", "method", "inputs"):
        table.add_column(column)
    for change in changes:
        table.add_row(change.title, change.rating, change.before, change.after,
                      *("n/a" if step is None else f"{step:+d}" for step in
                        (change.total, change.method_part, change.inputs_part)))
    Console(width=max(120, Console().width)).print(table)
    return 0


def cmd_sor_synth(args: argparse.Namespace) -> int:
    """Write a deterministic synthetic statement-of-reasons dump."""
    from .sources.sor_synth import Rates, synthesize

    rates = Rates(malformed=args.malformed_rate, duplicate=args.duplicate_rate, escape=args.escape_rate,
                  bad_bytes=args.bad_bytes_rate)
    files = synthesize(args.out, rows=args.rows, days=args.days, seed=args.seed, light=args.light,
                       part_rows=args.part_rows, start=_date(args.start, "--start"), rates=rates)
    print(f"wrote {len(files)} daily dump(s), {args.rows:,} rows, to {args.out}")
    return 0


def cmd_sor_aggregate(args: argparse.Namespace) -> int:
    """Aggregate statements of reasons per platform, module and month."""
    from .sources.sor import Filters, aggregate

    out = Path(args.out) if args.out else None
    if out is not None and (out.is_dir() or not out.parent.is_dir()):
        raise InputError("give a CSV file to write in an existing folder", file=out, field="--out")
    filters = Filters(platforms=tuple(args.platform) if args.platform else None, start=_date(args.start, "--start"),
                      end=_date(args.end, "--end"), eu_only=not args.any_territory)
    result = aggregate(args.path, filters, engine=args.engine, **({"cache_dir": None} if args.no_cache else {}))
    if out is None:
        print(result.table.to_csv(index=False), end="")
    else:
        try:
            result.table.to_csv(out, index=False)
        except OSError as exc:
            raise InputError(f"cannot write ({exc.strerror})", file=out, field="--out") from None
    print(json.dumps({k: v for k, v in result.provenance.items() if k != "files"} | {
        "files": len(result.provenance["files"])}, indent=2), file=sys.stderr)
    return 0


def cmd_sor_download(args: argparse.Namespace) -> int:
    """Fetch daily dumps, each checked against its .sha1; complete days are skipped."""
    from .sources.sor_download import download

    start, end = _date(args.start, "--start"), _date(args.end, "--end")

    def progress(name: str, done: int, total: int | None) -> None:
        share = f" {100 * done / total:5.1f} %" if total else ""
        print(f"\r{name}: {done / 1e6:,.1f} MB{share}", end="", file=sys.stderr, flush=True)

    files = download(start=start, end=end, to=args.to, platform=args.platform, variant=args.variant,
                     progress=progress, **({"base_url": args.base_url} if args.base_url else {}))
    print(f"\n{len(files)} dump(s) complete in {args.to}", file=sys.stderr)
    return 0


def cmd_new_year(args: argparse.Namespace) -> int:
    """Scaffold next year's inputs from this year's."""
    from .cycle import new_year

    folder = new_year(args.year, source=args.source, data_dir=args.data_dir, methodology=args.methodology)
    print(f"scaffolded {folder} from {args.source}: fill every 'TO UPDATE' (dsarisk run lists them)")
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    """Scaffold a workspace."""
    from .scaffold import init_workspace

    root = init_workspace(args.folder, platform=args.platform, year=args.year, methodology=args.methodology,
                          modules=args.modules)
    print(f"workspace created in {root}: fill every 'TO UPDATE' under data/{args.year}/, "
          f"then run 'dsarisk run --year {args.year}' there (see its README.md)")
    return 0


def cmd_lab(args: argparse.Namespace) -> int:
    """Open JupyterLab on the workspace: this process becomes JupyterLab, so that a signal
    (Ctrl-C, a service manager's stop) reaches the server itself."""
    import os

    from .scaffold import prepare_notebooks

    workspace = paths.use_workspace(paths.workspace().root)  # kernels inherit the choice
    for copied in prepare_notebooks(workspace):
        print(f"copied {copied.relative_to(workspace.root)} from the tool's notebooks", file=sys.stderr)
    options = [word for word in args.jupyter_args if word != "--"]
    os.execv(sys.executable, [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={workspace.root}", *options])
    return 0  # not reached: execv does not return


def _default_year(data_dir: str | None) -> int:
    """The latest year with inputs in ``data_dir`` (the workspace's ``data/`` by default)."""
    root = Path(data_dir) if data_dir else paths.data_dir()
    years = available_years(root)
    if not years:
        raise InputError("no year with an assessment.yaml: give --year", file=root)
    return years[-1]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dsarisk", description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", metavar="DIR", help=WORKSPACE_HELP)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    init = commands.add_parser("init", help="create a workspace for a platform's assessment")
    init.add_argument("folder", help="the new workspace (an existing folder must hold none of its files)")
    init.add_argument("--platform", required=True, help="the platform assessed, as the report names it")
    init.add_argument("--year", type=int, required=True, help="the first assessment year")
    init.add_argument("--methodology", required=True, help="a preset (year1, year2) or a methodology file; copied")
    init.add_argument("--modules", help="YAML list of {id, title, short} (default: one example module)")
    init.set_defaults(handler=cmd_init)

    lab = commands.add_parser("lab", help="open JupyterLab on the workspace (options after -- go to jupyter lab)")
    lab.add_argument("jupyter_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    lab.set_defaults(handler=cmd_lab)

    score = commands.add_parser("score", help="score one what-if case or a CSV of cases")
    score.add_argument("--methodology", required=True, help="methodology YAML (path or name in data/methodology)")
    score.add_argument("--rate", type=float, help="probability rate in the scale's unit (percent)")
    score.add_argument("--severity", help="severity score (1..n) or level label")
    score.add_argument("--effectiveness", type=float, help="mitigation effectiveness in percent")
    score.add_argument("--cases", help="CSV of cases; prints it back with the four ratings added")
    score.set_defaults(handler=cmd_score)

    validate = commands.add_parser("validate", help="check a methodology file")
    validate.add_argument("--methodology", required=True)
    validate.set_defaults(handler=cmd_validate)

    run = commands.add_parser("run", help="execute a year's notebooks and assemble its report")
    run.add_argument("--year", type=int, help="assessment year (default: the latest in data/)")
    run.add_argument("--data-dir", help="folder holding <year>/ (default: the workspace's data/)")
    run.add_argument("--out-dir", help="where <year>/ is written (default: the workspace's reports/)")
    run.add_argument("--jobs", type=int, help="notebooks run at once (default: the number of cores)")
    version = run.add_mutually_exclusive_group()
    version.add_argument("--public", action="store_true", help="build the non-confidential version")
    version.add_argument("--both", action="store_true",
                         help="build the internal and the non-confidential version, sharing inputs and kernels")
    run.add_argument("--formats", default="html",
                     help="report formats, comma-separated among html, xlsx, pdf (default: html)")
    run.add_argument("--no-progress", dest="progress", action="store_false", help="print no progress")
    run.set_defaults(handler=cmd_run)

    compare = commands.add_parser("compare", help="compare two years, the change split into method and inputs")
    compare.add_argument("--years", type=int, nargs=2, required=True, metavar=("A", "B"))
    compare.add_argument("--data-dir", help="folder holding the years (default: the project's data/)")
    compare.add_argument("--methodology-a", help="score year A under this methodology instead of its own")
    compare.add_argument("--methodology-b", help="score year B under this methodology instead of its own")
    compare.add_argument("--json", action="store_true", help="print JSON for machines")
    compare.set_defaults(handler=cmd_compare)

    new = commands.add_parser("new-year", help="start next year's inputs from this year's")
    new.add_argument("year", type=int)
    new.add_argument("--from", dest="source", type=int, required=True, help="the year to start from")
    new.add_argument("--data-dir", help="folder holding the years (default: the project's data/)")
    new.add_argument("--methodology", help="methodology for the new year (default: the source year's)")
    new.set_defaults(handler=cmd_new_year)

    sor = commands.add_parser("sor", help="statements of reasons from the DSA Transparency Database")
    sor_commands = sor.add_subparsers(dest="sor_command", required=True, metavar="SUBCOMMAND")
    synth = sor_commands.add_parser("synth", help="write a deterministic synthetic dump (nested daily zips)")
    synth.add_argument("--rows", type=int, required=True)
    synth.add_argument("--days", type=int, default=1)
    synth.add_argument("--out", required=True)
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--light", action="store_true", help="write light dumps (no free-text columns)")
    synth.add_argument("--part-rows", type=int, default=100_000, help="rows per CSV part")
    synth.add_argument("--start", default="2025-06-29", help="first day (the default spans the switch to schema v2)")
    for name, default, what in (("malformed", 0.002, "malformed values"), ("duplicate", 0.0005, "repeated statements"),
                                ("escape", 0.0002, 'PHP \\" escapes'), ("bad-bytes", 0.0001, "invalid UTF-8 bytes")):
        synth.add_argument(f"--{name}-rate", type=float, default=default, help=f"share of rows with {what}")
    synth.set_defaults(handler=cmd_sor_synth)
    agg = sor_commands.add_parser("aggregate", help="aggregate a dump per platform, module and month")
    agg.add_argument("path", help="a dump file or a folder of them")
    agg.add_argument("--engine", choices=("duckdb", "spark"), default="duckdb")
    agg.add_argument("--platform", action="append", help="keep this platform (repeatable)")
    agg.add_argument("--start", help="first application date, YYYY-MM-DD")
    agg.add_argument("--end", help="last application date, YYYY-MM-DD")
    agg.add_argument("--any-territory", action="store_true", help="do not require an EU/EEA territorial scope")
    agg.add_argument("--out", help="write the table to this CSV instead of standard output")
    agg.add_argument("--no-cache", action="store_true", help="read every file again (no cached result)")
    agg.set_defaults(handler=cmd_sor_aggregate)
    fetch = sor_commands.add_parser("download", help="fetch daily dumps, each checked against its .sha1")
    fetch.add_argument("--start", required=True, help="first day, YYYY-MM-DD")
    fetch.add_argument("--end", required=True, help="last day, YYYY-MM-DD")
    fetch.add_argument("--platform", default="global", help="'global' (every platform) or a platform's slug")
    fetch.add_argument("--variant", choices=("full", "light"), default="full")
    fetch.add_argument("--to", required=True, help="folder to write the dumps to")
    fetch.add_argument("--base-url", default=None, help="download location (default: the official one)")
    fetch.set_defaults(handler=cmd_sor_download)
    for command in commands.choices.values():  # also accepted after the command's name
        command.add_argument("--workspace", metavar="DIR", default=argparse.SUPPRESS, help=WORKSPACE_HELP)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    with ctrl_c_remembered():
        return _main(args, handler)


def _main(args: argparse.Namespace, handler: Callable[[argparse.Namespace], int]) -> int:
    try:
        if args.workspace:
            paths.use_workspace(args.workspace)
        if args.command == "run" and args.year is None:
            args.year = _default_year(args.data_dir)
        return handler(args)
    except InputError as exc:
        print(f"dsarisk: error: {exc.one_line()}", file=sys.stderr)
        return EXIT_INPUT
    except PipelineError as exc:
        print(f"dsarisk: error: {exc.message}", file=sys.stderr)
        return EXIT_FAILED
    except DsariskError as exc:
        print(f"dsarisk: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("dsarisk: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
