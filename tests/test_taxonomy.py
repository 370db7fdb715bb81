"""Any platform's taxonomy, judged ratings and a post-control residual, as data only."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import openpyxl
import pytest
import yaml
from matplotlib.backends.backend_agg import FigureCanvasAgg

import dsarisk
from dsarisk import plots, scoring
from dsarisk.assess import assess_year
from dsarisk.cycle import new_year
from dsarisk.exceptions import InputError
from dsarisk.explore import band_distances, compare_years, sensitivity, whatif_widget
from dsarisk.inputs import load_year
from dsarisk.methodology import load_methodology, parse_methodology
from dsarisk.paths import DATA_DIR, NOTEBOOKS_DIR
from dsarisk.pipeline import run_year
from dsarisk.workbook import open_module

from .generated_years import FOUR_BY_FOUR_PRODUCT, THREE_BY_THREE, write_year


def _assessment(folder: Path) -> dict:
    return yaml.safe_load((folder / "assessment.yaml").read_text())


def _write_assessment(folder: Path, data: dict) -> None:
    (folder / "assessment.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.fixture
def judged_year(tmp_path: Path) -> Path:
    write_year(tmp_path, modules=3, methodology=THREE_BY_THREE)
    return tmp_path


# -- the taxonomy ------------------------------------------------------------------------------
def test_bare_ids_take_the_title_from_the_module_file_and_a_short_label_from_the_id(judged_year):
    folder = judged_year / "2030"
    data = _assessment(folder)
    data["modules"] = [entry["id"] for entry in data["modules"]]
    _write_assessment(folder, data)
    taxonomy = load_year(2030, data_dir=judged_year).taxonomy
    assert [(m.id, m.title, m.short, m.order) for m in taxonomy] == [
        ("hate-speech", "Hate speech", "HS", 1), ("civic-integrity", "Civic integrity", "CI", 2),
        ("minor-safety", "Minor safety", "MS", 3)]


def test_the_assessment_order_is_the_report_order(judged_year):
    folder = judged_year / "2030"
    data = _assessment(folder)
    data["modules"].reverse()
    _write_assessment(folder, data)
    inputs = load_year(2030, data_dir=judged_year)
    assert list(inputs.modules) == inputs.taxonomy.ids == ["minor-safety", "civic-integrity", "hate-speech"]
    assert list(assess_year(inputs)) == inputs.taxonomy.ids


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (lambda m: m.append(dict(m[0])), "modules", "module id(s) declared more than once: hate-speech"),
        (lambda m: m[1].update(short="R1"), "modules", "short label(s) declared more than once: R1"),
        (lambda m: m[0].update(id="Hate Speech"), "modules.0.id", "should match pattern"),
        (lambda m: m[0].update(id="../../etc/passwd"), "modules.0.id", "should match pattern"),
        (lambda m: m[0].update(colour="red"), "modules.0.colour", "unknown field"),
        (lambda m: m[0].update(notebook="/tmp/evil.ipynb"), "modules.0.notebook", "should match pattern"),
        (lambda m: m[0].update(notebook="../../evil.ipynb"), "modules.0.notebook", "should match pattern"),
        (lambda m: m.clear(), "modules", "at least 1 item"),
        (lambda m: m.extend({"id": f"m-{i}"} for i in range(60)), "modules", "at most 60 items"),
    ],
)
def test_a_bad_taxonomy_is_named_in_one_line(judged_year, change, field, message):
    folder = judged_year / "2030"
    data = _assessment(folder)
    change(data["modules"])
    _write_assessment(folder, data)
    with pytest.raises(InputError) as info:
        load_year(2030, data_dir=judged_year)
    assert str(info.value).startswith(f"{folder / 'assessment.yaml'}: field '{field}'"), str(info.value)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_no_code_and_no_notebook_names_a_sample_module():
    """The sample's taxonomy is data: the library and the notebooks serve any other."""
    ids = load_year(2024).taxonomy.ids
    sources = [*Path(dsarisk.__file__).parent.rglob("*.py"), *NOTEBOOKS_DIR.glob("*.py"), *NOTEBOOKS_DIR.glob("*.ipynb")]
    named = {path.name: [i for i in ids if i in path.read_text()] for path in sources}
    assert {name: found for name, found in named.items() if found} == {}


