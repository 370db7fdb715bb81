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
from .confidentiality import public_view, public_views
from .inputs import ART34_1, ART35_1, Proxy, YearInputs, is_judged, load_year
from .labels import canonical_label, version_label
from .methodology import Methodology
from .tables import Chart, Html, banner, bullet_list, esc, fmt, paragraph, render_parts, table
from . import paths
from .sources.sor import SorAggregate, aggregate
from .sources.sor_dumps import discover
from .sources.sor_schema import SorError
from .sources.sor import shares as sor_shares
from .values import REDACTED, Value

ARROWS = {"up": "▲ higher", "down": "▼ lower", "same": "= unchanged", None: "–"}
COMMITMENT_STATUSES = ("delivered", "in progress", "delayed", "dropped")


def _inherent_marks(assessments: dict[str, ModuleAssessment], public: bool) -> dict[str, tuple[str, str]]:
    """Each module's inherent cell, except where its position would reveal a hidden level."""
    return {a.short or m: (a.probability.level, a.severity.level) for m, a in assessments.items()
            if a.disclosure(public=public).marks("inherent")}


def _residual_marks(assessments: dict[str, ModuleAssessment], public: bool) -> dict[str, tuple[str, str]]:
    """Each module's residual cell, except where its position would reveal a hidden level."""
    return {a.short or m: (a.effectiveness.level, a.inherent.level) for m, a in assessments.items()
            if a.effectiveness is not None and a.disclosure(public=public).marks("residual")}


def _post_control_marks(assessments: dict[str, ModuleAssessment], public: bool) -> dict[str, tuple[str, str]]:
    """Each module's post-control cell, except where it would reveal hidden post-control levels."""
    return {a.short or m: (a.residual.probability.level, a.residual.severity.level) for m, a in assessments.items()
            if a.residual.probability and a.residual.severity and a.disclosure(public=public).marks("post_control")}


_MATRICES = {  # kind -> how to draw it, where each module sits, what its rows and columns are
    "inherent": (plots.inherent_heatmap, _inherent_marks, "probability", "severity"),
    "residual": (plots.residual_heatmap, _residual_marks, "effectiveness", "inherent"),
    "post_control": (plots.post_control_heatmap, _post_control_marks, "post-control probability",
                     "post-control severity"),
}


def _matrix_chart(kind: str, method: Methodology, assessments: dict[str, ModuleAssessment], *, public: bool,
                  title: str) -> Chart:
    """The ``kind`` risk matrix with the modules placed, its alternative text naming each place."""
    if kind == "residual" and method.post_control:
        kind = "post_control"
    draw, place, rows, columns = _MATRICES[kind]
    marks = place(assessments, public)
    where = "; ".join(f"{name} at {row} {rows}, {column} {columns}" for name, (row, column) in marks.items())
    return Chart(draw(method, marks=marks, title=title),
                 alt=f"{title}: {where or 'no module placed'}. Risk matrix of {rows} by {columns}.")


def version_banner(public: bool) -> Html:
    """The version mark every report section carries."""
    return banner(f"<strong>{esc(version_label(public))}</strong>", kind="ok" if public else "warn")


def _section(heading: str, *parts: Html | None) -> Html | None:
    """A section under its own heading, or None (nothing shown, no empty heading) when
    the module's inputs have nothing for it."""
    shown = [part.markup for part in parts if part is not None]
    return Html(f"<h2>{esc(heading)}</h2>" + "".join(shown)) if shown else None


