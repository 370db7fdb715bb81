"""What a public rendering shows, at the library level (no notebook run): every section of
every module and of the summary, their JSON and the summary JSON, searched for confidential
numbers, labels of hidden ratings and what they let a reader infer; input text rendered
neither as markdown nor as mathtext; published figures compared at their precision."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from matplotlib.figure import Figure
from matplotlib.text import Text

from dsarisk import workbook
from dsarisk.assess import Comparison, ModuleAssessment, assess_year
from dsarisk.export import Report
from dsarisk.inputs import load_year
from dsarisk.paths import DATA_DIR
from dsarisk.pipeline import _summary, redacted_prose
from dsarisk.quality import reused_figures
from dsarisk.tables import Chart
from dsarisk.values import Value
from dsarisk.workbook import ModuleBook, SummaryBook

from .leaksearch import hidden_labels, inferred, label_hits, number_hits, secret_numbers, written_numbers

YEAR = 2024
MODULE_SECTIONS = ("title_block", "definition", "registry", "proxies", "probability", "severity", "inherent_heatmap",
                   "questionnaire", "questionnaire_chart", "effectiveness", "residual_heatmap", "published_check",
                   "previous_year", "factors", "roadmap", "commitments", "changes", "findings")
SUMMARY_SECTIONS = ("header", "executive_table", "findings", "legend", "inherent_heatmap", "residual_heatmap",
                    "year_over_year", "commitments", "changes", "methodology_notes")


def copy_sample(root: Path) -> Path:
    for name in ("2023", "2024", "methodology", "sor"):
        shutil.copytree(DATA_DIR / name, root / name)
    return root


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return copy_sample(tmp_path / "data")


def edit(data: Path, module: str, change) -> None:
    path = data / str(YEAR) / f"{module}.yaml"
    content = yaml.safe_load(path.read_text())
    change(content)
    path.write_text(yaml.safe_dump(content, sort_keys=False, allow_unicode=True))


def rendered(output: object) -> tuple[str, str]:
    """What a section puts in the report: its HTML, or a chart's alternative text and every
    text drawn on it; and the part of it that speaks of this module's ratings (a chart's
    axes and band lines name every level of a scale, whatever the module's)."""
    if not isinstance(output, Chart):
        return str(output), str(output)
    figure = output.figure
    titles = [figure._suptitle.get_text() if figure._suptitle else ""]
    titles += [ax.get_title(loc) for ax in figure.axes for loc in ("left", "center", "right")]
    texts = [t.get_text() for t in figure.findobj(Text)]
    return "\n".join([output.alt, *texts]), "\n".join([output.alt, *titles])


def _sections(book: object, names: tuple[str, ...]) -> dict[str, tuple[str, str]]:
    return {name: rendered(getattr(book, name)()) for name in names}


@pytest.fixture
def quick_heatmaps(monkeypatch):
    """Heatmaps that write what the real ones draw from the data (title, marked cells) without
    drawing the grid: a year's twelve heatmaps take seconds, the grid is the methodology's."""
    def heatmap(method, *, marks, title):
        figure = Figure()
        figure.suptitle(title)
        for name, (row, column) in marks.items():
            figure.text(0, 0, f"{name} at {row}, {column}")
        return figure
    for kind, (_, *placing) in list(workbook._MATRICES.items()):
        monkeypatch.setitem(workbook._MATRICES, kind, (heatmap, *placing))


def public_outputs(data: Path, results: Path) -> tuple[dict[str, ModuleAssessment],
                                                      dict[str, dict[str, tuple[str, str]]], dict]:
    """Every public section of the year, by module ("summary" for the summary), and the
    summary JSON as the pipeline writes it."""
    inputs = load_year(YEAR, data_dir=data)
    assessments = assess_year(inputs)
    outputs = {}
    for module_id, assessment in assessments.items():
        book = ModuleBook(assessment, public=True)
        outputs[module_id] = _sections(book, MODULE_SECTIONS)
        book.save_results(results)
    summary = SummaryBook(assessments, year=YEAR, platform=inputs.assessment.platform, public=True)
    outputs["summary"] = _sections(summary, SUMMARY_SECTIONS)
    return assessments, outputs, _summary(inputs, results, True)


