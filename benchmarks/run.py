"""Wall time of `dsarisk run` against an honest floor, measured side by side in one run.

- run:          `dsarisk run --year Y` (internal version)
- both:         `dsarisk run --year Y --both` (internal and non-confidential, one command)
- plain floor:  as many notebooks as the run executes, each only importing pandas, matplotlib,
                seaborn and dsarisk and drawing one inline figure, executed with plain
                `papermill.execute_notebook` in a process pool of as many workers: what any
                papermill pipeline pays, a cold kernel and cold imports per notebook
- engine floor: the same notebooks through `dsarisk.engine` (warm kernels): the engine's own
                cost against the plain floor
- naive:        (with --naive) papermill CLI then nbconvert CLI, one notebook after another

Then where the run's time goes, per notebook, from its manifest. Each round runs every
variant once, in a rotating order; the figures are medians over the rounds.

- N modules:    (with --modules N) `dsarisk run` on a generated year of N judged modules
                (tests/generated_years.py), against a plain floor of as many notebooks

Usage: python benchmarks/run.py [--year 2024] [--jobs N] [--repeat 3] [--naive] [--modules 32]
Targets on 2 cores: run / floor <= 1.0, both / floor <= 1.6, engine floor <= plain floor.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import nbformat

from dsarisk.engine import Job, execute_all
from dsarisk.inputs import load_year
from dsarisk.paths import NOTEBOOKS_DIR
from dsarisk.pipeline import WARM_UP, plan_jobs

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.generated_years import FOUR_BY_FOUR_PRODUCT, write_year  # noqa: E402

BIN = Path(sys.executable).parent
FLOOR_SOURCE = ("%matplotlib inline\nimport pandas, matplotlib.pyplot as plt, seaborn, dsarisk.workbook\n"
                "fig, ax = plt.subplots()\nax.plot([1, 2, 3], [3, 1, 2]);")
GENERATED_YEAR = 2030
PARTS = ("kernel_start", "imports", "reset", "cells", "figure_encoding", "rendering")


def _timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def _run_command(year: int, jobs: int, out: Path, *extra: str) -> None:
    subprocess.run([str(BIN / "dsarisk"), "run", "--year", str(year), "--jobs", str(jobs), "--out-dir", str(out),
                    "--no-progress", *extra], check=True, capture_output=True)


def _floor_notebooks(count: int, folder: Path) -> list[Path]:
    folder.mkdir(exist_ok=True)
    notebook = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                 "language": "python"}})
    notebook.cells = [nbformat.v4.new_code_cell(FLOOR_SOURCE)]
    paths = [folder / f"floor{i}.ipynb" for i in range(count)]
    for path in paths:
        nbformat.write(notebook, path)
    return paths


def _plain_papermill(source: str, output: str) -> None:
    import papermill

    papermill.execute_notebook(source, output, kernel_name="python3", progress_bar=False)


def _plain_floor(notebooks: list[Path], jobs: int, out: Path) -> None:
    out.mkdir(exist_ok=True)
    with ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as pool:
        for future in [pool.submit(_plain_papermill, str(path), str(out / path.name)) for path in notebooks]:
            future.result()


def _engine_floor(notebooks: list[Path], jobs: int, out: Path) -> None:
    out.mkdir(exist_ok=True)
    job_list = [Job(path.stem, path.stem, path, out / path.name, {}) for path in notebooks]
    outcomes = execute_all(job_list, jobs, lambda outcome: None, warm_up=WARM_UP)
    failed = [o for o in outcomes.values() if o.error]
    if failed:
        raise SystemExit(f"engine floor failed: {failed}")


def _naive(jobs: list[Job], out: Path) -> None:
    out.mkdir(exist_ok=True)
    for job in jobs:
        executed = out / job.output.name  # the module template serves every module: name by job
        parameters = [word for key, value in job.parameters.items() for word in ("-p", key, str(value))]
        subprocess.run([str(BIN / "papermill"), str(job.source), str(executed), *parameters, "--no-progress-bar"],
                       check=True, capture_output=True)
        subprocess.run([str(BIN / "jupyter"), "nbconvert", "--to", "html", "--no-input", str(executed)],
                       check=True, capture_output=True)


def _generated_year(modules: int, folder: Path) -> int:
    """Write a year of ``modules`` judged modules (the tests' generator) under ``folder``;
    return how many notebooks its internal report executes."""
    write_year(folder, modules=modules, methodology=FOUR_BY_FOUR_PRODUCT, year=GENERATED_YEAR)
    inputs = load_year(GENERATED_YEAR, data_dir=folder)
    return len(plan_jobs(inputs, notebooks_dir=NOTEBOOKS_DIR, executed_dir=Path("."), results_dir=Path("."),
                         public=False))


def _breakdown(manifest: Path) -> None:
    notebooks = json.loads(manifest.read_text())["notebooks"]
    print(f"\nwhere the run's time goes (last round, seconds; {manifest.parent.name}/manifest.json):")
    print(f"{'notebook':32} {'kernel':7} " + " ".join(f"{p:>15}" for p in PARTS) + f" {'total':>7}")
    totals = dict.fromkeys(PARTS, 0.0)
    for name, record in notebooks.items():
        times = record.get("time", {})
        for part in PARTS:
            totals[part] += times.get(part, 0.0)
        print(f"{name:32} {record.get('kernel', '?'):7} " + " ".join(f"{times.get(p, 0.0):15.2f}" for p in PARTS)
              + f" {record['seconds']:7.2f}")
    print(f"{'sum':40} " + " ".join(f"{totals[p]:15.2f}" for p in PARTS))
    largest = max(totals, key=totals.__getitem__)
    print(f"largest part: {largest} ({totals[largest]:.1f} s of notebook time)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--year", type=int, default=2024)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeat", type=int, default=3, help="take the median of this many rounds")
    parser.add_argument("--naive", action="store_true", help="also time the naive way (slow)")
    parser.add_argument("--modules", type=int, default=0,
                        help="also time N module notebooks and the summary on the engine against a floor of N + 1")
    args = parser.parse_args()
    os.environ.pop("MPLBACKEND", None)
    inputs = load_year(args.year)
    count = len(plan_jobs(inputs, notebooks_dir=NOTEBOOKS_DIR, executed_dir=Path("."), results_dir=Path("."),
                          public=False))
    times: dict[str, list[float]] = {"run": [], "both": [], "plain floor": [], "engine floor": []}
    if args.naive:
        times["naive"] = []
    if args.modules:
        times[f"{args.modules} modules"], times[f"{args.modules} floor"] = [], []
    keep = Path(tempfile.mkdtemp(prefix="dsarisk-bench-"))
    for round_number in range(args.repeat):
        with tempfile.TemporaryDirectory() as scratch_dir:
            scratch = Path(scratch_dir)
            notebooks = _floor_notebooks(count, scratch / "in")
            variants: dict[str, Callable[[], object]] = {
                "run": lambda: _run_command(args.year, args.jobs, keep / "run"),
                "both": lambda: _run_command(args.year, args.jobs, keep / "both", "--both"),
                "plain floor": lambda: _plain_floor(notebooks, args.jobs, scratch / "plain"),
                "engine floor": lambda: _engine_floor(notebooks, args.jobs, scratch / "engine"),
            }
            if args.modules:
                many = _floor_notebooks(_generated_year(args.modules, scratch / "many-data"), scratch / "many-in")
                variants[f"{args.modules} modules"] = lambda: _run_command(
                    GENERATED_YEAR, args.jobs, scratch / "many", "--data-dir", str(scratch / "many-data"))
                variants[f"{args.modules} floor"] = lambda: _plain_floor(many, args.jobs, scratch / "many-floor")
            if args.naive:
                naive_jobs = plan_jobs(inputs, notebooks_dir=NOTEBOOKS_DIR, executed_dir=scratch / "naive",
                                       results_dir=scratch / "naive" / "results", public=False)
                variants["naive"] = lambda: _naive(naive_jobs, scratch / "naive")
            names = list(variants)
            order = names[round_number % len(names):] + names[:round_number % len(names)]
            for name in order:
                times[name].append(_timed(variants[name]))
            print(f"round {round_number + 1}: " + ", ".join(f"{n} {times[n][-1]:.1f} s" for n in names), flush=True)
    median = {name: statistics.median(values) for name, values in times.items()}
    floor = median["plain floor"]
    print(f"\n{dt.date.today()}, {platform.node()}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores; notebooks: {count}, jobs: {args.jobs}, rounds: {args.repeat} (medians)")
    for name, value in median.items():
        print(f"{name:13} {value:6.1f} s   ({value / floor:.2f} x plain floor)")
    print(f"run / floor          = {median['run'] / floor:.2f}  (target <= 1.0)")
    print(f"both / floor         = {median['both'] / floor:.2f}  (target <= 1.6)")
    print(f"engine / plain floor = {median['engine floor'] / floor:.2f}  (target <= 1.0)")
    if args.modules:
        print(f"{args.modules} modules / their floor = "
              f"{median[f'{args.modules} modules'] / median[f'{args.modules} floor']:.2f}  (target <= 1.0)")
    _breakdown(keep / "run" / str(args.year) / "manifest.json")
    shutil.rmtree(keep)


if __name__ == "__main__":
    main()
