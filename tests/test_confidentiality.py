"""The public build leaks no confidential figure, in any rendering, in any file; input text
is escaped in both builds."""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest
import yaml

from dsarisk.assess import assess_year
from dsarisk.inputs import load_year
from dsarisk.paths import DATA_DIR
from dsarisk.pipeline import run_year

from .leaksearch import _STYLE, confidential_numbers, hidden_labels, inferred, label_hits, leaks

pytestmark = [pytest.mark.notebook, pytest.mark.xdist_group("confidentiality")]

PRIVATE_FOLDER = "PRIVATE-risk-inputs-7f3a"
XSS = ["<script>alert(1)</script>", "<img src=x onerror=alert(2)>"]
ALL_CONFIDENTIAL = "data-protection"


# -- builds -----------------------------------------------------------------------------------
def _private_copy(root: Path) -> Path:
    data = root / PRIVATE_FOLDER
    for name in ("2023", "2024", "methodology", "sor"):
        shutil.copytree(DATA_DIR / name, data / name)
    return data


def _make_variant(data: Path) -> None:
    """One module with every number confidential, and hostile text in input fields."""
    path = data / "2024" / f"{ALL_CONFIDENTIAL}.yaml"
    module = yaml.safe_load(path.read_text())
    for proxy in module["probability"]["proxies"]:
        for key in ("incidents", "volume", "rate"):
            if key in proxy:
                value = proxy[key]["value"] if isinstance(proxy[key], dict) else proxy[key]
                proxy[key] = {"value": value, "confidential": True}
    for factor in module["factors"]:
        for figure in factor["figures"]:
            figure["value"] = {"value": figure["value"], "confidential": True}
    module["probability"]["proxies"][0]["rate"] = {"value": 0.5637, "confidential": True}
    module["factors"][0]["figures"].append({"label": "Accounts erased", "value": {"value": 4417923, "confidential": True},
                                            "stated_pct": 4.5, "denominator": {"value": 98000000, "confidential": True}})
    module["confidential_ratings"] = ["probability", "severity", "effectiveness"]
    module["published"] = {"inherent": "Medium High", "residual": "Low Medium"}  # what stays public
    module["severity"]["scope"]["rationale"] = f"Scope {XSS[0]} rationale"
    module["definition"] = f"Definition with {XSS[1]} inside."
    module["questionnaire"][0]["measures"][0]["question"] = f"Question {XSS[0]}?"
    path.write_text(yaml.safe_dump(module, sort_keys=False))
    assessment_path = data / "2024" / "assessment.yaml"
    assessment = yaml.safe_load(assessment_path.read_text())
    assessment["platform"] = f"Platform {XSS[1]}"
    assessment_path.write_text(yaml.safe_dump(assessment, sort_keys=False))


@pytest.fixture(scope="session")
def builds(tmp_path_factory) -> dict[str, tuple[Path, Path, int]]:
    """name -> (report folder, data folder, year); all built at once, one job each."""
    root = tmp_path_factory.mktemp("confidentiality")
    sample, variant = _private_copy(root / "sample"), _private_copy(root / "variant")
    _make_variant(variant)
    plan = {"2023-public": (sample, 2023, True), "2024-public": (sample, 2024, True),
            "variant-public": (variant, 2024, True), "variant-internal": (variant, 2024, False)}
    with ThreadPoolExecutor(2) as pool:
        futures = {name: pool.submit(run_year, year, data_dir=data, out_dir=root / "out" / name, jobs=1, public=public)
                   for name, (data, year, public) in plan.items()}
        return {name: (future.result().folder, plan[name][0], plan[name][1]) for name, future in futures.items()}


def test_prose_stating_a_hidden_level_is_redacted_and_named_in_the_manifest(builds):
    """The variant hides the residual; its change reason, written for the sample, says
    "residual fell from Medium to Low Medium"."""
    variant, _, _ = builds["variant-public"]
    manifest = json.loads((variant / "manifest.json").read_text())
    assert {"file": f"2024/{ALL_CONFIDENTIAL}.yaml", "module": ALL_CONFIDENTIAL,
            "field": "change_since_previous.explanation", "states": "the hidden residual level"} in manifest["redacted_prose"]
    assert "to Low Medium" not in (variant / "report.html").read_text()
    sample, _, _ = builds["2024-public"]
    assert json.loads((sample / "manifest.json").read_text())["redacted_prose"] == []


@pytest.mark.parametrize("name", ["2023-public", "2024-public", "variant-public"])
def test_no_confidential_value_in_any_rendering_of_the_public_build(builds, name):
    folder, data, year = builds[name]
    numbers = confidential_numbers(data, year)
    assert len(numbers) >= 5
    assert leaks(folder, numbers) == []


