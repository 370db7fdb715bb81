"""Assess a module: its inputs through the scoring functions, with confidentiality kept.

This is where a :class:`~dsarisk.inputs.ModuleInput` meets a
:class:`~dsarisk.methodology.Methodology`; notebooks and the pipeline read the
resulting :class:`ModuleAssessment` and never compute a score themselves.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from . import scoring
from .confidentiality import Disclosure, disclosure, redact_numbers, year_secrets
from .cycle import Change, changes_since
from .exceptions import InputError, ScoringError
from .inputs import Judged, Measure, ModuleIdentity, ModuleInput, Published, YearInputs, is_judged, load_year
from .labels import canonical_label
from .methodology import Methodology
from .quality import Finding, agrees_at_precision, module_findings
from .values import Value


@dataclass(frozen=True)
class Comparison:
    """One rating computed by the workbook next to the one the report published."""

    rating: str
    computed: str | float
    published: str | float | None

    @property
    def matches(self) -> bool | None:
        """Whether the computed rating is the published one; a number matches when it lies within
        half a unit of the published one's last decimal (78.4 matches a published 78)."""
        if self.published is None:
            return None
        if isinstance(self.computed, str) != isinstance(self.published, str):
            return False  # a rating not rated, against a published percentage
        if isinstance(self.computed, float) or isinstance(self.published, int | float):
            return agrees_at_precision(float(self.computed), float(self.published))
        return self.computed == self.published


@dataclass(frozen=True)
class PreviousRatings:
    """Last year's ratings of the same module, scored under last year's methodology."""

    year: int
    methodology: str
    inherent: str
    effectiveness: str | None
    effectiveness_pct: float | None
    residual: str
    hidden: frozenset[str] = frozenset()  # what that year's public report did not show


