"""The exports beside report.html: ratings.csv, report.xlsx and report.pdf.

The public exports leak nothing the public HTML hides (the same search as the HTML's leak
test, over the text of the XLSX and the PDF); formula-like text stays text; the XLSX is
byte-identical for the same records; the PDF is A4, paginated, marked on every page.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openpyxl
import pytest
import yaml
from pypdf import PdfReader

from dsarisk.cli import main
from dsarisk.exceptions import InputError
from dsarisk.exports import csv_safe, export_formats, is_formula_like
from dsarisk.exports.xlsx import write_xlsx
from dsarisk.inputs import load_year
from dsarisk.pipeline import run_year

from .test_confidentiality import ALL_CONFIDENTIAL, _make_variant, _private_copy, confidential_numbers, leaks

pytestmark = [pytest.mark.notebook, pytest.mark.xdist_group("exports")]

FORMULAS = {  # where hostile text goes in the variant -> the text
    "title": '=HYPERLINK("http://example.invalid","open me")',
    "proxy": "@SUM(1+1) proxy",
    "roadmap": "-2+3 measure",
    "question": "\t=1+1 question",
}
MARK = {True: "Non-confidential version", False: "Confidential: internal version"}


def _pdf_missing() -> str | None:
    """Why the PDF export cannot run here, or None."""
    try:
        import weasyprint  # noqa: F401  (loads pango)
    except OSError as exc:
        return f"WeasyPrint cannot load pango ({exc}); make venv / .ci/run install it as root"
    return None


PDF_MISSING = _pdf_missing()
needs_pdf = pytest.mark.skipif(PDF_MISSING is not None, reason=PDF_MISSING or "")


def _inject_formulas(data: Path) -> None:
    path = data / "2024" / "consumer-protection.yaml"
    module = yaml.safe_load(path.read_text())
    module["probability"]["proxies"][0]["label"] = FORMULAS["proxy"]
    module["roadmap"][0]["measure"] = FORMULAS["roadmap"]
    module["questionnaire"][0]["measures"][0]["question"] = FORMULAS["question"]
    path.write_text(yaml.safe_dump(module, sort_keys=False))
    path = data / "2024" / "assessment.yaml"  # a module's title is the taxonomy's
    assessment = yaml.safe_load(path.read_text())
    next(m for m in assessment["modules"] if m["id"] == "consumer-protection")["title"] = FORMULAS["title"]
    path.write_text(yaml.safe_dump(assessment, sort_keys=False))


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> dict[bool, Path]:
    """public -> report folder of the confidentiality test's hostile variant, with formula-like
    text added, built with every export (the PDF where pango is present)."""
    root = tmp_path_factory.mktemp("exports")
    data = _private_copy(root)
    _make_variant(data)
    _inject_formulas(data)
    formats = "html,xlsx" + (",pdf" if PDF_MISSING is None else "")
    with ThreadPoolExecutor(2) as pool:
        futures = {public: pool.submit(run_year, 2024, data_dir=data, out_dir=root / f"out-{public}", jobs=1,
                                       public=public, formats=formats) for public in (True, False)}
        folders = {public: future.result().folder for public, future in futures.items()}
    folders["data"] = data  # type: ignore[index]
    return folders


# -- text of the binary exports, for the leak search -------------------------------------------
_SHARED_STRING_INDEX = re.compile(r'(<c [^>]*t="s"[^>]*>)<v>\d+</v>')
_TAG = re.compile(r"<[^>]*>")
_STRUCTURAL = re.compile(r"[\d.:A-Z$ ]*")  # cell and range references, sizes, indices, colours


def _xml_text(xml: str) -> str:
    """The data of an XML part: its text and the attribute values that are not cell
    references, sizes or indices (the leak search would take row 100 for a hidden 100)."""
    xml = _SHARED_STRING_INDEX.sub(r"\1", xml)  # an index into sharedStrings.xml, searched on its own
    return _TAG.sub(lambda tag: " " + " ".join(value for value in re.findall(r'="([^"]*)"', tag.group(0))
                                               if not _STRUCTURAL.fullmatch(value)) + " ", xml)


def xlsx_text(path: Path) -> str:
    """Every raw XML part, then every cell value, comment, sheet name, defined name and
    document property as openpyxl reads them."""
    with zipfile.ZipFile(path) as archive:
        parts = [f"--- {name}\n{_xml_text(archive.read(name).decode('utf-8', 'replace'))}"
                 for name in archive.namelist()]
    book = openpyxl.load_workbook(path)
    for sheet in book.worksheets:
        parts.append(sheet.title)
        for row in sheet.iter_rows():
            for cell in row:
                parts += [str(cell.value)] if cell.value is not None else []
                parts += [cell.comment.text] if cell.comment else []
    parts += [f"{name}={defined.attr_text}" for name, defined in book.defined_names.items()]
    parts += [f"{key}={value}" for key, value in vars(book.properties).items()]
    parts += [f"{prop.name}={prop.value}" for prop in book.custom_doc_props.props]
    return "\n".join(parts)


def pdf_text(path: Path) -> str:
    reader = PdfReader(path)
    metadata = [f"{key}={value}" for key, value in (reader.metadata or {}).items()]
    return "\n".join(metadata + [page.extract_text() for page in reader.pages])


def _extracted(folder: Path, into: Path) -> Path:
    """The exports' text as files, for the confidentiality test's folder search."""
    into.mkdir()
    (into / "report.xlsx.txt").write_text(xlsx_text(folder / "report.xlsx"))
    shutil.copy(folder / "ratings.csv", into / "ratings.csv")
    if (folder / "report.pdf").exists():
        (into / "report.pdf.txt").write_text(pdf_text(folder / "report.pdf"))
    return into


def test_public_exports_leak_no_confidential_value(exports, tmp_path):
    numbers = confidential_numbers(exports["data"], 2024)
    public = _extracted(exports[True], tmp_path / "public")
    assert leaks(public, numbers) == []
    internal = _extracted(exports[False], tmp_path / "internal")
    found = leaks(internal, numbers)  # the same search is not blind to these files
    assert any(hit.startswith("report.xlsx.txt") for hit in found)
    if PDF_MISSING is None:
        assert any(hit.startswith("report.pdf.txt") for hit in found)
        assert any("4,417,923" in hit for hit in found if hit.startswith("report.pdf.txt"))


def test_public_exports_carry_the_marks_and_no_private_path(exports, tmp_path):
    texts = {path.name: path.read_text() for path in _extracted(exports[True], tmp_path / "x").iterdir()}
    for name, text in texts.items():
        assert str(exports["data"]) not in text and "PRIVATE-risk-inputs" not in text, name
        assert MARK[False] not in text, name
    assert MARK[True] in texts["report.xlsx.txt"]
    book = openpyxl.load_workbook(exports[True] / "report.xlsx")
    assert book.properties.category == "non-confidential"
    assert {p.name: p.value for p in book.custom_doc_props.props}["Version"] == MARK[True]
    ratings = book["Ratings"]
    header = [cell.value for cell in ratings[4]]
    hidden = next(row for row in ratings.iter_rows(min_row=5, values_only=True) if row[1] == ALL_CONFIDENTIAL)
    for column in ("Probability", "Rate", "Severity", "Severity score", "Effectiveness %", "Effectiveness band"):
        assert hidden[header.index(column)] == "[Confidential]", column
    assert hidden[header.index("Inherent")] == "Medium High"  # labels the HTML shows stay


def test_register_layout(exports):
    book = openpyxl.load_workbook(exports[False] / "report.xlsx")
    assert book.sheetnames[:2] == ["Ratings", "Matrices"] and len(book.sheetnames) == 2 + 5
    ratings = book["Ratings"]
    assert ratings.freeze_panes == "B5" and ratings.auto_filter.ref == "A4:U9"
    assert ratings.column_dimensions["A"].width > 20
    modules = book.worksheets[2:]
    assert all(sheet.freeze_panes == "A4" and len(sheet.tables) >= 4 for sheet in modules)
    matrices = book["Matrices"]
    marked = [cell for row in matrices.iter_rows() for cell in row if isinstance(cell.value, str) and "●" in cell.value]
    assert len(marked) >= 5  # every module placed in each matrix (internal: nothing hidden)
    assert all(cell.fill.fgColor.rgb not in (None, "00000000") for cell in marked)
    public = openpyxl.load_workbook(exports[True] / "report.xlsx")["Matrices"]
    assert "not placed" in xlsx_text(exports[True] / "report.xlsx")  # the confidential module stays off
    assert not any("● DP" in str(cell.value) for row in public.iter_rows() for cell in row)


def test_formula_like_text_stays_text(exports):
    path = exports[True] / "report.xlsx"
    with zipfile.ZipFile(path) as archive:
        sheets = [archive.read(n).decode() for n in archive.namelist() if n.startswith("xl/worksheets/")]
    assert not any(re.search(r"<f[ >]", xml) for xml in sheets)  # no formula anywhere
    seen = set()
    for sheet in openpyxl.load_workbook(path).worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                if isinstance(cell.value, str) and is_formula_like(cell.value):
                    assert cell.data_type == "s" and cell.quotePrefix, (sheet.title, cell.coordinate)
                    seen.add(cell.value)
    assert all(any(value.startswith(text) for value in seen) for text in FORMULAS.values()), seen
    with (exports[True] / "ratings.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[-1]["Module"] == "'" + FORMULAS["title"]
    assert csv_safe("-1") == "'-1" and csv_safe(-1) == -1 and csv_safe("a=b") == "a=b"


def test_xlsx_is_byte_identical_for_the_same_records(exports, tmp_path):
    folder = exports[True]
    summary = json.loads((folder / "summary.json").read_text())
    method = load_year(2024, data_dir=exports["data"]).methodology
    again = write_xlsx(tmp_path / "again.xlsx", summary=summary, methodology=method)
    assert again.read_bytes() == (folder / "report.xlsx").read_bytes()


# -- the PDF ------------------------------------------------------------------------------------
@needs_pdf
@pytest.mark.parametrize("public", [True, False])
def test_pdf_pages_marks_and_table_of_contents(exports, public):
    reader = PdfReader(exports[public] / "report.pdf")
    pages = [page.extract_text() for page in reader.pages]
    assert 12 <= len(pages) <= 80
    for number, (page, text) in enumerate(zip(reader.pages, pages, strict=True), start=1):
        assert round(float(page.mediabox.width)) == 595 and round(float(page.mediabox.height)) == 842  # A4
        assert MARK[public] in text and MARK[not public] not in text, number
        assert f"page {number} of {len(pages)}" in text, number
        body = text.replace(MARK[public], "").replace(f"page {number} of {len(pages)}", "")
        drawn = page.get_contents().get_data().count(b" Do")  # images (the resources list every page's)
        assert len(body.split()) > 12 or drawn, f"page {number} is blank"
    summary = json.loads((exports[public] / "summary.json").read_text())
    assert summary["platform"].split()[0] in pages[1]  # the running header
    titles = [record["title"] for record in summary["modules"].values()]
    contents = pages[0].replace("\n", " ")
    for title in titles[:4]:  # the hostile fifth title only shows escaped
        match = re.search(re.escape(title) + r"[ .]*?(\d+)\b", contents)
        assert match, title
        assert title in pages[int(match.group(1)) - 1], f"{title} is not on page {match.group(1)}"
    metadata = reader.metadata
    assert metadata.subject == MARK[public] and "2024" in metadata.title


@needs_pdf
def test_pdf_fonts_are_embedded(exports):
    reader = PdfReader(exports[True] / "report.pdf")
    fonts = {}
    for page in reader.pages:
        for name, ref in page["/Resources"]["/Font"].items():
            font = ref.get_object()
            for descendant in font.get("/DescendantFonts", [font]):
                descriptor = descendant.get_object()["/FontDescriptor"].get_object()
                fonts[descriptor["/FontName"]] = any(k in descriptor for k in ("/FontFile", "/FontFile2", "/FontFile3"))
    assert fonts and all(fonts.values()), fonts


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="pdftoppm (poppler-utils) is not installed")
@needs_pdf
def test_pdf_pages_render_with_content(exports, tmp_path):
    from PIL import Image

    subprocess.run(["pdftoppm", "-r", "20", "-png", str(exports[True] / "report.pdf"), str(tmp_path / "p")],
                   check=True)
    images = sorted(tmp_path.glob("p-*.png"))
    assert len(images) == len(PdfReader(exports[True] / "report.pdf").pages)
    for path in images:
        grey = Image.open(path).convert("L")
        width, height = grey.size
        body = grey.crop((0, height // 10, width, height - height // 12))  # without header and footer
        dark = sum(body.histogram()[:200])  # pixels darker than light grey
        # a section's last page may hold a few lines (0.36 % dark at 20 dpi seen); a blank one holds none
        assert dark > 0.001 * body.width * body.height, f"{path.name} is (nearly) blank"


def test_pdf_fetches_nothing(tmp_path):
    if PDF_MISSING:
        pytest.skip(PDF_MISSING)
    from dsarisk.exports.pdf import ExportError, write_pdf

    summary = {"year": 2024, "platform": "P", "version": "non-confidential"}
    for url in ("http://127.0.0.1:9/x.png", (tmp_path / "x.png").as_uri()):
        page = tmp_path / "report.html"
        page.write_text(f"<html><head><title>t</title></head><body><img src='{url}'></body></html>")
        with pytest.raises(ExportError, match="fetches nothing"):
            write_pdf(tmp_path / "report.pdf", html=page, summary=summary)


# -- the option -----------------------------------------------------------------------------------
def test_formats_option():
    assert export_formats("xlsx") == ("html", "xlsx")
    assert export_formats(" PDF , html ") == ("html", "pdf")
    with pytest.raises(InputError, match="unknown format.*'docx'") as error:
        export_formats("html,docx")
    assert error.value.field == "formats"


def test_cli_rejects_an_unknown_format_in_one_line(capsys):
    assert main(["run", "--year", "2024", "--formats", "html,docx", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "docx" in err and "Traceback" not in err
