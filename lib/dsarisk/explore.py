"""Exploration for analysts: how far each rating sits from a band boundary, which inputs
flip it, and how much of a change between years is the method's and how much the platform's.

Everything here re-scores a module through :mod:`dsarisk.scoring`; nothing is computed
another way, so what an analyst explores is what the report would say.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from . import scoring
from .assess import ModuleAssessment, answers_of, assess_module
from .exceptions import InputError
from .inputs import YearInputs, load_year
from .labels import canonical_label
from .methodology import Methodology, load_methodology
from .plots import literal, plain_text

RATE_FACTORS = (0.5, 0.75, 1.25, 1.5, 2.0)
EFFECTIVENESS_STEPS = (-20, -10, 10, 20)
RATINGS = ("inherent", "residual")


@dataclass(frozen=True)
class Scenario:
    """The inputs of one what-if: a module's own values with some replaced. A judged
    probability or effectiveness is a level (``rate`` or ``effectiveness_pct`` None); a
    post-control methodology also takes the post-control rate or level and severity."""

    rate: float | None
    severity: int
    effectiveness_pct: float | None
    probability: str | None = None
    effectiveness: str | None = None
    post_rate: float | None = None
    post_probability: str | None = None
    post_severity: int | None = None

    def score(self, method: Methodology, module: str) -> scoring.CaseResult:
        pct = None if self.effectiveness_pct is None else min(max(self.effectiveness_pct, 0.0), 100.0)
        return scoring.score_case(
            method, rate=_capped_rate(self.rate, method, module),
            probability_label=self.probability if self.rate is None else None,
            severity_score=self.severity, effectiveness_pct=pct,
            effectiveness_label=self.effectiveness if pct is None else None,
            post_rate=_capped_rate(self.post_rate, method, module),
            post_probability_label=self.post_probability if self.post_rate is None else None,
            post_severity_score=self.post_severity, module=module)


def _capped_rate(rate: float | None, method: Methodology, module: str) -> float | None:
    """A what-if rate in percent stays within 100 % (twice a 60 % rate is not 120 %)."""
    if rate is None or method.probability_scale(module).unit != "%":
        return rate
    return min(rate, 100.0)


def scenario_of(a: ModuleAssessment) -> Scenario:
    """The module's own inputs as a scenario."""
    post_p, post_s = a.residual.probability, a.residual.severity
    return Scenario(rate=a.rate.value if a.rate else None, severity=a.severity.score,
                    effectiveness_pct=a.effectiveness.pct if a.effectiveness else None,
                    probability=a.probability.level, effectiveness=a.effectiveness.level if a.effectiveness else None,
                    post_rate=post_p.rate if post_p else None, post_probability=post_p.level if post_p else None,
                    post_severity=post_s.score if post_s else None)


def _position(method: Methodology, rating: str, level: str) -> int:
    labels = method.inherent.labels if rating == "inherent" else method.residual.labels
    return labels.index(level)


# -- distance to the next band -------------------------------------------------------------
@dataclass(frozen=True)
class BandDistance:
    """Where one driver must go for one rating to move a band: ``worse_at`` raises the rating,
    ``better_at`` lowers it (None: no value of this driver moves it that way)."""

    module: str
    rating: str
    driver: str
    current: float
    worse_at: float | None
    better_at: float | None
    unit: str

    @property
    def worse_text(self) -> str:
        return _threshold_text(self.driver, self.worse_at, worse=True, unit=self.unit)

    @property
    def better_text(self) -> str:
        return _threshold_text(self.driver, self.better_at, worse=False, unit=self.unit)


def _threshold_text(driver: str, value: float | None, *, worse: bool, unit: str) -> str:
    if value is None:
        return "never"
    if unit == "score":
        return f"score {'>=' if worse else '<='} {value:g}"
    rising = worse if driver.endswith("rate") else not worse  # more effectiveness lowers the residual
    return f"{'>=' if rising else '<'} {value:g} {unit}"


def _band_edges(mins: list[float], current: float, move: Callable[[float], int], *,
                rising_raises: bool) -> tuple[float | None, float | None]:
    """For a driver banded at ``mins``: the nearest band minimum above ``current`` that moves
    the rating (``move``: its steps at a value) the way a rising driver does, and the top of
    the nearest band at or below ``current`` whose values move it the other way."""
    sign = 1 if rising_raises else -1
    above = next((m for m in mins if m > current and sign * move(m) > 0), None)
    below = next((upper for lower, upper in reversed(list(zip([0.0, *mins], mins)))
                  if upper <= current and sign * move(lower) < 0), None)
    return above, below


