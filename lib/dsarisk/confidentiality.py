"""What a rendering may show: the one home of every confidentiality decision.

A module's inputs mark numbers (``{value: N, confidential: true}``) and whole ratings
(``confidential_ratings``) confidential. Hiding a figure is not enough: a public rate
fixes a hidden probability band, last year's answers plus this year's maturity moves give
back a hidden effectiveness percentage, a hidden effectiveness is read off the residual
matrix when the inherent and residual levels are shown, and a finding that says a hidden
count "has the same value as" a printed one prints it. :class:`Disclosure` answers, for one
module and one version of the report, whether each value, rating label, table row, chart
mark, change and finding may be shown; tables, JSON, charts and the summary all ask it.

Public API (used by the notebooks' sections, the summary JSON and the exports):

- :func:`disclosure` (``assessment, *, public``) -> :class:`Disclosure`
- :meth:`Disclosure.shows_rating`, :meth:`Disclosure.label`, :meth:`Disclosure.json_label`
- :meth:`Disclosure.value`, :meth:`Disclosure.number`, :meth:`Disclosure.json_number`
- :meth:`Disclosure.proxy_figure`, :meth:`Disclosure.marks`, :meth:`Disclosure.shows_change`,
  :meth:`Disclosure.shows_finding`, :meth:`Disclosure.shows_comparison`
- :func:`shown` (``value, *, public``): the rule for a lone number, no module needed.
- :func:`year_secrets` (``inputs``) and :func:`redact_numbers` (``text, numbers``): for text
  that leaves the report's renderings, such as error messages.
- :func:`public_view` (``assessment``) -> (assessment, [:class:`Statement`]): the analyst's own
  prose (labels, rationales, explanations, evidence) can state what the public version hides
  ("residual fell from Medium to Low Medium"); the public renderings use the assessment this
  returns, whose prose has those figures and levels redacted, and the run names each field.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from itertools import product
from typing import TYPE_CHECKING, Any

from . import scoring
from .inputs.judged import is_judged
from .values import REDACTED, Value

if TYPE_CHECKING:  # assess imports this module
    from .assess import Comparison, ModuleAssessment
    from .cycle import Change
    from .inputs import ModuleInput, Proxy, YearInputs
    from .quality import Finding

RATINGS = ("probability", "severity", "inherent", "effectiveness", "residual")
# what a rating feeds, nearest first: hiding the nearest shown one breaks an inference
DOWNSTREAM = {"probability": ("inherent", "residual"), "severity": ("inherent", "residual"),
              "effectiveness": ("residual",), "inherent": ("residual",), "residual": (), "post_control": ()}
# a post-control residual is read from the post-control levels alone: effectiveness feeds nothing
POST_CONTROL_DOWNSTREAM = {"probability": ("inherent",), "severity": ("inherent",), "effectiveness": (),
                           "inherent": (), "residual": (), "post_control": ("residual",)}
MATURITY_CHANGES = ("maturity up", "maturity down")


def shown(value: Value | float | int | None, *, public: bool) -> bool:
    """Whether a number may appear: always internally, publicly unless it is a confidential Value."""
    return not (public and isinstance(value, Value) and value.confidential)


def leaves(node: Any, kind: type = Value) -> list[Any]:
    """Every ``kind`` (a Value by default) inside a model, list or mapping."""
    from pydantic import BaseModel

    if isinstance(node, kind):
        return [node]
    if isinstance(node, BaseModel):
        return [leaf for name in type(node).model_fields for leaf in leaves(getattr(node, name), kind)]
    if isinstance(node, list | tuple | dict):
        return [leaf for item in (node.values() if isinstance(node, dict) else node) for leaf in leaves(item, kind)]
    return []


def _basis_figures(probability: Any) -> list[Value]:
    """A counted probability's basis figures, marked confidential; none for a judged one."""
    if is_judged(probability):
        return []
    basis = probability.basis_proxy
    return [Value(v.value, True) for v in (basis.incidents, basis.volume, basis.rate_value()) if v is not None]


def _fixing_probability(item: ModuleInput) -> list[Value]:
    """The basis proxies' figures, which fix a probability band: hidden with a hidden band
    (the pre-control one, or the post-control one with ``post_control``)."""
    figures = _basis_figures(item.probability) if "probability" in item.confidential_ratings else []
    if "post_control" in item.confidential_ratings and item.post_control is not None:
        figures += _basis_figures(item.post_control.probability)
    return figures


