"""Scoring: every matrix cell, every band boundary, the published modules, other shapes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsarisk import scoring
from dsarisk.exceptions import ScoringError
from dsarisk.inputs import load_year
from dsarisk.methodology import load_methodology, parse_methodology

from .test_methodology import EFFECTIVENESS, INHERENT_BRIEF, PROBABILITY, RESIDUAL_BRIEF

YEAR2 = load_methodology("year2")
YEAR1 = load_methodology("year1")
INHERENT_LEVELS = ["Low", "Low Medium", "Medium", "Medium High", "High"]


@pytest.mark.parametrize("row", PROBABILITY)
@pytest.mark.parametrize("severity", [1, 2, 3, 4, 5])
def test_every_inherent_cell(row, severity):
    p = scoring.probability(YEAR2, label=row)
    s = scoring.severity(YEAR2, score=severity)
    assert scoring.inherent(YEAR2, p, s).level == INHERENT_BRIEF[row][severity - 1]


@pytest.mark.parametrize("row", EFFECTIVENESS)
@pytest.mark.parametrize("column", range(5))
def test_every_residual_cell(row, column):
    e = scoring.effectiveness(YEAR2, label=row)
    assert scoring.residual(YEAR2, INHERENT_LEVELS[column], e).level == RESIDUAL_BRIEF[row][column]


@pytest.mark.parametrize(
    ("rate", "level"),
    [(0, "Very unlikely"), (0.1999, "Very unlikely"), (0.2, "Unlikely"), (0.2999, "Unlikely"),
     (0.3, "Possible"), (0.3999, "Possible"), (0.4, "Likely"), (0.5999, "Likely"), (0.6, "Almost certain"),
     (42, "Almost certain")],
)
def test_probability_band_boundaries(rate, level):
    assert scoring.probability(YEAR2, rate=rate).level == level


@pytest.mark.parametrize(
    ("pct", "level"),
    [(0, "Very weak"), (9.999, "Very weak"), (10, "Weak"), (39.999, "Weak"), (40, "Moderate"),
     (69.999, "Moderate"), (70, "Strong"), (89.999, "Strong"), (90, "Very strong"), (100, "Very strong")],
)
def test_effectiveness_band_boundaries(pct, level):
    assert scoring.effectiveness(YEAR2, pct=pct).level == level


def test_rate_from_counts_and_its_errors():
    result = scoring.probability(YEAR2, incidents=3, volume=1000)
    assert result.rate == pytest.approx(0.3) and result.level == "Possible"
    with pytest.raises(ScoringError, match="volume must be positive"):
        scoring.probability(YEAR2, incidents=1, volume=0)
    with pytest.raises(ScoringError, match="incidents exceed volume"):
        scoring.probability(YEAR2, incidents=11, volume=10)
    with pytest.raises(ScoringError, match="must not be negative"):
        scoring.probability(YEAR2, incidents=-1, volume=10)


# module: probability and severity of the sample (data/2024), the published effectiveness %,
# and the published inherent, effectiveness and residual levels (the brief's table)
PUBLISHED_2024 = {
    "prohibited-controlled-products": ("Almost certain", "High", 78, "High", "Strong", "Medium"),
    "intellectual-property": ("Likely", "High", 71, "Medium High", "Strong", "Low Medium"),
    "content-compliance": ("Very unlikely", "High", 60, "Low Medium", "Moderate", "Low"),
    "data-protection": ("Likely", "Medium", 73, "Medium High", "Strong", "Low Medium"),
    "consumer-protection": ("Likely", "Very high", 66, "High", "Moderate", "Medium High"),
}


@pytest.mark.parametrize("module", PUBLISHED_2024)
def test_published_year2_modules_from_their_labels(module):
    probability, severity, pct, inherent, effectiveness, residual = PUBLISHED_2024[module]
    case = scoring.score_case(YEAR2, probability_label=probability, severity_score=severity, effectiveness_pct=pct)
    assert (case.probability.level, case.severity.level, case.inherent.level, case.effectiveness.level,
            case.residual.level) == (probability, severity, inherent, effectiveness, residual)


def test_the_published_table_agrees_with_the_sample_rates_and_scores():
    """The labels above are what the sample's own rates band into and its scores combine to:
    a row that only lands in the same matrix cell by another route fails here."""
    inputs = load_year(2024)
    for module, (probability, severity, *_) in PUBLISHED_2024.items():
        item = inputs.module(module)
        rate = item.probability.basis_proxy.rate_value().value
        marks = {name: getattr(item.severity, name).score for name in ("scope", "scale", "remediability")}
        assert scoring.probability(YEAR2, rate=rate, module=module).level == probability, module
        assert scoring.severity(YEAR2, **marks).level == severity, module


def test_severity_aggregates_and_override():
    assert scoring.severity(YEAR2, scope=2, scale=4, remediability=3).score == 4  # max
    with pytest.raises(ScoringError, match="needs a written rationale"):
        scoring.severity(YEAR2, scope=2, scale=4, remediability=3, override=5)
    result = scoring.severity(YEAR2, scope=2, scale=4, remediability=3, override="Very high", rationale="minors")
    assert (result.score, result.computed_score, result.overridden) == (5, 4, True)
    with pytest.raises(ScoringError, match="outside the scale 1..5"):
        scoring.severity(YEAR2, scope=0, scale=4, remediability=3)


def test_effectiveness_from_answers_with_weights():
    answers = [scoring.Answer("Optimised", 3), scoring.Answer("ad-hoc", 1)]
    assert scoring.effectiveness(YEAR2, answers=answers).pct == 75.0
    with pytest.raises(ScoringError, match="'Heroic' is not a level"):
        scoring.effectiveness(YEAR2, answers=[scoring.Answer("Heroic")])


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        ({"rate": float("nan")}, "rate", "must be a finite number"),
        ({"rate": float("inf")}, "rate", "must be a finite number"),
        ({"rate": 150}, "rate", "rate is a percentage and must not exceed 100"),
        ({"rate": True}, "rate", "must be a number"),
        ({"incidents": float("nan"), "volume": 1000}, "incidents", "must be a finite number"),
        ({"incidents": 5, "volume": float("inf")}, "volume", "must be a finite number"),
    ],
)
def test_probability_refuses_what_is_not_a_rate(kwargs, field, message):
    """NaN banded as the lowest level and infinity as the highest, with no error."""
    with pytest.raises(ScoringError) as info:
        scoring.probability(YEAR2, **kwargs)
    assert (info.value.field, info.value.message) == (field, message)


def test_a_rate_over_100_is_fine_on_a_scale_that_is_not_a_percentage():
    assert scoring.probability(YEAR1, rate=150, module="data-protection").level == "Almost certain"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"score": True}, "severity"), ({"score": 4.7}, "severity"), ({"score": float("nan")}, "severity"),
     ({"scope": True, "scale": 2, "remediability": 2}, "severity.scope")],
)
def test_severity_scores_are_whole_numbers(kwargs, field):
    """True was 1 and 4.7 was 4."""
    with pytest.raises(ScoringError) as info:
        scoring.severity(YEAR2, **kwargs)
    assert info.value.field == field


@pytest.mark.parametrize("weight", [float("nan"), float("inf"), True])
def test_answer_weights_are_finite_numbers(weight):
    with pytest.raises(ScoringError) as info:
        scoring.effectiveness(YEAR2, answers=[scoring.Answer("Managed", weight), scoring.Answer("Defined")])
    assert info.value.field == "questionnaire.weight"


def test_scoring_messages_never_repeat_a_value():
    """A notebook passes confidential counts: an error must not print them."""
    for kwargs in ({"incidents": 123457, "volume": 98765}, {"incidents": -123457, "volume": 98765},
                   {"incidents": 5, "volume": -98765}):
        with pytest.raises(ScoringError) as info:
            scoring.probability(YEAR2, **kwargs)
        assert "98765" not in str(info.value) and "123457" not in str(info.value)


# -- methodologies of other shapes ----------------------------------------------------------
def _method(**sections):
    base = {
        "name": "test",
        "probability": {"levels": [{"label": "Rare", "min_pct": 0}, {"label": "Occasional", "min_pct": 1},
                                    {"label": "Frequent", "min_pct": 5}]},
        "severity": {"levels": ["Minor", "Major", "Critical"], "aggregate": "max"},
        "inherent": {"levels": ["Low", "Medium", "High"], "method": "matrix",
                     "matrix": {"Rare": ["Low", "Low", "Medium"], "Occasional": ["Low", "Medium", "High"],
                                "Frequent": ["Medium", "High", "High"]}},
        "maturity": [{"label": "No", "credit": 0}, {"label": "Partly", "credit": 0.5}, {"label": "Yes", "credit": 1}],
        "effectiveness": {"levels": [{"label": "Weak", "min_pct": 0}, {"label": "Fair", "min_pct": 50},
                                     {"label": "Good", "min_pct": 80}]},
        "residual": {"levels": ["Low", "Medium", "High"], "method": "matrix",
                     "matrix": {"Weak": ["Low", "Medium", "High"], "Fair": ["Low", "Low", "Medium"],
                                "Good": ["Low", "Low", "Low"]}},
    }
    base.update(sections)
    return parse_methodology(base)


def test_a_3x3_lookup():
    method = _method()
    case = scoring.score_case(method, rate=2, severity_score="Critical", effectiveness_pct=55)
    assert (case.probability.level, case.inherent.level, case.effectiveness.level, case.residual.level) == (
        "Occasional", "High", "Fair", "Medium")


def test_a_4x6_lookup():
    levels = ["L1", "L2", "L3", "L4", "L5", "L6"]
    method = _method(
        probability={"levels": [{"label": f"P{i}", "min_pct": m} for i, m in enumerate([0, 0.1, 1, 10], 1)]},
        severity={"levels": ["S1", "S2", "S3", "S4", "S5", "S6"], "aggregate": "max"},
        inherent={"levels": levels, "method": "matrix",
                  "matrix": {f"P{p}": [levels[min(p + s - 2, 5)] for s in range(1, 7)] for p in range(1, 5)}},
        residual={"levels": levels, "method": "matrix",
                  "matrix": {"Weak": levels, "Fair": ["L1"] + levels[:5], "Good": ["L1", "L1"] + levels[:4]}},
    )
    case = scoring.score_case(method, rate=5, severity_score=6, effectiveness_pct=85)
    assert (case.probability.level, case.inherent.level, case.residual.level) == ("P3", "L6", "L4")


def test_a_product_with_bands_and_an_override():
    method = _method(inherent={
        "levels": ["Low", "Medium", "High"], "method": "product",
        "bands": [{"label": "Low", "min": 1}, {"label": "Medium", "min": 3}, {"label": "High", "min": 6}],
        "overrides": [{"probability": "Rare", "severity": "Critical", "level": "High"}],
    })
    middle = scoring.score_case(method, rate=2, severity_score=2, effectiveness_pct=0)
    assert (middle.inherent.score, middle.inherent.level) == (4, "Medium")
    overridden = scoring.score_case(method, rate=0.5, severity_score=3, effectiveness_pct=0)
    assert (overridden.inherent.score, overridden.inherent.level, overridden.inherent.overridden) == (3, "High", True)


def test_a_residual_by_reduction_percentage():
    method = _method(
        inherent={"levels": ["Low", "Medium", "High"], "method": "product",
                  "bands": [{"label": "Low", "min": 1}, {"label": "Medium", "min": 3}, {"label": "High", "min": 6}]},
        residual={"levels": ["Low", "Medium", "High"], "method": "reduction", "inherent_value": "score",
                  "bands": [{"label": "Low", "min": 0}, {"label": "Medium", "min": 3}, {"label": "High", "min": 6}]},
    )
    case = scoring.score_case(method, rate=7, severity_score=3, effectiveness_pct=60)  # 9 x 0.4 = 3.6
    assert case.residual.value == pytest.approx(3.6) and case.residual.level == "Medium"
    assert scoring.score_case(method, rate=7, severity_score=3, effectiveness_pct=70).residual.level == "Low"


def test_a_residual_by_control_strength_factor():
    method = _method(
        effectiveness={"levels": [{"label": "Weak", "min_pct": 0, "factor": 1.0},
                                  {"label": "Fair", "min_pct": 50, "factor": 0.6},
                                  {"label": "Good", "min_pct": 80, "factor": 0.3}]},
        residual={"levels": ["Low", "Medium", "High"], "method": "product",
                  "bands": [{"label": "Low", "min": 0}, {"label": "Medium", "min": 1.5}, {"label": "High", "min": 2.5}]},
    )
    assert scoring.score_case(method, rate=7, severity_score=3, effectiveness_pct=60).residual.value == pytest.approx(1.8)
    assert scoring.score_case(method, rate=7, severity_score=3, effectiveness_pct=60).residual.level == "Medium"


def test_weighted_severity_rounds_half_up():
    method = _method(severity={"levels": ["S1", "S2", "S3", "S4", "S5"], "aggregate": "weighted",
                               "weights": {"scope": 0.5, "scale": 0.25, "remediability": 0.25}},
                     inherent={"levels": ["Low", "Medium", "High"], "method": "product",
                               "bands": [{"label": "Low", "min": 1}, {"label": "Medium", "min": 5},
                                         {"label": "High", "min": 10}]})
    result = scoring.severity(method, scope=2, scale=3, remediability=3)  # 2.5 exactly
    assert (result.raw, result.score) == (2.5, 3)
    # 4.5 exactly: half up gives 5 where Python's round() gives 4 (to even); 3.5 could not tell them apart
    assert scoring.severity(method, scope=4, scale=5, remediability=5).score == 5


def test_effectiveness_as_a_blend_of_components():
    method = _method(effectiveness={
        "levels": [{"label": "Weak", "min_pct": 0}, {"label": "Fair", "min_pct": 50}, {"label": "Good", "min_pct": 80}],
        "components": {"design": 0.3, "operation": 0.3, "outcome": 0.4},
    })
    answers = [scoring.Answer("Yes", component="design"), scoring.Answer("Partly", component="operation"),
               scoring.Answer("No", component="outcome")]
    result = scoring.effectiveness(method, answers=answers)
    assert result.pct == pytest.approx(45.0) and result.by_component == {"design": 100, "operation": 50, "outcome": 0}
    with pytest.raises(ScoringError, match="no answer belongs to component 'outcome'"):
        scoring.effectiveness(method, answers=answers[:2])


# -- properties -----------------------------------------------------------------------------
rates = st.floats(min_value=0, max_value=5, allow_nan=False)
pcts = st.floats(min_value=0, max_value=100, allow_nan=False)


@pytest.mark.parametrize("method", [YEAR1, YEAR2], ids=["year1", "year2"])
@settings(max_examples=200, deadline=None)
@given(rate_a=rates, rate_b=rates, sev_a=st.integers(1, 5), sev_b=st.integers(1, 5), pct_a=pcts, pct_b=pcts)
def test_more_risk_never_lowers_and_more_effectiveness_never_raises(method, rate_a, rate_b, sev_a, sev_b, pct_a, pct_b):
    (rate_lo, rate_hi), (sev_lo, sev_hi), (pct_lo, pct_hi) = sorted([rate_a, rate_b]), sorted([sev_a, sev_b]), sorted([pct_a, pct_b])
    levels = method.residual.labels
    low = scoring.score_case(method, rate=rate_lo, severity_score=sev_lo, effectiveness_pct=pct_hi)
    high = scoring.score_case(method, rate=rate_hi, severity_score=sev_hi, effectiveness_pct=pct_lo)
    assert low.inherent.position <= high.inherent.position
    assert levels.index(low.residual.level) <= levels.index(high.residual.level)