def _drivers(base: Scenario, rating: str, post_control: bool) -> list[tuple[str, str, str]]:
    """(driver name, scenario field, kind) of what moves ``rating``: kind ``rate`` is banded
    by the probability scale, ``score`` steps through the severity scale, ``pct`` is banded
    by the effectiveness scale. Judged levels have no continuous driver."""
    pre = [("rate", "rate", "rate")] if base.rate is not None else []
    pre.append(("severity", "severity", "score"))
    if rating == "inherent":
        return pre
    if post_control:
        post = [("post-control rate", "post_rate", "rate")] if base.post_rate is not None else []
        return [*post, ("post-control severity", "post_severity", "score")]
    return [*pre, *([("effectiveness", "effectiveness_pct", "pct")] if base.effectiveness_pct is not None else [])]


def band_distances(a: ModuleAssessment) -> list[BandDistance]:
    """For the inherent and residual ratings, the rate, severity and effectiveness (for a
    post-control residual: the post-control rate and severity) at which each moves one band
    up (worse) or down (better), the other inputs held."""
    method, base = a.methodology, scenario_of(a)
    scale = method.probability_scale(a.module)
    severities = range(1, len(method.severity.labels) + 1)
    current = base.score(method, a.module)
    rows = []
    for rating in RATINGS:
        now = _position(method, rating, getattr(current, rating).level)

        def move(field: str, value: float) -> int:
            result = replace(base, **{field: value}).score(method, a.module)
            return _position(method, rating, getattr(result, rating).level) - now

        for driver, field, kind in _drivers(base, rating, method.post_control):
            value = getattr(base, field)
            if kind == "score":
                worse = next((s for s in severities if s > value and move(field, s) > 0), None)
                better = next((s for s in reversed(severities) if s < value and move(field, s) < 0), None)
                rows.append(BandDistance(a.module, rating, driver, value, worse, better, "score"))
            elif kind == "rate":
                worse, better = _band_edges([band.min for band in scale.levels], value,
                                            lambda rate, f=field: move(f, rate), rising_raises=True)
                rows.append(BandDistance(a.module, rating, driver, value, worse, better, scale.unit))
            else:
                better, worse = _band_edges([band.min for band in method.effectiveness.levels], value,
                                            lambda pct, f=field: move(f, pct), rising_raises=False)
                rows.append(BandDistance(a.module, rating, driver, value, worse, better, "%"))
    return rows


def band_distance_table(distances: Mapping[str, list[BandDistance]]) -> pd.DataFrame:
    """The band distances of every module (by title) as one table."""
    return pd.DataFrame([{"module": title, "rating": d.rating, "driver": d.driver, "current": round(d.current, 4),
                          "rating rises at": d.worse_text, "rating falls at": d.better_text}
                         for title, rows in distances.items() for d in rows])


@plain_text
def band_distance_chart(distances: Mapping[str, list[BandDistance]]) -> Figure:
    """How close each module (by title) sits to the boundaries of its residual rating: for each
    driver, the relative change (in % of its current value) that moves the residual a band."""
    figure = Figure(figsize=(10, 0.6 * len(distances) + 1.8), layout="constrained")
    ax = figure.add_subplot()
    colors = {"rate": "#5c6bc0", "severity": "#8d6e63", "effectiveness": "#26a69a",
              "post-control rate": "#3949ab", "post-control severity": "#6d4c41"}
    for i, rows in enumerate(distances.values()):
        for j, d in enumerate(x for x in rows if x.rating == "residual"):
            offsets = (j - 1) * 0.25
            for target, sign in ((d.worse_at, 1), (d.better_at, -1)):
                if target is None or d.current == 0:
                    continue
                change = 100 * (target - d.current) / d.current
                ax.barh(i + offsets, change, height=0.22, color=colors[d.driver], alpha=1 if sign > 0 else 0.55,
                        label=d.driver if i == 0 and sign > 0 else None)
    ax.axvline(0, color="black", linewidth=1)
    ax.set_yticks(range(len(distances)), [literal(name) for name in distances])
    ax.set_xlabel("change from the current value that moves the residual rating a band (%)")
    ax.set_title("Distance to the next residual band (solid: worse, light: better)", loc="left", fontsize=11)
    if ax.get_legend_handles_labels()[0]:  # judged levels give no relative change to draw
        ax.legend(loc="lower right", fontsize=8)
    return figure


# -- sensitivity ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Sensitivity:
    """One input varied once, and what the two ratings become."""

    module: str
    input: str
    change: str
    inherent: str
    residual: str
    inherent_step: int
    residual_step: int

    @property
    def flips(self) -> bool:
        return bool(self.inherent_step or self.residual_step)


