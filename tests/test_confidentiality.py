"""The public build leaks no confidential figure, in any rendering, in any file; input text
is escaped in both builds."""

from __future__ import annotations

import base64
import json
import re
import shutil
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from dsarisk.assess import assess_year
from dsarisk.inputs import load_year
from dsarisk.paths import DATA_DIR
from dsarisk.pipeline import run_year
from dsarisk.values import Value

pytestmark = [pytest.mark.notebook, pytest.mark.xdist_group("confidentiality")]

PRIVATE_FOLDER = "PRIVATE-risk-inputs-7f3a"
XSS = ["<script>alert(1)</script>", "<img src=x onerror=alert(2)>"]
ALL_CONFIDENTIAL = "data-protection"


# -- what must not leak ---------------------------------------------------------------------
def _values(node) -> list[Value]:
    """Every Value inside a pydantic model, list or mapping."""
    if isinstance(node, Value):
        return [node]
    if isinstance(node, BaseModel):
        return [v for name in type(node).model_fields for v in _values(getattr(node, name))]
    if isinstance(node, list | tuple):
        return [v for item in node for v in _values(item)]
    if isinstance(node, dict):
        return [v for item in node.values() for v in _values(item)]
    return []


def confidential_numbers(data_dir: Path, year: int) -> set[float]:
    """Every confidential input value of the year, and every value derived from one."""
    inputs = load_year(year, data_dir=data_dir)
    numbers: set[float] = set()
    for module_id, assessment in assess_year(inputs).items():
        item = inputs.modules[module_id]
        derived = _values(item)
        derived += [proxy.rate_value() for proxy in item.probability.proxies]
        derived += [f.value * 100 / f.denominator for factor in item.factors for f in factor.figures
                    if f.denominator is not None]
        derived += [part for finding in assessment.findings for part in finding.parts if isinstance(part, Value)]
        derived += [assessment.rate, assessment.effectiveness_pct]
        if "effectiveness" in item.confidential_ratings:
            derived += [Value(pct, True) for pct in assessment.by_area.values()]
        if assessment.severity_confidential:
            derived += [Value(assessment.severity.raw or 0, True)]
        numbers |= {v.value for v in derived if v.confidential}
    return numbers


def renderings(number: float) -> set[str]:
    """The ways a number can be written: digits, thousands separators, rounded decimals,
    decimal commas, scientific notation."""
    forms = {repr(number), f"{number:g}"}
    if float(number).is_integer():
        whole = f"{int(number):,}"
        forms |= {str(int(number))} | {whole.replace(",", sep) for sep in (",", ".", " ", "\u2009", "\u202f", "\xa0")}
    for decimals in range(4):
        fixed = f"{number:.{decimals}f}"
        forms |= {fixed, fixed.replace(".", ","), f"{number:,.{decimals}f}"}
    for decimals in range(4):
        scientific = f"{number:.{decimals}e}"
        mantissa, exponent = scientific.split("e")
        forms |= {scientific, scientific.upper(), f"{mantissa}e{int(exponent)}", f"{mantissa}×10^{int(exponent)}"}
    # a rendering with fewer than three digits ("0.7", "34") is too common to prove a leak
    return {form for form in forms if sum(ch.isdigit() for ch in form) >= 3}


_STYLE = re.compile(r"<style[^>]*>.*?</style>", re.DOTALL)
_IMAGE = re.compile(r"(data:image/png;base64,|\"image/png\":\s*\")([A-Za-z0-9+/=\\n]+)")


def _png_text(payload: str) -> str:
    """The text chunks (tEXt, zTXt, iTXt) of a base64 PNG: where a chart could carry a number."""
    data = base64.b64decode(payload.replace("\\n", ""))
    texts, position = [], 8
    while position + 8 <= len(data):
        length = int.from_bytes(data[position:position + 4], "big")
        kind = data[position + 4:position + 8]
        body = data[position + 8:position + 8 + length]
        if kind == b"tEXt" or kind == b"iTXt":
            texts.append(body.decode("latin-1"))
        elif kind == b"zTXt":
            key, _, rest = body.partition(b"\0")
            texts.append(key.decode("latin-1") + zlib.decompress(rest[1:]).decode("latin-1"))
        position += 12 + length
    return "\n".join(texts)


def searchable_text(path: Path) -> str:
    """A file's text with image payloads replaced by the text inside the images."""
    text = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix == ".html":
        # the stylesheet is the template's, the same in every build (a test checks it)
        text = _STYLE.sub("<style/>", text)
    return _IMAGE.sub(lambda m: m.group(1) + _png_text(m.group(2)), text)


def leaks(folder: Path, numbers: set[float]) -> list[str]:
    hits = []
    patterns = {form: re.compile(r"(?<![\d.,])" + re.escape(form) + r"(?![\d]|[.,]\d)")
                for number in numbers for form in renderings(number)}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        text = searchable_text(path)
        for form, pattern in patterns.items():
            for match in pattern.finditer(text):
                hits.append(f"{path.relative_to(folder)}: '{form}' in ...{text[max(0, match.start() - 60):match.end() + 20]!r}")
    return hits


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
