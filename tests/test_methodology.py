"""Methodology files: the sample years exactly as the brief, and every rejection."""

from __future__ import annotations

import pytest

from dsarisk.exceptions import MethodologyError
from dsarisk.methodology import load_methodology, parse_methodology

PROBABILITY = ["Very unlikely", "Unlikely", "Possible", "Likely", "Almost certain"]
EFFECTIVENESS = ["Very weak", "Weak", "Moderate", "Strong", "Very strong"]
INHERENT_BRIEF = {  # the brief's Annex 3, rows probability, columns severity 1..5
    "Almost certain": ["Medium", "Medium High", "Medium High", "High", "High"],
    "Likely": ["Low Medium", "Medium", "Medium High", "Medium High", "High"],
    "Possible": ["Low Medium", "Low Medium", "Medium", "Medium High", "Medium High"],
    "Unlikely": ["Low", "Low Medium", "Low Medium", "Medium", "Medium High"],
    "Very unlikely": ["Low", "Low", "Low Medium", "Low Medium", "Medium"],
}
RESIDUAL_BRIEF = {  # Annex 5, rows effectiveness, columns inherent Low .. High
    "Very weak": ["Low", "Low Medium", "Medium", "Medium High", "High"],
    "Weak": ["Low", "Low Medium", "Medium", "Medium High", "High"],
    "Moderate": ["Low", "Low", "Low Medium", "Medium", "Medium High"],
    "Strong": ["Low", "Low", "Low", "Low Medium", "Medium"],
    "Very strong": ["Low", "Low", "Low", "Low", "Low Medium"],
}


def test_year2_file_holds_the_brief_exactly():
    method = load_methodology("year2")
    assert method.probability.labels == PROBABILITY
    assert [b.min for b in method.probability.levels] == [0, 0.2, 0.3, 0.4, 0.6]
    assert [b.min for b in method.effectiveness.levels] == [0, 10, 40, 70, 90]
    assert method.effectiveness.labels == EFFECTIVENESS
    assert method.severity.labels == ["Very low", "Low", "Medium", "High", "Very high"]
    assert method.inherent.matrix == INHERENT_BRIEF
    assert method.residual.matrix == RESIDUAL_BRIEF
    assert [m.label for m in method.maturity] == ["Ad hoc", "Repeatable", "Defined", "Managed", "Optimised"]


def test_year1_has_three_effectiveness_levels_and_documents_its_assumptions():
    method = load_methodology("year1")
    assert method.effectiveness.labels == ["Weak", "Moderate", "Strong"]
    assert set(method.residual.matrix) == {"Weak", "Moderate", "Strong"}
    assert method.probability_scale("data-protection").unit == "days"
    assert sum("ASSUMPTION" in note for note in method.notes) >= 5


def test_label_variants_are_accepted_and_canonicalised(year2_copy):
    year2_copy["inherent"]["matrix"]["Likely"] = ["Low-Medium", "medium", "Med. High", "Medium-High", "HIGH"]
    year2_copy["residual"]["matrix"]["Moderate"] = ["Low", "Low", "Low Med", "Medium", "Medium High"]
    method = parse_methodology(year2_copy)
    assert method.inherent.matrix["Likely"] == INHERENT_BRIEF["Likely"]
    assert method.residual.matrix["Moderate"] == RESIDUAL_BRIEF["Moderate"]


def _reject(data, field_part: str, message_part: str) -> None:
    with pytest.raises(MethodologyError) as info:
        parse_methodology(data, source="m.yaml")
    text = info.value.one_line()
    assert text.startswith("m.yaml: "), text
    assert field_part in (info.value.field or ""), text
    assert message_part in text, text
    assert "\n" not in text


def test_rejects_missing_matrix_row(year2_copy):
    del year2_copy["inherent"]["matrix"]["Possible"]
    _reject(year2_copy, "inherent.matrix", "missing row(s) Possible")


def test_rejects_extra_matrix_row(year2_copy):
    year2_copy["residual"]["matrix"]["Heroic"] = ["Low"] * 5
    _reject(year2_copy, "residual.matrix", "Heroic are not declared levels")