def _vary_answers(a: ModuleAssessment) -> list[tuple[str, str, float]]:
    """(measure id, change, effectiveness %) for each answer one maturity level up and down."""
    method = a.methodology
    levels = [m.label for m in method.maturity]
    measures = [m for _, m in a.inputs.measures]
    answers = answers_of(measures)
    varied = []
    for index, (measure, answer) in enumerate(zip(measures, answers, strict=True)):
        position = levels.index(canonical_label(answer.maturity, levels) or answer.maturity)
        for step in (-1, 1):
            if 0 <= position + step < len(levels):
                changed = list(answers)
                changed[index] = replace(answer, maturity=levels[position + step])
                pct = scoring.effectiveness(method, answers=changed).pct or 0.0
                varied.append((measure.id, f"{'+' if step > 0 else '-'}1 level", pct))
    return varied


def _vary_judged(a: ModuleAssessment, base: Scenario) -> list[tuple[str, str, Scenario]]:
    """Each judged level (probability, effectiveness, post-control probability) one level
    up and down: a judgement has no rate to scale."""
    method = a.methodology
    varied = []
    for name, field, labels, judged in (
            ("probability level", "probability", method.probability.labels, a.rate is None),
            ("effectiveness level", "effectiveness", method.effectiveness.labels,
             a.effectiveness is not None and base.effectiveness_pct is None),
            ("post-control probability level", "post_probability", method.probability.labels,
             base.post_probability is not None and base.post_rate is None)):
        if not judged:
            continue
        position = labels.index(getattr(base, field))
        varied += [(name, f"{step:+d} level", replace(base, **{field: labels[position + step]}))
                   for step in (-1, 1) if 0 <= position + step < len(labels)]
    return varied


def sensitivity(a: ModuleAssessment) -> list[Sensitivity]:
    """Vary each input of a module (rate x0.5..x2, severity and each characteristic +-1,
    effectiveness +-20 points, each maturity answer +-1 level) and re-score."""
    method, base = a.methodology, scenario_of(a)
    now = base.score(method, a.module)
    marks = {rating: _position(method, rating, getattr(now, rating).level) for rating in RATINGS}
    top = len(method.severity.labels)
    cases: list[tuple[str, str, Scenario]] = []
    for name, field in (("rate", "rate"), ("post-control rate", "post_rate")):
        if getattr(base, field) is not None:
            cases += [(name, f"x{f:g}", replace(base, **{field: getattr(base, field) * f})) for f in RATE_FACTORS]
    for name, field in (("severity", "severity"), ("post-control severity", "post_severity")):
        if getattr(base, field) is not None:
            cases += [(name, f"{s:+d}", replace(base, **{field: getattr(base, field) + s})) for s in (-1, 1)
                      if 1 <= getattr(base, field) + s <= top]
    cases += _vary_judged(a, base)
    for name, mark in a.severity.characteristics.items():
        for step in (-1, 1):
            if 1 <= mark + step <= top:
                marks_changed = {**a.severity.characteristics, name: mark + step}
                score = scoring.severity(method, **marks_changed).score
                if a.severity.overridden:
                    score = a.severity.score  # an analyst's override holds whatever the characteristics
                cases.append((name, f"{step:+d}", replace(base, severity=score)))
    if base.effectiveness_pct is not None:
        cases += [("effectiveness", f"{p:+d} points", replace(base, effectiveness_pct=base.effectiveness_pct + p))
                  for p in EFFECTIVENESS_STEPS]
    cases += [(f"answer {measure}", change, replace(base, effectiveness_pct=pct)) for measure, change, pct in _vary_answers(a)]
    results = []
    for name, change, scenario in cases:
        result = scenario.score(method, a.module)
        results.append(Sensitivity(
            a.module, name, change, result.inherent.level, result.residual.level,
            _position(method, "inherent", result.inherent.level) - marks["inherent"],
            _position(method, "residual", result.residual.level) - marks["residual"]))
    return results


def sensitivity_table(results: list[Sensitivity]) -> pd.DataFrame:
    return pd.DataFrame([{"input": s.input, "change": s.change, "inherent": s.inherent, "residual": s.residual,
                          "flips": "yes" if s.flips else ""} for s in results])


