"""What a module notebook shows, section by section.

A notebook cell is one call here: :func:`open_module` loads, validates and
scores a module, and each method of :class:`ModuleBook` returns one displayable
section (escaped HTML or a Chart). ``public=True`` redacts every confidential
number and marks the output as the non-confidential version.
"""

from __future__ import annotations

import json
from collections import Counter
from functools import cached_property
from pathlib import Path

import pandas as pd

from . import explore, plots
from .assess import ModuleAssessment, assess_module, assess_year
from .inputs import ART34_1, ART35_1, YearInputs, load_year
from .labels import canonical_label, version_label
from .methodology import Methodology
from .tables import Chart, Html, banner, bullet_list, esc, fmt, paragraph, render_parts, table
from . import paths
from .sources.sor import SorAggregate, aggregate
from .sources.sor import shares as sor_shares
from .values import REDACTED, Value

SHORT_NAMES = {
    "prohibited-controlled-products": "P&C",
    "intellectual-property": "IPR",
    "content-compliance": "CC",
    "data-protection": "DP",
    "consumer-protection": "CP",
}
ARROWS = {"up": "▲ higher", "down": "▼ lower", "same": "= unchanged", None: "–"}
COMMITMENT_STATUSES = ("delivered", "in progress", "delayed", "dropped")


REDACTED_VALUE = Value(0.0, confidential=True)


def _inherent_marks(assessments: dict[str, ModuleAssessment], public: bool) -> dict[str, tuple[str, str]]:
    """Each module's inherent cell, except where its position would reveal a confidential label."""
    return {SHORT_NAMES.get(m, m): (a.probability.level, a.severity.level) for m, a in assessments.items()
            if not (a.hidden("probability", public=public) or a.hidden("severity", public=public))}


def _residual_marks(assessments: dict[str, ModuleAssessment], public: bool) -> dict[str, tuple[str, str]]:
    """Each module's residual cell, except where its row would reveal a confidential effectiveness."""
    return {SHORT_NAMES.get(m, m): (a.effectiveness.level, a.inherent.level) for m, a in assessments.items()
            if not a.hidden("effectiveness", public=public)}


_MATRICES = {  # kind -> how to draw it, where each module sits, what its rows and columns are
    "inherent": (plots.inherent_heatmap, _inherent_marks, "probability", "severity"),
    "residual": (plots.residual_heatmap, _residual_marks, "effectiveness", "inherent"),
}


def _matrix_chart(kind: str, method: Methodology, assessments: dict[str, ModuleAssessment], *, public: bool,
                  title: str) -> Chart:
    """The ``kind`` risk matrix with the modules placed, its alternative text naming each place."""
    draw, place, rows, columns = _MATRICES[kind]
    marks = place(assessments, public)
    where = "; ".join(f"{name} at {row} {rows}, {column} {columns}" for name, (row, column) in marks.items())
    return Chart(draw(method, marks=marks, title=title),
                 alt=f"{title}: {where or 'no module placed'}. Risk matrix of {rows} by {columns}.")


def version_banner(public: bool) -> Html:
    """The version mark every report section carries."""
    return banner(f"<strong>{esc(version_label(public))}</strong>", kind="ok" if public else "warn")


