"""Warm kernels reused notebook after notebook: every notebook's outputs, figures included,
are those of a fresh kernel, in any order; no state passes; a failing notebook does not
poison the next (issue #17)."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from dsarisk.engine import Job, execute_job, stop_pool, worker_pool
from dsarisk.paths import DATA_DIR, NOTEBOOKS_DIR
from dsarisk.pipeline import MODULE_NOTEBOOK, WARM_UP

from .test_engine import _notebook

pytestmark = pytest.mark.notebook

POLLUTE = """\
polluted = 1
import os, sys, warnings
import matplotlib, matplotlib.pyplot as plt, pandas as pd, seaborn as sns
sns.set_theme(style="darkgrid", palette="Set2")
matplotlib.rcParams["figure.figsize"] = (2, 2)
plt.figure()
os.environ["DSARISK_POLLUTED"] = "1"
os.chdir("/")
sys.path.append("/polluted")
warnings.simplefilter("error")
pd.set_option("display.max_rows", 3)
"""

# Notebooks start with the imports the kernels are warmed up with (pipeline.WARM_UP): the
# import-time side effects of those modules (warning filters...) are then the same.
PROBE = WARM_UP + """
import hashlib, os, sys, warnings
import matplotlib, matplotlib.pyplot as plt, pandas as pd
rc = hashlib.sha256(repr(sorted((k, repr(v)) for k, v in matplotlib.rcParams.items())).encode()).hexdigest()
print("names", sorted(n for n in globals() if not n.startswith("_")))
print("rc", rc)
print("env", "DSARISK_POLLUTED" in os.environ, "cwd", os.getcwd(), "path", "/polluted" in sys.path)
print("warnings", warnings.filters[:3])
print("pandas", pd.get_option("display.max_rows"), "figures", plt.get_fignums())
fig, ax = plt.subplots()
ax.plot([1, 2, 3], [3, 1, 2])
fig
"""


@pytest.fixture(scope="module")
def jobs(tmp_path_factory) -> dict[str, object]:
    folder = tmp_path_factory.mktemp("reuse")
    module = NOTEBOOKS_DIR / MODULE_NOTEBOOK
    common = {"year": 2024, "data_dir": str(DATA_DIR)}

    def job(name: str, source: Path, parameters: dict) -> object:
        def make(run: str) -> Job:
            out = folder / run
            out.mkdir(exist_ok=True)
            extra = {"output_dir": str(out / "results")} if "module" in parameters else {}
            return Job(name, name, source, out / f"{name}.ipynb", {**parameters, **extra})
        return make

    return {
        "summary": job("summary", NOTEBOOKS_DIR / "00_summary.ipynb", common),
        "module": job("module", module, {**common, "module": "data-protection"}),
        "probe": job("probe", _notebook(folder, "probe", PROBE), {}),
        "pollute": job("pollute", _notebook(folder, "pollute", POLLUTE), {}),
        "fail": job("fail", _notebook(folder, "fail", POLLUTE + "raise ValueError('deliberate')"), {}),
    }


def _outputs(path: Path) -> list[object]:
    """Every code cell's execution count and outputs (images included), without timings."""
    notebook = nbformat.read(path, as_version=4)
    return [(cell.execution_count, [{key: value for key, value in output.items() if key != "metadata"}
                                    for output in cell.outputs])
            for cell in notebook.cells if cell.cell_type == "code"]


def _run(jobs: dict, names: list[str], run: str, *, reuse: bool) -> dict[str, object]:
    pool = worker_pool(1, warm_up=WARM_UP, reuse=reuse)
    try:
        outcomes = {name: pool.submit(execute_job, jobs[name](run)).result() for name in names}
    finally:
        stop_pool(pool)
    return outcomes


@pytest.fixture(scope="module")
def fresh(jobs) -> dict[str, object]:
    outcomes = _run(jobs, ["summary", "module", "probe"], "fresh", reuse=False)
    assert not any(o.error for o in outcomes.values()), outcomes
    return outcomes


@pytest.mark.parametrize("order", [["pollute", "summary", "probe", "fail", "module", "probe"],
                                   ["module", "fail", "pollute", "probe", "summary"]])
def test_a_reused_kernel_gives_every_notebook_the_outputs_of_a_fresh_one(jobs, fresh, order, tmp_path):
    run = "-".join(order)
    pool = worker_pool(1, warm_up=WARM_UP)
    try:
        outcomes = []
        for position, name in enumerate(order):
            outcome = pool.submit(execute_job, jobs[name](run)).result()
            assert (outcome.error is not None) == (name == "fail"), outcome
            outcomes.append(outcome)
            if name in fresh:
                assert _outputs(jobs[name](run).output) == _outputs(jobs[name]("fresh").output), \
                    f"{name} differs from a fresh kernel's after {order[:position]}"
    finally:
        stop_pool(pool)
    # the kernels were reused (else the comparison proves nothing), except after the failure
    after_failure = order.index("fail") + 1
    assert [o.kernel for o in outcomes] == ["new" if i in (0, after_failure) else "reused" for i in range(len(order))]
    module_results = jobs["module"](run).output.parent / "results" / "data-protection.json"
    fresh_results = jobs["module"]("fresh").output.parent / "results" / "data-protection.json"
    assert json.loads(module_results.read_text()) == json.loads(fresh_results.read_text())


def test_the_probe_sees_a_pristine_kernel_and_draws_a_figure(jobs, fresh):
    outputs = _outputs(jobs["probe"]("fresh").output)
    text = "".join(o.get("text", "") for o in outputs[0][1])
    assert "'polluted'" not in text and "'dsarisk'" in text
    assert "env False cwd" in text and "path False" in text and "figures []" in text
    assert any("image/png" in o.get("data", {}) for o in outputs[0][1])
    assert outputs[0][0] == 1, "execution counts start at 1"


def test_the_time_is_broken_down_per_notebook(fresh):
    for outcome in fresh.values():
        assert outcome.kernel == "new"
        assert set(outcome.times) >= {"kernel_start", "imports", "cells", "figure_encoding"}
        assert outcome.times["kernel_start"] > 0 and outcome.times["imports"] > 0
        assert 0 < outcome.times["cells"] <= outcome.seconds
    assert fresh["module"].times["figure_encoding"] > 0
