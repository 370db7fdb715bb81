"""The risk register as an XLSX workbook, written with XlsxWriter from ``summary.json``.

Sheets: "Ratings" (one row per module, filterable), "Matrices" (the inherent and residual
matrices in the methodology's colours with each module's place marked) and one sheet per
module (proxies with source and provenance, severity characteristics with rationale,
questionnaire answers, roadmap, commitments with status), each table an Excel table with
its own filter. Text that a spreadsheet would evaluate (``= + - @``, tab, carriage return
first) is written as text with Excel's quote prefix, so that editing the cell keeps it text.

The file is byte-identical for the same records: XlsxWriter stamps every zip member with
1 January 1980 and the document dates are fixed (``SOURCE_DATE_EPOCH`` when set).
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import xlsxwriter
from xlsxwriter.format import Format
from xlsxwriter.worksheet import Worksheet

from .. import plots
from ..labels import version_label
from ..methodology import Methodology
from . import is_formula_like, ratings_rows

#: module register blocks: record key -> caption
BLOCKS = {
    "proxies": "Probability proxies (source and provenance)",
    "severity": "Severity characteristics (UN Guiding Principles)",
    "questionnaire": "Mitigation questionnaire (DTSP maturity)",
    "roadmap": "Roadmap by Article 35(1) measure category",
    "commitments": "Last year's roadmap, followed up",
}
MAX_WIDTH = 60  # characters; longer text wraps
FIRST_ROW = 3  # rows 0-2: title, version mark, blank; frozen above the first table
_SHEET_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")


def _fixed_date() -> dt.datetime:
    """The document date: ``SOURCE_DATE_EPOCH`` (the reproducible-builds convention) or 1980-01-01."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if epoch.isdigit():
        return dt.datetime.fromtimestamp(int(epoch), dt.UTC).replace(tzinfo=None)
    return dt.datetime(1980, 1, 1)