def year_secrets(inputs: YearInputs) -> frozenset[float]:
    """Every number of the year that is confidential (marked so, computed from one, or fixing a
    hidden probability band): the same number printed as a public figure elsewhere, in any
    module, would give it away."""
    values = [v for item in inputs.modules.values() for v in leaves(item) + _fixing_probability(item)]
    values += [p.rate_value() for item in inputs.modules.values()
               for probability in (item.probability, item.post_control.probability if item.post_control else None)
               if probability is not None for p in probability.proxies]
    return frozenset(v.value for v in values if v.confidential)


def redact_numbers(text: str, numbers: Iterable[float]) -> str:
    """``text`` with every ``numbers`` written as messages write them (``12345``, ``1.2345e+07``,
    ``12,345``) replaced by the redaction mark: an error message ends up in CI logs."""
    numbers = list(numbers)
    whole = [n for n in numbers if float(n).is_integer()]
    forms = sorted({f"{n:g}" for n in numbers} | {repr(n) for n in numbers}
                   | {f"{n:.0f}" for n in whole} | {f"{n:,.0f}" for n in whole}, key=len, reverse=True)
    if not forms:
        return text
    return re.sub(r"(?<![\d.,])(?:" + "|".join(map(re.escape, forms)) + r")(?![\d]|[.,]\d)", REDACTED, text)


def fixed_ratings(assessment: ModuleAssessment, hidden: Iterable[str]) -> dict[str, str]:
    """The hidden ratings that the shown ones fix, each with the level a reader would infer.

    Every combination of levels of the hidden input ratings is scored through the
    methodology; those that give the shown inherent and residual levels are what a reader
    cannot rule out. A hidden rating with one level across them all is fixed.
    """
    a, method, hidden = assessment, assessment.methodology, set(hidden)
    if method.post_control:
        return _fixed_post_control(assessment, hidden)
    probabilities = ([scoring.probability(method, label=p, module=a.module)
                      for p in method.probability_scale(a.module).labels]
                     if "probability" in hidden else [a.probability])
    severities = ([scoring.severity(method, score=s) for s in range(1, len(method.severity.labels) + 1)]
                  if "severity" in hidden else [a.severity])
    # a band's lower bound stands for the band; the actual result is kept so it is always a candidate
    effectiveness = ([scoring.EffectivenessResult(level=b.label, pct=b.min, factor=b.factor)
                      for b in method.effectiveness.levels] + [a.effectiveness]
                     if "effectiveness" in hidden else [a.effectiveness])
    seen: dict[str, set[str]] = {rating: set() for rating in hidden & set(RATINGS)}
    for p, s, e in product(probabilities, severities, effectiveness):
        inherent = scoring.inherent(method, p, s)
        residual = scoring.residual(method, inherent, e)
        levels = {"probability": p.level, "severity": s.level, "inherent": inherent.level,
                  "effectiveness": e.level, "residual": residual.level}
        if all(levels[r] == getattr(a, r).level for r in ("inherent", "residual") if r not in hidden):
            for rating in seen:
                seen[rating].add(levels[rating])
    return {rating: next(iter(levels)) for rating, levels in seen.items() if len(levels) == 1}


def _fixed_post_control(a: ModuleAssessment, hidden: set[str]) -> dict[str, str]:
    """:func:`fixed_ratings` under a post-control method: the inherent level fixes the
    pre-control probability and severity; the residual fixes the post-control pair."""
    method = a.methodology
    all_probabilities = [scoring.probability(method, label=p, module=a.module)
                         for p in method.probability_scale(a.module).labels]
    all_severities = [scoring.severity(method, score=s) for s in range(1, len(method.severity.labels) + 1)]
    seen: dict[str, set[str]] = {rating: set() for rating in hidden & {"probability", "severity"}}
    for p, s in product(all_probabilities if "probability" in hidden else [a.probability],
                        all_severities if "severity" in hidden else [a.severity]):
        if "inherent" in hidden or scoring.inherent(method, p, s).level == a.inherent.level:
            seen.get("probability", set()).add(p.level)
            seen.get("severity", set()).add(s.level)
    fixed = {rating: next(iter(levels)) for rating, levels in seen.items() if len(levels) == 1}
    if "post_control" in hidden and "residual" not in hidden:
        pairs = {(p.level, s.level) for p, s in product(all_probabilities, all_severities)
                 if scoring.post_control_residual(method, p, s, inherent_level=a.inherent.level).level
                 == a.residual.level}
        if len(pairs) == 1:
            fixed["post_control"] = " / ".join(next(iter(pairs)))
    return fixed