class ModuleBook:
    """The sections of one module's notebook for one year."""

    def __init__(self, assessment: ModuleAssessment, *, public: bool) -> None:
        self.a = assessment
        self.public = public
        self.item = assessment.inputs
        self.method = assessment.methodology

    # -- 1. risk definition and registry -------------------------------------------------
    def title_block(self) -> Html:
        """The module's title, the version mark, the year and the methodology."""
        return Html(f"<h1>{esc(self.a.title)}</h1>{version_banner(self.public)}<p>Assessment year "
                    f"<strong>{self.a.year}</strong>, methodology <strong>{esc(self.method.name)}</strong>.</p>"
                    + (f"<p><em>{esc(self.item.note)}</em></p>" if self.item.note else ""))

    def definition(self) -> Html:
        return paragraph(self.item.definition, heading="Risk definition.")

    def registry(self) -> Html:
        rows = [{"Sub-category": s.name,
                 "Article 34(1) categories": "; ".join(f"({k}) {ART34_1[k]}" for k in s.art34)}
                for s in self.item.subcategories]
        return table(pd.DataFrame(rows), caption="Risk registry")

    # -- 2. probability ------------------------------------------------------------------
    def proxies(self) -> Html:
        rows = []
        for proxy in self.item.probability.proxies:
            rows.append({
                "Proxy": proxy.label + (" (basis)" if proxy.id == self.item.probability.basis else ""),
                "Incidents": fmt(proxy.incidents, public=self.public),
                "Volume": fmt(proxy.volume, public=self.public),
                "Rate": fmt(proxy.rate_value(), public=self.public, decimals=3, unit=proxy.unit),
                "Period": str(proxy.period),
                "Source": proxy.source,
            })
        return table(pd.DataFrame(rows), caption="Probability proxies")

    def probability(self) -> Html:
        scale = self.method.probability_scale(self.a.module)
        hidden = self.a.hidden("probability", public=self.public)
        rate = fmt(REDACTED_VALUE if hidden else self.a.rate, public=self.public, decimals=3, unit=scale.unit)
        position = "" if hidden else f"level {self.a.probability.score} of {len(scale.levels)}; "
        return paragraph(f"Basis rate {rate} gives probability level {self.a.label('probability', public=self.public)} "
                         f"({position}proxy: {scale.proxy or 'rate'}).", heading="Probability.")

    # -- 3. severity ---------------------------------------------------------------------
    def severity(self) -> Html:
        sev, result = self.item.severity, self.a.severity
        hidden = self.public and self.a.severity_confidential
        rows = [{"Characteristic": name.capitalize(),
                 "Score": "[Confidential]" if hidden else getattr(sev, name).score,
                 "Rationale": getattr(sev, name).rationale} for name in ("scope", "scale", "remediability")]
        working = ("" if hidden else
                   f" The {result.aggregate} of the three is {result.raw:g}, rounded half up to {result.computed_score}.")
        text = f"Overall severity: {self.a.label('severity', public=self.public)}.{working}"
        if result.overridden:
            text += f" Overridden by the analyst: {result.rationale}"
        return Html(table(pd.DataFrame(rows), caption="Severity (UN Guiding Principles)").markup
                    + paragraph(text).markup)

    # -- 4. inherent ---------------------------------------------------------------------
    def inherent_heatmap(self) -> Chart:
        return _matrix_chart("inherent", self.method, {self.a.module: self.a}, public=self.public,
                             title=f"Inherent risk: {self.a.title} is {self.a.inherent.level}")

    # -- 5. questionnaire ----------------------------------------------------------------
    def questionnaire(self) -> Html:
        labels = [m.label for m in self.method.maturity]
        hidden = self.a.hidden("effectiveness", public=self.public)
        rows = [{"Area": area, "Measure": m.id, "Question": m.question,
                 "Maturity": REDACTED if hidden else canonical_label(m.maturity, labels), "Weight": f"{m.weight:g}",
                 "Art. 35(1)": ", ".join(m.art35)} for area, m in self.item.measures]
        return table(pd.DataFrame(rows), caption="Mitigation questionnaire (DTSP maturity)")

    def questionnaire_chart(self) -> Chart:
        labels = [m.label for m in self.method.maturity]
        counts = Counter(canonical_label(m.maturity, labels) for _, m in self.item.measures)
        title = f"Mitigation effectiveness: {self.a.label('effectiveness', public=self.public)}"
        figure = plots.questionnaire_chart(self.method, maturity_counts=counts, area_pct=self.a.by_area,
                                           overall_pct=self.a.effectiveness.pct or 0.0,
                                           hide_values=self.a.hidden("effectiveness", public=self.public), title=title)
        return Chart(figure, alt=f"{title}. Answers per maturity level and score by measure area.")

    def effectiveness(self) -> Html:
        pct = fmt(self.a.effectiveness_pct, public=self.public, decimals=1, unit="%")
        return paragraph(f"{self.a.effectiveness.answers} answers give {pct}, rated "
                         f"{self.a.label('effectiveness', public=self.public)}.", heading="Mitigation effectiveness.")

    # -- 6. residual ---------------------------------------------------------------------
    def residual_heatmap(self) -> Chart:
        return _matrix_chart("residual", self.method, {self.a.module: self.a}, public=self.public,
                             title=f"Residual risk: {self.a.title} is {self.a.residual.level}")

    # -- 7. computed vs published --------------------------------------------------------
    def published_check(self) -> Html:
        rows = [{"Rating": c.rating,
                 "Computed": REDACTED if self.a.hidden(c.rating.split()[0], public=self.public) else c.computed,
                 "Published": c.published, "": "✔ matches" if c.matches else "✘ differs"} for c in self.a.comparisons]
        if not rows:
            return banner("The published report states no rating for this module and year.", kind="warn")
        if self.a.mismatches:
            names = ", ".join(c.rating for c in self.a.mismatches)
            head = banner(f"<strong>MISMATCH</strong>: the computed {esc(names)} differ from the published report.",
                          kind="error")
        else:
            head = banner("Every computed rating matches the published report.", kind="ok")
        return Html(head.markup + table(pd.DataFrame(rows), caption="Computed vs published").markup)

    # -- 8. previous year ----------------------------------------------------------------
    def previous_year(self) -> Html:
        previous = self.a.previous
        if previous is None:
            return paragraph("No previous year's data to compare with.", heading="Year over year.")
        rows = [{"Rating": rating, str(previous.year): getattr(previous, rating), str(self.a.year): getattr(self.a, rating).level,
                 "Change": ARROWS[self.a.change(rating)]} for rating in ("inherent", "residual")]
        reason = self.item.change_since_previous
        note = (paragraph(reason.explanation, heading=f"Reason ({reason.kind}):") if reason
                else paragraph("No reason for the change is recorded.", heading="Reason:"))
        return Html(table(pd.DataFrame(rows), caption=f"Compared with {previous.year} ({previous.methodology})").markup
                    + note.markup)

    # -- 9. Article 34(2) factors --------------------------------------------------------
    def factors(self) -> Html:
        rows = []
        for factor in self.item.factors:
            figures = [f"{f.label}: {fmt(f.value, public=self.public, unit=f.unit)} ({f.geography}"
                       + (f", {f.period}" if f.period else "") + ")" for f in factor.figures]
            rows.append({"Factor": factor.factor, "Assessment": factor.assessment,
                         "Figures": "; ".join(figures) or "–"})
        return table(pd.DataFrame(rows), caption="Article 34(2) factors")

    # -- 10. roadmap ---------------------------------------------------------------------
    def roadmap(self) -> Html:
        if not self.item.roadmap:
            return paragraph("No future mitigations recorded.", heading="Roadmap.")
        rows = [{"Art. 35(1)": f"({letter}) {ART35_1[letter]}", "Measure": item.measure, "Id": item.id}
                for item in self.item.roadmap for letter in item.art35]
        frame = pd.DataFrame(rows).sort_values(["Art. 35(1)", "Id"], kind="stable")
        return table(frame, caption="Roadmap by Article 35(1) measure category")

    # -- yearly cycle --------------------------------------------------------------------
    def commitments(self) -> Html:
        """What became of last year's roadmap, with counts per status."""
        items = self.item.commitments
        if not items:
            return paragraph("No commitments from a previous year.", heading="Commitments.")
        counts = Counter(c.status for c in items)
        summary = ", ".join(f"{counts[s]} {s}" for s in COMMITMENT_STATUSES if counts[s])
        rows = [{"Commitment": c.id, "Measure": c.measure, "Status": c.status, "Evidence": c.evidence,
                 "Implemented by": ", ".join(c.implemented_by) or "–"} for c in items]
        return Html(paragraph(f"{len(items)} commitment(s) from last year's roadmap: {summary}.",
                              heading="Commitments.").markup
                    + table(pd.DataFrame(rows), caption="Last year's roadmap, followed up").markup)

    def changes(self) -> Html:
        """Since last year: maturity moves, measures and proxies added, removed or changed."""
        if self.a.previous is None:
            return paragraph("No previous year to compare with.", heading="Since last year.")
        rows = [{"Change": c.kind, "Item": c.item,
                 "Before": fmt(c.before, public=self.public, decimals=3) if isinstance(c.before, Value) else c.before,
                 "After": fmt(c.after, public=self.public, decimals=3) if isinstance(c.after, Value) else c.after}
                for c in self.a.changes]
        if not rows:
            return paragraph("No questionnaire answer, measure or proxy changed.", heading="Since last year.")
        return table(pd.DataFrame(rows), caption=f"Since {self.a.previous.year}")

    # -- data quality --------------------------------------------------------------------
    def findings(self) -> Html:
        if not self.a.findings:
            return banner("No data quality findings.", kind="ok")
        items = "".join(f"<li><strong>{esc(f.kind)}</strong> ({esc(f.where)}): "
                        f"{render_parts(f.parts, public=self.public)}</li>" for f in self.a.findings)
        return banner(f"<strong>{len(self.a.findings)} data quality finding(s)</strong><ul>{items}</ul>", kind="warn")

    # -- results -------------------------------------------------------------------------
    def save_results(self, output_dir: str | Path | None) -> Html:
        """Write ``<output_dir>/<module>.json`` for the report; nothing when ``output_dir`` is None."""
        if output_dir is None:
            return paragraph("Results not written (no output_dir given).")
        path = Path(output_dir) / f"{self.a.module}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {"year": self.a.year, "module": self.a.module, "public": self.public,
                  **self.a.to_json(public=self.public)}
        path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return paragraph(f"Results written to {path.name}.")


