"""End to end: both sample years through papermill into reports, and the failure cases."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest

from dsarisk.cli import main
from dsarisk.exceptions import PipelineError
from dsarisk.inputs import load_year
from dsarisk.outdir import MARKER
from dsarisk.paths import DATA_DIR, NOTEBOOKS_DIR, PROJECT_ROOT
from dsarisk.pipeline import MODULE_NOTEBOOK, run_year

from .test_inputs import PUBLISHED_2023_RESIDUAL, PUBLISHED_2024

pytestmark = [pytest.mark.notebook, pytest.mark.xdist_group("reports")]


@pytest.fixture(scope="session")
def reports(tmp_path_factory) -> Path:
    """Both sample years, run at the same time into one folder (they must not interfere);
    2023 in both versions by one call."""
    out = tmp_path_factory.mktemp("reports")
    with ThreadPoolExecutor(2) as pool:
        runs = [pool.submit(run_year, year, out_dir=out, jobs=1, both=year == 2023) for year in (2023, 2024)]
        for run in runs:
            run.result()
    return out


def _summary(reports: Path, year: int) -> dict:
    return json.loads((reports / str(year) / "summary.json").read_text())


def test_summary_json_matches_the_published_table(reports):
    modules = _summary(reports, 2024)["modules"]
    assert {m: (r["inherent"], r["effectiveness"]["level"], r["effectiveness"]["pct"], r["residual"])
            for m, r in modules.items()} == PUBLISHED_2024
    for record in modules.values():
        assert record["published"]["residual"] == record["residual"] and record["matches_published"]
        assert record["previous"]["year"] == 2023
    assert modules["consumer-protection"]["previous"]["change"] == {"inherent": "up", "residual": "up"}


def test_2023_report_reproduces_year_one_residuals(reports):
    modules = _summary(reports, 2023)["modules"]
    assert {m: r["residual"] for m, r in modules.items()} == PUBLISHED_2023_RESIDUAL
    assert _summary(reports, 2023)["methodology"] == "Year 1 (2023)"


@pytest.mark.parametrize("year", [2023, 2024])
def test_every_notebook_executed_with_images_and_no_error(reports, year):
    folder = reports / str(year) / "notebooks"
    names = sorted(p.name for p in folder.glob("*.ipynb"))
    taxonomy = load_year(year).taxonomy
    assert names == sorted(["00_summary.ipynb", "90_explore.ipynb"] + [f"{m.order:02d}_{m.id}.ipynb" for m in taxonomy])
    for path in folder.glob("*.ipynb"):
        notebook = nbformat.read(path, as_version=4)
        outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
        assert not [o for o in outputs if o.output_type == "error"], path.name
        images = [o for o in outputs if "image/png" in o.get("data", {})]
        assert len(images) >= 2, f"{path.name} holds {len(images)} images"
        assert notebook.metadata.papermill.parameters["year"] == year


def test_report_html_is_self_contained_and_readable(reports):
    html = (reports / "2024" / "report.html").read_text()
    assert "<script src=" not in html and '<img src="http' not in html
    assert "cdn." not in html and "https://unpkg" not in html
    for title in [*(m.title for m in load_year(2024).taxonomy), "Systemic risk assessment: summary", "Exploration: how firm is each rating?"]:
        assert title.replace("&", "&amp;") in html, title
    assert 'href="#section-summary"' in html and 'id="section-consumer-protection"' in html
    assert html.count("data:image/png;base64") >= 12
    assert "Confidential: internal version" in html
    assert "open_module(" not in html  # code is hidden
    assert "book.save_results" not in html and "Results written to" not in html


def test_every_heading_link_reaches_its_own_section(reports):
    """Each module section has a "Severity" heading: its id and pilcrow link name the module."""
    html = (reports / "2024" / "report.html").read_text()
    ids = re.findall(r' id="([^"]+)"', html)
    assert len(ids) == len(set(ids)), [i for i in set(ids) if ids.count(i) > 1]
    links = re.findall(r'<a class="anchor-link" href="#([^"]+)"', html)
    assert "section-data-protection-Severity" in links and set(links) <= set(ids)


def test_manifest_lets_an_auditor_trace_the_run(reports):
    manifest = json.loads((reports / "2024" / "manifest.json").read_text())
    assert set(manifest["inputs"]) >= {"2024/assessment.yaml", "2024/data-protection.yaml",
                                       "methodology/year2.yaml", "2023/data-protection.yaml", "methodology/year1.yaml"}
    assert all(len(digest) == 64 for digest in manifest["inputs"].values())
    assert {"sor/sample/sor-global-2024-03-01-full.zip", "sor/categories.yaml"} <= set(manifest["inputs"])
    assert set(manifest["notebooks"]) == {"summary", "explore", *load_year(2024).taxonomy.ids}
    assert all(n["seconds"] > 0 for n in manifest["notebooks"].values())
    assert manifest["packages"]["papermill"] and manifest["started"] <= manifest["finished"]
    assert not any(p.name.startswith(".") for p in reports.iterdir()), "staging folders left behind"


def test_both_versions_by_one_call_share_the_kernels(reports):
    internal = json.loads((reports / "2023" / "manifest.json").read_text())
    public = json.loads((reports / "2023-public" / "manifest.json").read_text())
    assert (internal["version"], public["version"]) == ("confidential", "non-confidential")
    assert "explore" in internal["notebooks"] and "explore" not in public["notebooks"]
    assert _summary(reports, 2023)["modules"].keys() == json.loads(
        (reports / "2023-public" / "summary.json").read_text())["modules"].keys()
    # one worker (jobs=1): one kernel started ahead, every later notebook on it
    kernels = [record["kernel"] for record in internal["notebooks"].values()]
    assert kernels.count("new") == 1 and kernels.count("reused") == len(kernels) - 1
    assert "time" not in next(iter(public["notebooks"].values())), "the public manifest carries no breakdown"


def test_the_manifest_says_where_each_notebooks_time_went(reports):
    notebooks = json.loads((reports / "2024" / "manifest.json").read_text())["notebooks"]
    for record in notebooks.values():
        assert {"cells", "figure_encoding", "rendering", "kernel_start", "imports"} <= set(record["time"])
        assert record["time"]["cells"] <= record["seconds"]
    first = [r for r in notebooks.values() if r["kernel"] == "new"]
    assert len(first) == 1 and first[0]["time"]["kernel_start"] > 0 and first[0]["time"]["imports"] > 0
    assert all(r["time"]["figure_encoding"] > 0 and r["time"]["rendering"] > 0 for r in notebooks.values())


# -- failures ---------------------------------------------------------------------------------
@pytest.fixture
def broken_module(tmp_path: Path) -> Path:
    """The 2024 sample whose content compliance module names its own notebook (in the year's
    folder, through ``notebook:`` in assessment.yaml): the template, raising in its fourth code cell."""
    data = tmp_path / "data"
    for name in ("2024", "methodology", "sor"):
        shutil.copytree(DATA_DIR / name, data / name)
    notebook = nbformat.read(NOTEBOOKS_DIR / MODULE_NOTEBOOK, as_version=4)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    code[3].source = "raise ValueError('deliberate failure for the test')"
    nbformat.write(notebook, data / "2024" / "broken.ipynb")
    assessment = data / "2024" / "assessment.yaml"
    text = assessment.read_text()
    entry = "- {id: content-compliance, title: Content Compliance, short: CC}"
    assert entry in text
    assessment.write_text(text.replace(entry, entry[:-1] + ", notebook: broken.ipynb}"))
    return data


def test_failed_module_is_named_kept_and_the_previous_report_untouched(tmp_path, broken_module):
    out = tmp_path / "reports"
    previous = out / "2024"
    previous.mkdir(parents=True)
    (previous / "report.html").write_text("previous report")
    (previous / MARKER).write_text("")
    with pytest.raises(PipelineError) as info:
        run_year(2024, data_dir=broken_module, out_dir=out, jobs=2)
    error = info.value
    assert error.module == "content-compliance" and error.cell is not None
    assert "module 'content-compliance' failed at cell" in str(error)
    assert "ValueError: deliberate failure for the test" in str(error)
    kept = nbformat.read(error.notebook, as_version=4)
    assert any(o.output_type == "error" for c in kept.cells if c.cell_type == "code" for o in c.outputs)
    assert (previous / "report.html").read_text() == "previous report"
    assert sorted(p.name for p in out.iterdir()) == ["2024", "2024-failed"]


def test_cli_reports_a_failure_in_one_line(monkeypatch, capsys):
    def fail(*args, **kwargs):
        raise PipelineError("module 'x' failed at cell 4: ValueError: boom", module="x", cell=4)

    monkeypatch.setattr("dsarisk.pipeline.run_year", fail)
    assert main(["run", "--year", "2024", "--no-progress"]) == 1
    assert capsys.readouterr().err == "dsarisk: error: module 'x' failed at cell 4: ValueError: boom\n"


def test_cli_unknown_year_lists_years(capsys):
    assert main(["run", "--year", "1999", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "no data for year 1999 (years with data: 2023, 2024)" in err


def test_ctrl_c_leaves_no_half_report(tmp_path):
    out = tmp_path / "reports"
    (out / "2024").mkdir(parents=True)
    (out / "2024" / "report.html").write_text("previous report")
    (out / "2024" / MARKER).write_text("")
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    process = subprocess.Popen([sys.executable, "-m", "dsarisk.cli", "run", "--year", "2024", "--out-dir", str(out),
                                "--no-progress", "--jobs", "2"], cwd=PROJECT_ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list(out.glob(".2024.staging-*/notebooks/*.ipynb")):
        time.sleep(0.1)
    assert list(out.glob(".2024.staging-*")), "the run never started executing"
    os.killpg(process.pid, signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert err.decode().splitlines() == ["dsarisk: interrupted"], "one line, no worker tracebacks"
    assert (out / "2024" / "report.html").read_text() == "previous report"
    assert sorted(p.name for p in out.iterdir()) == ["2024"], err.decode()[-2000:]