def test_sixty_modules_load(tmp_path):
    write_year(tmp_path, modules=60, methodology=THREE_BY_THREE)
    assert len(load_year(2030, data_dir=tmp_path).taxonomy) == 60


# -- judged inputs -----------------------------------------------------------------------------
def _independent_3x3(levels: dict[str, str]) -> tuple[str, str]:
    """The generated 3x3 methodology, read off its matrices by hand."""
    p, s, e = (THREE_BY_THREE[r]["levels"] for r in ("probability", "severity", "effectiveness"))
    p_index = [level["label"] for level in p].index(levels["probability"])
    s_index = s.index(levels["severity"])
    inherent = THREE_BY_THREE["inherent"]["matrix"][levels["probability"]][s_index]
    residual = THREE_BY_THREE["residual"]["matrix"][levels["effectiveness"]][["Low", "Medium", "High"].index(inherent)]
    assert 0 <= p_index < 3 and [level["label"] for level in e]
    return inherent, residual


def _independent_4x4(levels: dict[str, str]) -> tuple[str, str]:
    """P x S banded; P x S x the effectiveness level's factor banded; by hand."""
    spec = FOUR_BY_FOUR_PRODUCT
    p = [level["label"] for level in spec["probability"]["levels"]].index(levels["probability"]) + 1
    s = spec["severity"]["levels"].index(levels["severity"]) + 1
    factor = {level["label"]: level["factor"] for level in spec["effectiveness"]["levels"]}[levels["effectiveness"]]

    def band(value: float, bands: list[dict]) -> str:
        return [b["label"] for b in bands if value >= b["min"]][-1]

    return band(p * s, spec["inherent"]["bands"]), band(p * s * factor, spec["residual"]["bands"])


@pytest.mark.parametrize(("methodology", "expected"), [(THREE_BY_THREE, _independent_3x3),
                                                       (FOUR_BY_FOUR_PRODUCT, _independent_4x4)])
def test_judged_years_of_12_and_32_modules_score_as_computed_by_hand(tmp_path, methodology, expected):
    for count in (12, 32):
        root = tmp_path / str(count)
        judged = write_year(root, modules=count, methodology=methodology, seed=count)
        results = assess_year(load_year(2030, data_dir=root))
        assert len(results) == count
        for module_id, levels in judged.items():
            a = results[module_id]
            assert (a.inherent.level, a.residual.level) == expected(levels), module_id
            assert a.judged("probability").level == levels["probability"] and a.rate is None
            assert a.effectiveness_pct is None and a.effectiveness.level == levels["effectiveness"]


def test_a_complete_judged_module_needs_only_module_title_and_three_judgements(judged_year):
    path = judged_year / "2030" / "hate-speech.yaml"
    data = yaml.safe_load(path.read_text())
    assert set(data) == {"module", "title", "probability", "severity", "effectiveness"}
    assert load_year(2030, data_dir=judged_year).module("hate-speech").subcategories == []


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (lambda d: d["severity"].update(level="Catastrophic"), "severity.level",
         "'Catastrophic' is not a level of the methodology (Low impact, Moderate impact, High impact)"),
        (lambda d: d["probability"].pop("rationale"), "probability.rationale", "required field is missing"),
        (lambda d: d["effectiveness"].update(rationale="  "), "effectiveness.rationale", "at least 1 character"),
        (lambda d: d.pop("effectiveness"), "effectiveness", "give a questionnaire or a judged effectiveness"),
        (lambda d: d["probability"].update(level=7), "probability.level", "valid string"),
    ],
)
def test_a_bad_judgement_is_named_in_one_line(judged_year, change, field, message):
    path = judged_year / "2030" / "hate-speech.yaml"
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(InputError) as info:
        load_year(2030, data_dir=judged_year)
    assert str(info.value).startswith(f"{path}: module 'hate-speech': field '{field}'"), str(info.value)
    assert message in str(info.value)


