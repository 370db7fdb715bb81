"""Wall time of `dsarisk run` against a floor and the naive way, measured in one run.

- run:   `dsarisk run --year 2024` (parallel papermill, one nbconvert pass)
- floor: the same number of notebooks that only import the same libraries, executed
         with the same parallelism and the same engine (nothing can be faster than that)
- naive: papermill CLI then nbconvert CLI, one notebook after another

Usage: python benchmarks/run.py [--year 2024] [--jobs N] [--repeat 1]
Targets on 2 cores: run / floor <= 1.5 and run / naive <= 0.5.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from dsarisk.inputs import load_year
from dsarisk.paths import NOTEBOOKS_DIR
from dsarisk.engine import Job, execute_all
from dsarisk.pipeline import plan_jobs

BIN = Path(sys.executable).parent
FLOOR_SOURCE = "%matplotlib inline\nimport pandas, matplotlib, seaborn, pydantic, yaml\nimport dsarisk.workbook"


def _timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def _run_command(year: int, jobs: int, scratch: Path) -> None:
    subprocess.run([str(BIN / "dsarisk"), "run", "--year", str(year), "--jobs", str(jobs), "--out-dir",
                    str(scratch / "run"), "--no-progress"], check=True, capture_output=True)


def _floor(notebooks: list[Path], jobs: int, scratch: Path) -> None:
    folder = scratch / "floor"
    folder.mkdir(exist_ok=True)
    job_list = []
    for index, path in enumerate(notebooks):  # the module template appears once per module
        notebook = nbformat.v4.new_notebook(metadata=nbformat.read(path, as_version=4).metadata)
        notebook.cells = [nbformat.v4.new_code_cell(FLOOR_SOURCE)]
        source = folder / f"in-{index}-{path.name}"
        nbformat.write(notebook, source)
        job_list.append(Job(f"{index}-{path.stem}", path.stem, source, folder / f"{index}-{path.name}", {}))
    outcomes = execute_all(job_list, jobs, lambda outcome: None)
    assert not any(o.error for o in outcomes.values()), outcomes


def _naive(jobs: list[Job], scratch: Path) -> None:
    folder = scratch / "naive"
    folder.mkdir(exist_ok=True)
    for job in jobs:
        executed = folder / job.output.name
        parameters = [word for key, value in job.parameters.items() for word in ("-p", key, str(value))]
        subprocess.run([str(BIN / "papermill"), str(job.source), str(executed), *parameters, "--no-progress-bar"],
                       check=True, capture_output=True)
        subprocess.run([str(BIN / "jupyter"), "nbconvert", "--to", "html", "--no-input", str(executed)],
                       check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--year", type=int, default=2024)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeat", type=int, default=1, help="take the median of this many rounds")
    args = parser.parse_args()
    os.environ.pop("MPLBACKEND", None)
    inputs = load_year(args.year)
    times: dict[str, list[float]] = {"run": [], "floor": [], "naive": []}
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as scratch_dir:
            scratch = Path(scratch_dir)
            jobs = plan_jobs(inputs, notebooks_dir=NOTEBOOKS_DIR, executed_dir=scratch / "naive",
                             results_dir=scratch / "naive" / "results", public=False)
            notebooks = [job.source for job in jobs]
            times["floor"].append(_timed(lambda: _floor(notebooks, args.jobs, scratch)))
            times["run"].append(_timed(lambda: _run_command(args.year, args.jobs, scratch)))
            times["naive"].append(_timed(lambda: _naive(jobs, scratch)))
    run, floor, naive = (statistics.median(times[k]) for k in ("run", "floor", "naive"))
    print(f"notebooks: {len(notebooks)}, jobs: {args.jobs}, cores: {os.cpu_count()}, rounds: {args.repeat}")
    print(f"run   {run:6.1f} s   (dsarisk run --year {args.year})")
    print(f"floor {floor:6.1f} s   (import-only notebooks, same engine and parallelism)")
    print(f"naive {naive:6.1f} s   (papermill CLI + nbconvert CLI, one notebook after another)")
    print(f"run / floor = {run / floor:.2f}  (target <= 1.5)")
    print(f"run / naive = {run / naive:.2f}  (target <= 0.5)")


if __name__ == "__main__":
    main()
