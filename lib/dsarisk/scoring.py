"""Pure scoring functions: probability, severity, inherent, effectiveness, residual.

Each function takes a :class:`~dsarisk.methodology.Methodology` and plain
values, returns a frozen result that carries the numbers it came from (so a
notebook can show the working), and raises :class:`ScoringError` on values
the methodology cannot score. No I/O happens here.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from .exceptions import ScoringError
from .labels import canonical_label
from .methodology import CHARACTERISTICS, Band, Methodology, ScoreBand


def round_half_up(value: float | Decimal) -> int:
    """Round to the nearest integer, halves away from zero (2.5 -> 3), never to even."""
    return int(Decimal(str(value)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def band_for(value: float, bands: Sequence[Band] | Sequence[ScoreBand]) -> Band | ScoreBand:
    """Return the band whose ``[min, next min)`` holds ``value`` (lower bound inclusive)."""
    chosen = bands[0]
    for band in bands:
        if value >= band.min:
            chosen = band
    return chosen


def _finite(field: str, value: float | None) -> None:
    """Refuse NaN and infinity, and numbers that are not numbers (True is not 1).

    Messages here never repeat a value: a notebook may pass a confidential one."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ScoringError("must be a number", field=field)
    if not math.isfinite(value):
        raise ScoringError("must be a finite number", field=field)


def level_of(label: str, labels: Sequence[str], *, field: str) -> str:
    """Return the declared spelling of ``label`` among ``labels``, or raise ScoringError."""
    found = canonical_label(str(label), labels)
    if found is None:
        raise ScoringError(f"'{label}' is not a level of this scale ({', '.join(labels)})", field=field)
    return found


# -- probability -------------------------------------------------------------------------
@dataclass(frozen=True)
class ProbabilityResult:
    """A probability level and the rate it was banded from (None when given as a label)."""

    level: str
    score: int
    rate: float | None = None
    unit: str = "%"
    incidents: float | None = None
    volume: float | None = None


def probability(
    method: Methodology,
    *,
    rate: float | None = None,
    incidents: float | None = None,
    volume: float | None = None,
    label: str | None = None,
    module: str | None = None,
) -> ProbabilityResult:
    """Band a probability from a rate, from ``incidents / volume`` (in %) or take a label.

    Parameters
    ----------
    method : Methodology
    rate : float, optional
        The rate in the scale's unit (percent for rate scales).
    incidents, volume : float, optional
        Non-compliant items and items checked; the rate is ``100 * incidents / volume``.
    label : str, optional
        A probability level given directly (any spelling variant).
    module : str, optional
        The module, for methodologies with a module-specific scale.
    """
    scale = method.probability_scale(module)
    if label is not None:
        level = level_of(label, scale.labels, field="probability")
        return ProbabilityResult(level=level, score=scale.labels.index(level) + 1, unit=scale.unit)
    for name, value in (("rate", rate), ("incidents", incidents), ("volume", volume)):
        _finite(name, value)
    if rate is None:
        if incidents is None or volume is None:
            raise ScoringError("give a rate, incidents and volume, or a level label", field="probability")
        if volume <= 0:
            raise ScoringError("volume must be positive to compute a rate", field="volume")
        if incidents < 0:
            raise ScoringError("incidents must not be negative", field="incidents")
        if incidents > volume:
            raise ScoringError("incidents exceed volume", field="incidents")
        rate = 100.0 * incidents / volume
    if rate < 0:
        raise ScoringError("rate must not be negative", field="rate")
    if scale.unit == "%" and rate > 100:
        raise ScoringError("rate is a percentage and must not exceed 100", field="rate")
    band = band_for(rate, scale.levels)
    return ProbabilityResult(
        level=band.label,
        score=scale.labels.index(band.label) + 1,
        rate=rate,
        unit=scale.unit,
        incidents=incidents,
        volume=volume,
    )


# -- severity ----------------------------------------------------------------------------
@dataclass(frozen=True)
class SeverityResult:
    """An overall severity score and how it was reached."""

    level: str
    score: int
    aggregate: str
    characteristics: dict[str, int] = field(default_factory=dict)
    raw: float | None = None
    computed_score: int | None = None
    overridden: bool = False
    rationale: str | None = None


