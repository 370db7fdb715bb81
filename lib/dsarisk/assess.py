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
from .inputs import MODULES, Measure, ModuleInput, Published, YearInputs, load_year
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
        if isinstance(self.computed, float) or isinstance(self.published, int | float):
            return agrees_at_precision(float(self.computed), float(self.published))
        return self.computed == self.published


@dataclass(frozen=True)
class PreviousRatings:
    """Last year's ratings of the same module, scored under last year's methodology."""

    year: int
    methodology: str
    inherent: str
    effectiveness: str
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
    rate: Value
    probability: scoring.ProbabilityResult
    severity: scoring.SeverityResult
    inherent: scoring.InherentResult
    effectiveness: scoring.EffectivenessResult
    residual: scoring.ResidualResult
    by_area: dict[str, float]
    findings: list[Finding] = field(default_factory=list)
    previous: PreviousRatings | None = None
    changes: list[Change] = field(default_factory=list)
    year_secrets: frozenset[float] = frozenset()  # confidential numbers of every module of the year

    @property
    def severity_confidential(self) -> bool:
        return self.inputs.severity.confidential or "severity" in self.inputs.confidential_ratings

    def disclosure(self, *, public: bool) -> Disclosure:
        """What a rendering of this module may show (:mod:`dsarisk.confidentiality`)."""
        return disclosure(self, public=public)

    def hidden(self, rating: str, *, public: bool) -> bool:
        """Whether a rating's label (and its numbers) must not appear in a public rendering."""
        return not self.disclosure(public=public).shows_rating(rating)

    def label(self, rating: str, *, public: bool) -> str:
        """The rating's level, or the redaction mark when it is hidden and ``public``."""
        return self.disclosure(public=public).label(rating, getattr(self, rating).level)

    @property
    def effectiveness_pct(self) -> Value:
        return Value(self.effectiveness.pct or 0.0, "effectiveness" in self.inputs.confidential_ratings)

    @property
    def comparisons(self) -> list[Comparison]:
        published: Published = self.inputs.published
        rows = [
            Comparison("probability", self.probability.level, published.probability),
            Comparison("inherent", self.inherent.level, published.inherent),
            Comparison("effectiveness", self.effectiveness.level, published.effectiveness),
            Comparison("effectiveness %", round(self.effectiveness.pct or 0.0, 6), published.effectiveness_pct),
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
        level = {rating: show.json_label(rating, getattr(self, rating).level) for rating in
                 ("probability", "severity", "inherent", "effectiveness", "residual")}
        published = self.inputs.published
        record: dict[str, Any] = {
            "title": self.title,
            "probability": {"rate_pct": show.json_number(self.rate, feeds="probability"),
                            "unit": self.probability.unit, "level": level["probability"]},
            "severity": {"score": self.severity.score if show.shows_severity_scores else None,
                         "level": level["severity"]},
            "inherent": level["inherent"],
            "effectiveness": {"pct": show.json_number(self.effectiveness_pct, feeds="effectiveness"),
                              "level": level["effectiveness"]},
            "residual": level["residual"],
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
    basis = item.probability.basis_proxy
    rate = basis.rate_value()
    scale = method.probability_scale(module_id)
    if basis.unit != scale.unit:
        raise InputError(f"the basis proxy is in '{basis.unit}' but the methodology's probability scale for this "
                         f"module is in '{scale.unit}'", file=inputs.files[module_id], module=module_id,
                         field=f"probability.proxies.{basis.id}.unit")
    try:
        probability = scoring.probability(method, rate=rate.value, module=module_id)
        sev = item.severity
        severity = scoring.severity(
            method, scope=sev.scope.score, scale=sev.scale.score, remediability=sev.remediability.score,
            override=sev.override.score if sev.override else None,
            rationale=sev.override.rationale if sev.override else None,
        )
        inherent = scoring.inherent(method, probability, severity)
        effectiveness = scoring.effectiveness(method, answers=answers_of(m for _, m in item.measures))
        residual = scoring.residual(method, inherent, effectiveness)
        by_area = {
            area.area: scoring.effectiveness(method, answers=answers_of(area.measures)).pct or 0.0
            for area in item.questionnaire
        } if not method.effectiveness.components else dict(effectiveness.by_component)
    except ScoringError as exc:
        raise _located(exc, inputs, module_id) from None
    earlier = previous_inputs(inputs, module_id) if with_previous else None
    return ModuleAssessment(
        year=inputs.year, module=module_id, title=item.title, methodology=method, inputs=item, rate=rate,
        probability=probability, severity=severity, inherent=inherent, effectiveness=effectiveness,
        residual=residual, by_area=by_area, findings=module_findings(inputs, module_id),
        previous=previous_ratings(earlier, module_id) if earlier else None,
        changes=changes_since(earlier.modules[module_id], item, maturity_levels=[m.label for m in method.maturity],
                              factor=inputs.assessment.proxy_change_factor) if earlier else [],
        year_secrets=year_secrets(inputs),
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
                           effectiveness=result.effectiveness.level, effectiveness_pct=result.effectiveness.pct,
                           residual=result.residual.level, hidden=result.disclosure(public=True).hidden)


def assess_year(inputs: YearInputs) -> dict[str, ModuleAssessment]:
    """Assess every module of the year, in the assessment's order."""
    return {module_id: assess_module(inputs, module_id) for module_id in inputs.modules}


__all__ = ["MODULES", "Comparison", "ModuleAssessment", "PreviousRatings", "assess_module", "assess_year"]