class _Register:
    """One workbook being written: its formats and the cell writer every sheet shares."""

    def __init__(self, path: Path, *, summary: Mapping[str, Any], methodology: Methodology) -> None:
        self.summary, self.method = summary, methodology
        self.public = summary["version"] == "non-confidential"
        self.mark = version_label(self.public)
        self.book = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False, "strings_to_numbers": False,
                                                    "strings_to_urls": False})
        add = self.book.add_format
        self.text = add({"text_wrap": True, "valign": "top"})
        self.quoted = add({"text_wrap": True, "valign": "top", "quote_prefix": True})
        self.number = add({"valign": "top", "num_format": "#,##0.###"})
        self.title = add({"bold": True, "font_size": 14})
        self.caption = add({"bold": True, "font_size": 11})
        self.version = add({"bold": True, "font_color": "#1b5e20" if self.public else "#b71c1c",
                            "bg_color": "#e8f5e9" if self.public else "#ffebee"})
        self.tables = 0
        self.sheet_names: set[str] = set()

    # -- cells -------------------------------------------------------------------------------
    def cell(self, sheet: Worksheet, row: int, col: int, value: Any, style: Format | None = None) -> None:
        """Write one value with its type: numbers as numbers, text always as text."""
        if value is None:
            sheet.write_blank(row, col, None, style or self.text)
        elif isinstance(value, bool):
            sheet.write_string(row, col, "yes" if value else "no", style or self.text)
        elif isinstance(value, int | float):
            sheet.write_number(row, col, value, style or self.number)
        else:
            text = str(value)
            sheet.write_string(row, col, text, self.quoted if is_formula_like(text) else (style or self.text))

    def sheet(self, name: str) -> Worksheet:
        """A new sheet under a legal, unique name, headed by the title and the version mark."""
        base = _SHEET_FORBIDDEN.sub("_", name).strip("'")[:31] or "Sheet"
        unique, n = base, 2
        while unique.lower() in self.sheet_names:
            suffix = f" ({n})"
            unique, n = base[:31 - len(suffix)] + suffix, n + 1
        self.sheet_names.add(unique.lower())
        sheet = self.book.add_worksheet(unique)
        self.cell(sheet, 0, 0, f"{name}: {self.summary['platform']}, {self.summary['year']}", self.title)
        self.cell(sheet, 1, 0, self.mark, self.version)
        header = f"&L{_header_text(self.summary['platform'])} {self.summary['year']}&R{_header_text(self.mark)}"
        sheet.set_header(header)
        sheet.set_footer("&CPage &P of &N")
        sheet.set_paper(9)  # A4
        return sheet

    def table(self, sheet: Worksheet, row: int, rows: Sequence[Mapping[str, Any]], *, caption: str) -> int:
        """An Excel table (header, filter buttons, banded rows) at ``row``; the next free row."""
        self.cell(sheet, row, 0, caption, self.caption)
        if not rows:
            self.cell(sheet, row + 1, 0, "None recorded.")
            return row + 3
        columns = list(rows[0])
        self.tables += 1
        sheet.add_table(row + 1, 0, row + 1 + len(rows), len(columns) - 1,
                        {"name": f"Table{self.tables}", "style": "Table Style Light 9",
                         "columns": [{"header": _header(column)} for column in columns]})
        for i, record in enumerate(rows, start=row + 2):
            for j, column in enumerate(columns):
                self.cell(sheet, i, j, record.get(column))
        return row + len(rows) + 3

    def close(self) -> None:
        """Set the document properties and write the file."""
        summary = self.summary
        confidentiality = "non-confidential" if self.public else "confidential"
        self.book.set_properties({
            "title": f"DSA systemic risk register {summary['year']}: {summary['platform']}",
            "subject": f"{self.mark}: systemic risk assessment (DSA Articles 34 and 35)",
            "company": str(summary["platform"]), "category": confidentiality,
            "keywords": f"DSA, systemic risk, {summary['year']}, {confidentiality}",
            "comments": f"Methodology: {summary['methodology']}",
            "created": _fixed_date(),
        })
        for name, value in (("Platform", str(summary["platform"])), ("Year", int(summary["year"])),
                            ("Version", self.mark), ("Confidentiality", confidentiality),
                            ("Methodology", str(summary["methodology"]))):
            self.book.set_custom_property(name, value)
        self.book.close()


def _header(column: str) -> str:
    """An Excel table header: text, never read as a formula (headers cannot carry a quote prefix)."""
    return f"'{column}" if is_formula_like(column) else column


def _header_text(text: str) -> str:
    """Text for a printed page header, where ``&`` starts a control code."""
    return str(text).replace("&", "&&")


def _widths(sheet: Worksheet, rows: Sequence[Mapping[str, Any]], *, first: int = 0, style: Format) -> None:
    """Fit each column to its longest line, up to :data:`MAX_WIDTH`; longer text wraps."""
    widths: dict[int, int] = {}
    for record in rows:
        for j, (column, value) in enumerate(record.items(), start=first):
            longest = max(len(line) for line in f"{column}\n{'' if value is None else value}".splitlines())
            widths[j] = max(widths.get(j, 8), min(longest + 2, MAX_WIDTH))
    for column, width in widths.items():
        sheet.set_column(column, column, width, style)


def _ratings_sheet(register: _Register) -> None:
    sheet = register.sheet("Ratings")
    rows = ratings_rows(register.summary)
    columns = list(rows[0])
    for j, column in enumerate(columns):
        register.cell(sheet, FIRST_ROW, j, column, register.caption)
    for i, record in enumerate(rows, start=FIRST_ROW + 1):
        for j, column in enumerate(columns):
            register.cell(sheet, i, j, record[column])
    sheet.autofilter(FIRST_ROW, 0, FIRST_ROW + len(rows), len(columns) - 1)
    sheet.freeze_panes(FIRST_ROW + 1, 1)
    _widths(sheet, rows, style=register.text)
    sheet.set_landscape()