def hidden_ratings(assessment: ModuleAssessment) -> tuple[frozenset[str], dict[str, str]]:
    """The ratings a public rendering hides, and why each one beyond those the inputs name.

    Starts from ``confidential_ratings`` and hides, while a hidden rating can still be
    inferred, the nearest shown rating it feeds.
    """
    hidden = set(assessment.inputs.confidential_ratings)
    reasons: dict[str, str] = {}
    while True:
        extra = {}
        downstream = POST_CONTROL_DOWNSTREAM if assessment.methodology.post_control else DOWNSTREAM
        for rating in fixed_ratings(assessment, hidden):
            nearest = next((r for r in downstream[rating] if r not in hidden), None)
            if nearest is not None:
                extra.setdefault(nearest, rating)
        if not extra:
            return frozenset(hidden), reasons
        for rating, source in extra.items():
            reasons[rating] = (f"the {rating} level, which with the levels shown would give away the "
                               f"confidential {source}")
            hidden.add(rating)


@dataclass(frozen=True)
class Disclosure:
    """What one module's rendering may show in one version of the report.

    Build it with :func:`disclosure`. Internally (``public=False``) everything is shown.
    """

    public: bool
    hidden: frozenset[str] = frozenset()
    reasons: dict[str, str] = field(default_factory=dict)
    previous_hidden: frozenset[str] = frozenset()
    severity_scores_hidden: bool = False
    basis_proxy: str | None = None
    pinned: frozenset[float] = frozenset()  # numbers never shown: they are, or fix, a hidden one

    # -- ratings -----------------------------------------------------------------------------
    def shows_rating(self, rating: str) -> bool:
        """Whether a rating's label, and every number that fixes it, may appear.

        ``rating`` may carry a qualifier after a space ("effectiveness %")."""
        return not (self.public and rating.split()[0] in self.hidden)

    def shows_previous(self, rating: str) -> bool:
        """Whether last year's ``rating`` may appear (as last year's public report showed it)."""
        return not (self.public and rating in self.previous_hidden)

    def label(self, rating: str, level: str) -> str:
        """``level`` or the redaction mark."""
        return level if self.shows_rating(rating) else REDACTED

    def json_label(self, rating: str, level: str | None) -> str | None:
        return level if self.shows_rating(rating) else None

    def marks(self, matrix: str) -> bool:
        """Whether a module may be placed on the ``inherent`` or ``residual`` matrix: its cell
        gives its row, its column and the level."""
        placed = {"inherent": ("probability", "severity", "inherent"),
                  "residual": ("effectiveness", "inherent", "residual"),
                  "post_control": ("post_control", "residual")}[matrix]
        return all(self.shows_rating(r) for r in placed)

    @property
    def shows_severity_scores(self) -> bool:
        """The three characteristic scores and their working."""
        return not (self.public and (self.severity_scores_hidden or "severity" in self.hidden))

    # -- numbers -----------------------------------------------------------------------------
    def value(self, value: Value | float | None, *, feeds: str | None = None) -> Value | float | None:
        """``value``, marked confidential when it feeds a hidden rating or equals a number
        that fixes one (the same count printed under another label)."""
        if value is None or not self.public:
            return value
        number = value.value if isinstance(value, Value) else float(value)
        if (feeds is not None and not self.shows_rating(feeds)) or number in self.pinned:
            return Value(number, True)
        return value

    def number(self, value: Value | float | None, *, feeds: str | None = None, **style: Any) -> str:
        """The formatted number, or the redaction mark (``style``: ``decimals``, ``unit``)."""
        from .tables import fmt  # tables imports pandas; this module stays light

        return fmt(self.value(value, feeds=feeds), public=self.public, **style)

    def json_number(self, value: Value | float | None, *, feeds: str | None = None) -> float | None:
        """The number for JSON, or null."""
        value = self.value(value, feeds=feeds)
        if value is None or not shown(value, public=self.public):
            return None
        return value.value if isinstance(value, Value) else float(value)

    def proxy_figure(self, proxy: Proxy, name: str) -> Value | None:
        """A proxy's ``incidents``, ``volume`` or ``rate``; the basis proxy's figures fix the
        probability band, so they are hidden with it."""
        figure = proxy.rate_value() if name == "rate" else getattr(proxy, name)
        return self.value(figure, feeds="probability" if proxy.id == self.basis_proxy else None)

    # -- rows, changes, findings ---------------------------------------------------------------
    def shows_change(self, change: Change) -> bool:
        """A maturity move, applied to last year's answers, gives back a hidden effectiveness;
        a move of the basis proxy bounds a hidden rate."""
        if change.kind in MATURITY_CHANGES:
            return self.shows_rating("effectiveness")
        if change.kind.startswith("proxy changed") and change.item == self.basis_proxy:
            return self.shows_rating("probability")
        return True

    def changes(self, changes: Iterable[Change]) -> list[Change]:
        return [c for c in changes if self.shows_change(c)]

    def shows_finding(self, finding: Finding) -> bool:
        """No finding may reveal a confidential value by comparing it with a public one."""
        if not self.public:
            return True
        kept = [shown(self.value(v), public=True) for v in finding.compares]
        return all(kept) or not any(kept)

    def findings(self, findings: Iterable[Finding]) -> list[Finding]:
        return [f for f in findings if self.shows_finding(f)]

    def finding_parts(self, finding: Finding) -> tuple[str | Value | float | None, ...]:
        """A finding's text and values, each value marked as :meth:`value` says."""
        return tuple(part if isinstance(part, str) else self.value(part) for part in finding.parts)

    def shows_comparison(self, comparison: Comparison) -> bool:
        """Computed vs published: a match (or a mismatch) states the hidden level."""
        return self.shows_rating(comparison.rating)

    def comparisons(self, comparisons: Iterable[Comparison]) -> list[Comparison]:
        return [c for c in comparisons if self.shows_comparison(c)]

    @cached_property
    def notes(self) -> list[str]:
        """Why ratings beyond those the inputs name are hidden (public version only)."""
        return [self.reasons[r] for r in RATINGS if r in self.reasons] if self.public else []