class ModuleBook:
    """The sections of one module's notebook for one year. A section the module's inputs
    leave out (registry, questionnaire, factors, roadmap, published ratings) returns None."""

    def __init__(self, assessment: ModuleAssessment, *, public: bool) -> None:
        self.a = public_view(assessment)[0] if public else assessment
        self.public = public
        self.item = self.a.inputs
        self.method = assessment.methodology
        self.show = assessment.disclosure(public=public)

    def _label(self, rating: str) -> str:
        return self.show.label(rating, getattr(self.a, rating).level)

    def _judgement(self, rating: str) -> str:
        """`` (judged: <rationale>)`` after a judged rating; the rationale of a confidential
        rating is hidden with its level, as it would give the level away."""
        judged = self.a.judged(rating)
        if judged is None:
            return ""
        shown = self.show.shows_rating(rating.split(".")[0])
        return f" (judged by the analyst: {judged.rationale if shown else REDACTED})"

    # -- 1. risk definition and registry -------------------------------------------------
    def title_block(self) -> Html:
        """The module's title, the version mark, the year and the methodology."""
        return Html(f"<h1>{esc(self.a.title)}</h1>{version_banner(self.public)}<p>Assessment year "
                    f"<strong>{self.a.year}</strong>, methodology <strong>{esc(self.method.name)}</strong>.</p>"
                    + (f"<p><em>{esc(self.item.note)}</em></p>" if self.item.note else "")
                    + "".join(paragraph(f"{note}.", heading="Not shown in this version:").markup
                              for note in self.show.notes))

    def definition(self) -> Html | None:
        return paragraph(self.item.definition, heading="Risk definition.") if self.item.definition else None

    def registry(self) -> Html | None:
        if not self.item.subcategories:
            return None
        rows = [{"Sub-category": s.name,
                 "Article 34(1) categories": "; ".join(f"({k}) {ART34_1[k]}" for k in s.art34)}
                for s in self.item.subcategories]
        return table(pd.DataFrame(rows), caption="Risk registry")

    def registry_section(self) -> Html | None:
        return _section("Risk definition and registry", self.definition(), self.registry())

    # -- 2. probability ------------------------------------------------------------------
    def _proxy_rows(self) -> list[dict[str, str]]:
        """The probability proxies' rows; none when the probability is judged."""
        probability = self.item.probability
        return self._rows_of_proxies(probability.proxies, getattr(probability, "basis", None))

    def _rows_of_proxies(self, proxies: list[Proxy], basis: str | None, *,
                         feeds: str | None = None) -> list[dict[str, str]]:
        """Each proxy's figures as the version may show them; ``feeds`` names the rating they
        fix when not the pre-control probability (``post_control``)."""
        def figure(proxy: Proxy, name: str) -> Value | None:
            if feeds is None:
                return self.show.proxy_figure(proxy, name)
            return self.show.value(proxy.rate_value() if name == "rate" else getattr(proxy, name), feeds=feeds)

        return [{"Proxy": proxy.label + (" (basis)" if proxy.id == basis else ""),
                 "Incidents": fmt(figure(proxy, "incidents"), public=self.public),
                 "Volume": fmt(figure(proxy, "volume"), public=self.public),
                 "Rate": fmt(figure(proxy, "rate"), public=self.public, decimals=3, unit=proxy.unit),
                 "Period": str(proxy.period),
                 "Source": proxy.source} for proxy in proxies]

    def proxies(self) -> Html | None:
        """The probability proxies; None when the probability is judged."""
        rows = self._proxy_rows()
        return table(pd.DataFrame(rows), caption="Probability proxies") if rows else None

    def probability(self) -> Html:
        scale = self.method.probability_scale(self.a.module)
        label = self._label("probability")
        position = (f"level {self.a.probability.score} of {len(scale.levels)}"
                    if self.show.shows_rating("probability") else "")
        if self.a.rate is None:
            return paragraph(f"Probability level {label}{f', {position}' if position else ''}"
                             f"{self._judgement('probability')}.", heading="Probability.")
        rate = self.show.number(self.a.rate, feeds="probability", decimals=3, unit=scale.unit)
        return paragraph(f"Basis rate {rate} gives probability level {label} "
                         f"({position}{'; ' if position else ''}proxy: {scale.proxy or 'rate'}).", heading="Probability.")

    # -- 3. severity ---------------------------------------------------------------------
    def severity(self) -> Html:
        result = self.a.severity
        text = f"Overall severity: {self._label('severity')}{self._judgement('severity')}."
        if self.a.judged("severity"):
            return paragraph(text)
        if self.show.shows_severity_scores:
            text += f" The {result.aggregate} of the three is {result.raw:g}, rounded half up to {result.computed_score}."
        if result.overridden:
            text += f" Overridden by the analyst: {result.rationale}"
        return Html(table(pd.DataFrame(self._severity_rows()), caption="Severity (UN Guiding Principles)").markup
                    + paragraph(text).markup)

    def _severity_rows(self) -> list[dict[str, str | int]]:
        sev, hidden = self.item.severity, not self.show.shows_severity_scores
        if is_judged(sev):
            return []
        return [{"Characteristic": name.capitalize(),
                 "Score": REDACTED if hidden else getattr(sev, name).score,
                 "Rationale": getattr(sev, name).rationale} for name in ("scope", "scale", "remediability")]

    # -- 4. inherent ---------------------------------------------------------------------
    def inherent_heatmap(self) -> Chart:
        return _matrix_chart("inherent", self.method, {self.a.module: self.a}, public=self.public,
                             title=f"Inherent risk: {self.a.title} is {self._label('inherent')}")

    # -- 5. questionnaire ----------------------------------------------------------------
    def _questionnaire_rows(self) -> list[dict[str, str | None]]:
        labels = [m.label for m in self.method.maturity]
        hidden = not self.show.shows_rating("effectiveness")
        return [{"Area": area, "Measure": m.id, "Question": m.question,
                 "Maturity": REDACTED if hidden else canonical_label(m.maturity, labels), "Weight": f"{m.weight:g}",
                 "Art. 35(1)": ", ".join(m.art35)} for area, m in self.item.measures]

    def questionnaire(self) -> Html | None:
        if not self.item.questionnaire:
            return None
        return table(pd.DataFrame(self._questionnaire_rows()), caption="Mitigation questionnaire (DTSP maturity)")

    def questionnaire_chart(self) -> Chart | None:
        if not self.item.questionnaire:
            return None
        labels = [m.label for m in self.method.maturity]
        counts = Counter(canonical_label(m.maturity, labels) for _, m in self.item.measures)
        title = f"Mitigation effectiveness: {self._label('effectiveness')}"
        figure = plots.questionnaire_chart(self.method, maturity_counts=counts, area_pct=self.a.by_area,
                                           overall_pct=self.a.effectiveness.pct or 0.0,
                                           hide_values=not self.show.shows_rating("effectiveness"), title=title)
        return Chart(figure, alt=f"{title}. Answers per maturity level and score by measure area.")

    def effectiveness(self) -> Html | None:
        """The effectiveness rating: from the questionnaire's %, or judged; None when not rated."""
        if self.a.effectiveness is None:
            return None
        label = self._label("effectiveness")
        beside = " It is shown beside the residual risk and does not change it." if self.method.post_control else ""
        if self.a.effectiveness_pct is None:
            return paragraph(f"Rated {label}{self._judgement('effectiveness')}.{beside}",
                             heading="Mitigation effectiveness.")
        pct = self.show.number(self.a.effectiveness_pct, feeds="effectiveness", decimals=1, unit="%")
        return paragraph(f"{self.a.effectiveness.answers} answers give {pct}, rated {label}.{beside}",
                         heading="Mitigation effectiveness.")

    def mitigation_section(self) -> Html | None:
        """The heading, questionnaire and rating of the mitigation measures (the chart follows)."""
        return _section("Mitigation measures", self.questionnaire(), self.effectiveness())

    # -- 6. residual ---------------------------------------------------------------------
    def post_control(self) -> Html | None:
        """The post-control probability and severity a ``post_control`` residual is read from."""
        given = self.item.post_control
        if given is None or self.a.residual.probability is None or self.a.residual.severity is None:
            return None
        hidden = not self.show.shows_rating("post_control")
        probability = REDACTED if hidden else self.a.residual.probability.level
        severity = REDACTED if hidden else self.a.residual.severity.level
        rate = ""
        if not is_judged(given.probability):
            unit = self.method.probability_scale(self.a.module).unit
            rate_value = given.probability.basis_proxy.rate_value()
            rate = f" (basis rate {self.show.number(rate_value, feeds='post_control', decimals=3, unit=unit)})"
        working = "" if hidden or self.a.residual.value is None else f", product of scores {self.a.residual.value:g}"
        text = (f"After the controls: probability {probability}{rate}{self._judgement('post_control.probability')}, "
                f"severity {severity}{self._judgement('post_control.severity')}{working}; "
                f"residual risk {self._label('residual')}.")
        rows = self._rows_of_proxies(given.probability.proxies, getattr(given.probability, "basis", None),
                                     feeds="post_control")
        proxies = table(pd.DataFrame(rows), caption="Post-control probability proxies").markup if rows else ""
        return Html(paragraph(text, heading="Post-control assessment.").markup + proxies)

    def residual_heatmap(self) -> Chart:
        return _matrix_chart("residual", self.method, {self.a.module: self.a}, public=self.public,
                             title=f"Residual risk: {self.a.title} is {self._label('residual')}")

    # -- 7. computed vs published --------------------------------------------------------
    def published_check(self) -> Html | None:
        """Computed vs published, under its heading; None when nothing was published."""
        if not self.a.comparisons:
            return None
        comparisons = self.show.comparisons(self.a.comparisons)
        rows = [{"Rating": c.rating, "Computed": c.computed, "Published": c.published,
                 "": "✔ matches" if c.matches else "✘ differs"} for c in comparisons]
        if not rows:
            return _section("Computed vs published",
                            banner("The published ratings of this module are not shown in this version.", kind="warn"))
        mismatches = self.show.comparisons(self.a.mismatches)
        if mismatches:
            names = ", ".join(c.rating for c in mismatches)
            head = banner(f"<strong>MISMATCH</strong>: the computed {esc(names)} differ from the published report.",
                          kind="error")
        else:
            head = banner("Every computed rating matches the published report.", kind="ok")
        return _section("Computed vs published", head, table(pd.DataFrame(rows), caption="Computed vs published"))

    # -- 8. previous year ----------------------------------------------------------------
    def previous_year(self) -> Html:
        previous = self.a.previous
        if previous is None:
            return paragraph("No previous year's data to compare with.", heading="Year over year.")
        rows = [{"Rating": rating, str(previous.year): self.a.previous_label(rating, public=self.public) or REDACTED,
                 str(self.a.year): self._label(rating),
                 "Change": ARROWS[self.a.shown_change(rating, public=self.public)]} for rating in ("inherent", "residual")]
        reason = self.item.change_since_previous
        note = (paragraph(reason.explanation, heading=f"Reason ({reason.kind}):") if reason
                else paragraph("No reason for the change is recorded.", heading="Reason:"))
        return Html(table(pd.DataFrame(rows), caption=f"Compared with {previous.year} ({previous.methodology})").markup
                    + note.markup)

    # -- 9. Article 34(2) factors --------------------------------------------------------
    def factors(self) -> Html | None:
        rows = []
        for factor in self.item.factors:
            figures = [f"{f.label}: {self.show.number(f.value, unit=f.unit)} ({f.geography}"
                       + (f", {f.period}" if f.period else "") + ")" for f in factor.figures]
            rows.append({"Factor": factor.factor, "Assessment": factor.assessment,
                         "Figures": "; ".join(figures) or "–"})
        return _section("Article 34(2) factors", table(pd.DataFrame(rows), caption="Article 34(2) factors")) if rows else None

    # -- 10. roadmap ---------------------------------------------------------------------
    def roadmap(self) -> Html | None:
        if not self.item.roadmap:
            return None
        frame = pd.DataFrame(self._roadmap_rows()).sort_values(["Art. 35(1)", "Id"], kind="stable")
        return _section("Roadmap (Article 35(1))", table(frame, caption="Roadmap by Article 35(1) measure category"))

    def _roadmap_rows(self) -> list[dict[str, str]]:
        return [{"Art. 35(1)": f"({letter}) {ART35_1[letter]}", "Measure": item.measure, "Id": item.id}
                for item in self.item.roadmap for letter in item.art35]

    # -- yearly cycle --------------------------------------------------------------------
    def commitments(self) -> Html:
        """What became of last year's roadmap, with counts per status."""
        items = self.item.commitments
        if not items:
            return paragraph("No commitments from a previous year.", heading="Commitments.")
        counts = Counter(c.status for c in items)
        summary = ", ".join(f"{counts[s]} {s}" for s in COMMITMENT_STATUSES if counts[s])
        return Html(paragraph(f"{len(items)} commitment(s) from last year's roadmap: {summary}.",
                              heading="Commitments.").markup
                    + table(pd.DataFrame(self._commitment_rows()), caption="Last year's roadmap, followed up").markup)

    def _commitment_rows(self) -> list[dict[str, str]]:
        return [{"Commitment": c.id, "Measure": c.measure, "Status": c.status, "Evidence": c.evidence,
                 "Implemented by": ", ".join(c.implemented_by) or "–"} for c in self.item.commitments]

    def changes(self) -> Html:
        """Since last year: maturity moves, measures and proxies added, removed or changed."""
        if self.a.previous is None:
            return paragraph("No previous year to compare with.", heading="Since last year.")
        rows = [{"Change": c.kind, "Item": c.item,
                 "Before": self.show.number(c.before, decimals=3) if isinstance(c.before, Value) else c.before,
                 "After": self.show.number(c.after, decimals=3) if isinstance(c.after, Value) else c.after}
                for c in self.show.changes(self.a.changes)]
        if not rows:
            return paragraph("No questionnaire answer, measure or proxy changed.", heading="Since last year.")
        return table(pd.DataFrame(rows), caption=f"Since {self.a.previous.year}")

    # -- data quality --------------------------------------------------------------------
    def findings(self) -> Html:
        findings = self.show.findings(self.a.findings)
        if not findings:
            return banner("No data quality findings.", kind="ok")
        items = "".join(f"<li><strong>{esc(f.kind)}</strong> ({esc(f.where)}): "
                        f"{render_parts(self.show.finding_parts(f), public=self.public)}</li>" for f in findings)
        return banner(f"<strong>{len(findings)} data quality finding(s)</strong><ul>{items}</ul>", kind="warn")

    # -- results -------------------------------------------------------------------------
    def register(self) -> dict[str, object]:
        """The module's tables as the report shows them (redacted alike), and its place in each
        matrix where the report marks it: what the XLSX and CSV exports are built from."""
        kinds = ("inherent", "post_control" if self.method.post_control else "residual")
        positions = {kind: _MATRICES[kind][1]({self.a.module: self.a}, self.public).get(self.a.short) for kind in kinds}
        return {"short_name": self.a.short, "positions": positions,
                "proxies": self._proxy_rows(), "severity": self._severity_rows(),
                "questionnaire": self._questionnaire_rows(), "roadmap": self._roadmap_rows(),
                "commitments": self._commitment_rows()}

    def save_results(self, output_dir: str | Path | None) -> Html:
        """Write ``<output_dir>/<module>.json`` for the report; nothing when ``output_dir`` is None."""
        if output_dir is None:
            return paragraph("Results not written (no output_dir given).")
        path = Path(output_dir) / f"{self.a.module}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {"year": self.a.year, "module": self.a.module, "public": self.public,
                  **self.a.to_json(public=self.public), "register": self.register()}
        path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return paragraph(f"Results written to {path.name}.")


