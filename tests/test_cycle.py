"""The yearly cycle: scaffolding a new year, commitments, and what changed since last year."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from dsarisk.assess import assess_year
from dsarisk.cli import main
from dsarisk.cycle import changes_since
from dsarisk.exceptions import InputError
from dsarisk.inputs import TO_UPDATE, ModuleInput, Proxy, load_year
from dsarisk.paths import DATA_DIR, PROJECT_ROOT


@pytest.fixture
def data_copy(tmp_path: Path) -> Path:
    for name in ("2023", "2024", "methodology", "sor"):
        shutil.copytree(DATA_DIR / name, tmp_path / name)
    return tmp_path


def test_new_year_clears_every_figure_and_keeps_the_rest(data_copy, capsys):
    assert main(["new-year", "2025", "--from", "2024", "--data-dir", str(data_copy)]) == 0
    assessment = yaml.safe_load((data_copy / "2025/assessment.yaml").read_text())
    assert (assessment["year"], assessment["previous_year"], assessment["methodology"]) == (2025, 2024, "year2")
    assert assessment["period"] == {"start": "2024-07-01", "end": "2025-06-30"}
    before = yaml.safe_load((data_copy / "2024/prohibited-controlled-products.yaml").read_text())
    after = yaml.safe_load((data_copy / "2025/prohibited-controlled-products.yaml").read_text())
    proxy = after["probability"]["proxies"][0]
    assert proxy["incidents"] == TO_UPDATE and proxy["volume"] == {"value": TO_UPDATE, "confidential": True}
    assert proxy["period"] == {"start": TO_UPDATE, "end": TO_UPDATE}
    assert all(f["value"] in (TO_UPDATE, {"value": TO_UPDATE, "confidential": False})
               for factor in after["factors"] for f in factor["figures"])
    assert after["published"] == {} and after["roadmap"] == []
    assert after["questionnaire"] == before["questionnaire"] and after["severity"] == before["severity"]
    assert after["subcategories"] == before["subcategories"]
    assert [c["id"] for c in after["commitments"]] == [r["id"] for r in before["roadmap"]]
    assert all(c["status"] == TO_UPDATE for c in after["commitments"])
    assert not list(data_copy.glob(".2025*")), "no staging folder left behind"


def test_new_year_refuses_to_overwrite(data_copy, capsys):
    assert main(["new-year", "2024", "--from", "2023", "--data-dir", str(data_copy)]) == 2
    assert "year 2024 exists already" in capsys.readouterr().err


def test_a_scaffolded_year_fails_listing_what_needs_a_value(data_copy, capsys):
    main(["new-year", "2025", "--from", "2024", "--data-dir", str(data_copy), "--methodology", "year2"])
    with pytest.raises(InputError) as info:
        load_year(2025, data_dir=data_copy)
    message = str(info.value)
    assert "value(s) still marked TO UPDATE" in message
    assert "prohibited-controlled-products.yaml: probability.proxies[0].incidents" in message
    assert "commitments[0].status" in message and "consumer-protection.yaml" in message
    assert main(["run", "--year", "2025", "--data-dir", str(data_copy), "--no-progress"]) == 2
    assert "still marked TO UPDATE" in capsys.readouterr().err


def test_a_commitment_without_status_is_named(data_copy, edit_module):
    path = edit_module(data_copy, "data-protection", lambda d: d["commitments"][1].pop("status"))
    with pytest.raises(InputError, match=rf"{path}: module 'data-protection': field 'commitments\[1\] \(dp-r23-2\)"
                                         r".status': commitment 'dp-r23-2' has no status"):
        load_year(2024, data_dir=data_copy)


def test_every_roadmap_item_must_be_followed_up(data_copy, edit_module):
    edit_module(data_copy, "content-compliance", lambda d: d["commitments"].pop(0))
    with pytest.raises(InputError, match="last year's roadmap item\\(s\\) cc-r23-1 have no commitment entry"):
        load_year(2024, data_dir=data_copy)


def test_implemented_by_must_name_a_measure(data_copy, edit_module):
    edit_module(data_copy, "intellectual-property", lambda d: d["commitments"][0].update(implemented_by=["ip-99"]))
    with pytest.raises(InputError, match="implemented_by names no questionnaire measure: ip-99"):
        load_year(2024, data_dir=data_copy)


def test_changes_since_last_year_on_the_sample_years():
    results = assess_year(load_year(2024))
    moves = {(c.kind, c.item, c.before, c.after) for c in results["consumer-protection"].changes}
    assert ("maturity up", "cp-03", "Defined", "Managed") in moves
    assert ("maturity down", "cp-08", "Managed", "Defined") in moves
    added = {c.item for c in results["prohibited-controlled-products"].changes if c.kind == "proxy added"}
    assert added == {"reactive-blocks", "sor-statements"}
    data = results["data-protection"].changes
    assert ("proxy removed", "esu-days") in {(c.kind, c.item) for c in data}  # Year 1's days-based proxy
    assert {c.kind for c in data} >= {"maturity up", "proxy added", "proxy removed"}


def test_proxy_change_factor_is_configurable(data_copy):
    path = data_copy / "2024/assessment.yaml"
    assessment = yaml.safe_load(path.read_text())
    assessment["proxy_change_factor"] = 1.01
    path.write_text(yaml.safe_dump(assessment))
    changed = [c for c in assess_year(load_year(2024, data_dir=data_copy))["prohibited-controlled-products"].changes
               if c.kind.startswith("proxy changed by more than")]
    assert [c.item for c in changed] == ["removed-listings"]  # 0.680 % -> 0.718 %: x1.06
    assert changed[0].before.confidential and changed[0].after.confidential


def test_make_lab_opens_jupyterlab_with_the_project_environment():
    dry = subprocess.run(["make", "-n", "lab"], cwd=PROJECT_ROOT, capture_output=True, text=True).stdout
    assert ".venv/bin/dsarisk lab" in dry


@pytest.mark.parametrize(("before", "after"), [(0, 0.05), (0.05, 0), (0.02, 0.05)])
def test_a_proxy_from_or_to_zero_is_a_change(before, after):
    """The ratio test skipped a zero base: 0 -> 0.05 % went unreported."""
    item = load_year(2024).module("data-protection")

    def with_rate(rate: float) -> ModuleInput:
        proxy = Proxy.model_validate({**item.probability.proxies[0].model_dump(exclude={"rate"}), "rate": rate})
        return item.model_copy(update={"probability": item.probability.model_copy(update={"proxies": [proxy]})})

    changes = changes_since(with_rate(before), with_rate(after), maturity_levels=["Ad hoc"], factor=1.5)
    assert [(c.kind, c.before.value, c.after.value) for c in changes] == [
        ("proxy changed by more than x1.5", before, after)]


def test_new_year_refuses_a_source_year_still_to_update(data_copy, capsys):
    """2026 from an unfilled 2025 dropped 2025's commitments (its roadmap was empty)."""
    assert main(["new-year", "2025", "--from", "2024", "--data-dir", str(data_copy)]) == 0
    capsys.readouterr()
    assert main(["new-year", "2026", "--from", "2025", "--data-dir", str(data_copy)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"dsarisk: error: {data_copy / '2025'}: year 2025 is not filled in, so its roadmap "
                          "would be lost: ") and "value(s) still marked TO UPDATE" in err and err.count("\n") == 1
    assert not (data_copy / "2026").exists() and not list(data_copy.glob(".2026*"))


@pytest.mark.parametrize("year", ["1999", "2024", "2023", "99999"])
def test_new_year_refuses_a_year_not_after_the_source_or_implausible(data_copy, capsys, year):
    assert main(["new-year", year, "--from", "2024", "--data-dir", str(data_copy)]) == 2
    err = capsys.readouterr().err
    assert f"field 'year': the new year must follow 2024 and be at most" in err and f"not {year}" in err
    assert not (data_copy / year).exists() or year in ("2023", "2024")


def test_new_year_refuses_an_invalid_source_in_one_line(data_copy, capsys):
    (data_copy / "2024/consumer-protection.yaml").write_text("- a list\n- not a module\n")
    assert main(["new-year", "2025", "--from", "2024", "--data-dir", str(data_copy)]) == 2
    assert capsys.readouterr().err == (f"dsarisk: error: {data_copy / '2024/consumer-protection.yaml'}: "
                                       "module 'consumer-protection': the file must be a YAML mapping\n")
    assert not (data_copy / "2025").exists()


def test_new_year_checks_the_methodology_it_is_given(data_copy, capsys):
    assert main(["new-year", "2025", "--from", "2024", "--data-dir", str(data_copy), "--methodology", "year9"]) == 2
    assert capsys.readouterr().err == ("dsarisk: error: field '--methodology': no methodology 'year9' "
                                       "(a path, or a name in data/methodology)\n")
    assert not (data_copy / "2025").exists()


def test_new_year_from_a_scaffolded_year_says_it_is_not_filled_in(data_copy, capsys):
    """Right after `dsarisk init` the period itself is TO UPDATE: the period failed validation first."""
    path = data_copy / "2024" / "assessment.yaml"
    path.write_text(path.read_text().replace("start: '2023-07-01'", "start: TO UPDATE", 1))
    assert "start: TO UPDATE" in path.read_text()
    assert main(["new-year", "2025", "--from", "2024", "--data-dir", str(data_copy)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"dsarisk: error: {data_copy / '2024'}: year 2024 is not filled in") and err.count("\n") == 1