def disclosure(assessment: ModuleAssessment, *, public: bool) -> Disclosure:
    """What the rendering of ``assessment`` may show in the public (or internal) version."""
    if not public:
        return Disclosure(public=False)
    hidden, reasons = hidden_ratings(assessment)
    item = assessment.inputs
    pinned = assessment.year_secrets | {v.value for v in _fixing_probability(item)}
    return Disclosure(public=True, hidden=hidden, reasons=reasons,
                      previous_hidden=assessment.previous.hidden if assessment.previous else frozenset(),
                      severity_scores_hidden=getattr(item.severity, "confidential", False),
                      basis_proxy=None if is_judged(item.probability) else item.probability.basis_proxy.id,
                      pinned=pinned)


# -- the analyst's prose ----------------------------------------------------------------------
# Input fields written as sentences for the reader; every other text is an id, a level or a code.
PROSE = frozenset({"label", "source", "note", "rationale", "assessment", "question", "measure", "evidence",
                   "explanation", "definition"})
# How prose names a rating: a hidden level is stated when its label and one of these words
# share a sentence ("Strong demand" states nothing; "effectiveness stayed Strong" does).
RATING_WORDS = {"probability": ("probability", "likelihood"), "severity": ("severity", "impact"),
                "inherent": ("inherent",), "effectiveness": ("effectiveness", "mitigation", "controls"),
                "residual": ("residual",), "post_control": ("post-control", "post control")}
# a number in prose, not a part of a name, date or code (``sor-2024-03-01``, ``v2``, ``dp-03``)
NUMBER = re.compile(r"(?<![\w.,/-])(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\w/-]|[.,]\d)")
SENTENCE = re.compile(r"[^.;:!?]+(?:[.;:!?](?!\s|$)[^.;:!?]*)*")


@dataclass(frozen=True)
class Statement:
    """A prose field of a module's inputs that states something the public version hides
    (``states`` says what, never the value)."""

    field: str
    states: str


def _hidden_levels(assessment: ModuleAssessment, show: Disclosure) -> dict[str, str]:
    """Each hidden rating's level, keyed by the rating (and a qualifier after a space)."""
    levels = {}
    for rating in show.hidden:
        result = getattr(assessment, rating, None)
        if rating == "post_control":  # its probability and severity after controls
            post = {"probability": assessment.residual.probability, "severity": assessment.residual.severity}
            levels.update({f"post_control {part}": r.level for part, r in post.items() if r is not None})
        elif result is not None:
            levels[rating] = result.level
    return levels


