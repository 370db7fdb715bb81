"""Run a year's assessment: execute the notebooks with papermill, assemble the report.

Output goes to a staging folder first and replaces ``<out_dir>/<year>/`` only when
everything succeeded, so a failed or interrupted run never leaves a half report
and never touches the previous one.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import os
import platform
import shutil
import sys
import threading
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from . import outdir
from .engine import Job, JobOutcome, execute_all, skip_iri_format_checker, stop_pool, worker_pool
from .exceptions import PipelineError
from .exports import export_formats, write_exports
from .hashing import sha256_file
from . import paths
from .inputs import ModuleIdentity, YearInputs, load_year
from .paths import NOTEBOOKS_DIR
from .assess import assess_year
from .confidentiality import public_views
from .sources.sor_dumps import discover
from .sources.sor_schema import SOR_DIR

SUMMARY_NOTEBOOK = "00_summary.ipynb"
MODULE_NOTEBOOK = "10_module.ipynb"  # the template every module runs unless it names its own
EXPLORE_NOTEBOOK = "90_explore.ipynb"
# What every notebook imports first: each worker's kernel imports it before its first notebook.
WARM_UP = "%matplotlib inline\nimport dsarisk.workbook"
PACKAGES = ("dsarisk", "pandas", "matplotlib", "seaborn", "papermill", "nbconvert", "nbformat", "nbclient",
            "ipykernel", "pydantic", "PyYAML", "jupytext")


@dataclass
class RunResult:
    """Where the report went and what it took."""

    folder: Path
    durations: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    folders: list[Path] = field(default_factory=list)  # every version written (--both)
    notes: list[str] = field(default_factory=list)  # what the analyst should know, one line each


def notebook_for(identity: ModuleIdentity, notebooks_dir: Path = NOTEBOOKS_DIR, *, year_dir: Path | None = None) -> Path:
    """The notebook a module runs: the one its taxonomy entry names (looked up in the year's
    data folder, then in ``notebooks_dir``), else the module template."""
    if identity.notebook is None:
        return notebooks_dir / MODULE_NOTEBOOK
    candidates = [*([year_dir / identity.notebook] if year_dir is not None else []), notebooks_dir / identity.notebook]
    found = next((path for path in candidates if path.is_file()), None)
    if found is None:
        raise PipelineError(f"notebook '{identity.notebook}' named by module '{identity.id}' is in none of "
                            f"{', '.join(str(c.parent) for c in candidates)}", module=identity.id)
    return found


def plan_jobs(inputs: YearInputs, *, notebooks_dir: Path, executed_dir: Path, results_dir: Path,
              public: bool) -> list[Job]:
    """The notebooks a year's report executes, in report order: the summary, each module in
    the taxonomy's order, and (internal report only: it shows confidential distances) the
    exploration notebook."""
    data_root = str(inputs.data_dir.resolve())
    common = {"year": inputs.year, "data_dir": data_root, "public": public}
    jobs = [Job("summary", "Summary", notebooks_dir / SUMMARY_NOTEBOOK, executed_dir / SUMMARY_NOTEBOOK, common)]
    for identity in inputs.taxonomy:
        source = notebook_for(identity, notebooks_dir, year_dir=inputs.data_dir / str(inputs.year))
        jobs.append(Job(identity.id, identity.title, source, executed_dir / f"{identity.order:02d}_{identity.id}.ipynb",
                        {**common, "module": identity.id, "output_dir": str(results_dir)}))
    if not public:
        jobs.append(Job("explore", "Exploration", notebooks_dir / EXPLORE_NOTEBOOK, executed_dir / EXPLORE_NOTEBOOK,
                        {"year": inputs.year, "data_dir": data_root, "interactive": False}, cost=1.5))
    return jobs


def _input_files(inputs: YearInputs) -> dict[str, Path]:
    """Every file the run read, named relative to the data folder (never an absolute path)."""
    files: dict[str, Path] = {}
    years = [inputs.year]
    if inputs.previous_year is not None:
        years.append(inputs.previous_year)
    for year in years:
        for path in sorted((inputs.data_dir / str(year)).glob("*.yaml")):
            files[f"{year}/{path.name}"] = path
    for item in inputs.modules.values():
        for proxy in item.probability.proxies:
            if proxy.sor is None:
                continue
            for path in [*discover(inputs.data_dir / str(inputs.year) / proxy.sor.path),
                         SOR_DIR / "categories.yaml", SOR_DIR / "schema.yaml"]:
                resolved = path.resolve()
                inside = resolved.is_relative_to(inputs.data_dir.resolve())
                files[str(resolved.relative_to(inputs.data_dir.resolve())) if inside else f"sor/{path.name}"] = path
    methodology = inputs.methodology_path
    files[f"methodology/{methodology.name}"] = methodology
    if inputs.previous_year is not None:
        previous = load_year(inputs.previous_year, data_dir=inputs.data_dir, modules=[])
        files[f"methodology/{previous.methodology_path.name}"] = previous.methodology_path
    return files


def _notebook_record(job: Job, outcome: JobOutcome, rendering: float, *, public: bool) -> dict[str, Any]:
    """A notebook's line in the manifest: what ran, how long, and (internal version only: in the
    public one every extra number could be mistaken for a hidden figure) where the time went."""
    record = {"source_sha256": sha256_file(job.source), "seconds": round(outcome.seconds, 2)}
    if not public:
        record.update(kernel=outcome.kernel, time={**{part: round(value, 2) for part, value in outcome.times.items()},
                                                   "rendering": round(rendering, 2)})
    return record


def _manifest(inputs: YearInputs, jobs: Iterable[Job], outcomes: dict[str, JobOutcome], *, command: list[str],
              started: dt.datetime, public: bool, rendering: dict[str, float]) -> dict[str, Any]:
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "year": inputs.year,
        "version": "non-confidential" if public else "confidential",
        "methodology": inputs.methodology.name,
        "command": _command_without_paths(command) if public else command,
        "started": started.isoformat(timespec="seconds"),
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "packages": versions,
        "inputs": {name: sha256_file(path) for name, path in _input_files(inputs).items()},
        "notebooks": {job.name: _notebook_record(job, outcomes[job.name], rendering.get(_anchor(job.name), 0.0),
                                                  public=public)
                      for job in jobs},
    }


def _summary(inputs: YearInputs, results_dir: Path, public: bool) -> dict[str, Any]:
    modules = {}
    for module_id in inputs.modules:
        record = json.loads((results_dir / f"{module_id}.json").read_text(encoding="utf-8"))
        for key in ("year", "module", "public"):
            record.pop(key)
        modules[module_id] = record
    changes = [{"module": module_id, **change} for module_id, record in modules.items()
               for change in record.get("changes", [])]
    return {"year": inputs.year, "platform": inputs.assessment.platform, "methodology": inputs.methodology.name,
            "version": "non-confidential" if public else "confidential", "modules": modules, "changes": changes}


PATH_PARAMETERS = {"data_dir": "<data_dir>", "output_dir": "<output_dir>"}
PATH_OPTIONS = {"--data-dir": "<data_dir>", "--out-dir": "<out_dir>"}


def _without_paths(job: Job) -> None:
    """Rewrite papermill's record of a public notebook (metadata and the injected cell)
    so that no local path, such as a private data folder, reaches the published folder."""
    import nbformat  # imported here: its schema validator takes a second to import, public builds only

    notebook = nbformat.read(job.output, as_version=4)
    safe = {key: PATH_PARAMETERS.get(key, value) for key, value in job.parameters.items()}
    record = notebook.metadata.get("papermill", {})
    record.update(parameters=safe, input_path=f"notebooks/{job.source.name}", output_path=f"notebooks/{job.output.name}")
    record.pop("environment_variables", None)
    for cell in notebook.cells:
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell.source = "# Parameters\n" + "".join(f"{key} = {value!r}\n" for key, value in safe.items())
    nbformat.write(notebook, job.output)


def _command_without_paths(command: list[str]) -> list[str]:
    shown = []
    for i, word in enumerate(command):
        option = command[i - 1] if i else ""
        if option in PATH_OPTIONS:
            shown.append(PATH_OPTIONS[option])
        elif "=" in word and word.split("=", 1)[0] in PATH_OPTIONS:
            shown.append(f"{word.split('=', 1)[0]}={PATH_OPTIONS[word.split('=', 1)[0]]}")
        else:
            shown.append(word)
    return shown


def _preload(module: str) -> threading.Thread:
    """Import ``module`` in the background, so its import overlaps the notebooks' run."""
    thread = threading.Thread(target=importlib.import_module, args=(module,), daemon=True)
    thread.start()
    return thread