def test_the_leak_search_finds_values_in_the_internal_build(builds):
    folder, data, year = builds["variant-internal"]
    found = leaks(folder, confidential_numbers(data, year))
    assert len(found) >= 10  # the same search is not blind: internally the values are there
    assert any("4,417,923" in hit for hit in found)


@pytest.mark.parametrize("name", ["2023-public", "2024-public", "variant-public"])
def test_public_build_holds_no_private_path_nor_input_contents(builds, name):
    folder, data, _ = builds[name]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert all(not key.startswith("/") for key in manifest["inputs"])
    secret_line = "value: 160000000"  # a confidential line of the P&C input file
    for path in (p for p in folder.rglob("*") if p.is_file()):
        text = path.read_text(errors="replace")
        assert PRIVATE_FOLDER not in text and str(data) not in text, path
        assert secret_line not in text, path


def test_public_json_and_marks(builds):
    folder, _, _ = builds["variant-public"]
    summary = json.loads((folder / "summary.json").read_text())
    record = summary["modules"][ALL_CONFIDENTIAL]
    assert record["probability"] == {"rate_pct": None, "unit": "%", "level": None}
    assert record["severity"] == {"score": None, "level": None}
    assert record["effectiveness"] == {"pct": None, "level": None}
    assert summary["modules"]["data-protection"]["inherent"] == "Medium High"  # labels stay publishable
    html = (folder / "report.html").read_text()
    assert html.count("Non-confidential version") >= 7 and "Confidential: internal version" not in html
    assert "[Confidential]" in html
    assert "Exploration" not in html and not (folder / "notebooks" / "90_explore.ipynb").exists()
    internal = (builds["variant-internal"][0] / "report.html").read_text()
    assert internal.count("Confidential: internal version") >= 7 and "Non-confidential version" not in internal


@pytest.mark.parametrize("name", ["variant-public", "variant-internal"])
def test_input_text_renders_as_text(builds, name):
    html = (builds[name][0] / "report.html").read_text()
    for hostile in XSS:
        assert hostile not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(2)&gt;" in html
    assert "<script src=" not in html


def test_stylesheets_carry_no_data(builds):
    """The leak search skips <style> blocks; that is sound only while they are the same in
    every build, whatever the data."""
    styles = {name: _STYLE.findall((folder / "report.html").read_text()) for name, (folder, _, _) in builds.items()}
    assert len({tuple(found) for found in styles.values()}) == 1


def test_charts_have_alternative_text(builds):
    html = (builds["variant-public"][0] / "report.html").read_text()
    assert "No description has been provided" not in html
    assert 'alt="Inherent risk of every module, 2024:' in html


def _notebook_text(path: Path) -> str:
    """The outputs' text (HTML, plain text and chart alternative text) of an executed notebook."""
    notebook = nbformat.read(path, as_version=4)
    texts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            texts += [data.get("text/html", ""), data.get("text/plain", ""),
                      json.dumps(output.get("metadata", {}), ensure_ascii=False)]
    return "\n".join(map(str, texts))


def test_no_label_of_a_hidden_rating_in_the_public_module(builds):
    """Maturity answers give back a hidden effectiveness (with the shown weights); the band
    label of a hidden rating is the rating."""
    public, data, year = builds["variant-public"]
    assessment = assess_year(load_year(year, data_dir=data))[ALL_CONFIDENTIAL]
    labels = hidden_labels(assessment)
    assert {"Defined", "Managed", "Strong", "Likely"} <= labels
    notebook = next(public.glob(f"notebooks/*_{ALL_CONFIDENTIAL}.ipynb")).relative_to(public)
    assert label_hits(_notebook_text(public / notebook), labels, where=notebook) == []
    internal = builds["variant-internal"][0]
    assert len(label_hits(_notebook_text(internal / notebook), labels)) >= 5  # the search is not blind


def test_no_hidden_rating_can_be_inferred_from_the_public_summary(builds):
    """Changes applied to last year's answers, and the levels shown, fix no hidden rating."""
    public, data, year = builds["variant-public"]
    summary = json.loads((public / "summary.json").read_text())
    assert not [c for c in summary["changes"] if c["module"] == ALL_CONFIDENTIAL and c["kind"].startswith("maturity")]
    internal = json.loads((builds["variant-internal"][0] / "summary.json").read_text())
    assert [c for c in internal["changes"] if c["module"] == ALL_CONFIDENTIAL and c["kind"].startswith("maturity")]
    method = load_year(year, data_dir=data).methodology
    record = summary["modules"][ALL_CONFIDENTIAL]
    for rating, levels in inferred(method, record).items():
        assert len(levels) > 1, (rating, levels)
    # the residual is hidden because, shown beside the inherent level, it fixes the effectiveness
    assert record["residual"] is None and record["inherent"] == "Medium High"
    shown_residual = {**record, "residual": internal["modules"][ALL_CONFIDENTIAL]["residual"]}
    assert inferred(method, shown_residual)["effectiveness"] == {"Strong"}