def test_a_confidential_judged_level_is_hidden_with_its_rationale(judged_year):
    path = judged_year / "2030" / "hate-speech.yaml"
    data = yaml.safe_load(path.read_text())
    data["probability"] = {"level": "Highly probable", "rationale": "secret audit of 2,345 items"}
    data["confidential_ratings"] = ["probability"]
    path.write_text(yaml.safe_dump(data))
    sections = {public: open_module(year=2030, module="hate-speech", data_dir=str(judged_year), public=public)
                for public in (False, True)}
    shown = {public: " ".join(repr(part) for part in (book.probability(), book.inherent_heatmap()))
             for public, book in sections.items()}
    assert "Highly probable" in shown[False] and "secret audit of 2,345 items" in shown[False]
    assert "Highly probable" not in shown[True] and "2,345" not in shown[True]
    assert "[Confidential]" in shown[True] and "judged by the analyst" in shown[True]
    record = assess_year(load_year(2030, data_dir=judged_year))["hate-speech"].to_json(public=True)
    assert record["probability"]["level"] is None and record["judged"][0] == "probability"


def test_judged_modules_can_be_explored(tmp_path):
    write_year(tmp_path, modules=2, methodology=FOUR_BY_FOUR_PRODUCT, seed=3)
    for a in assess_year(load_year(2030, data_dir=tmp_path)).values():
        drivers = {(d.rating, d.driver) for d in band_distances(a)}
        assert drivers == {("inherent", "severity"), ("residual", "severity")}  # a judged level has no rate
        varied = {s.input for s in sensitivity(a)}
        assert {"probability level", "effectiveness level", "severity"} <= varied
        assert "judged levels" in whatif_widget(a).value  # no slider for a judged level


# -- post-control residual ---------------------------------------------------------------------
POST_CONTROL = {  # post-control probability and severity per sample module, judged or from a proxy
    "prohibited-controlled-products": {"probability": {"level": "Possible", "rationale": "after the new filters"},
                                       "severity": {"level": "High", "rationale": "dangerous products remain grave"}},
    "intellectual-property": {"probability": {"level": "Unlikely", "rationale": "brand database"},
                              "severity": {"level": "Medium", "rationale": "economic harm, remediable"}},
    "content-compliance": {"probability": {"level": "Very unlikely", "rationale": "text model"},
                           "severity": {"level": "High", "rationale": "grave when it happens"}},
    "data-protection": {"probability": {"basis": "post", "proxies": [{
        "id": "post", "label": "accounts closed after controls", "incidents": 10, "volume": 4000,
        "period": {"start": "2023-07-01", "end": "2024-06-30"}, "source": "post-control sample"}]},
        "severity": {"level": "Low", "rationale": "limited data"}},
    "consumer-protection": {"probability": {"level": "Likely", "rationale": "fraud persists"},
                            "severity": {"level": "Very high", "rationale": "minors"}},
}
EXPECTED_POST_CONTROL = {  # by hand: score product 1..25, bands Low 1, Low Medium 3, Medium 6, Medium High 10, High 16
    "prohibited-controlled-products": ("Possible", "High", 12, "Medium High"),
    "intellectual-property": ("Unlikely", "Medium", 6, "Medium"),
    "content-compliance": ("Very unlikely", "High", 4, "Low Medium"),
    "data-protection": ("Unlikely", "Low", 4, "Low Medium"),  # 10 / 4000 = 0.25 %: Unlikely
    "consumer-protection": ("Likely", "Very high", 20, "High"),
}


@pytest.fixture
def post_control_year(tmp_path: Path) -> Path:
    """The 2024 sample re-scored under the Year 3 (post-control) methodology, each module with
    its post-control probability and severity (one from a proxy, the others judged)."""
    root = tmp_path / "data"  # reports go beside it: a run refuses an output folder inside its data
    for name in ("2023", "2024", "methodology", "sor"):
        shutil.copytree(DATA_DIR / name, root / name)
    folder = root / "2024"
    data = _assessment(folder)
    data["methodology"] = "year3"
    _write_assessment(folder, data)
    for module_id, post in POST_CONTROL.items():
        path = folder / f"{module_id}.yaml"
        module = yaml.safe_load(path.read_text())
        module["post_control"] = post
        module["published"] = {}
        path.write_text(yaml.safe_dump(module, sort_keys=False, allow_unicode=True))
    return root


