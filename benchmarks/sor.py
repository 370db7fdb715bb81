"""Statements-of-reasons aggregation side by side in one run: dsarisk (DuckDB), the DuckDB scan
floor, shantay and a pandas chunked reader, on the same real-shaped dumps.

The dumps are real rows (``shared/data/sor-real`` beside the repository) repeated with fresh
uuids, two days in the published nested layout with a ``.sha1`` beside each (without the real
rows: the generator's rows). Each contender runs in its own process; the figures are wall time,
rows per second and peak memory (the largest process's maximum resident set size), at ROWS and
at twice as many (the memory slope). shantay needs Python >= 3.12: the benchmark builds a
virtual environment for it with such an interpreter when one exists (PATH, then pyenv) and
says so when none does; it writes shantay's platform list into a scratch HOME first, so that
shantay never goes online.

Each contender runs ``--repeat`` times, interleaved with the others; the median time is
reported (a shared virtual machine's timings vary by a fifth from one run to the next).

Usage: python benchmarks/sor.py [--rows 1000000] [--repeat 3] [--skip-pandas]
Targets: dsarisk >= 2x shantay's throughput, <= 1.3x the scan floor's time, peak memory under
1 GB and flat as rows double, every row aggregated or accounted for.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
FIRST_DAY = dt.date(2024, 3, 14)
CHILD = """
import json, sys, time
sys.path.insert(0, {here!r})
from dsarisk.sources.sor import aggregate_duckdb
from sor_baseline import aggregate_pandas, count_duckdb
engine, path = sys.argv[1], sys.argv[2]
started = time.perf_counter()
if engine == "dsarisk":
    p = aggregate_duckdb(path).provenance
    rows = {{k: p[k] for k in ("rows_read", "rows_aggregated", "rows_rejected", "rows_filtered_out", "rows_duplicate")}}
elif engine == "scan":
    rows = {{"rows_read": count_duckdb(path)}}
else:
    rows = {{"rows_aggregated": int(aggregate_pandas(path)["statements"].sum())}}
print(json.dumps({{"seconds": time.perf_counter() - started, **rows}}))
"""
PEAK = "import resource, subprocess, sys; code = subprocess.run(sys.argv[1:]).returncode; " \
       "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, file=sys.stderr); sys.exit(code)"


def real_rows() -> tuple[bytes, list[bytes]] | None:
    """The header and rows of the real parts (without their uuids), if they are beside the repo."""
    for folder in HERE.parents:
        real = folder / "shared" / "data" / "sor-real"
        if real.is_dir():
            lines = [line for part in sorted(real.glob("*.csv")) for line in part.read_bytes().splitlines()]
            header = lines[0]
            return header, [line[36:] for line in lines if line != header]
    return None


def build(folder: Path, rows: int) -> str:
    """Two days of ``rows`` in all, in the published layout under shantay's archive layout
    (``YYYY/MM/``); returns where the rows came from."""
    source = real_rows()
    if source is None:
        from dsarisk.sources.sor_synth import synthesize

        synthesize(folder / f"{FIRST_DAY:%Y/%m}", rows=rows, days=2, start=FIRST_DAY)
        return "generated rows (no real rows beside the repository)"
    header, tails = source
    for day_index in range(2):
        day = FIRST_DAY + dt.timedelta(days=day_index)
        stem = f"sor-global-{day}-full"
        target = folder / f"{day:%Y/%m}" / f"{stem}.zip"
        target.parent.mkdir(parents=True, exist_ok=True)
        day_rows = rows // 2 + (day_index < rows % 2)
        with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as outer:
            for inner_index, inner_start in enumerate(range(0, day_rows, 1_000_000)):
                buffer = io.BytesIO()
                with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as inner:
                    count = min(1_000_000, day_rows - inner_start)
                    for part_index, part_start in enumerate(range(0, count, 100_000)):
                        n = min(100_000, count - part_start)
                        body = b"\n".join(str(uuid.uuid4()).encode() + tails[(part_start + i) % len(tails)]
                                          for i in range(n))
                        inner.writestr(f"{stem}-{inner_index:05d}-{part_index:05d}.csv", header + b"\n" + body)
                outer.writestr(f"{stem}-{inner_index:05d}.csv.zip", buffer.getvalue())
        digest = hashlib.sha1(target.read_bytes()).hexdigest()
        target.with_name(target.name + ".sha1").write_text(f"{digest}  {target.name}\n")
    return "real rows repeated with fresh uuids"


def timed(command: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> tuple[float, float, str]:
    """Wall seconds, peak MB and standard output of ``command`` in its own process."""
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", PEAK, *command], capture_output=True, text=True, env=env,
                         cwd=cwd)
    seconds = time.perf_counter() - started
    if out.returncode != 0:
        raise RuntimeError(f"{command[:3]} failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return seconds, float(out.stderr.strip().splitlines()[-1]), out.stdout


def python_312() -> str | None:
    """An interpreter >= 3.12 for shantay that runs: on PATH, then under pyenv (a pyenv shim
    on PATH may name a version that is installed but not selected, and fail)."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates = [shutil.which(name) for name in ("python3.14", "python3.13", "python3.12")]
    candidates += [str(version / "bin" / "python3") for version in sorted(pyenv.glob("3.1[2-9]*"), reverse=True)]
    for candidate in filter(None, candidates):
        works = subprocess.run([candidate, "-c", "import sys; sys.exit(sys.version_info < (3, 12))"],
                               capture_output=True)
        if works.returncode == 0:
            return candidate
    return None