@dataclass(frozen=True)
class ModuleAssessment:
    """Every rating of one module for one year, with the working and its confidentiality."""

    year: int
    module: str
    title: str
    methodology: Methodology
    inputs: ModuleInput
    rate: Value | None  # None when the probability is judged
    probability: scoring.ProbabilityResult
    severity: scoring.SeverityResult
    inherent: scoring.InherentResult
    effectiveness: scoring.EffectivenessResult | None  # None when a post-control method goes without
    residual: scoring.ResidualResult
    by_area: dict[str, float]
    findings: list[Finding] = field(default_factory=list)
    previous: PreviousRatings | None = None
    changes: list[Change] = field(default_factory=list)
    year_secrets: frozenset[float] = frozenset()  # confidential numbers of every module of the year
    identity: ModuleIdentity | None = None

    @property
    def short(self) -> str:
        """The module's short label (heatmaps, legends), from the taxonomy."""
        return self.identity.short if self.identity else self.module

    @property
    def order(self) -> int | None:
        return self.identity.order if self.identity else None

    def judged(self, rating: str) -> Judged | None:
        """The analyst's judged level and rationale behind ``rating`` (``probability``,
        ``severity``, ``effectiveness``, ``post_control.probability`` or
        ``post_control.severity``), or None when it is computed."""
        source: object = self.inputs
        for part in rating.split("."):
            source = getattr(source, part, None)
        return source if is_judged(source) else None  # type: ignore[return-value]

    @property
    def severity_confidential(self) -> bool:
        marked = not is_judged(self.inputs.severity) and self.inputs.severity.confidential
        return marked or "severity" in self.inputs.confidential_ratings

    def disclosure(self, *, public: bool) -> Disclosure:
        """What a rendering of this module may show (:mod:`dsarisk.confidentiality`)."""
        return disclosure(self, public=public)

    @property
    def effectiveness_pct(self) -> Value | None:
        """The questionnaire's percentage; None when effectiveness is judged or not rated."""
        if self.effectiveness is None or self.effectiveness.pct is None:
            return None
        return Value(self.effectiveness.pct, "effectiveness" in self.inputs.confidential_ratings)

    @property
    def comparisons(self) -> list[Comparison]:
        published: Published = self.inputs.published
        rows = [
            Comparison("probability", self.probability.level, published.probability),
            Comparison("inherent", self.inherent.level, published.inherent),
            Comparison("effectiveness", self.effectiveness.level if self.effectiveness else "not rated",
                       published.effectiveness),
            Comparison("effectiveness %", round(self.effectiveness.pct or 0.0, 6) if self.effectiveness else "not rated",
                       published.effectiveness_pct),
            Comparison("residual", self.residual.level, published.residual),
        ]
        return [row for row in rows if row.published is not None]

    @property
    def mismatches(self) -> list[Comparison]:
        return [row for row in self.comparisons if row.matches is False]

    def change(self, rating: str) -> str | None:
        """'up', 'down' or 'same' against the previous year for ``inherent`` or ``residual``."""
        if self.previous is None:
            return None
        labels = self.methodology.inherent.labels if rating == "inherent" else self.methodology.residual.labels
        now, then = getattr(self, rating).level, getattr(self.previous, rating)
        before = canonical_label(then, labels)
        if before is None:
            return None
        step = labels.index(now) - labels.index(before)
        return "up" if step > 0 else "down" if step < 0 else "same"

    def to_json(self, *, public: bool) -> dict[str, Any]:
        """The summary record of the module; what the public version hides becomes null."""
        show = self.disclosure(public=public)
        level = {rating: show.json_label(rating, result.level) if result is not None else None
                 for rating in ("probability", "severity", "inherent", "effectiveness", "residual")
                 for result in [getattr(self, rating)]}
        published = self.inputs.published
        record: dict[str, Any] = {
            "title": self.title,
            "short": self.short,
            "probability": {"rate_pct": show.json_number(self.rate, feeds="probability"),
                            "unit": self.probability.unit, "level": level["probability"]},
            "severity": {"score": self.severity.score if show.shows_severity_scores else None,
                         "level": level["severity"]},
            "inherent": level["inherent"],
            "effectiveness": {"pct": show.json_number(self.effectiveness_pct, feeds="effectiveness"),
                              "level": level["effectiveness"]},
            "residual": level["residual"],
            "residual_method": self.residual.method,
            "post_control": None if self.residual.probability is None or self.residual.severity is None else {
                rating: show.json_label("post_control", result.level)
                for rating, result in (("probability", self.residual.probability),
                                       ("severity", self.residual.severity))},
            "judged": [r for r in ("probability", "severity", "effectiveness") if self.judged(r)],
            "published": {"inherent": show.json_label("inherent", published.inherent),
                          "effectiveness_pct": (published.effectiveness_pct if show.shows_rating("effectiveness")
                                                else None),
                          "residual": show.json_label("residual", published.residual)},
            "matches_published": not [c for c in show.comparisons(self.mismatches)],
            "hidden": sorted(show.hidden),
            "notes": show.notes,
            "previous": None,
            "findings": len(show.findings(self.findings)),
        }
        record["changes"] = [
            {"kind": c.kind, "item": c.item,
             **{side: (show.json_number(v) if isinstance(v, Value) else v)
                for side, v in (("before", c.before), ("after", c.after))}}
            for c in show.changes(self.changes)]
        if self.previous is not None:
            record["previous"] = {"year": self.previous.year,
                                  **{rating: self.previous_label(rating, public=public)
                                     for rating in ("inherent", "residual")},
                                  "change": {rating: self.shown_change(rating, public=public)
                                             for rating in ("inherent", "residual")},
                                  "reason": (self.inputs.change_since_previous.model_dump()
                                             if self.inputs.change_since_previous else None)}
        return record

    def previous_label(self, rating: str, *, public: bool) -> str | None:
        """Last year's level as last year's public report showed it (None when hidden)."""
        if self.previous is None or not self.disclosure(public=public).shows_previous(rating):
            return None
        return getattr(self.previous, rating)

    def shown_change(self, rating: str, *, public: bool) -> str | None:
        """:meth:`change`, or None when either year's level is hidden."""
        show = self.disclosure(public=public)
        return self.change(rating) if show.shows_rating(rating) and show.shows_previous(rating) else None


def answers_of(measures: Iterable[Measure]) -> list[scoring.Answer]:
    """The questionnaire measures as the scoring functions take them."""
    return [scoring.Answer(m.maturity, m.weight, m.component) for m in measures]


def _located(error: ScoringError, inputs: YearInputs, module_id: str) -> InputError:
    """The error with its file and module; no confidential number in the message (CI logs)."""
    return InputError(redact_numbers(error.message, year_secrets(inputs)), file=inputs.files[module_id],
                      module=module_id, field=error.field)


def _probability(method: Methodology, given: Any, module_id: str) -> tuple[Value | None, scoring.ProbabilityResult]:
    """The rate (None when judged) and probability level of a probability input."""
    if is_judged(given):
        return None, scoring.probability(method, label=given.level, module=module_id)
    basis = given.basis_proxy
    scale = method.probability_scale(module_id)
    if basis.unit != scale.unit:
        raise ScoringError(f"the basis proxy is in '{basis.unit}' but the methodology's probability scale for this "
                      f"module is in '{scale.unit}'", field=f"probability.proxies.{basis.id}.unit")
    rate = basis.rate_value()
    return rate, scoring.probability(method, rate=rate.value, module=module_id)