def _score_of(value: int | str, labels: Sequence[str], field_name: str) -> int:
    if isinstance(value, str) and not value.strip().lstrip("-").isdigit():
        return labels.index(level_of(value, labels, field=field_name)) + 1
    if isinstance(value, bool) or not isinstance(value, int | str):  # True is not 1, 4.7 is not 4
        raise ScoringError("a score is a whole number or a level label", field=field_name)
    score = int(value)
    if not 1 <= score <= len(labels):
        raise ScoringError(f"score {score} is outside the scale 1..{len(labels)}", field=field_name)
    return score


def severity(
    method: Methodology,
    *,
    scope: int | str | None = None,
    scale: int | str | None = None,
    remediability: int | str | None = None,
    score: int | str | None = None,
    override: int | str | None = None,
    rationale: str | None = None,
) -> SeverityResult:
    """Combine scope, scale and remediability into one severity score, or take one.

    The methodology's ``aggregate`` (max, mean, median or weighted) combines the
    three characteristics; a non-integer result is rounded half up. ``score``
    gives the overall score directly (a what-if); ``override`` replaces the
    computed score and needs a written ``rationale``.
    """
    spec = method.severity
    labels = spec.labels
    if score is not None:
        value = _score_of(score, labels, "severity")
        return SeverityResult(level=labels[value - 1], score=value, aggregate="given")
    given = {"scope": scope, "scale": scale, "remediability": remediability}
    missing = [name for name, value in given.items() if value is None]
    if missing:
        raise ScoringError(f"missing {', '.join(missing)}", field="severity")
    marks = {name: _score_of(value, labels, f"severity.{name}") for name, value in given.items()}  # type: ignore[arg-type]
    values = [Decimal(marks[name]) for name in CHARACTERISTICS]
    if spec.aggregate == "max":
        raw = max(values)
    elif spec.aggregate == "mean":
        raw = sum(values) / len(values)
    elif spec.aggregate == "median":
        raw = statistics.median(values)
    else:
        weights = {name: Decimal(str(w)) for name, w in (spec.weights or {}).items()}
        raw = sum(weights[name] * Decimal(marks[name]) for name in CHARACTERISTICS) / sum(weights.values())
    computed = min(max(round_half_up(raw), 1), len(labels))
    final = computed
    if override is not None:
        if not rationale or not rationale.strip():
            raise ScoringError("an override needs a written rationale", field="severity.override.rationale")
        final = _score_of(override, labels, "severity.override")
    return SeverityResult(
        level=labels[final - 1],
        score=final,
        aggregate=spec.aggregate,
        characteristics=marks,
        raw=float(raw),
        computed_score=computed,
        overridden=override is not None,
        rationale=rationale,
    )


# -- inherent ----------------------------------------------------------------------------
@dataclass(frozen=True)
class InherentResult:
    """An inherent risk level, with the probability and severity behind it."""

    level: str
    position: int
    probability: ProbabilityResult
    severity: SeverityResult
    method: str
    score: int | None = None
    overridden: bool = False


def inherent(method: Methodology, probability: ProbabilityResult, severity: SeverityResult) -> InherentResult:
    """Read the inherent level from the matrix, or band the product of the two scores."""
    spec = method.inherent
    probability_label = method.probability.labels[probability.score - 1]
    severity_label = method.severity.labels[severity.score - 1]
    score: int | None = None
    overridden = False
    if spec.method == "matrix":
        assert spec.matrix is not None  # guaranteed by validation
        level = spec.matrix[probability_label][severity.score - 1]
    else:
        assert spec.bands is not None
        score = probability.score * severity.score
        level = band_for(score, spec.bands).label
        for override in spec.overrides:
            if override.probability == probability_label and override.severity == severity_label:
                level, overridden = override.level, True
    return InherentResult(
        level=level,
        position=spec.labels.index(level) + 1,
        probability=probability,
        severity=severity,
        method=spec.method,
        score=score,
        overridden=overridden,
    )


def inherent_from_label(method: Methodology, label: str) -> str:
    """Return the declared spelling of an inherent level label."""
    return level_of(label, method.inherent.labels, field="inherent")


# -- effectiveness -----------------------------------------------------------------------
@dataclass(frozen=True)
class Answer:
    """One questionnaire answer: a maturity level, its weight and optional component."""

    maturity: str
    weight: float = 1.0
    component: str | None = None


@dataclass(frozen=True)
class EffectivenessResult:
    """A mitigation effectiveness percentage and its band."""

    level: str
    pct: float | None = None
    answers: int = 0
    by_component: dict[str, float] = field(default_factory=dict)
    factor: float | None = None