def _matrix_sheet(register: _Register) -> None:
    """Both matrices as grids filled with the methodology's colours, each module's cell marked."""
    method, modules = register.method, register.summary["modules"]
    sheet = register.sheet("Matrices")
    specs = [
        ("inherent", "Inherent risk: probability (rows) by severity (columns)", method.probability.labels[::-1],
         method.severity.labels, method.probability.labels, plots.inherent_grid(method), method.inherent.labels),
        ("post_control", "Residual risk: post-control probability (rows) by post-control severity (columns)",
         method.probability.labels[::-1], method.severity.labels, method.probability.labels,
         plots.post_control_grid(method), method.residual.labels) if method.post_control else
        ("residual", "Residual risk: mitigation effectiveness (rows) by inherent risk (columns)",
         method.effectiveness.labels, method.inherent.labels, method.effectiveness.labels,
         plots.residual_grid(method), method.residual.labels),
    ]
    row = FIRST_ROW
    for kind, caption, shown_rows, columns, grid_rows, grid, levels in specs:
        scale = "inherent" if kind == "inherent" else "residual"  # a post-control residual has the residual's colours
        colours = dict(zip(levels, plots.level_colors(method, scale, levels), strict=True))
        marks: dict[tuple[str, str], list[str]] = {}
        for record in modules.values():
            position = record["register"]["positions"][kind]
            if position:
                marks.setdefault(tuple(position), []).append(record["register"]["short_name"])
        register.cell(sheet, row, 0, caption, register.caption)
        for j, column in enumerate(columns, start=1):
            register.cell(sheet, row + 1, j, column, register.caption)
        for i, label in enumerate(shown_rows, start=row + 2):
            register.cell(sheet, i, 0, label, register.caption)
            for j, column in enumerate(columns, start=1):
                level = grid[grid_rows.index(label)][columns.index(column)]
                names = marks.get((label, column), [])
                style = register.book.add_format({"bg_color": colours[level], "text_wrap": True, "valign": "top",
                                                  "border": 5 if names else 1, "bold": bool(names)})
                register.cell(sheet, i, j, "\n".join([level, *(f"● {name}" for name in names)]), style)
            sheet.set_row(i, 48)
        row += len(shown_rows) + 3
    register.cell(sheet, row, 0, "Modules", register.caption)
    for i, (module_id, record) in enumerate(modules.items(), start=row + 1):
        register.cell(sheet, i, 0, record["register"]["short_name"])
        register.cell(sheet, i, 1, record["title"])
        if not any(record["register"]["positions"].values()):
            register.cell(sheet, i, 2, "not placed: its position would reveal a confidential rating")
    sheet.set_column(0, 0, 22)
    sheet.set_column(1, max(len(method.severity.labels), len(method.inherent.labels)), 18)
    sheet.freeze_panes(FIRST_ROW, 0)


def _module_sheet(register: _Register, record: Mapping[str, Any]) -> None:
    sheet = register.sheet(f"{record['register']['short_name']} {record['title']}")
    row, shown = FIRST_ROW, []
    for key, caption in BLOCKS.items():
        rows = record["register"][key]
        row = register.table(sheet, row, rows, caption=caption)
        shown += rows
    _widths(sheet, shown, style=register.text)
    sheet.freeze_panes(FIRST_ROW, 0)


def write_xlsx(path: Path, *, summary: Mapping[str, Any], methodology: Methodology) -> Path:
    """Write the risk register of one report folder's ``summary.json`` to ``path``.

    Parameters
    ----------
    path : Path
    summary : mapping
        ``summary.json`` as the pipeline writes it (redacted for a public build).
    methodology : Methodology
        The year's methodology: its matrices and colours (public by nature).
    """
    register = _Register(path, summary=summary, methodology=methodology)
    _ratings_sheet(register)
    _matrix_sheet(register)
    for record in summary["modules"].values():
        _module_sheet(register, record)
    register.close()
    return path
