"""The report printed to PDF with WeasyPrint: A4, paginated for print.

The PDF is the rendered ``report.html`` itself (so it shows exactly what the page shows)
with the page's screen stylesheets replaced by a print stylesheet written for paged
media: a running header with the platform, the year and the version mark on every page,
"page X of Y" at the foot, a table of contents whose page numbers come from
``target-counter``, each section on a new page, and no chart or table row split across
pages. WeasyPrint embeds (subsets of) the fonts it uses; its URL fetcher is replaced by one
that serves only the ``data:`` URLs the page inlines, so printing fetches nothing.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..exceptions import DsariskError
from ..labels import version_label

PRINT_CSS = """
@page {
  size: A4;
  margin: 20mm 14mm 16mm 14mm;
  @top-left { content: element(header-left); vertical-align: bottom; border-bottom: 0.5pt solid #90a4ae; }
  @top-right { content: element(header-right); vertical-align: bottom; border-bottom: 0.5pt solid #90a4ae; }
  @bottom-right { content: "page " counter(page) " of " counter(pages); font: 8pt "DejaVu Sans", sans-serif;
                  color: #455a64; }
}
html { font: 9pt/1.35 "DejaVu Sans", sans-serif; color: #212121; }
.dsarisk-running { font-size: 8pt; color: #455a64; padding-bottom: 1mm; }
.dsarisk-running.left { position: running(header-left); }
.dsarisk-running.right { position: running(header-right); text-align: right; font-weight: bold; }
.dsarisk-running.right.public { color: #1b5e20; }
.dsarisk-running.right.internal { color: #b71c1c; }
h1 { font-size: 16pt; margin: 0 0 3mm 0; }
h2 { font-size: 12pt; margin: 5mm 0 2mm 0; break-after: avoid; }
.jp-MarkdownCell { break-after: avoid; }  /* a heading cell stays with the output it introduces */
.jp-Collapser { display: none; }  /* empty, it would give a page break inside the next cell, after the heading */
h3, h4 { font-size: 10pt; break-after: avoid; }
a { color: inherit; text-decoration: none; }
nav.dsarisk-toc { border: 0.5pt solid #cfd8dc; background: #f5f7f8; padding: 2mm 6mm; }
nav.dsarisk-toc ol { padding-left: 6mm; }
nav.dsarisk-toc li { margin: 1mm 0; }
nav.dsarisk-toc a::after { content: leader(". ") target-counter(attr(href url), page); }
.dsarisk-section { break-before: page; }
.dsarisk-version-mark { text-align: right; font-size: 8pt; font-weight: bold; padding: 0.5mm 2mm; }
.dsarisk-version-mark.public { background: #e8f5e9; color: #1b5e20; }
.dsarisk-version-mark.internal { background: #ffebee; color: #b71c1c; }
.dsarisk-banner { break-inside: avoid; }
p.caption { margin: 3mm 0 1mm 0; break-after: avoid; }
table { border-collapse: collapse; width: 100%; font-size: 7.5pt; margin-bottom: 3mm; }
thead { display: table-header-group; }
tr, img, .jp-RenderedImage { break-inside: avoid; }
th { background: #eceff1; text-align: left; padding: 1mm 1.5mm; vertical-align: bottom; }
td { border-top: 0.5pt solid #cfd8dc; padding: 0.8mm 1.5mm; vertical-align: top; overflow-wrap: break-word; }
img { max-width: 100%; max-height: 230mm; display: block; margin: 2mm 0; }
pre { white-space: pre-wrap; font: 7.5pt "DejaVu Sans Mono", monospace; }
"""

_STYLE_OR_SCRIPT = re.compile(r"<(style|script)\b[^>]*>.*?</\1\s*>|<link\b[^>]*>", re.DOTALL | re.IGNORECASE)
_BODY = re.compile(r"<body\b[^>]*>", re.IGNORECASE)
_HEAD = re.compile(r"<head\b[^>]*>", re.IGNORECASE)
_HEADING_ID = re.compile(r"(<h[1-6])\s+id=\"[^\"]*\"")
_ANCHOR_LINK = re.compile(r'<a class="anchor-link" href="[^"]*">[^<]*</a>')


class ExportError(DsariskError):
    """An export could not be written (a missing system library, say)."""


def offline_fetcher() -> Any:
    """WeasyPrint's fetcher for ``data:`` URLs only, failing the print on any other: the
    report inlines every image, and a print must not reach the network (nor local files)."""
    from weasyprint.urls import URLFetcher

    return URLFetcher(allowed_protocols={"data"}, allow_redirects=False, fail_on_errors=True)


def print_html(page: str, *, summary: Mapping[str, Any]) -> str:
    """The report page made ready for print: screen styles and scripts out, the document
    metadata and the running header in."""
    public = summary["version"] == "non-confidential"
    mark = version_label(public)
    title = f"DSA systemic risk assessment {summary['year']}: {summary['platform']}"
    meta = "".join(f'<meta name="{name}" content="{html.escape(str(value), quote=True)}">'
                   for name, value in (("description", mark), ("author", summary["platform"]),
                                       ("keywords", f"DSA, systemic risk, {summary['year']}, {summary['version']}"),
                                       ("generator", "dsarisk")))
    running = (f'<div class="dsarisk-running left">{html.escape(str(summary["platform"]))} · {summary["year"]}</div>'
               f'<div class="dsarisk-running right {"public" if public else "internal"}">{html.escape(mark)}</div>')
    page = _STYLE_OR_SCRIPT.sub("", page)
    # each module repeats its headings: their ids (and the links to them) go, the sections' anchors stay
    page = _ANCHOR_LINK.sub("", _HEADING_ID.sub(r"\1", page))
    page = re.sub(r"<title>.*?</title>", lambda _: f"<title>{html.escape(title)}</title>", page, count=1,
                  flags=re.DOTALL)
    page = _HEAD.sub(lambda m: m.group(0) + meta, page, count=1)
    return _BODY.sub(lambda m: m.group(0) + running, page, count=1)


def write_pdf(path: Path, *, html: Path, summary: Mapping[str, Any]) -> Path:
    """Print the report page ``html`` to ``path`` (A4).

    Parameters
    ----------
    path : Path
    html : Path
        The folder's ``report.html``.
    summary : mapping
        The folder's ``summary.json``: platform, year and version for the header and metadata.

    Raises
    ------
    ExportError
        When WeasyPrint cannot load its system libraries (pango), or the page refers to
        anything but inline ``data:`` URLs.
    """
    try:
        import weasyprint
    except OSError as exc:  # WeasyPrint loads pango through cffi at import
        raise ExportError(f"the PDF export needs pango (Debian: apt-get install libpango-1.0-0 "
                          f"libpangoft2-1.0-0 fonts-dejavu-core): {exc}") from None
    fetcher = offline_fetcher()
    document = weasyprint.HTML(string=print_html(html.read_text(encoding="utf-8"), summary=summary),
                               url_fetcher=fetcher)
    try:
        document.write_pdf(path, stylesheets=[weasyprint.CSS(string=PRINT_CSS, url_fetcher=fetcher)])
    except weasyprint.urls.FatalURLFetchingError as exc:
        raise ExportError(f"the PDF export fetches nothing, and the report asked for a resource: {exc}") from None
    return path