def test_rejects_missing_and_extra_cells(year2_copy):
    year2_copy["inherent"]["matrix"]["Likely"] = ["Low Medium", "Medium", "Medium High", "High"]
    _reject(year2_copy, "inherent.matrix.Likely", "4 cells, expected 5")
    year2_copy["inherent"]["matrix"]["Likely"] = ["Low Medium", "Medium", "Medium High", "High", "High", "High"]
    _reject(year2_copy, "inherent.matrix.Likely", "6 cells, expected 5")


def test_rejects_undeclared_cell(year2_copy):
    year2_copy["residual"]["matrix"]["Strong"][2] = "Catastrophic"
    _reject(year2_copy, "residual.matrix.Strong", "'Catastrophic' is not a declared level")


def test_rejects_thresholds_not_increasing(year2_copy):
    year2_copy["probability"]["levels"][2]["min_pct"] = 0.2
    _reject(year2_copy, "probability.levels", "strictly increasing")


def test_rejects_thresholds_not_starting_at_zero(year2_copy):
    year2_copy["effectiveness"]["levels"][0]["min_pct"] = 5
    _reject(year2_copy, "effectiveness.levels", "start at 0")


@pytest.mark.parametrize("credit", [-0.1, 1.5])
def test_rejects_credit_outside_unit_interval(year2_copy, credit):
    year2_copy["maturity"][1]["credit"] = credit
    _reject(year2_copy, "maturity", "outside [0, 1]")


def test_rejects_non_monotone_matrix_unless_allowed(year2_copy):
    year2_copy["inherent"]["matrix"]["Likely"] = ["High", "Medium", "Medium High", "Medium High", "High"]
    _reject(year2_copy, "inherent.matrix", "not monotone")
    year2_copy["allow_non_monotonic"] = True
    assert parse_methodology(year2_copy).inherent.matrix["Likely"][0] == "High"


def test_rejects_residual_rising_with_effectiveness(year2_copy):
    year2_copy["residual"]["matrix"]["Very strong"] = ["Low", "Low", "Low", "Low", "High"]
    _reject(year2_copy, "residual.matrix", "monotone down a column")


def test_rejects_unknown_and_missing_fields(year2_copy):
    year2_copy["inherent"]["colour_scheme"] = "viridis"
    _reject(year2_copy, "inherent.colour_scheme", "unknown field")
    del year2_copy["inherent"]["colour_scheme"]
    del year2_copy["residual"]
    _reject(year2_copy, "residual", "required field is missing")


def test_rejects_band_score_no_band_covers(year2_copy):
    year2_copy["inherent"] = {
        "levels": ["Low", "Medium", "High"],
        "method": "product",
        "bands": [{"label": "Low", "min": 3}, {"label": "Medium", "min": 8}, {"label": "High", "min": 15}],
    }
    year2_copy["residual"]["levels"] = ["Low", "Medium", "High"]
    year2_copy["residual"]["matrix"] = {row: ["Low", "Medium", "High"] for row in EFFECTIVENESS}
    _reject(year2_copy, "inherent.bands", "no band covers score 1")


def test_rejects_band_label_not_declared(year2_copy):
    year2_copy["inherent"] = {
        "levels": ["Low", "Medium", "High"],
        "method": "product",
        "bands": [{"label": "Low", "min": 1}, {"label": "Severe", "min": 8}],
    }
    year2_copy["residual"]["levels"] = ["Low", "Medium", "High"]
    year2_copy["residual"]["matrix"] = {row: ["Low", "Medium", "High"] for row in EFFECTIVENESS}
    _reject(year2_copy, "inherent.bands", "'Severe' is not a declared level")


def test_rejects_weights_without_weighted_aggregate(year2_copy):
    year2_copy["severity"]["weights"] = {"scope": 0.5, "scale": 0.3, "remediability": 0.2}
    _reject(year2_copy, "severity.weights", "only read with aggregate: weighted")


def test_malformed_yaml_names_file_and_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\nprobability: [unclosed\n")
    with pytest.raises(MethodologyError) as info:
        load_methodology(path)
    assert str(path) in str(info.value) and "malformed YAML at line" in str(info.value)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(MethodologyError, match="nothere.yaml: file not found"):
        load_methodology(tmp_path / "nothere.yaml")


def test_rejection_names_the_file_on_load(year2_copy, write_yaml):
    del year2_copy["inherent"]["matrix"]["Likely"]
    path = write_yaml(year2_copy)
    with pytest.raises(MethodologyError, match=rf"^{path}: field 'inherent.matrix': missing row"):
        load_methodology(path)