def test_post_control_residual_is_read_from_post_control_ratings_not_effectiveness(post_control_year):
    results = assess_year(load_year(2024, data_dir=post_control_year))
    data_protection = results["data-protection"].residual.probability
    assert data_protection.rate == pytest.approx(0.25) and data_protection.level == "Unlikely"
    for module_id, (probability, severity, product, level) in EXPECTED_POST_CONTROL.items():
        r = results[module_id].residual
        assert (r.probability.level, r.severity.level, r.value, r.level) == (probability, severity, product, level)
        assert r.method == "post_control" and results[module_id].effectiveness is not None  # shown beside it
    strong = results["prohibited-controlled-products"]
    weaker = scoring.effectiveness(strong.methodology, pct=5)
    again = scoring.post_control_residual(strong.methodology, strong.residual.probability, strong.residual.severity,
                                          inherent_level=strong.inherent.level, effectiveness_result=weaker)
    assert again.level == strong.residual.level  # effectiveness does not feed it


def test_next_year_asks_for_new_judged_and_post_control_levels(post_control_year):
    folder = new_year(2025, source=2024, data_dir=post_control_year)
    data = yaml.safe_load((folder / "prohibited-controlled-products.yaml").read_text())
    assert data["post_control"]["probability"] == {"level": "TO UPDATE", "rationale": "after the new filters"}
    proxy = yaml.safe_load((folder / "data-protection.yaml").read_text())["post_control"]["probability"]["proxies"][0]
    assert (proxy["incidents"], proxy["volume"]) == ("TO UPDATE", "TO UPDATE")
    with pytest.raises(InputError, match="post_control.probability.level"):
        load_year(2025, data_dir=post_control_year)


def test_post_control_methodology_wants_post_control_inputs(post_control_year, edit_module):
    path = edit_module(post_control_year, "intellectual-property", lambda d: d.pop("post_control"))
    with pytest.raises(InputError, match=rf"{path}: module 'intellectual-property': field 'post_control': the "
                                         "methodology's residual is post-control"):
        load_year(2024, data_dir=post_control_year)


def test_a_post_control_matrix_is_validated_like_the_others(year2_copy):
    year2_copy["residual"] = {"method": "post_control", "levels": ["Low", "High"],
                              "matrix": {label["label"]: ["Low"] * 4 for label in year2_copy["probability"]["levels"]}}
    with pytest.raises(Exception, match="row has 4 cells, expected 5"):
        parse_methodology(year2_copy)
    year2_copy["residual"]["matrix"] = {label["label"]: ["High", "Low", "Low", "Low", "Low"]
                                        for label in year2_copy["probability"]["levels"]}
    with pytest.raises(Exception, match="not monotone along a row"):
        parse_methodology(year2_copy)
    year2_copy["residual"]["matrix"] = {label["label"]: ["Low", "Low", "High", "High", "High"]
                                        for label in year2_copy["probability"]["levels"]}
    method = parse_methodology(year2_copy)
    assert plots.post_control_grid(method)[0] == ["Low", "Low", "High", "High", "High"]


def test_a_change_of_residual_method_between_years_is_the_methods(post_control_year):
    changes = {(c.module, c.rating): c for c in compare_years(2023, 2024, data_dir=post_control_year)}
    residual = changes[("consumer-protection", "residual")]
    assert (residual.before, residual.after) == ("Medium", "High")
    assert (residual.total, residual.method_part, residual.inputs_part) == (2, 2, 0)
    inherent = changes[("consumer-protection", "inherent")]  # 2023 holds no post-control ratings: no split
    assert (inherent.total, inherent.method_part, inherent.inputs_part) == (1, None, None)
    for a in assess_year(load_year(2024, data_dir=post_control_year)).values():
        drivers = {d.driver for d in band_distances(a) if d.rating == "residual"}
        assert "effectiveness" not in drivers and "post-control severity" in drivers


# -- heatmaps readable at 32 modules ------------------------------------------------------------
def test_heatmap_lists_32_modules_in_one_cell_without_overlap():
    method = load_methodology("year2")
    marks = {f"R{i}": ("Likely", "High") for i in range(1, 33)}
    marks |= {f"Q{i}": ("Very unlikely", "Low") for i in range(1, 6)}
    figure = plots.inherent_heatmap(method, marks=marks)
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    renderer = canvas.get_renderer()
    ax = figure.axes[0]
    texts = [t for t in ax.texts if t.get_text()]
    boxes = [t.get_window_extent(renderer) for t in texts]
    listed = " ".join(t.get_text() for t in texts)
    assert all(f"R{i}," in listed or listed.count(f"R{i}") for i in range(1, 33))
    for i, box in enumerate(boxes):
        x, y = texts[i].get_position()
        cell = ax.transData.transform([[x - 0.5, y], [x + 0.5, y]])
        assert cell[0][0] <= box.x0 and box.x1 <= cell[1][0], texts[i].get_text()  # fits the cell's width
        for other in boxes[i + 1:]:
            assert not box.overlaps(other), texts[i].get_text()