def _weighted_pct(answers: Sequence[Answer], credits: dict[str, float]) -> Decimal:
    total = sum(Decimal(str(a.weight)) for a in answers)
    if total <= 0:
        raise ScoringError("the answers' weights add up to 0", field="questionnaire.weight")
    earned = sum(Decimal(str(a.weight)) * Decimal(str(credits[a.maturity])) for a in answers)
    return 100 * earned / total


def effectiveness(
    method: Methodology,
    *,
    pct: float | None = None,
    answers: Sequence[Answer] | None = None,
    label: str | None = None,
) -> EffectivenessResult:
    """Score mitigation effectiveness from maturity answers, a percentage or a label.

    From answers, the percentage is the weighted mean credit of their maturity
    levels; when the methodology declares ``components`` it is the weighted
    blend of each component's percentage.
    """
    spec = method.effectiveness
    if label is not None:
        level = level_of(label, spec.labels, field="effectiveness")
        return EffectivenessResult(level=level, factor=_factor(method, level))
    by_component: dict[str, float] = {}
    n_answers = 0
    if answers is not None:
        if not answers:
            raise ScoringError("the questionnaire has no answers", field="questionnaire")
        maturity = [m.label for m in method.maturity]
        credits = {m.label: m.credit for m in method.maturity}
        answers = [
            Answer(level_of(a.maturity, maturity, field="maturity"), a.weight, a.component) for a in answers
        ]
        for a in answers:
            _finite("questionnaire.weight", a.weight)
        if any(a.weight < 0 for a in answers):
            raise ScoringError("a weight must not be negative", field="questionnaire.weight")
        n_answers = len(answers)
        if spec.components:
            blend = Decimal(0)
            for component, share in spec.components.items():
                own = [a for a in answers if a.component == component]
                if not own:
                    raise ScoringError(f"no answer belongs to component '{component}'", field="questionnaire.component")
                component_pct = _weighted_pct(own, credits)
                by_component[component] = float(component_pct)
                blend += Decimal(str(share)) * component_pct
            unknown = {a.component for a in answers} - set(spec.components)
            if unknown:
                raise ScoringError(
                    f"component(s) {', '.join(sorted(map(str, unknown)))} are not declared "
                    f"({', '.join(spec.components)})",
                    field="questionnaire.component",
                )
            exact = blend / sum(Decimal(str(s)) for s in spec.components.values())
        else:
            exact = _weighted_pct(answers, credits)
        pct = float(exact.quantize(Decimal("1e-9")))
    if pct is None:
        raise ScoringError("give a percentage, answers or a level label", field="effectiveness")
    _finite("effectiveness", pct)
    if not 0 <= pct <= 100:
        raise ScoringError("effectiveness is outside 0..100 %", field="effectiveness")
    level = band_for(pct, spec.levels).label
    return EffectivenessResult(
        level=level, pct=pct, answers=n_answers, by_component=by_component, factor=_factor(method, level)
    )


def _factor(method: Methodology, level: str) -> float | None:
    return next(band.factor for band in method.effectiveness.levels if band.label == level)


# -- residual ----------------------------------------------------------------------------
@dataclass(frozen=True)
class ResidualResult:
    """A residual risk level, with the inherent level and effectiveness behind it."""

    level: str
    inherent: str
    effectiveness: EffectivenessResult | None
    method: str
    value: float | None = None
    probability: ProbabilityResult | None = None
    severity: SeverityResult | None = None


def residual(
    method: Methodology,
    inherent_result: InherentResult | str,
    effectiveness_result: EffectivenessResult,
    *,
    inherent_score: int | None = None,
) -> ResidualResult:
    """Read the residual level from the matrix, or band the numeric residual value.

    ``inherent_result`` may be an :class:`InherentResult` or an inherent level
    label (then ``inherent_score`` supplies the product score when the
    methodology's residual needs it).
    """
    spec = method.residual
    if spec.method == "post_control":
        raise ScoringError("this methodology's residual needs post-control probability and severity",
                           field="post_control")
    if isinstance(inherent_result, InherentResult):
        inherent_label, inherent_score = inherent_result.level, inherent_result.score
    else:
        inherent_label = inherent_from_label(method, inherent_result)
    position = method.inherent.labels.index(inherent_label) + 1
    value: float | None = None
    if spec.method == "matrix":
        assert spec.matrix is not None
        level = spec.matrix[effectiveness_result.level][position - 1]
    else:
        if spec.inherent_value == "score":
            if inherent_score is None:
                raise ScoringError("this methodology needs the inherent score, not only its label", field="inherent")
            base: float = inherent_score
        else:
            base = position
        if spec.method == "product":
            assert effectiveness_result.factor is not None
            value = base * effectiveness_result.factor
        else:
            if effectiveness_result.pct is None:
                raise ScoringError("method reduction needs an effectiveness percentage", field="effectiveness")
            value = base * (1 - effectiveness_result.pct / 100)
        assert spec.bands is not None
        level = band_for(value, spec.bands).label
    return ResidualResult(
        level=level, inherent=inherent_label, effectiveness=effectiveness_result, method=spec.method, value=value
    )

