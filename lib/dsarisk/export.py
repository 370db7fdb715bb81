"""Assemble executed notebooks into one self-contained HTML report.

The notebooks are merged with nbformat (cell ids made unique per notebook) and
exported once with nbconvert's HTMLExporter, code hidden. Plots are already
inline as base64 PNG; the template loads nothing from the network.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter
from nbconvert.preprocessors import TagRemovePreprocessor

TEMPLATES_DIR = Path(__file__).parent / "templates"
REMOVE_TAG = "remove_cell"


@dataclass(frozen=True)
class Section:
    """One executed notebook and how the report names it."""

    anchor: str
    title: str
    notebook: Path


def _anchor_cell(section: Section, public: bool) -> nbformat.NotebookNode:
    mark = "Non-confidential version" if public else "Confidential: internal version"
    kind = "public" if public else "internal"
    return nbformat.v4.new_markdown_cell(
        f'<div class="dsarisk-section" id="{section.anchor}"></div>\n'
        f'<div class="dsarisk-version-mark {kind}">{html.escape(mark)}</div>'
    )


def merge(sections: Sequence[Section], *, title: str, public: bool) -> nbformat.NotebookNode:
    """One notebook holding a table of contents and then every section's cells."""
    merged = nbformat.v4.new_notebook()
    first = nbformat.read(sections[0].notebook, as_version=4)
    merged.metadata = {"kernelspec": first.metadata.get("kernelspec", {}), "title": title,
                       "language_info": first.metadata.get("language_info", {})}
    links = "".join(f'<li><a href="#{s.anchor}">{html.escape(s.title)}</a></li>' for s in sections)
    merged.cells.append(nbformat.v4.new_markdown_cell(
        f"# {html.escape(title)}\n\n<nav class=\"dsarisk-toc\"><strong>Contents</strong><ol>{links}</ol></nav>"))
    for number, section in enumerate(sections):
        source = first if number == 0 else nbformat.read(section.notebook, as_version=4)
        merged.cells.append(_anchor_cell(section, public))
        for position, cell in enumerate(source.cells):
            cell = nbformat.from_dict(dict(cell))
            cell.id = f"section{number}-cell{position}"  # unique across notebooks, within nbformat's 64
            merged.cells.append(cell)
    nbformat.validate(merged)
    return merged


def to_html(notebook: nbformat.NotebookNode) -> str:
    """Export a notebook as one HTML page with code, prompts and tagged cells hidden."""
    exporter = HTMLExporter(
        template_name="dsarisk",
        extra_template_basedirs=[str(TEMPLATES_DIR)],
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        embed_images=False,
    )
    exporter.register_preprocessor(TagRemovePreprocessor(remove_cell_tags={REMOVE_TAG}, enabled=True), enabled=True)
    body, _ = exporter.from_notebook_node(notebook)
    return body


def write_report(sections: Sequence[Section], path: Path, *, title: str, public: bool) -> Path:
    """Merge ``sections`` and write the HTML report to ``path``."""
    path.write_text(to_html(merge(sections, title=title, public=public)), encoding="utf-8")
    return path