def _anchor(job_name: str) -> str:
    return f"section-{job_name}"


class _ReportWriter:
    """Renders each executed notebook into its report section as soon as a worker would
    otherwise sit idle (fewer notebooks left than workers), so that little remains to do
    once the last notebook is done."""

    def __init__(self, jobs: list[Job], *, workers: int, public: bool, title: str) -> None:
        self.jobs = {job.name: job for job in jobs}
        self.workers = workers
        self.public = public
        self.title = title
        self.done: list[str] = []
        self._report: Any = None  # a dsarisk.export.Report, once nbconvert is imported
        skip_iri_format_checker()
        self._import = _preload("dsarisk.export")  # nbconvert takes a second to import

    def notebook_done(self, outcome: JobOutcome) -> None:
        self.done.append(outcome.name)
        if outcome.error:
            return
        if self.public:
            _without_paths(self.jobs[outcome.name])
        if len(self.jobs) - len(self.done) < self.workers:
            self._built_report().render(_anchor(name) for name in self.done)

    def write(self, path: Path) -> dict[str, float]:
        """Write the report page with every section, in report order; return each section's
        rendering time by anchor."""
        report = self._built_report()
        report.write(path)
        return report.seconds

    def _built_report(self) -> Any:
        if self._report is None:
            self._import.join()
            from .export import Report, Section

            sections = [Section(_anchor(job.name), job.title, job.output) for job in self.jobs.values()]
            self._report = Report(sections, title=self.title, public=self.public)
        return self._report


