"""Exploration arithmetic against hand-worked cases of the Year 2 matrices."""

from __future__ import annotations

import json

import pytest

from dsarisk import explore
from dsarisk.assess import assess_year
from dsarisk.cli import main
from dsarisk.inputs import load_year


@pytest.fixture(scope="module")
def year2024():
    return assess_year(load_year(2024))


def _distances(assessment):
    return {(d.rating, d.driver): (d.worse_at, d.better_at) for d in explore.band_distances(assessment)}


def test_band_distances_prohibited_products(year2024):
    # Almost certain x High = High: no higher rate or severity raises it; below 0.6 % it is
    # Likely x High = Medium High; severity 3 gives Almost certain x Medium = Medium High.
    # Residual Strong x High = Medium: below 70 % Moderate x High = Medium High; from 90 %
    # Very strong x High = Low Medium.
    d = _distances(year2024["prohibited-controlled-products"])
    assert d[("inherent", "rate")] == (None, 0.6)
    assert d[("inherent", "severity")] == (None, 3)
    assert d[("residual", "effectiveness")] == (70, 90)


def test_band_distances_intellectual_property(year2024):
    # Likely x High = Medium High. From 0.6 % Almost certain x High = High; Possible x High is
    # still Medium High, so it falls only below 0.3 % (Unlikely x High = Medium). Severity 5
    # gives High; 3 is still Medium High, 2 gives Medium.
    d = _distances(year2024["intellectual-property"])
    assert d[("inherent", "rate")] == (0.6, 0.3)
    assert d[("inherent", "severity")] == (5, 2)
    # Residual Strong x Medium High = Low Medium: below 70 % Moderate gives Medium; from 90 % Low.
    assert d[("residual", "effectiveness")] == (70, 90)


def test_band_distances_content_compliance_cannot_fall_below_low(year2024):
    # Residual Moderate x Low Medium = Low, the lowest level: nothing makes it better, and
    # below 40 % Weak x Low Medium = Low Medium makes it worse.
    d = _distances(year2024["content-compliance"])
    assert d[("residual", "effectiveness")] == (40, None)
    assert d[("residual", "rate")][1] is None


def test_sensitivity_consumer_protection(year2024):
    rows = {(s.input, s.change): s for s in explore.sensitivity(year2024["consumer-protection"])}
    halved = rows[("rate", "x0.5")]  # 0.225 % is Unlikely; Unlikely x Very high = Medium High
    assert (halved.inherent, halved.residual, halved.inherent_step, halved.residual_step) == (
        "Medium High", "Medium", -1, -1)
    assert not rows[("rate", "x2")].flips  # already Almost certain x Very high territory: High
    assert rows[("effectiveness", "+10 points")].residual == "Medium"  # 76 % is Strong; Strong x High = Medium
    assert rows[("severity", "-1")].inherent == "Medium High"
    answers = [s for s in explore.sensitivity(year2024["consumer-protection"]) if s.input.startswith("answer ")]
    assert len(answers) == 20 and all(not s.flips for s in answers)


def test_methodology_comparison_isolates_the_data_protection_proxy():
    frame = explore.compare_methods(2024, "year2", "year1")
    changed = frame[frame["changed by the method"]]
    assert set(changed["module"]) == {"Data Protection"}
    assert set(changed["Year 1 (2023)"]) == {explore.NOT_COMPARABLE}


def test_year_comparison_splits_the_change():
    changes = {(c.module, c.rating): c for c in explore.compare_years(2023, 2024)}
    consumer = changes[("consumer-protection", "residual")]
    assert (consumer.before, consumer.after, consumer.total, consumer.method_part, consumer.inputs_part) == (
        "Medium", "Medium High", 1, 0, 1)
    data = changes[("data-protection", "residual")]
    assert (data.total, data.method_part, data.inputs_part) == (-1, None, None)  # the proxy changed


def test_year_comparison_parts_under_a_changed_method(year2_copy, write_yaml):
    """Year 2 with the Likely row lowered at severities 3 and 4 (High -> Medium), so each part
    differs. Consumer protection, worked by hand: 2023 is Likely x High, effectiveness 62 %
    (Moderate); 2024 is Likely x Very high, 66 % (Moderate).
    inherent: Year 1 Medium High; 2023 under the new method Medium (method -1); 2024 High
    (inputs Medium -> High, +2); total +1.
    residual: Year 1 Moderate x Medium High = Medium; new method Moderate x Medium = Low
    Medium (method -1); 2024 Moderate x High = Medium High (inputs +2); total +1."""
    year2_copy["inherent"]["matrix"]["Likely"] = ["Low Medium", "Medium", "Medium", "Medium", "High"]
    year2_copy["allow_non_monotonic"] = True
    changes = {(c.module, c.rating): c for c in explore.compare_years(2023, 2024, methodology_b=write_yaml(year2_copy))}
    inherent, residual = changes[("consumer-protection", "inherent")], changes[("consumer-protection", "residual")]
    assert (inherent.before, inherent.after, inherent.total, inherent.method_part, inherent.inputs_part) == (
        "Medium High", "High", 1, -1, 2)
    assert (residual.before, residual.after, residual.total, residual.method_part, residual.inputs_part) == (
        "Medium", "Medium High", 1, -1, 2)
    # intellectual property is Likely x High both years (Strong, 70 % then 71 %): only the method moves it
    ip = changes[("intellectual-property", "inherent")]
    assert (ip.before, ip.after, ip.total, ip.method_part, ip.inputs_part) == ("Medium High", "Medium", -1, -1, 0)


def test_measure_changes_per_area():
    frame = explore.measure_changes(load_year(2023), load_year(2024))
    row = frame[(frame["module"] == "Prohibited & Controlled Products") & (frame["area"] == "Algorithmic controls")]
    assert row[["up", "down", "same", "added", "removed"]].values.tolist() == [[1, 0, 2, 0, 0]]


def test_compare_cli_json(capsys):
    assert main(["compare", "--years", "2023", "2024", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {(c["module"], c["rating"]): c["total"] for c in data["changes"]}[("data-protection", "residual")] == -1


def test_compare_cli_table(capsys):
    assert main(["compare", "--years", "2023", "2024"]) == 0
    out = capsys.readouterr().out
    assert "Consumer Protection" in out and "method" in out and "n/a" in out
