"""Exports of a year's report for reviewers and auditors, beside ``report.html``.

Every export is built from what the report folder already holds, never from the inputs:
the records of ``summary.json`` (redacted by the notebooks exactly as the HTML is) and the
rendered ``report.html``. A public build's exports therefore carry what its HTML carries.

- ``ratings.csv``: one row per module, always written beside ``summary.json``;
- ``report.xlsx``: the risk register (:mod:`dsarisk.exports.xlsx`);
- ``report.pdf``: the report, paginated for print (:mod:`dsarisk.exports.pdf`).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..exceptions import InputError
from ..methodology import Methodology
from ..values import REDACTED

FORMATS = ("html", "xlsx", "pdf")
#: a text cell starting with one of these is read as a formula by spreadsheet programs
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def export_formats(formats: str | Iterable[str]) -> tuple[str, ...]:
    """The report formats asked for, ``html`` first (the page the PDF is printed from).

    Parameters
    ----------
    formats : str or iterable of str
        Comma-separated text (``"html,xlsx,pdf"``) or the names.

    Raises
    ------
    InputError
        When a name is not one of :data:`FORMATS`.
    """
    names = [name.strip().lower() for name in (formats.split(",") if isinstance(formats, str) else formats)]
    unknown = [name for name in names if name not in FORMATS]
    if unknown:
        raise InputError(f"unknown format(s) {', '.join(map(repr, unknown))}; choose from {', '.join(FORMATS)}",
                         field="formats")
    return tuple(name for name in FORMATS if name in names or name == "html")


def is_formula_like(text: str) -> bool:
    """Whether a spreadsheet program would evaluate ``text`` typed into a cell."""
    return text.startswith(FORMULA_TRIGGERS)


def csv_safe(value: Any) -> Any:
    """A CSV field that no spreadsheet evaluates: formula-like text gets a leading apostrophe
    (the OWASP advice for CSV injection); numbers and other text pass unchanged."""
    return f"'{value}" if isinstance(value, str) and is_formula_like(value) else value


def ratings_rows(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per module from ``summary.json``: computed, published and last year's ratings.

    A rating the public build hides is null in the summary and the redaction mark here.
    """
    public = summary["version"] == "non-confidential"

    def computed(value: Any) -> Any:
        return REDACTED if value is None and public else value

    rows = []
    for module_id, record in summary["modules"].items():
        previous = record.get("previous") or {}
        change = previous.get("change") or {}
        rows.append({
            "Module": record["title"], "Module id": module_id,
            "Probability": computed(record["probability"]["level"]),
            "Rate": computed(record["probability"]["rate_pct"]), "Rate unit": record["probability"]["unit"],
            "Severity": computed(record["severity"]["level"]), "Severity score": computed(record["severity"]["score"]),
            "Inherent": record["inherent"],
            "Effectiveness %": computed(record["effectiveness"]["pct"]),
            "Effectiveness band": computed(record["effectiveness"]["level"]),
            "Residual": record["residual"],
            "Published inherent": record["published"]["inherent"],
            "Published effectiveness %": record["published"]["effectiveness_pct"],
            "Published residual": record["published"]["residual"],
            "Matches published": "yes" if record["matches_published"] else "no",
            "Previous year": previous.get("year"), "Previous inherent": previous.get("inherent"),
            "Previous residual": previous.get("residual"),
            "Inherent change": change.get("inherent"), "Residual change": change.get("residual"),
            "Findings": record["findings"],
        })
    return rows


def write_ratings_csv(path: Path, summary: Mapping[str, Any]) -> Path:
    """Write :func:`ratings_rows` as UTF-8 CSV, formula-like text neutralised."""
    rows = ratings_rows(summary)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["Module"])
        writer.writeheader()
        writer.writerows({key: csv_safe(value) for key, value in row.items()} for row in rows)
    return path


def write_exports(folder: Path, *, summary: Mapping[str, Any], methodology: Methodology,
                  formats: Iterable[str]) -> list[Path]:
    """Write ``ratings.csv`` and the exports in ``formats`` (besides html) into ``folder``,
    which already holds ``report.html``; return the files written."""
    written = [write_ratings_csv(folder / "ratings.csv", summary)]
    if "xlsx" in formats:
        from .xlsx import write_xlsx  # XlsxWriter is imported only when asked for

        written.append(write_xlsx(folder / "report.xlsx", summary=summary, methodology=methodology))
    if "pdf" in formats:
        from .pdf import write_pdf  # WeasyPrint takes a second to import and needs pango

        written.append(write_pdf(folder / "report.pdf", html=folder / "report.html", summary=summary))
    return written


__all__ = ["FORMATS", "csv_safe", "export_formats", "is_formula_like", "ratings_rows", "write_exports",
           "write_ratings_csv"]