def _hidden_numbers(assessment: ModuleAssessment, show: Disclosure) -> set[float]:
    """The numbers a public rendering never prints: confidential, fixing a hidden rating, or
    a hidden rating's own percentage or rate."""
    numbers = set(show.pinned)
    if not show.shows_rating("effectiveness") and assessment.effectiveness is not None:
        numbers.add(assessment.effectiveness.pct)
    if not show.shows_rating("probability") and assessment.rate is not None:
        numbers.add(assessment.rate.value)
    return numbers


def _states_number(match: re.Match[str], numbers: set[float]) -> bool:
    """Whether a number written in prose is one of ``numbers`` at the precision written
    (``73 %`` states 72.96); one significant digit states nothing unless a percent sign
    follows (``1`` is not a hidden 0.51, ``2024-03-01`` holds no figure)."""
    written = match[0].replace(",", "")
    decimals, digits = len(written.partition(".")[2]), len(written.replace(".", "").lstrip("0"))
    if digits < 2 and not match.string[match.end():].lstrip().startswith("%"):
        return False
    return any(round(n, decimals) == float(written) for n in numbers)


def _redact_prose(text: str, levels: dict[str, str], numbers: set[float]) -> tuple[str, list[str]]:
    """``text`` with the hidden numbers and the hidden levels stated in it redacted, and what it stated."""
    stated = []
    if any(_states_number(m, numbers) for m in NUMBER.finditer(text)):
        stated.append("a confidential figure")
        text = NUMBER.sub(lambda m: REDACTED if _states_number(m, numbers) else m[0], text)

    def sentence(match: re.Match[str]) -> str:
        words = match[0]
        for rating, level in levels.items():
            name = rating.split()[0]
            level_pattern = r"(?<![\w-])" + re.escape(level) + r"(?![\w-])"
            if re.search(level_pattern, words) and any(w in words.lower() for w in RATING_WORDS[name]):
                stated.append(f"the hidden {name.replace('_', '-')} level")
                words = re.sub(level_pattern, REDACTED, words)
        return words

    return SENTENCE.sub(sentence, text), stated


def _prose(node: Any, path: str, rewrite: Callable[[str, str], str]) -> Any:
    """``node`` (a model, list or mapping of inputs) with each prose field passed through
    ``rewrite(path, text)``; unchanged parts are the same objects."""
    from pydantic import BaseModel

    if isinstance(node, BaseModel):
        update = {}
        for name in type(node).model_fields:
            value, where = getattr(node, name), f"{path}.{name}" if path else name
            new = rewrite(where, value) if name in PROSE and isinstance(value, str) else _prose(value, where, rewrite)
            if new is not value:
                update[name] = new
        return node.model_copy(update=update) if update else node
    if isinstance(node, list | tuple):
        items = [_prose(item, f"{path}[{index}]", rewrite) for index, item in enumerate(node)]
        return type(node)(items) if any(new is not old for new, old in zip(items, node)) else node
    if isinstance(node, dict):
        items = {key: _prose(item, f"{path}.{key}", rewrite) for key, item in node.items()}
        return items if any(items[key] is not node[key] for key in node) else node
    return node


def public_view(assessment: ModuleAssessment) -> tuple[ModuleAssessment, list[Statement]]:
    """The assessment the public renderings use: its prose with the hidden levels and figures
    it states redacted; and each field that stated one."""
    show = disclosure(assessment, public=True)
    levels, numbers = _hidden_levels(assessment, show), _hidden_numbers(assessment, show)
    statements: list[Statement] = []

    def rewrite(where: str, text: str) -> str:
        redacted, stated = _redact_prose(text, levels, numbers)
        statements.extend(Statement(where, what) for what in dict.fromkeys(stated))
        return redacted if stated else text

    inputs = _prose(assessment.inputs, "", rewrite)
    return (dataclasses.replace(assessment, inputs=inputs) if statements else assessment), statements


def public_views(assessments: dict[str, ModuleAssessment]) -> Iterator[tuple[str, ModuleAssessment, list[Statement]]]:
    """:func:`public_view` of each module."""
    for module, assessment in assessments.items():
        yield (module, *public_view(assessment))


__all__ = ["Disclosure", "RATINGS", "Statement", "disclosure", "fixed_ratings", "hidden_ratings", "leaves",
           "public_view", "public_views", "redact_numbers", "shown", "year_secrets"]