def post_control_residual(
    method: Methodology,
    probability: ProbabilityResult,
    severity: SeverityResult,
    *,
    inherent_level: str,
    effectiveness_result: EffectivenessResult | None = None,
) -> ResidualResult:
    """Residual risk re-assessed after controls: the post-control probability and severity
    read from the residual matrix, or their scores' product banded. Effectiveness, when
    rated, is carried beside the result; it does not change it."""
    spec = method.residual
    if spec.method != "post_control":
        raise ScoringError(f"this methodology's residual is by {spec.method}, not post_control", field="post_control")
    value: float | None = None
    if spec.matrix is not None:
        level = spec.matrix[method.probability.labels[probability.score - 1]][severity.score - 1]
    else:
        assert spec.bands is not None  # guaranteed by validation
        value = probability.score * severity.score
        level = band_for(value, spec.bands).label
    return ResidualResult(level=level, inherent=inherent_from_label(method, inherent_level),
                          effectiveness=effectiveness_result, method=spec.method, value=value,
                          probability=probability, severity=severity)


# -- one case end to end -----------------------------------------------------------------
@dataclass(frozen=True)
class CaseResult:
    """The four ratings of one what-if case, with the working of each."""

    probability: ProbabilityResult
    severity: SeverityResult
    inherent: InherentResult
    effectiveness: EffectivenessResult | None
    residual: ResidualResult

    def as_dict(self) -> dict[str, dict[str, object]]:
        """Return the case as plain JSON-ready mappings, one per rating."""
        return {
            "probability": {"level": self.probability.level, "rate": self.probability.rate,
                            "unit": self.probability.unit, "score": self.probability.score},
            "severity": {"level": self.severity.level, "score": self.severity.score},
            "inherent": {"level": self.inherent.level, "score": self.inherent.score},
            "effectiveness": ({"level": self.effectiveness.level, "pct": self.effectiveness.pct}
                              if self.effectiveness else None),
            "residual": {"level": self.residual.level, "value": self.residual.value},
        }


def score_case(
    method: Methodology,
    *,
    rate: float | None = None,
    probability_label: str | None = None,
    severity_score: int | str | None = None,
    scope: int | str | None = None,
    scale: int | str | None = None,
    remediability: int | str | None = None,
    effectiveness_pct: float | None = None,
    effectiveness_label: str | None = None,
    post_rate: float | None = None,
    post_probability_label: str | None = None,
    post_severity_score: int | str | None = None,
    module: str | None = None,
) -> CaseResult:
    """Score one case given by rate or label, severity or its characteristics, and
    effectiveness by percentage or label; a ``post_control`` methodology also takes the
    post-control rate or level and severity score (then effectiveness is optional)."""
    p = probability(method, rate=rate, label=probability_label, module=module)
    s = severity(method, score=severity_score, scope=scope, scale=scale, remediability=remediability)
    i = inherent(method, p, s)
    given = effectiveness_pct is not None or effectiveness_label is not None
    e = effectiveness(method, pct=effectiveness_pct, label=effectiveness_label) if given or not method.post_control else None
    if method.post_control:
        post_p = probability(method, rate=post_rate, label=post_probability_label, module=module)
        if post_severity_score is None:
            raise ScoringError("give the post-control severity score", field="post_control.severity")
        post_s = severity(method, score=post_severity_score)
        return CaseResult(p, s, i, e, post_control_residual(method, post_p, post_s, inherent_level=i.level,
                                                            effectiveness_result=e))
    assert e is not None
    return CaseResult(p, s, i, e, residual(method, i, e))