class SummaryBook:
    """The sections of the year's summary: every module side by side."""

    def __init__(self, assessments: dict[str, ModuleAssessment], *, year: int, platform: str, public: bool) -> None:
        self.assessments = assessments
        self.year = year
        self.platform = platform
        self.public = public
        self.method = next(iter(assessments.values())).methodology

    def header(self) -> Html:
        return Html(f"{version_banner(self.public)}<p><strong>{esc(self.platform)}</strong>, assessment year "
                    f"<strong>{self.year}</strong>, methodology <strong>{esc(self.method.name)}</strong>.</p>")

    def executive_table(self) -> Html:
        rows = []
        for a in self.assessments.values():
            rows.append({
                "Module": a.title,
                "Probability": a.label("probability", public=self.public),
                "Severity": a.label("severity", public=self.public),
                "Inherent": a.inherent.level,
                "Effectiveness": (f"{a.label('effectiveness', public=self.public)}, "
                                  f"{fmt(a.effectiveness_pct, public=self.public, decimals=0, unit='%')}"),
                "Residual": a.residual.level,
                "Published": "✔ matches" if not a.mismatches else "✘ " + ", ".join(c.rating for c in a.mismatches),
                "Findings": len(a.findings),
            })
        return table(pd.DataFrame(rows), caption=f"Systemic risk ratings {self.year}")

    def inherent_heatmap(self) -> Chart:
        return _matrix_chart("inherent", self.method, self.assessments, public=self.public,
                             title=f"Inherent risk of every module, {self.year}")

    def residual_heatmap(self) -> Chart:
        return _matrix_chart("residual", self.method, self.assessments, public=self.public,
                             title=f"Residual risk of every module, {self.year}")

    def legend(self) -> Html:
        return bullet_list([f"{SHORT_NAMES.get(m, m)}: {a.title}" for m, a in self.assessments.items()])

    def year_over_year(self) -> Html:
        rows = []
        for a in self.assessments.values():
            if a.previous is None:
                continue
            reason = a.inputs.change_since_previous
            rows.append({
                "Module": a.title,
                f"Inherent {a.previous.year}": a.previous.inherent, f"Inherent {self.year}": a.inherent.level,
                f"Residual {a.previous.year}": a.previous.residual, f"Residual {self.year}": a.residual.level,
                "Residual change": ARROWS[a.change("residual")],
                "Reason": f"{reason.kind}: {reason.explanation}" if reason else "not recorded",
            })
        if not rows:
            return paragraph("No previous year's data to compare with.", heading="Year over year.")
        return table(pd.DataFrame(rows), caption="Year over year")

    def findings(self) -> Html:
        count = sum(len(a.findings) for a in self.assessments.values())
        mismatched = [a.title for a in self.assessments.values() if a.mismatches]
        parts = [f"{count} data quality finding(s) across modules; each module section lists its own."]
        if mismatched:
            return banner(esc(" ".join(parts)) + "<br><strong>MISMATCH</strong> with the published report in: "
                          + esc(", ".join(mismatched)), kind="error")
        return banner(esc(" ".join(parts)) + " Every computed rating matches the published report.",
                      kind="warn" if count else "ok")

    def commitments(self) -> Html:
        rows = []
        for a in self.assessments.values():
            counts = Counter(c.status for c in a.inputs.commitments)
            rows.append({"Module": a.title, **{s: counts[s] for s in COMMITMENT_STATUSES}})
        if not any(a.inputs.commitments for a in self.assessments.values()):
            return paragraph("No commitments from a previous year.", heading="Commitments.")
        return table(pd.DataFrame(rows), caption="Last year's commitments by status")

    def changes(self) -> Html:
        rows = []
        for a in self.assessments.values():
            if a.previous is None:
                continue
            counts = Counter(c.kind for c in a.changes)
            rows.append({"Module": a.title, "Maturity up": counts["maturity up"],
                         "Maturity down": counts["maturity down"],
                         "Measures added / removed": f"{counts['measure added']} / {counts['measure removed']}",
                         "Proxies added / removed / changed": (
                             f"{counts['proxy added']} / {counts['proxy removed']} / "
                             f"{sum(v for k, v in counts.items() if k.startswith('proxy changed'))}"),
                         "Inherent": f"{a.previous.inherent} → {a.inherent.level}",
                         "Residual": f"{a.previous.residual} → {a.residual.level}"})
        if not rows:
            return paragraph("No previous year to compare with.", heading="Since last year.")
        return table(pd.DataFrame(rows), caption="Since last year, per module")

    def methodology_notes(self) -> Html:
        return bullet_list(self.method.notes) if self.method.notes else paragraph("No notes.")