# -- end to end --------------------------------------------------------------------------------
@pytest.mark.notebook
@pytest.mark.xdist_group("taxonomy")
def test_a_sixth_module_is_one_file_and_one_line(tmp_path):
    data = tmp_path / "data"
    for name in ("2024", "methodology", "sor"):
        shutil.copytree(DATA_DIR / name, data / name)
    (data / "2024" / "minor-safety.yaml").write_text(
        "module: minor-safety\ntitle: Minor safety\n"
        "probability: {level: Possible, rationale: 'age checks at sign-up only'}\n"
        "severity: {level: Very high, rationale: 'harm to children is grave and hard to undo'}\n"
        "effectiveness: {level: Weak, rationale: 'no parental controls yet'}\n")
    with (data / "2024" / "assessment.yaml").open("a") as assessment:
        assessment.write("- {id: minor-safety, title: Minor safety, short: MS}\n")
    folder = run_year(2024, data_dir=data, out_dir=tmp_path / "reports", jobs=2, public=True).folder
    record = json.loads((folder / "summary.json").read_text())["modules"]["minor-safety"]
    # by hand from the Year 2 annexes: Possible x Very high = Medium High; Weak x Medium High = Medium High
    assert (record["inherent"], record["residual"], record["judged"]) == (
        "Medium High", "Medium High", ["probability", "severity", "effectiveness"])
    html = (folder / "report.html").read_text()
    assert 'id="section-minor-safety"' in html and "no parental controls yet" in html
    notebook = nbformat.read(folder / "notebooks" / "06_minor-safety.ipynb", as_version=4)
    shown = "".join(str(o.get("data", {}).get("text/html", "")) for c in notebook.cells if c.cell_type == "code"
                    for o in c.outputs)
    assert "judged by the analyst" in shown and "Mitigation measures" in shown
    for absent in ("Risk registry", "Roadmap", "Article 34(2) factors", "Computed vs published", "questionnaire"):
        assert absent not in shown, absent


@pytest.mark.notebook
@pytest.mark.xdist_group("taxonomy")
def test_a_post_control_year_runs_end_to_end(post_control_year, tmp_path):
    folder = run_year(2024, data_dir=post_control_year, out_dir=tmp_path / "reports", jobs=2, public=True,
                      formats="html,xlsx").folder
    modules = json.loads((folder / "summary.json").read_text())["modules"]
    assert {m: r["residual"] for m, r in modules.items()} == {m: e[3] for m, e in EXPECTED_POST_CONTROL.items()}
    html = (folder / "report.html").read_text()
    assert "Post-control assessment." in html and "Post-control probability" in html
    matrices = openpyxl.load_workbook(folder / "report.xlsx")["Matrices"]
    cells = [str(c.value) for row in matrices.iter_rows() for c in row if c.value is not None]
    assert any(c.startswith("Residual risk: post-control probability") for c in cells)
    placed = [c for c in cells if "● " in c]  # each module sits in its post-control cell
    assert sum(c.count("● ") for c in placed) == 2 * len(EXPECTED_POST_CONTROL)


@pytest.mark.notebook
@pytest.mark.xdist_group("taxonomy")
@pytest.mark.parametrize(("count", "methodology", "expected"), [(12, THREE_BY_THREE, _independent_3x3),
                                                                (32, FOUR_BY_FOUR_PRODUCT, _independent_4x4)],
                         ids=["12-modules-3x3", "32-modules-4x4-product"])
def test_generated_judged_years_run_end_to_end(tmp_path, count, methodology, expected):
    judged = write_year(tmp_path / "data", modules=count, methodology=methodology, seed=count)
    folder = run_year(2030, data_dir=tmp_path / "data", out_dir=tmp_path / "reports", jobs=2, public=True).folder
    modules = json.loads((folder / "summary.json").read_text())["modules"]
    assert list(modules) == list(judged)
    assert {m: (r["inherent"], r["residual"]) for m, r in modules.items()} == {
        m: expected(levels) for m, levels in judged.items()}
    html = (folder / "report.html").read_text()
    assert html.count('<li><a href="#section-') == count + 1