def shantay_command() -> tuple[list[str] | None, str]:
    """shantay in its own virtual environment (built once under build/), or why not."""
    interpreter = python_312()
    if interpreter is None:
        return None, "shantay not run: it needs Python >= 3.12 and none was found (PATH, pyenv)"
    venv = HERE.parent / "build" / "shantay-venv"
    if not (venv / "bin" / "shantay").exists():
        subprocess.run([interpreter, "-m", "venv", str(venv)], check=True)
        install = subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "shantay"], capture_output=True,
                                 text=True)
        if install.returncode != 0:
            return None, f"shantay not run: pip could not install it ({install.stderr.strip()[-200:]})"
    return [str(venv / "bin" / "shantay")], f"shantay run with {interpreter}"


def platforms_file(home: Path) -> None:
    """shantay's platform list, fresh, holding every platform of the dumps: it stays offline."""
    from dsarisk.sources.sor_synth import PLATFORMS

    names = {"TikTok", "Google Shopping", "Pinterest", "AliExpress", "Snapchat", *PLATFORMS}
    (home / ".shantay").mkdir(parents=True, exist_ok=True)
    (home / ".shantay" / "platforms.json").write_text(json.dumps(sorted(names)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each contender (median reported)")
    parser.add_argument("--skip-pandas", action="store_true", help="leave out the slow pandas baseline")
    args = parser.parse_args()
    results: dict[tuple[str, int], dict] = {}
    with tempfile.TemporaryDirectory(prefix="sor-bench-") as scratch_name:
        scratch = Path(scratch_name)
        shantay, shantay_note = shantay_command()
        print(shantay_note, flush=True)
        for rows in (args.rows, 2 * args.rows):
            archive = scratch / f"archive-{rows}"
            started = time.perf_counter()
            origin = build(archive, rows)
            size = sum(p.stat().st_size for p in archive.rglob("*.zip")) / 1e6
            print(f"{rows:,} rows ({origin}), {size:,.0f} MB zipped, built in {time.perf_counter() - started:.0f} s",
                  flush=True)
            contenders = ["dsarisk", "scan"] + ([] if args.skip_pandas or rows > args.rows else ["pandas"])
            runs: dict[str, list[dict]] = {}
            for _ in range(args.repeat):  # interleaved: a slow minute of the machine hits every contender
                for name in contenders:
                    if name == "pandas" and name in runs:
                        continue  # a minute a run: once is enough to place it
                    seconds, peak, out = timed([sys.executable, "-c", CHILD.format(here=str(HERE)), name, str(archive)])
                    counts = json.loads(next(line for line in reversed(out.splitlines()) if line.startswith("{")))
                    runs.setdefault(name, []).append({**counts, "seconds": seconds, "peak_mb": peak})
                if shantay is not None:
                    home, before = scratch / "home", set(archive.rglob("*"))
                    platforms_file(home)
                    seconds, peak, _ = timed([*shantay, "--archive", str(archive), "--staging", str(scratch / "staging"),
                                              "--offline", "--first", str(FIRST_DAY), "--last",
                                              str(FIRST_DAY + dt.timedelta(days=1)), "summarize"],
                                             env={**os.environ, "HOME": str(home)}, cwd=scratch)  # its log goes there
                    runs.setdefault("shantay", []).append({"seconds": seconds, "peak_mb": peak})
                    shutil.rmtree(scratch / "staging", ignore_errors=True)
                    for made in sorted(set(archive.rglob("*")) - before, reverse=True):  # files before folders
                        if made.is_dir():  # its db.parquet and what else it wrote: the next run starts afresh
                            made.rmdir()
                        else:
                            made.unlink()
            for name, measured in runs.items():
                results[(name, rows)] = {**measured[0], "seconds": statistics.median(r["seconds"] for r in measured),
                                         "peak_mb": max(r["peak_mb"] for r in measured)}
            for (name, size_), r in results.items():
                if size_ == rows:
                    extra = ", ".join(f"{k} {v:,}" for k, v in r.items() if k.startswith("rows_"))
                    print(f"  {name:8s} {rows / r['seconds']:>10,.0f} rows/s {r['seconds']:7.1f} s "
                          f"peak {r['peak_mb']:6.0f} MB  {extra}", flush=True)
            shutil.rmtree(archive)
        ours, scan = results[("dsarisk", args.rows)], results[("scan", args.rows)]
        twice = results[("dsarisk", 2 * args.rows)]
        if ("shantay", args.rows) in results:
            print(f"dsarisk / shantay throughput: {results[('shantay', args.rows)]['seconds'] / ours['seconds']:.2f}x "
                  f"at {args.rows:,} rows, {results[('shantay', 2 * args.rows)]['seconds'] / twice['seconds']:.2f}x "
                  "at twice as many (target >= 2x)")
        print(f"dsarisk time / scan floor: {ours['seconds'] / scan['seconds']:.2f} at {args.rows:,} rows, "
              f"{twice['seconds'] / results[('scan', 2 * args.rows)]['seconds']:.2f} at twice as many (target <= 1.3)")
        if ("pandas", args.rows) in results:
            print(f"dsarisk / pandas throughput: {results[('pandas', args.rows)]['seconds'] / ours['seconds']:.1f}x")
        print(f"dsarisk peak memory: {ours['peak_mb']:.0f} MB at {args.rows:,} rows, {twice['peak_mb']:.0f} MB at "
              f"{2 * args.rows:,} (target < 1024 MB, flat)")
        for r in (ours, twice):
            accounted = r["rows_aggregated"] + r["rows_rejected"] + r["rows_filtered_out"] + r["rows_duplicate"]
            if accounted != r["rows_read"]:
                raise SystemExit(f"rows not accounted for: {r}")


if __name__ == "__main__":
    main()