def leaks_and_inferences(data: Path, results: Path) -> list[str]:
    """Everything the public outputs give away: confidential numbers anywhere, labels of a
    hidden rating in its module's sections, hidden ratings fixed by the levels shown, maturity
    moves of a hidden effectiveness."""
    assessments, outputs, summary = public_outputs(data, results)
    written = {n for a in assessments.values() for n in written_numbers(a)}
    secrets = {n for a in assessments.values() for n in secret_numbers(a)} - written
    problems = [hit for owner, sections in outputs.items() for name, (text, _) in sections.items()
                for hit in number_hits(text, secrets, where=f"{owner}.{name}")]
    problems += number_hits(json.dumps(summary), secrets, where="summary.json")
    for module_id, assessment in assessments.items():
        labels = hidden_labels(assessment)
        problems += [hit for name, (_, text) in outputs[module_id].items()
                     for hit in label_hits(text, labels, where=f"{module_id}.{name}")]
        record = summary["modules"][module_id]
        for rating in assessment.inputs.confidential_ratings:
            levels = inferred(assessment.methodology, record)[rating]
            if len(levels) < 2:
                problems.append(f"{module_id}: the shown levels fix the hidden {rating} at {levels}")
        if "effectiveness" in assessment.inputs.confidential_ratings:
            problems += [f"summary.json: {c}" for c in summary["changes"]
                         if c["module"] == module_id and c["kind"].startswith("maturity")]
    return problems


# -- the cases, one by one -------------------------------------------------------------
def test_hidden_effectiveness_shows_no_maturity_move(data, tmp_path, quick_heatmaps):
    """dp-03 Defined -> Managed, applied to last year's answers with the shown weights, gave
    back the hidden effectiveness percentage."""
    edit(data, "data-protection", lambda m: m.update(confidential_ratings=["effectiveness"]))
    assessments, outputs, summary = public_outputs(data, tmp_path / "results")
    moves = [c for c in assessments["data-protection"].changes if c.kind.startswith("maturity")]
    assert moves  # the sample has maturity moves to hide
    for change in moves:
        assert change.item not in outputs["data-protection"]["changes"][0]
        assert f"{change.before} → {change.after}" not in outputs["data-protection"]["changes"][0]
    assert not [c for c in summary["changes"] if c["module"] == "data-protection" and c["kind"].startswith("maturity")]
    assert "[Confidential]" in outputs["summary"]["changes"][0]  # the counts of moves, too
    assert leaks_and_inferences(data, tmp_path / "again") == []


def test_hidden_probability_hides_the_rate_and_the_counts_that_give_it(data, tmp_path, quick_heatmaps):
    """With public counts the basis rate (0.140 %) fixed the hidden band."""
    def hide(module):
        module["confidential_ratings"] = ["probability"]
        basis = next(p for p in module["probability"]["proxies"] if p["id"] == module["probability"]["basis"])
        basis.update(incidents=700, volume=500000)
        basis.pop("rate", None)
    edit(data, "intellectual-property", hide)
    assessments, outputs, _ = public_outputs(data, tmp_path / "results")
    proxies = outputs["intellectual-property"]["proxies"][0]
    assert "0.140" not in proxies and "500,000" not in proxies and "700" not in proxies
    assert "Likely" not in outputs["intellectual-property"]["probability"][0]
    assert leaks_and_inferences(data, tmp_path / "again") == []


def test_no_finding_compares_a_hidden_figure_with_a_public_one(data, tmp_path, quick_heatmaps):
    """'has the same value as' a public figure printed elsewhere gave the hidden one away."""
    figure = {"label": "Seller accounts audited", "value": {"value": 7654321, "confidential": True}, "unit": "accounts"}
    edit(data, "data-protection", lambda m: m["factors"][0]["figures"].append(figure))
    twin = {"label": "Listings screened by hand", "value": 7654321, "unit": "listings"}
    edit(data, "consumer-protection", lambda m: m["factors"][0]["figures"].append(twin))
    inputs = load_year(YEAR, data_dir=data)
    assert [f for f in reused_figures(inputs) if 7654321 in _numbers(f)]  # found internally
    assessments, outputs, _ = public_outputs(data, tmp_path / "results")
    for module_id in ("data-protection", "consumer-protection"):
        for name in ("findings", "factors"):
            assert "7,654,321" not in outputs[module_id][name][0]
    # a finding may still say that two figures are equal, when neither is printed
    assert "[Confidential]" in outputs["consumer-protection"]["factors"][0]
    assert leaks_and_inferences(data, tmp_path / "again") == []
    internal = ModuleBook(assessments["data-protection"], public=False).findings()
    assert "7,654,321" in str(internal)


