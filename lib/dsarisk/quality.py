"""Data quality checks run on every module: findings to show, never to hide.

- a figure reused across modules under a different meaning;
- a stated percentage that disagrees with the counts it is a share of;
- a proxy or figure whose period lies outside the assessment period.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from .inputs import ModuleInput, Period, YearInputs
from .labels import label_key
from .values import Value

REUSE_MIN_VALUE = 1000  # small counts (1, 3, 55) repeat by chance; large ones do not


@dataclass(frozen=True)
class Finding:
    """A data quality finding; ``parts`` mixes text and values so a public rendering can
    hide confidential numbers."""

    kind: str
    module: str
    where: str
    parts: tuple[str | Value, ...]
    compares: tuple[Value, ...] = ()  # the figures the finding sets side by side (see confidentiality)


def _figures(item: ModuleInput) -> list[tuple[str, str, Value, Period | None]]:
    """(where, label, value, period) of every count a module states."""
    found = []
    for proxy in item.probability.proxies:
        for name in ("incidents", "volume"):
            value = getattr(proxy, name)
            if value is not None:
                found.append((f"probability.proxies.{proxy.id}.{name}", f"{proxy.label} ({name})", value, proxy.period))
    for factor in item.factors:
        for figure in factor.figures:
            found.append((f"factors.{factor.factor}", figure.label, figure.value, figure.period))
    return found


def reused_figures(inputs: YearInputs) -> list[Finding]:
    """Figures that appear in more than one module under different labels (the same label
    in two modules is one figure quoted twice, not a figure given another meaning)."""
    seen: dict[float, list[tuple[str, str, str, Value]]] = defaultdict(list)
    for module_id, item in inputs.modules.items():
        for where, label, value, _ in _figures(item):
            if value.value >= REUSE_MIN_VALUE:
                seen[value.value].append((module_id, where, label, value))
    findings = []
    for places in seen.values():
        for module, where, label, value in places:
            others = [(other, other_label, other_value) for other, _, other_label, other_value in places
                      if other != module and label_key(other_label) != label_key(label)]
            if not others:
                continue
            compared = (value, *(other_value for *_, other_value in others))
            shared = Value(value.value, any(v.confidential for v in compared))
            named = "; ".join(f"'{other_label}' in {other}" for other, other_label, _ in others)
            findings.append(Finding(
                "figure reused across modules", module, where,
                (f"'{label}' has the same value (", shared, f") as {named}: check that both mean what they say"),
                compared,
            ))
    return findings


def _half_unit(stated: float) -> Decimal:
    exponent = Decimal(str(stated)).normalize().as_tuple().exponent
    return Decimal(5) * Decimal(10) ** (min(int(exponent), 0) - 1)


def agrees_at_precision(exact: float, stated: float) -> bool:
    """Whether ``exact`` lies within half a unit of ``stated``'s last decimal, the precision it
    was written with: 78.4 agrees with 78, 73.26 with 73.3, 78.6 not with 78."""
    return abs(Decimal(str(exact)) - Decimal(str(stated))) <= _half_unit(stated)


def stated_percentages(item: ModuleInput) -> list[Finding]:
    """Stated percentages that do not round to the share their counts give."""
    findings = []
    for factor in item.factors:
        for figure in factor.figures:
            if figure.stated_pct is None or figure.denominator is None or figure.denominator.value == 0:
                continue
            share = figure.value * 100 / figure.denominator
            if not agrees_at_precision(share.value, figure.stated_pct):
                findings.append(Finding(
                    "stated percentage disagrees with counts", item.module, f"factors.{factor.factor}",
                    (f"'{figure.label}' is stated as {figure.stated_pct:g} % but ", figure.value, " of ",
                     figure.denominator, " is ", share, " %"),
                    (figure.value, figure.denominator, Value(figure.stated_pct)),
                ))
    return findings


def periods_outside(item: ModuleInput, period: Period) -> list[Finding]:
    """Proxies and figures measured (partly) outside the assessment period."""
    # one finding per proxy, not one per count of it: a proxy's counts share its period
    measured = [(f"probability.proxies.{p.id}", p.label, p.period) for p in item.probability.proxies]
    measured += [(f"factors.{factor.factor}", figure.label, figure.period)
                 for factor in item.factors for figure in factor.figures]
    return [Finding("period outside the assessment period", item.module, where,
                    (f"'{label}' covers {own}, outside the assessment period {period}",))
            for where, label, own in measured if own is not None and not own.within(period)]


def module_findings(inputs: YearInputs, module_id: str) -> list[Finding]:
    """Every finding concerning one module."""
    item = inputs.module(module_id)
    return (
        [f for f in reused_figures(inputs) if f.module == module_id]
        + stated_percentages(item)
        + periods_outside(item, inputs.assessment.period)
    )
