"""The notebook engine: outcomes as they arrive, a dead kernel named with its log, a quiet terminal."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from dsarisk.engine import Job, execute_all, execute_job, stop_pool, worker_pool

pytestmark = pytest.mark.notebook


def _notebook(folder: Path, name: str, *sources: str) -> Path:
    notebook = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                 "language": "python"}})
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    path = folder / f"{name}.ipynb"
    nbformat.write(notebook, path)
    return path


def _job(folder: Path, name: str, *sources: str) -> Job:
    return Job(name, name, _notebook(folder, name, *sources), folder / f"{name}-out.ipynb", {})


def test_each_outcome_is_reported_when_its_notebook_finishes(tmp_path):
    """The slow notebook ends only once the fast one's outcome has been reported: if outcomes
    were reported only when every notebook ended, it would wait in vain and fail."""
    reported = tmp_path / "fast-reported"
    wait_for_it = (f"import pathlib, time\ndeadline = time.monotonic() + 60\n"
                   f"while not pathlib.Path({str(reported)!r}).exists():\n"
                   f"    assert time.monotonic() < deadline, 'the fast outcome was never reported'\n"
                   f"    time.sleep(0.05)")
    arrivals: list[str] = []

    def on_done(outcome):
        arrivals.append(outcome.name)
        if outcome.name == "fast":
            reported.touch()

    jobs = [_job(tmp_path, "slow", wait_for_it), _job(tmp_path, "fast", "x = 1")]
    outcomes = execute_all(jobs, 2, on_done)
    assert arrivals == ["fast", "slow"]
    assert not any(outcome.error for outcome in outcomes.values()), outcomes


def test_a_dead_kernel_is_named_with_the_end_of_its_log(tmp_path):
    job = _job(tmp_path, "dies", "import os, sys\nsys.__stderr__.write('last words of the kernel\\n')\n"
                                 "sys.__stderr__.flush()\nos._exit(3)")
    outcome = execute_job(job)
    assert outcome.error is not None
    assert "DeadKernelError" in outcome.error and "last words of the kernel" in outcome.error


def test_the_kernel_log_stays_off_the_terminal(tmp_path, capfd):
    pool = worker_pool(1)  # the worker writes to the same terminal, and its kernel ends with it
    try:
        outcome = pool.submit(execute_job, _job(tmp_path, "quiet", "x = 1", "print('to the notebook')")).result()
    finally:
        stop_pool(pool)
    assert outcome.error is None
    terminal = capfd.readouterr()
    assert "IPKernelApp" not in terminal.err and "KeyboardInterrupt" not in terminal.err
    executed = nbformat.read(tmp_path / "quiet-out.ipynb", as_version=4)
    assert executed.cells[1].outputs[0].text == "to the notebook\n"


def test_a_failing_warm_up_is_named(tmp_path):
    outcomes = execute_all([_job(tmp_path, "any", "x = 1")], 1, lambda outcome: None,
                           warm_up="raise ValueError('the warm-up failed')")
    assert outcomes["any"].error is not None and "ValueError: the warm-up failed" in outcomes["any"].error