def test_finding_that_compares_a_hidden_figure_with_a_public_one_is_not_shown(data, tmp_path, quick_heatmaps):
    """A stated percentage that disagrees with hidden counts states them to its precision."""
    figure = {"label": "Accounts erased", "value": {"value": 4417923, "confidential": True}, "stated_pct": 9.5,
              "denominator": {"value": 98000000, "confidential": True}}
    edit(data, "data-protection", lambda m: m["factors"][0]["figures"].append(figure))
    assessment = assess_year(load_year(YEAR, data_dir=data))["data-protection"]
    assert any("Accounts erased" in str(part) for f in assessment.findings for part in f.parts)
    assert "Accounts erased" in str(ModuleBook(assessment, public=False).findings())
    assert "Accounts erased" not in str(ModuleBook(assessment, public=True).findings())


def _numbers(finding) -> list[float]:
    return [part.value for part in finding.parts if isinstance(part, Value)]


def test_reuse_check_compares_labels(data):
    """A figure quoted under the same label in two modules is one figure; under another
    label it may mean something else."""
    same = {"label": "Registered EU accounts", "value": 43210987, "unit": "accounts"}
    for module_id in ("data-protection", "consumer-protection"):
        edit(data, module_id, lambda m: m["factors"][0]["figures"].append(dict(same)))
    found = [f for f in reused_figures(load_year(YEAR, data_dir=data)) if 43210987 in _numbers(f)]
    assert found == []
    edit(data, "consumer-protection", lambda m: m["factors"][0]["figures"][-1].update(label="Buyer accounts"))
    found = [f for f in reused_figures(load_year(YEAR, data_dir=data)) if 43210987 in _numbers(f)]
    assert sorted(f.module for f in found) == ["consumer-protection", "data-protection"]


@pytest.mark.parametrize(("computed", "published", "matches"), [
    (78.4, 78, True), (77.6, 78.0, True), (78.6, 78, False), (73.26, 73.3, True), (73.36, 73.3, False),
    (78.0, 78, True), (0.14, 0.1, True), (0.16, 0.1, False)])
def test_published_percentages_compare_at_their_precision(computed, published, matches):
    assert Comparison("effectiveness %", computed, published).matches is matches


def test_input_text_is_never_markdown(tmp_path):
    title = "DSA systemic risk assessment 2024: Shop [l](javascript:alert(1)) ![t](https://x.example/t.png) *b*"
    page = Report([], title=title, public=True)._render_page()
    assert '<a href="javascript' not in page and "<img" not in page and "<em>b</em>" not in page
    assert "[l](javascript:alert(1))" in page  # shown as the text it is


def test_input_text_is_never_mathtext(data):
    """A formula in a module title or a measure area failed the run inside matplotlib."""
    # a module's title is the taxonomy's (assessment.yaml), else its file's: both are input text
    edit(data, "assessment", lambda a: next(m for m in a["modules"] if m["id"] == "data-protection").update(
        title=r"Data $\undefined$ protection"))
    edit(data, "data-protection", lambda m: m["questionnaire"][0].update(area=r"Costs $\alpha$ and $5"))
    assessment = assess_year(load_year(YEAR, data_dir=data))["data-protection"]
    book = ModuleBook(assessment, public=False)
    summary = SummaryBook({"data-protection": assessment}, year=YEAR, platform="x", public=False)
    charts = [book.inherent_heatmap(), book.residual_heatmap(), book.questionnaire_chart(), summary.legend and
              summary.inherent_heatmap()]
    for chart in charts:
        png, _ = chart._repr_png_()  # drawing parsed a formula, and failed on \undefined
        assert png.startswith(b"\x89PNG")
    drawn = {t.get_text() for chart in charts for t in chart.figure.findobj(Text)}
    assert r"Inherent risk: Data \$\undefined\$ protection is Medium High" in drawn
    assert r"Costs \$\alpha\$ and \$5" in drawn


# -- any subset of the sample marked confidential ----------------------------------------------
def _figure_paths() -> list[tuple[str, tuple]]:
    """(module, path) of every number written in the year's module files that may be
    confidential (a statements-of-reasons proxy's counts come from the dump, not the file)."""
    paths = []
    for module_id in load_year(YEAR, modules=[]).assessment.module_ids:
        module = yaml.safe_load((DATA_DIR / str(YEAR) / f"{module_id}.yaml").read_text())
        for i, proxy in enumerate(module["probability"]["proxies"]):
            paths += [(module_id, ("probability", "proxies", i, name)) for name in ("incidents", "volume", "rate")
                      if name in proxy]
        for i, factor in enumerate(module.get("factors", [])):
            for j, figure in enumerate(factor["figures"]):
                paths += [(module_id, ("factors", i, "figures", j, name)) for name in ("value", "denominator")
                          if name in figure]
    return paths