class SummaryBook:
    """The sections of the year's summary: every module side by side."""

    def __init__(self, assessments: dict[str, ModuleAssessment], *, year: int, platform: str, public: bool) -> None:
        self.assessments = {module: view for module, view, _ in public_views(assessments)} if public else assessments
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
            show = a.disclosure(public=self.public)
            mismatches = show.comparisons(a.mismatches)

            def judged(rating: str, text: str) -> str:
                return f"{text} (judged)" if a.judged(rating) else text

            effectiveness = "not rated" if a.effectiveness is None else judged(
                "effectiveness", show.label("effectiveness", a.effectiveness.level)
                + (f", {show.number(a.effectiveness_pct, feeds='effectiveness', decimals=0, unit='%')}"
                   if a.effectiveness_pct else ""))
            rows.append({
                "#": a.order,
                "Module": a.title,
                "Short": a.short,
                "Probability": judged("probability", show.label("probability", a.probability.level)),
                "Severity": judged("severity", show.label("severity", a.severity.level)),
                "Inherent": show.label("inherent", a.inherent.level),
                "Effectiveness": effectiveness,
                "Residual": show.label("residual", a.residual.level),
                "Published": ("–" if not show.comparisons(a.comparisons) else "✔ matches" if not mismatches
                              else "✘ " + ", ".join(c.rating for c in mismatches)),
                "Findings": len(show.findings(a.findings)),
            })
        return table(pd.DataFrame(rows), caption=f"Systemic risk ratings {self.year}")

    def inherent_heatmap(self) -> Chart:
        return _matrix_chart("inherent", self.method, self.assessments, public=self.public,
                             title=f"Inherent risk of every module, {self.year}")

    def residual_heatmap(self) -> Chart:
        return _matrix_chart("residual", self.method, self.assessments, public=self.public,
                             title=f"Residual risk of every module, {self.year}")

    def legend(self) -> Html:
        items = "".join(f"<li><strong>{esc(a.short)}</strong>: {esc(a.title)}</li>" for a in self.assessments.values())
        return Html(f"<ul style='columns: 3 16em'>{items}</ul>")  # in columns: a taxonomy may hold 60 modules

    def year_over_year(self) -> Html:
        rows = []
        for a in self.assessments.values():
            if a.previous is None:
                continue
            reason = a.inputs.change_since_previous
            show = a.disclosure(public=self.public)
            rows.append({
                "Module": a.title,
                f"Inherent {a.previous.year}": a.previous_label("inherent", public=self.public) or REDACTED,
                f"Inherent {self.year}": show.label("inherent", a.inherent.level),
                f"Residual {a.previous.year}": a.previous_label("residual", public=self.public) or REDACTED,
                f"Residual {self.year}": show.label("residual", a.residual.level),
                "Residual change": ARROWS[a.shown_change("residual", public=self.public)],
                "Reason": f"{reason.kind}: {reason.explanation}" if reason else "not recorded",
            })
        if not rows:
            return paragraph("No previous year's data to compare with.", heading="Year over year.")
        return table(pd.DataFrame(rows), caption="Year over year")

    def findings(self) -> Html:
        shows = {m: a.disclosure(public=self.public) for m, a in self.assessments.items()}
        count = sum(len(shows[m].findings(a.findings)) for m, a in self.assessments.items())
        mismatched = [a.title for m, a in self.assessments.items() if shows[m].comparisons(a.mismatches)]
        parts = [f"{count} data quality finding(s) across modules; each module section lists its own."]
        if mismatched:
            return banner(esc(" ".join(parts)) + "<br><strong>MISMATCH</strong> with the published report in: "
                          + esc(", ".join(mismatched)), kind="error")
        published = any(a.comparisons for a in self.assessments.values())
        return banner(esc(" ".join(parts)) + (" Every computed rating matches the published report." if published
                                              else " No published rating to compare with."),
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
            show = a.disclosure(public=self.public)
            counts = Counter(c.kind for c in show.changes(a.changes))
            maturity = show.shows_rating("effectiveness")
            rows.append({"Module": a.title, "Maturity up": counts["maturity up"] if maturity else REDACTED,
                         "Maturity down": counts["maturity down"] if maturity else REDACTED,
                         "Measures added / removed": f"{counts['measure added']} / {counts['measure removed']}",
                         "Proxies added / removed / changed": (
                             f"{counts['proxy added']} / {counts['proxy removed']} / "
                             f"{sum(v for k, v in counts.items() if k.startswith('proxy changed'))}"),
                         **{rating.capitalize(): (f"{a.previous_label(rating, public=self.public) or REDACTED} → "
                                                  f"{show.label(rating, getattr(a, rating).level)}")
                            for rating in ("inherent", "residual")}})
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


def open_module(*, year: int, module: str | None = None, data_dir: str | None = None,
                methodology: str | None = None, public: bool = False) -> ModuleBook:
    """Load, validate and score ``module`` (the taxonomy's first by default) for ``year``;
    return its notebook sections."""
    inputs = load_year(int(year), data_dir=data_dir, methodology=methodology)
    return ModuleBook(assess_module(inputs, module or inputs.taxonomy.ids[0]), public=public)


class ExploreBook:
    """The sections of the exploration notebook: band distances, sensitivity, and what
    changed between years by the method and by the inputs."""

    def __init__(self, inputs: YearInputs, *, module: str) -> None:
        self.inputs = inputs
        self.assessments = assess_year(inputs)
        # by default the module most at risk after mitigation (the first such, in taxonomy order)
        self.module = module if module in self.assessments else max(
            self.assessments, key=lambda m: self.assessments[m].methodology.residual.labels.index(
                self.assessments[m].residual.level))
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


def open_explore(*, year: int, module: str | None = None, data_dir: str | None = None, methodology: str | None = None) -> ExploreBook:
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
                  f"{p['rows_duplicate']:,} duplicates (a uuid already read in the same dump file), "
                  f"{p['rows_aggregated']:,} aggregated. Kept after repair: "
                  + ("; ".join(f"{r}: {e['rows']:,}" for r, e in p["repaired_by_reason"].items()) or "none") + ".")
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

    def platforms(self, module: str | None = None) -> Chart:
        """Platforms side by side for ``module`` (by default the one with most statements)."""
        module = module or str(self.table.groupby("module")["statements"].sum().idxmax())
        return Chart(plots.sor_platform_chart(self.table, module=module),
                     alt=f"Platforms side by side for {module}.")


def open_sor(*, path: str | None = None, platform: str, engine: str = "duckdb") -> SorBook:
    """Aggregate a statements-of-reasons dump for the notebook: ``path``, or by default every
    dump under the workspace's ``data/sor`` (in the tool's own checkout, its sample dump)."""
    if path is None:
        path = paths.data_dir() / "sor"
        try:
            discover(path)
        except SorError:
            raise SorError("no statements-of-reasons dump here: fetch some with `dsarisk sor download --start "
                           "YYYY-MM-DD --end YYYY-MM-DD --to data/sor/dumps`, or give sor_path", file=path) from None
    return SorBook(aggregate(path, engine=engine), platform=platform)


__all__ = ["ExploreBook", "ModuleBook", "SorBook", "SummaryBook", "open_explore", "open_module", "open_sor",
           "open_summary", "version_banner"]
