"""Assemble executed notebooks into one self-contained HTML report.

Each executed notebook is rendered on its own (``render_section``) with nbconvert's
HTMLExporter, code hidden, so that the pipeline can render a notebook as soon as it
is done while others still run; ``write_report`` then places the sections, in report
order, into one page that holds the title, the table of contents and the styles.
Plots are already inline as base64 PNG; the templates load nothing from the network.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter
from nbconvert.preprocessors import TagRemovePreprocessor

from .exceptions import TemplateError
from .labels import version_label

TEMPLATES_DIR = Path(__file__).parent / "templates"
PAGE_TEMPLATE = "dsarisk"
SECTION_TEMPLATE = "dsarisk_section"
SECTIONS_MARK = "<!-- dsarisk:sections -->"  # written by the page template where the sections go
REMOVE_TAG = "remove_cell"


@dataclass(frozen=True)
class Section:
    """One executed notebook and how the report names it."""

    anchor: str
    title: str
    notebook: Path


@cache
def _exporter(template: str) -> HTMLExporter:
    exporter = HTMLExporter(
        template_name=template,
        extra_template_basedirs=[str(TEMPLATES_DIR)],
        extra_template_paths=[str(TEMPLATES_DIR)],  # lets one of our templates extend another
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        embed_images=False,
    )
    exporter.register_preprocessor(TagRemovePreprocessor(remove_cell_tags={REMOVE_TAG}, enabled=True), enabled=True)
    return exporter


def _html_cell(markup: str) -> nbformat.NotebookNode:
    """A cell that shows ``markup`` as HTML output. Markup that holds input text goes in this
    way, never as a markdown cell: nbconvert passes HTML outputs through, but would render
    markdown hidden in escaped text ([l](javascript:...), ![t](https://...)) as live links."""
    return nbformat.v4.new_code_cell(outputs=[nbformat.v4.new_output("display_data", data={"text/html": markup})])


def _anchor_cell(section: Section, public: bool) -> nbformat.NotebookNode:
    kind = "public" if public else "internal"
    return _html_cell(f'<div class="dsarisk-section" id="{html.escape(section.anchor)}"></div>\n'
                      f'<div class="dsarisk-version-mark {kind}">{html.escape(version_label(public))}</div>')


def render_section(section: Section, number: int, *, public: bool) -> str:
    """The HTML of one executed notebook, headed by its anchor and version mark: the
    visible outputs and markdown only, without the page around them.

    ``number`` is the section's position in the report; it makes cell ids unique
    across the sections of one page.
    """
    notebook = nbformat.read(section.notebook, as_version=4)
    notebook.cells.insert(0, _anchor_cell(section, public))
    for position, cell in enumerate(notebook.cells):
        cell.id = f"section{number}-cell{position}"
    body, _ = _exporter(SECTION_TEMPLATE).from_notebook_node(notebook)
    return _section_headings(body, section.anchor)


HEADING_ID = re.compile(r'(<h[1-6] id=")([^"]*)(")|(<a class="anchor-link" href="#)([^"]*)(")')


def _section_headings(body: str, anchor: str) -> str:
    """Heading ids and their pilcrow links prefixed with the section's anchor: every module
    section has a "Severity" heading, and a link to one must reach that module's."""
    return HEADING_ID.sub(lambda m: f"{m[1]}{anchor}-{m[2]}{m[3]}" if m[1] else f"{m[4]}{anchor}-{m[5]}{m[6]}", body)


class Report:
    """The report page of ``sections``: a title, a table of contents, then every section in
    order. Sections can be rendered one at a time, as their notebooks become ready."""

    def __init__(self, sections: Sequence[Section], *, title: str, public: bool) -> None:
        self.sections = list(sections)
        self.title = title
        self.public = public
        self._page: str | None = None
        self._bodies: dict[str, str] = {}
        self.seconds: dict[str, float] = {}  # rendering time of each section, by anchor

    def render(self, anchors: Iterable[str] | None = None) -> str:
        """Render the page and the sections named in ``anchors`` (all by default), each once;
        return the page around the sections."""
        if self._page is None:
            self._page = self._render_page()
        wanted = None if anchors is None else set(anchors)
        for number, section in enumerate(self.sections):
            if section.anchor not in self._bodies and (wanted is None or section.anchor in wanted):
                started = time.perf_counter()
                self._bodies[section.anchor] = render_section(section, number, public=self.public)
                self.seconds[section.anchor] = time.perf_counter() - started
        return self._page

    def write(self, path: Path) -> Path:
        """Render what is left and write the page to ``path``."""
        page = self.render()
        bodies = "".join(self._bodies[section.anchor] for section in self.sections)
        path.write_text(page.replace(SECTIONS_MARK, bodies), encoding="utf-8")
        return path

    def _render_page(self) -> str:
        links = "".join(f'<li><a href="#{html.escape(s.anchor)}">{html.escape(s.title)}</a></li>'
                        for s in self.sections)
        notebook = nbformat.v4.new_notebook(metadata={"title": self.title})
        notebook.cells.append(_html_cell(f"<h1>{html.escape(self.title)}</h1>\n"
                                         f"<nav class=\"dsarisk-toc\"><strong>Contents</strong><ol>{links}</ol></nav>"))
        page, _ = _exporter(PAGE_TEMPLATE).from_notebook_node(notebook)
        if page.count(SECTIONS_MARK) != 1:
            raise TemplateError(f"the {PAGE_TEMPLATE} report template must hold {SECTIONS_MARK} exactly once",
                                template=PAGE_TEMPLATE)
        return page
