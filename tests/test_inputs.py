"""Module input files: the sample years load, reproduce the brief, and bad input is named."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from dsarisk import yamlio
from dsarisk.assess import assess_year
from dsarisk.exceptions import InputError
from dsarisk.inputs import load_year
from dsarisk.paths import DATA_DIR
from dsarisk.quality import module_findings

PUBLISHED_2024 = {  # the brief's table, section 3
    "prohibited-controlled-products": ("High", "Strong", 78, "Medium"),
    "intellectual-property": ("Medium High", "Strong", 71, "Low Medium"),
    "content-compliance": ("Low Medium", "Moderate", 60, "Low"),
    "data-protection": ("Medium High", "Strong", 73, "Low Medium"),
    "consumer-protection": ("High", "Moderate", 66, "Medium High"),
}
PUBLISHED_2023_RESIDUAL = {
    "prohibited-controlled-products": "Medium", "intellectual-property": "Low Medium", "content-compliance": "Low",
    "data-protection": "Medium", "consumer-protection": "Medium",
}


def test_2024_reproduces_every_published_label_and_percentage():
    results = assess_year(load_year(2024))
    assert {m: (a.inherent.level, a.effectiveness.level, a.effectiveness.pct, a.residual.level)
            for m, a in results.items()} == PUBLISHED_2024
    assert results["content-compliance"].probability.level == "Very unlikely"
    assert all(not a.mismatches for a in results.values())


def test_2023_reproduces_every_published_residual():
    results = assess_year(load_year(2023))
    assert {m: a.residual.level for m, a in results.items()} == PUBLISHED_2023_RESIDUAL
    assert results["data-protection"].probability.unit == "days"


def test_year_over_year_directions_follow_the_brief():
    results = assess_year(load_year(2024))
    assert results["data-protection"].change("residual") == "down"
    assert results["consumer-protection"].change("inherent") == "up"
    assert results["consumer-protection"].change("residual") == "up"
    assert results["prohibited-controlled-products"].change("residual") == "same"


def test_confidentiality_travels_into_the_rate():
    results = assess_year(load_year(2024))
    assert results["prohibited-controlled-products"].rate.confidential  # volume is confidential
    assert not results["data-protection"].rate.confidential  # 0.56 % is public
    assert results["prohibited-controlled-products"].to_json(public=True)["probability"]["rate_pct"] is None
    assert results["data-protection"].to_json(public=True)["probability"]["rate_pct"] == 0.56


def test_quality_findings_on_the_sample_data():
    inputs = load_year(2024)
    reuse = [f for f in module_findings(inputs, "consumer-protection") if f.kind == "figure reused across modules"]
    assert len(reuse) == 2  # the 2,764,070 / 399,303 pair the report reuses from IPR
    periods = [f for f in module_findings(inputs, "content-compliance") if f.kind.startswith("period outside")]
    assert periods and all("outside the assessment period" in f.parts[0] for f in periods)


# -- bad input ------------------------------------------------------------------------------
@pytest.fixture
def data_copy(tmp_path: Path) -> Path:
    for name in ("2024", "methodology", "sor"):
        shutil.copytree(DATA_DIR / name, tmp_path / name)
    return tmp_path


def _proxy(data):
    return data["probability"]["proxies"][0]


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (lambda d: _proxy(d).update(incidents=-5), "probability.proxies.0.incidents", "must not be negative"),
        (lambda d: _proxy(d).update(incidents="many"), "probability.proxies.0.incidents", "'many' is not a number"),
        (lambda d: _proxy(d).update(incidents=10, volume=5), "probability.proxies.0", "incidents (10) exceed volume (5)"),
        (lambda d: _proxy(d).update(volume=0), "probability.proxies.0", "volume is 0"),
        (lambda d: d["severity"]["scale"].update(score=7), "severity.scale.score", "outside the severity scale 1..5"),
        (lambda d: d["questionnaire"][0]["measures"][1].update(maturity="Heroic"),
         "questionnaire[0].measures[1].maturity", "'Heroic' is not a maturity level"),
        (lambda d: d["probability"].update(basis="nope"), "probability", "basis 'nope' is not a proxy id"),
        (lambda d: d["questionnaire"][0]["measures"][0].update(art35=["z"]), "questionnaire.0.measures.0.art35.0", "Input should be"),
        (lambda d: d.update(surprise=1), "surprise", "unknown field"),
    ],
)
def test_bad_module_input_names_file_module_and_field(data_copy, edit_module, change, field, message):
    path = edit_module(data_copy, "intellectual-property", change)
    with pytest.raises(InputError) as info:
        load_year(2024, data_dir=data_copy)
    text = str(info.value)
    assert text.startswith(f"{path}: module 'intellectual-property': field '{field}"), text
    assert message in text and "\n" not in text


def test_missing_module_file(data_copy):
    (data_copy / "2024" / "data-protection.yaml").unlink()
    with pytest.raises(InputError, match=r"data-protection.yaml: module 'data-protection': module file is missing"):
        load_year(2024, data_dir=data_copy)


def test_malformed_yaml(data_copy):
    path = data_copy / "2024" / "content-compliance.yaml"
    path.write_text("module: content-compliance\ntitle: [unclosed\n")
    with pytest.raises(InputError, match=r"content-compliance.yaml: module 'content-compliance': malformed YAML at line"):
        load_year(2024, data_dir=data_copy)


def test_unknown_year_lists_the_years_with_data(data_copy):
    with pytest.raises(InputError, match=r"no data for year 2031 \(years with data: 2024\)"):
        load_year(2031, data_dir=data_copy)


def test_both_sample_years_declare_the_same_taxonomy_with_the_reports_short_labels():
    taxonomies = [load_year(year).taxonomy for year in (2023, 2024)]
    assert taxonomies[0] == taxonomies[1]
    assert [m.short for m in taxonomies[1]] == ["P&C", "IPR", "CC", "DP", "CP"]
    assert list(load_year(2024).modules) == taxonomies[1].ids == list(PUBLISHED_2024)


# -- what an input file may be ------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["device", "fifo", "folder"])
def test_only_regular_files_are_read(data_copy, kind):
    """/dev/zero read forever; a FIFO would wait for a writer."""
    path = data_copy / "2024" / "data-protection.yaml"
    path.unlink()
    if kind == "device":
        path.symlink_to("/dev/zero")
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        path.mkdir()
    with pytest.raises(InputError) as info:
        load_year(2024, data_dir=data_copy)
    assert str(info.value) == f"{path}: module 'data-protection': not a regular file"


def test_a_methodology_that_is_a_device_is_refused(data_copy):
    with pytest.raises(InputError, match="^/dev/zero: not a regular file$"):
        load_year(2024, data_dir=data_copy, methodology="/dev/zero")


def test_an_input_file_over_the_size_cap_is_refused(data_copy, monkeypatch):
    monkeypatch.setattr(yamlio, "MAX_BYTES", 1000)
    path = data_copy / "2024" / "assessment.yaml"
    path.write_text(path.read_text() + "# padding\n" * 100)
    with pytest.raises(InputError, match=f"^{path}: file is larger than"):
        load_year(2024, data_dir=data_copy)


def test_rewriting_a_file_within_the_timestamp_granularity_is_seen(data_copy, edit_module):
    """The year cache is keyed by content: a same-size rewrite in the same millisecond counts."""
    path = data_copy / "2024" / "intellectual-property.yaml"
    assert load_year(2024, data_dir=data_copy).module("intellectual-property").severity.scope.score == 4
    stamp = path.stat()
    path.write_text(path.read_text().replace("    score: 4\n", "    score: 5\n", 1))
    os.utime(path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    assert load_year(2024, data_dir=data_copy).module("intellectual-property").severity.scope.score == 5


def test_a_module_scale_for_an_unknown_module_is_refused(data_copy, year2_copy, write_yaml):
    """A misspelt module id in probability_by_module left the module on the main scale."""
    year2_copy["probability_by_module"] = {"data-protecton": year2_copy["probability"]}
    path = write_yaml(year2_copy)
    with pytest.raises(InputError) as info:
        load_year(2024, data_dir=data_copy, methodology=path)
    assert str(info.value).startswith(f"{path}: field 'probability_by_module': module id(s) data-protecton not in this year's assessment (")
