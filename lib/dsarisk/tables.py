"""Tables and text for notebooks: formatting, redaction and HTML escaping.

Everything that comes from an input file is escaped here, because nbconvert's
sanitiser would strip the table markup the report needs.
"""

from __future__ import annotations

import html
import io
import re
from collections.abc import Iterable, Sequence

import pandas as pd
from matplotlib.figure import Figure

from .confidentiality import shown
from .values import REDACTED, Value


class Html:
    """A fragment of trusted HTML that Jupyter displays as such."""

    def __init__(self, markup: str) -> None:
        self.markup = markup

    def _repr_html_(self) -> str:
        return self.markup

    def __repr__(self) -> str:
        # the text/plain twin of the HTML: deterministic, unlike an object address
        text = html.unescape(re.sub(r"<[^>]+>", " ", self.markup))
        return re.sub(r"\s+", " ", text).strip()

    def __str__(self) -> str:
        return self.markup


class Chart:
    """A Figure with its alternative text, displayed as a PNG that carries the text along
    (the report's template writes it into the image's ``alt``)."""

    def __init__(self, figure: Figure, *, alt: str) -> None:
        self.figure = figure
        self.alt = alt

    def __repr__(self) -> str:
        return self.alt

    def _repr_png_(self) -> tuple[bytes, dict[str, str]]:
        from matplotlib import rc_context

        from .plots import PLAIN_TEXT  # drawing creates tick labels: TeX stays off for them too

        buffer = io.BytesIO()
        with rc_context(PLAIN_TEXT):
            self.figure.savefig(buffer, format="png", dpi=80)
        return buffer.getvalue(), {"alt": self.alt}


def esc(text: object) -> str:
    """Escape any text for HTML (input-derived text is never trusted)."""
    return html.escape(str(text), quote=True)


def fmt(value: Value | float | int | None, *, public: bool, decimals: int | None = None, unit: str = "") -> str:
    """Format a number for display; a confidential Value in a public rendering is redacted.

    Whole numbers get thousands separators; ``decimals`` fixes the precision.
    """
    if value is None:
        return "–"
    if not shown(value, public=public):
        return REDACTED
    number = value.value if isinstance(value, Value) else float(value)
    if decimals is None:
        text = f"{number:,.0f}" if float(number).is_integer() else f"{number:,.2f}"
    else:
        text = f"{number:,.{decimals}f}"
    suffix = "" if not unit or unit == "items" else (f" {unit}" if unit != "%" else " %")
    return text + suffix


def render_parts(parts: Iterable[str | Value], *, public: bool) -> str:
    """Join text and values into escaped HTML, redacting confidential values when public."""
    return "".join(esc(part) if isinstance(part, str) else esc(fmt(part, public=public)) for part in parts)


def table(frame: pd.DataFrame, *, caption: str | None = None, classes: str = "dsarisk") -> Html:
    """Render a DataFrame as escaped HTML (cell text is escaped by pandas)."""
    markup = frame.to_html(index=False, escape=True, border=0, classes=classes, na_rep="–")
    if caption:
        markup = f"<p class='caption'><strong>{esc(caption)}</strong></p>" + markup
    return Html(markup)


def paragraph(text: str, *, heading: str | None = None) -> Html:
    """An escaped paragraph with an optional bold lead-in."""
    lead = f"<strong>{esc(heading)}</strong> " if heading else ""
    return Html(f"<p>{lead}{esc(text)}</p>")


def banner(text: str, *, kind: str) -> Html:
    """A coloured box: ``ok``, ``warn`` or ``error``."""
    colours = {"ok": ("#e8f5e9", "#2e7d32"), "warn": ("#fff8e1", "#f9a825"), "error": ("#ffebee", "#c62828")}
    background, border = colours[kind]
    return Html(
        f"<div class='dsarisk-banner dsarisk-{kind}' style='background:{background};border-left:6px solid "
        f"{border};padding:0.6em 1em;margin:0.5em 0'>{text}</div>"
    )


def bullet_list(items: Sequence[str]) -> Html:
    """An escaped bulleted list."""
    return Html("<ul>" + "".join(f"<li>{esc(item)}</li>" for item in items) + "</ul>")