def run_year(
    year: int,
    *,
    data_dir: str | Path | None = None,
    out_dir: str | Path | None = None,
    jobs: int | None = None,
    public: bool = False,
    both: bool = False,
    notebooks_dir: Path = NOTEBOOKS_DIR,
    progress: Callable[[str, int, int], None] | None = None,
    command: list[str] | None = None,
    formats: str | Iterable[str] = ("html",),
) -> RunResult:
    """Execute every module notebook and the summary for ``year`` and write the report folder.

    Parameters
    ----------
    year : int
    data_dir : str or Path, optional
        The data folder (``data/`` by default).
    out_dir : str or Path, optional
        Where ``<year>/`` (or ``<year>-public/``) is written; ``reports/`` by default.
    jobs : int, optional
        Notebooks executed at once; the number of cores by default.
    public : bool
        Build the non-confidential version.
    both : bool
        Build both versions, the internal one first; they share the validated inputs and the
        warm kernels. The result names the internal folder (``folders`` holds both).
    progress : callable, optional
        Called as ``progress(name, done, total)`` after each notebook.
    formats : str or iterable of str
        Report formats among ``html``, ``xlsx``, ``pdf`` (``report.html`` is always written);
        ``ratings.csv`` is written in any case.

    Raises
    ------
    InputError
        When the year's inputs are invalid (before anything runs).
    OutputError
        When the output folder is unusable or overlaps the inputs (before anything runs).
    PipelineError
        When a notebook fails, naming the module, the cell and the error.
    """
    started_at, clock = dt.datetime.now(dt.UTC), time.perf_counter()
    versions = (False, True) if both else (public,)
    formats = export_formats(formats)
    workers = jobs or os.cpu_count() or 1
    pool = worker_pool(workers, warm_up=WARM_UP)  # workers and kernels start while the inputs are validated
    try:
        inputs = load_year(year, data_dir=data_dir)
        out_root = outdir.prepare(Path(out_dir) if out_dir is not None else paths.reports_dir(), inputs={
            "data folder": inputs.data_dir, "methodology": inputs.methodology_path, "notebooks": notebooks_dir})
        for version in versions:  # before the run, not only at the swap: fail fast
            outdir.check_replaceable(out_root / _folder_name(year, version))
            outdir.check_replaceable(out_root / f"{_folder_name(year, version)}-failed")
        outdir.sweep_leftovers(out_root)
        redacted = redacted_prose(inputs) if True in versions else []
        built = [_build(inputs, version, pool=pool, workers=workers, out_root=out_root, notebooks_dir=notebooks_dir,
                        progress=progress, command=command or [Path(sys.argv[0]).name, *sys.argv[1:]],
                        started_at=started_at, last=version == versions[-1], formats=formats, redacted=redacted)
                 for version in versions]
    except BaseException:
        stop_pool(pool)  # the notebooks still running, before their staging folder goes
        raise
    return RunResult(folder=built[0][0], durations={k: o.seconds for k, o in built[0][1].items()},
                     seconds=time.perf_counter() - clock, folders=[folder for folder, _ in built],
                     notes=[f"{r['file']}: module {r['module']}, field {r['field']} states {r['states']}: redacted in "
                            "the public version; rephrase it to publish the text as written" for r in redacted])