def open_summary(*, year: int, data_dir: str | None = None, methodology: str | None = None,
                 public: bool = False) -> SummaryBook:
    """Load, validate and score every module of ``year``; return the summary sections."""
    inputs = load_year(int(year), data_dir=data_dir, methodology=methodology)
    return SummaryBook(assess_year(inputs), year=inputs.year, platform=inputs.assessment.platform, public=public)


def open_module(*, year: int, module: str, data_dir: str | None = None, methodology: str | None = None,
                public: bool = False) -> ModuleBook:
    """Load, validate and score ``module`` for ``year``; return its notebook sections."""
    inputs = load_year(int(year), data_dir=data_dir, methodology=methodology)
    return ModuleBook(assess_module(inputs, module), public=public)


class ExploreBook:
    """The sections of the exploration notebook: band distances, sensitivity, and what
    changed between years by the method and by the inputs."""

    def __init__(self, inputs: YearInputs, *, module: str) -> None:
        self.inputs = inputs
        self.assessments = assess_year(inputs)
        self.module = module if module in self.assessments else next(iter(self.assessments))
        self._sensitivities: dict[str, list[explore.Sensitivity]] = {}

    @property
    def focus(self) -> ModuleAssessment:
        return self.assessments[self.module]

    @cached_property
    def _distances(self) -> dict[str, list[explore.BandDistance]]:
        return {a.title: explore.band_distances(a) for a in self.assessments.values()}

    def _sensitivity(self) -> list[explore.Sensitivity]:
        """The focused module's sensitivity, computed once for its table and its chart."""
        if self.module not in self._sensitivities:
            self._sensitivities[self.module] = explore.sensitivity(self.focus)
        return self._sensitivities[self.module]

    def distances(self) -> Html:
        return table(explore.band_distance_table(self._distances),
                     caption="Where each rating moves a band (the other inputs held)")

    def distance_chart(self) -> Chart:
        return Chart(explore.band_distance_chart(self._distances),
                     alt="Relative change of rate, severity and effectiveness that moves each module's residual a band.")

    def sensitivity(self) -> Html:
        return table(explore.sensitivity_table(self._sensitivity()), caption=f"Sensitivity: {self.focus.title}")

    def tornado(self) -> Chart:
        return Chart(explore.tornado_chart(self._sensitivity(), title=self.focus.title),
                     alt=f"Inputs that flip the residual rating of {self.focus.title}.")

    def methodology_comparison(self) -> Html:
        previous = self.inputs.previous_year
        if previous is None:
            return paragraph("No previous year, so no previous methodology to compare with.")
        other = load_year(previous, data_dir=self.inputs.data_dir, modules=[]).methodology_path
        frame = explore.compare_methods(self.inputs.year, self.inputs.methodology_path, other,
                                        data_dir=self.inputs.data_dir)
        return table(frame[frame["changed by the method"]] if frame["changed by the method"].any() else frame,
                     caption=f"{self.inputs.year} inputs under both methodologies (rows the method alone changes)")

    def year_comparison(self) -> Html:
        previous = self.inputs.previous_year
        if previous is None:
            return paragraph("No previous year to compare with.")
        changes = explore.compare_years(previous, self.inputs.year, data_dir=self.inputs.data_dir)
        return table(explore.year_change_table(changes),
                     caption=f"{previous} to {self.inputs.year}: total change split into method and inputs (bands)")

    def measure_changes(self) -> Html:
        previous = self.inputs.previous_year
        if previous is None:
            return paragraph("No previous year to compare with.")
        earlier = load_year(previous, data_dir=self.inputs.data_dir)
        return table(explore.measure_changes(earlier, self.inputs), caption="Maturity moves per measure area")

    def whatif(self, *, interactive: bool | None = None) -> object:
        """Sliders in JupyterLab; a note when executed unattended, where widgets can stall
        the execution (nbclient waits on their messages). ``None``: sliders only when a
        Jupyter front end runs the kernel."""
        if not (explore.front_end_attached() if interactive is None else interactive):
            return paragraph("Run this notebook in JupyterLab for what-if sliders.")
        return explore.whatif_widget(self.focus)