FIGURES = _figure_paths()
MODULES = sorted({module for module, _ in FIGURES})


def _mark(node, path: tuple) -> None:
    *parents, last = path
    for key in parents:
        node = node[key]
    value = node[last]["value"] if isinstance(node[last], dict) else node[last]
    node[last] = {"value": value, "confidential": True}


@settings(max_examples=10, deadline=None, phases=[Phase.explicit, Phase.generate],  # shrinking takes minutes
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(figures=st.sets(st.sampled_from(FIGURES), max_size=12),
       ratings=st.dictionaries(st.sampled_from(MODULES),
                               st.sets(st.sampled_from(["probability", "severity", "effectiveness"]), min_size=1),
                               max_size=3),
       severity=st.sets(st.sampled_from(MODULES), max_size=2))
def test_no_subset_of_confidential_inputs_leaks(quick_heatmaps, figures, ratings, severity):
    with tempfile.TemporaryDirectory() as folder:
        data = copy_sample(Path(folder) / "data")
        for module_id in MODULES:
            def change(module, module_id=module_id):
                for owner, path in figures:
                    if owner == module_id:
                        _mark(module, path)
                module["confidential_ratings"] = sorted(ratings.get(module_id, []))
                module["severity"]["confidential"] = module_id in severity
            edit(data, module_id, change)
        assert leaks_and_inferences(data, Path(folder) / "results") == []


def test_error_messages_print_no_confidential_number(data):
    """A scoring error raised on a confidential figure ends up in CI logs."""
    from dsarisk.assess import _located
    from dsarisk.exceptions import ScoringError

    inputs = load_year(YEAR, data_dir=data)
    volume = next(v for p in inputs.modules["prohibited-controlled-products"].probability.proxies
                  for v in (p.incidents, p.volume) if isinstance(v, Value) and v.confidential)
    error = _located(ScoringError(f"incidents (5) exceed volume ({volume.value:g}, {volume.value:,.0f})", field="x"),
                     inputs, "prohibited-controlled-products")
    assert f"{volume.value:g}" not in str(error) and f"{volume.value:,.0f}" not in str(error)
    assert "[Confidential]" in str(error) and "incidents (5)" in str(error)


def test_prose_stating_a_hidden_level_or_figure_is_redacted_in_the_public_version(data, tmp_path, quick_heatmaps):
    """The analyst's own words can give away what the public version hides: a change
    explanation stating the hidden residual level, evidence quoting the hidden effectiveness
    percentage and a confidential count. The public sections show them redacted and the run
    names each field; a sentence naming no rating keeps its words, the internal version all."""
    explanation = "Mitigation matured: residual fell from Medium to Low Medium."
    evidence = "Controls rated Strong; effectiveness reached 73 % over 98,000,000 accounts. Strong demand for exports."

    def state_secrets(module):
        module["confidential_ratings"] = ["effectiveness"]  # and the residual, which it would fix
        module["change_since_previous"]["explanation"] = explanation
        module["commitments"][0]["evidence"] = evidence
    edit(data, "data-protection", state_secrets)
    assessments, outputs, _ = public_outputs(data, tmp_path / "results")
    public = "\n".join(text for owner in ("data-protection", "summary") for text, _ in outputs[owner].values())
    for stated in ("to Low Medium", "rated Strong", "73 %", "98,000,000"):
        assert stated not in public, stated
    assert "residual fell from Medium to [Confidential]" in public and "Strong demand for exports" in public
    internal = ModuleBook(assessments["data-protection"], public=False)
    assert explanation in str(internal.previous_year()) and evidence in str(internal.commitments())
    named = redacted_prose(load_year(YEAR, data_dir=data))
    assert named == [
        {"file": "2024/data-protection.yaml", "module": "data-protection", "field": "change_since_previous.explanation",
         "states": "the hidden residual level"},
        {"file": "2024/data-protection.yaml", "module": "data-protection", "field": "commitments[0].evidence",
         "states": "a confidential figure"},
        {"file": "2024/data-protection.yaml", "module": "data-protection", "field": "commitments[0].evidence",
         "states": "the hidden effectiveness level"}], "the sample's own prose states nothing hidden"