@plain_text
def tornado_chart(results: list[Sensitivity], *, title: str, limit: int = 12) -> Figure:
    """For each input, the lowest and highest residual band step its variations reach."""
    spans: dict[str, list[int]] = {}
    for s in results:
        spans.setdefault(s.input, []).append(s.residual_step)
    ranked = sorted(spans.items(), key=lambda item: (max(item[1]) - min(item[1]), item[0]), reverse=True)[:limit]
    figure = Figure(figsize=(9, 0.35 * len(ranked) + 1.6), layout="constrained")
    ax = figure.add_subplot()
    for i, (_, steps) in enumerate(reversed(ranked)):
        low, high = min(min(steps), 0), max(max(steps), 0)
        ax.barh(i, high, color="#c62828", height=0.6)
        ax.barh(i, low, color="#2e7d32", height=0.6)
    ax.set_yticks(range(len(ranked)), [literal(name) for name, _ in reversed(ranked)])
    ax.axvline(0, color="black", linewidth=1)
    ax.set_xlim(-2.5, 2.5)
    ax.set_xlabel("residual rating change (bands; red worse, green better)")
    ax.set_title(literal(f"Which inputs flip the residual rating: {title}"), loc="left", fontsize=11)
    return figure


# -- methodology and year comparison --------------------------------------------------------
def _step(labels: list[str], before: str, after: str) -> int | None:
    first, second = canonical_label(before, labels), canonical_label(after, labels)
    return None if first is None or second is None else labels.index(second) - labels.index(first)


NOT_COMPARABLE = "not comparable"


def _assess_each(inputs: YearInputs) -> dict[str, ModuleAssessment | None]:
    """Each module's assessment, or None where its inputs do not fit the methodology
    (a proxy measured in other units than the methodology's scale)."""
    results: dict[str, ModuleAssessment | None] = {}
    for module_id in inputs.modules:
        try:
            results[module_id] = assess_module(inputs, module_id, with_previous=False)
        except InputError:
            results[module_id] = None
    return results


def _level(result: ModuleAssessment | None, rating: str) -> str:
    return NOT_COMPARABLE if result is None else getattr(result, rating).level


def _load_or_none(year: int, data_dir: str | Path | None, methodology: str | Path | None) -> YearInputs | None:
    """A year's inputs under another methodology, or None where they lack what it reads
    (post-control ratings for a post-control residual)."""
    try:
        return load_year(year, data_dir=data_dir, methodology=methodology)
    except InputError:
        return None


def compare_methods(year: int, method_a: str | Path, method_b: str | Path, *,
                    data_dir: str | Path | None = None) -> pd.DataFrame:
    """Score one year's inputs under two methodologies: what changes by the method alone."""
    inputs_a = load_year(year, data_dir=data_dir, methodology=method_a)
    inputs_b = _load_or_none(year, data_dir, method_b)
    under_a = _assess_each(inputs_a)
    under_b = _assess_each(inputs_b) if inputs_b else dict.fromkeys(inputs_a.modules)
    names = (inputs_a.methodology.name, inputs_b.methodology.name if inputs_b else load_methodology(method_b).name)
    if names[0] == names[1]:
        names = (f"A: {names[0]}", f"B: {names[1]}")
    rows = []
    for module_id, item in inputs_a.modules.items():
        for rating in ("probability", "inherent", "effectiveness", "residual"):
            first, second = _level(under_a[module_id], rating), _level(under_b[module_id], rating)
            rows.append({"module": inputs_a.taxonomy[module_id].title, "rating": rating, names[0]: first, names[1]: second,
                         "changed by the method": first != second})
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class YearChange:
    """A rating's change between two years, split into the method's part and the inputs'."""

    module: str
    title: str
    rating: str
    before: str
    after: str
    total: int | None
    method_part: int | None
    inputs_part: int | None


def compare_years(year_a: int, year_b: int, *, data_dir: str | Path | None = None,
                  methodology_a: str | Path | None = None, methodology_b: str | Path | None = None) -> list[YearChange]:
    """Compare two years per module. ``method_part`` is the change of year A's inputs scored
    under B's methodology instead of A's; ``inputs_part`` the rest (B's inputs vs A's, both
    under B's methodology). Steps count levels on B's scale; None where a label has no match
    or year A's inputs cannot be scored under B's methodology (the proxy itself changed).
    When the residual method itself changed (to or from ``post_control``), year A's inputs
    hold nothing B's residual could read: the whole residual change is the method's."""
    first = load_year(year_a, data_dir=data_dir, methodology=methodology_a)
    second = load_year(year_b, data_dir=data_dir, methodology=methodology_b)
    crossed = _load_or_none(year_a, data_dir, second.methodology_path)
    results_a, results_b = _assess_each(first), _assess_each(second)
    results_x = _assess_each(crossed) if crossed else dict.fromkeys(first.modules)
    new_residual = first.methodology.residual.method != second.methodology.residual.method
    changes = []
    for module_id in [m for m in second.modules if m in first.modules]:
        for rating in RATINGS:
            labels = (second.methodology.inherent if rating == "inherent" else second.methodology.residual).labels
            before = _level(results_a[module_id], rating)
            middle = _level(results_x[module_id], rating)
            after = _level(results_b[module_id], rating)
            total = _step(labels, before, after)
            if rating == "residual" and new_residual:
                method_part, inputs_part = total, (0 if total is not None else None)
            else:
                method_part, inputs_part = _step(labels, before, middle), _step(labels, middle, after)
            changes.append(YearChange(module_id, second.taxonomy[module_id].title, rating, before, after,
                                      total, method_part, inputs_part))
    return changes