def open_explore(*, year: int, module: str, data_dir: str | None = None, methodology: str | None = None) -> ExploreBook:
    """Load and score every module of ``year`` for exploration, focused on ``module``."""
    return ExploreBook(load_year(int(year), data_dir=data_dir, methodology=methodology), module=module)


class SorBook:
    """The sections of the Transparency Database notebook: provenance, one platform's
    profile per module, and platforms side by side."""

    def __init__(self, result: SorAggregate, *, platform: str) -> None:
        self.result = result
        self.table = result.table
        self.platform = platform

    def provenance(self) -> Html:
        p = self.result.provenance
        files = pd.DataFrame([{"file": f["name"], "layout": f["layout"], "schema": f["schema_version"],
                               "dump": f["dump"], "parts": f["parts"], "sha256": f["sha256"][:16] + "…"}
                              for f in p["files"]])
        rejected = pd.DataFrame([{"reason": reason, "rows": entry["rows"], "examples": "; ".join(entry["examples"])}
                                 for reason, entry in p["rejected_by_reason"].items()]
                                or [{"reason": "none", "rows": 0, "examples": ""}])
        counts = (f"{p['engine']}: {p['rows_read']:,} rows read, {p['rows_rejected']:,} rejected, "
                  f"{p['rows_filtered_out']:,} left out by the filters ({p['filters']}), "
                  f"{p['rows_aggregated']:,} aggregated.")
        return Html(paragraph(counts, heading="Provenance.").markup + table(files, caption="Files").markup
                    + table(rejected, caption="Rejected rows, never dropped silently").markup)

    def profile(self) -> Html:
        by_module = sor_shares(self.table[self.table["platform"] == self.platform], "module")
        frame = by_module.round(1).reset_index()
        frame["statements"] = by_module["statements"].map("{:,}".format).to_numpy()
        return table(frame.rename(columns=lambda c: c if c in ("module", "statements") else f"{c} %"),
                     caption=f"{self.platform}: profile per risk module")

    def trend(self) -> Chart:
        return Chart(plots.sor_trend_chart(self.table, platform=self.platform),
                     alt=f"{self.platform}: statements per month and module, proactive and automated shares.")

    def platforms(self, module: str) -> Chart:
        return Chart(plots.sor_platform_chart(self.table, module=module),
                     alt=f"Platforms side by side for {module}.")


def open_sor(*, path: str | None = None, platform: str, engine: str = "duckdb") -> SorBook:
    """Aggregate a statements-of-reasons dump (the sample dump by default) for the notebook."""
    return SorBook(aggregate(path or paths.data_dir() / "sor" / "sample", engine=engine), platform=platform)


__all__ = ["ExploreBook", "ModuleBook", "SorBook", "SummaryBook", "open_explore", "open_module", "open_sor",
           "open_summary", "version_banner"]