def redacted_prose(inputs: YearInputs) -> list[dict[str, str]]:
    """Each prose field that states a figure or level the public version hides (redacted
    there): its file, module and field, and what it states (never the value)."""
    return [{"file": f"{inputs.year}/{inputs.files[module].name}", "module": module, "field": s.field,
             "states": s.states} for module, _, statements in public_views(assess_year(inputs)) for s in statements]


def _folder_name(year: int, public: bool) -> str:
    return f"{year}-public" if public else str(year)


def _build(inputs: YearInputs, public: bool, *, pool: Any, workers: int, out_root: Path, notebooks_dir: Path,
           progress: Callable[[str, int, int], None] | None, command: list[str], started_at: dt.datetime,
           last: bool, formats: Collection[str], redacted: list[dict[str, str]]) -> tuple[Path, dict[str, JobOutcome]]:
    """Execute one version's notebooks on ``pool`` in a staging folder, write its report and
    swap it into place; return the folder and the outcomes."""
    name = _folder_name(inputs.year, public)
    final = out_root / name
    staging = outdir.make_staging(out_root, name)
    try:
        results = staging / "results"
        notebooks = staging / "notebooks"
        notebooks.mkdir()
        job_list = plan_jobs(inputs, notebooks_dir=notebooks_dir, executed_dir=notebooks, results_dir=results,
                             public=public)
        report = _ReportWriter(job_list, workers=workers, public=public,
                               title=f"DSA systemic risk assessment {inputs.year}: {inputs.assessment.platform}")

        def on_done(outcome: JobOutcome) -> None:
            report.notebook_done(outcome)
            if progress:
                progress(outcome.name, len(report.done), len(job_list))

        outcomes = execute_all(job_list, workers, on_done, pool=pool)
        failed = next((o for o in outcomes.values() if o.error), None)
        if failed is None:
            if last:
                pool.shutdown(wait=False)  # the workers exit while the report is written
        else:
            stop_pool(pool)  # the other notebooks, which would go on writing into the staging folder
            kept = out_root / f"{name}-failed"
            outdir.replace_with_copy(notebooks, kept)
            job = next(j for j in job_list if j.name == failed.name)
            where = f"cell {failed.cell}" if failed.cell is not None else "kernel start"
            raise PipelineError(
                f"module '{failed.name}' failed at {where}: {failed.error} "
                f"(executed notebook kept at {kept / job.output.name})",
                module=failed.name, cell=failed.cell, notebook=kept / job.output.name)
        summary = _summary(inputs, results, public)
        shutil.rmtree(results)
        (staging / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        rendering = report.write(staging / "report.html")
        write_exports(staging, summary=summary, methodology=inputs.methodology, formats=formats)
        manifest = _manifest(inputs, job_list, outcomes, command=command, started=started_at, public=public,
                             rendering=rendering)
        if public:
            manifest["redacted_prose"] = redacted
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        outdir.swap_into_place(staging, final)
    except BaseException:
        stop_pool(pool)  # before the staging folder goes: no notebook may write into it again
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final, outcomes