def measure_changes(before: YearInputs, after: YearInputs) -> pd.DataFrame:
    """Per module and measure area: answers whose maturity moved up or down, measures added
    or removed (matched by measure id)."""
    levels = [m.label for m in after.methodology.maturity]
    rows = []
    for module_id, item in after.modules.items():
        old = {m.id: (area, m) for area, m in before.modules[module_id].measures} if module_id in before.modules else {}
        new = {m.id: (area, m) for area, m in item.measures}
        for area in dict.fromkeys(area for area, _ in [*new.values(), *old.values()]):
            counts = {"up": 0, "down": 0, "same": 0, "added": 0, "removed": 0}
            for measure_id in dict.fromkeys([*new, *old]):
                in_area = [pair for pair in (new.get(measure_id), old.get(measure_id)) if pair and pair[0] == area]
                if not in_area:
                    continue
                if measure_id not in old:
                    counts["added"] += 1
                elif measure_id not in new:
                    counts["removed"] += 1
                else:
                    step = _step(levels, old[measure_id][1].maturity, new[measure_id][1].maturity) or 0
                    counts["up" if step > 0 else "down" if step < 0 else "same"] += 1
            rows.append({"module": after.taxonomy[module_id].title, "area": area, **counts})
    return pd.DataFrame(rows)


def year_change_table(changes: list[YearChange]) -> pd.DataFrame:
    def signed(step: int | None) -> str:
        return "n/a" if step is None else f"{step:+d}" if step else "0"

    return pd.DataFrame([{"module": c.title, "rating": c.rating, "before": c.before, "after": c.after,
                          "total": signed(c.total), "method": signed(c.method_part),
                          "inputs": signed(c.inputs_part)} for c in changes])


# -- interactive what-if ---------------------------------------------------------------------
def front_end_attached() -> bool:
    """Whether a Jupyter server (JupyterLab, Notebook, Voila) runs this kernel: it names the
    kernel's session in ``JPY_SESSION_NAME``. Unattended runs (papermill, nbconvert, nbclient)
    do not, and there widgets can stall the run for good (jupyter/nbclient#312)."""
    return bool(os.environ.get("JPY_SESSION_NAME"))


def whatif_widget(a: ModuleAssessment):  # pragma: no cover - needs a live kernel front end
    """Sliders for rate, severity and effectiveness that redraw both heatmaps (JupyterLab).

    The executed HTML cannot run widgets; the notebook draws the same figures statically too.
    """
    import ipywidgets as widgets
    from IPython.display import display

    from . import plots

    method, base = a.methodology, scenario_of(a)
    if base.rate is None or base.effectiveness_pct is None or method.post_control:
        return widgets.HTML("The sliders move a rate and an effectiveness percentage: this module's ratings are "
                            "judged levels or post-control ratings; see the sensitivity table instead.")
    scale = method.probability_scale(a.module)
    top_rate = max(scale.levels[-1].min * 2, base.rate * 2)
    rate = widgets.FloatSlider(value=base.rate, min=0, max=top_rate, step=top_rate / 200,
                               description=f"rate ({scale.unit})", readout_format=".3f")
    severity = widgets.IntSlider(value=base.severity, min=1, max=len(method.severity.labels), description="severity")
    effectiveness = widgets.FloatSlider(value=base.effectiveness_pct, min=0, max=100, step=0.5,
                                        description="effectiveness %")
    output = widgets.Output()

    def redraw(_change: object = None) -> None:
        result = Scenario(rate.value, severity.value, effectiveness.value).score(method, a.module)
        with output:
            output.clear_output(wait=True)
            display(plots.inherent_heatmap(method, marks={"what-if": (result.probability.level, result.severity.level)},
                                           title=f"Inherent: {result.inherent.level}"),
                    plots.residual_heatmap(method, marks={"what-if": (result.effectiveness.level, result.inherent.level)},
                                           title=f"Residual: {result.residual.level}"))

    for slider in (rate, severity, effectiveness):
        slider.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([rate, severity, effectiveness]), output])