def _severity(method: Methodology, given: Any) -> scoring.SeverityResult:
    if is_judged(given):
        return scoring.severity(method, score=given.level)
    return scoring.severity(
        method, scope=given.scope.score, scale=given.scale.score, remediability=given.remediability.score,
        override=given.override.score if given.override else None,
        rationale=given.override.rationale if given.override else None,
    )


def _effectiveness(method: Methodology, item: ModuleInput) -> scoring.EffectivenessResult | None:
    if item.effectiveness is not None:
        return scoring.effectiveness(method, label=item.effectiveness.level)
    if not item.questionnaire:
        return None  # validation lets only a post-control methodology go without
    return scoring.effectiveness(method, answers=answers_of(m for _, m in item.measures))


def assess_module(inputs: YearInputs, module_id: str, *, with_previous: bool = True) -> ModuleAssessment:
    """Score one module of a loaded year.

    Parameters
    ----------
    inputs : YearInputs
        From :func:`dsarisk.inputs.load_year`.
    module_id : str
    with_previous : bool
        Also score last year's inputs (when ``previous_year`` has data) for comparison.
    """
    method = inputs.methodology
    item = inputs.module(module_id)

    try:
        rate, probability = _probability(method, item.probability, module_id)
        severity = _severity(method, item.severity)
        inherent = scoring.inherent(method, probability, severity)
        effectiveness = _effectiveness(method, item)
        if method.post_control:
            assert item.post_control is not None  # guaranteed by validation
            _, post_probability = _probability(method, item.post_control.probability, module_id)
            residual = scoring.post_control_residual(
                method, post_probability, _severity(method, item.post_control.severity),
                inherent_level=inherent.level, effectiveness_result=effectiveness)
        else:
            assert effectiveness is not None  # guaranteed by validation
            residual = scoring.residual(method, inherent, effectiveness)
        by_area = {
            area.area: scoring.effectiveness(method, answers=answers_of(area.measures)).pct or 0.0
            for area in item.questionnaire
        } if not method.effectiveness.components or effectiveness is None else dict(effectiveness.by_component)
    except ScoringError as exc:
        raise _located(exc, inputs, module_id) from None
    identity = inputs.taxonomy[module_id]
    earlier = previous_inputs(inputs, module_id) if with_previous else None
    return ModuleAssessment(
        year=inputs.year, module=module_id, title=identity.title, methodology=method, inputs=item, rate=rate,
        probability=probability, severity=severity, inherent=inherent, effectiveness=effectiveness,
        residual=residual, by_area=by_area, findings=module_findings(inputs, module_id),
        previous=previous_ratings(earlier, module_id) if earlier else None,
        changes=changes_since(earlier.modules[module_id], item, maturity_levels=[m.label for m in method.maturity],
                              factor=inputs.assessment.proxy_change_factor) if earlier else [],
        year_secrets=year_secrets(inputs),
        identity=identity,
    )


def previous_inputs(inputs: YearInputs, module_id: str) -> YearInputs | None:
    """Last year's inputs of ``module_id``, or None when that year has no data for it."""
    if inputs.previous_year is None:
        return None
    earlier = load_year(inputs.previous_year, data_dir=inputs.data_dir, modules=None)
    return earlier if module_id in earlier.modules else None


def previous_ratings(earlier: YearInputs, module_id: str) -> PreviousRatings:
    """The module's ratings in an earlier year, under that year's methodology."""
    result = assess_module(earlier, module_id, with_previous=False)
    return PreviousRatings(year=earlier.year, methodology=earlier.methodology.name, inherent=result.inherent.level,
                           effectiveness=result.effectiveness.level if result.effectiveness else None,
                           effectiveness_pct=result.effectiveness.pct if result.effectiveness else None,
                           residual=result.residual.level, hidden=result.disclosure(public=True).hidden)


def assess_year(inputs: YearInputs) -> dict[str, ModuleAssessment]:
    """Assess every module of the year, in the assessment's order."""
    return {module_id: assess_module(inputs, module_id) for module_id in inputs.modules}


__all__ = ["Comparison", "ModuleAssessment", "PreviousRatings", "assess_module", "assess_year"]
