"""Heatmaps and charts. Every function returns a matplotlib Figure and leaves showing it
to the caller: the library never calls ``plt.show()`` nor picks a backend.

Figures are built with :class:`matplotlib.figure.Figure` directly, not through pyplot,
so none is kept in pyplot's global registry and none is shown twice in a notebook.

Every text drawn comes from data (module titles, methodology labels, statements-of-reasons
platform names) and is drawn literally: ``$`` is escaped so that it never starts mathtext,
and TeX is off whatever the user's matplotlibrc says (:func:`literal`, :func:`plain_text`).
"""

from __future__ import annotations

import functools
import textwrap
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib import rc_context
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from . import scoring
from .methodology import Methodology
from .sources import sor
from .values import REDACTED

PLAIN_TEXT = {"text.usetex": False}
_Function = TypeVar("_Function", bound=Callable[..., Any])


def literal(text: object) -> str:
    """``text`` as matplotlib draws it literally: an unescaped ``$`` would start mathtext
    (and a malformed formula fails the drawing); matplotlib prints ``\\$`` as ``$``."""
    return str(text).replace("$", r"\$")


def _literal_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A frame whose index and column names pandas' plotting draws literally."""
    return frame.rename(index=literal, columns=literal)


def plain_text(function: _Function) -> _Function:
    """Build the figure with TeX off, whatever the user's matplotlibrc says."""
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with rc_context(PLAIN_TEXT):
            return function(*args, **kwargs)
    return wrapper  # type: ignore[return-value]


_FALLBACK_COLORS = ["#2e7d32", "#9ccc65", "#fdd835", "#fb8c00", "#c62828", "#6a1b9a", "#212121"]


def level_colors(method: Methodology, scale: str, levels: Sequence[str]) -> list[str]:
    return [method.color_of(scale, level) or _FALLBACK_COLORS[i % len(_FALLBACK_COLORS)]  # type: ignore[arg-type]
            for i, level in enumerate(levels)]


class _MatrixPlotter:
    """Draws a level grid as a coloured heatmap, with marked cells.

    The modules in a cell are listed by short label, wrapped to the cell's width (a label is
    never split), and each row is as tall as its most crowded cell: with 32 modules in one
    cell nothing overlaps and the other rows stay compact.
    """

    FONT_SIZE = 8.5
    LINE_INCHES = 0.16  # one line of text at FONT_SIZE, with leading
    CHAR_INCHES = 0.068  # a mean character of the default sans-serif at FONT_SIZE
    CELL_INCHES = 1.45

    def __init__(self, *, grid: list[list[str]], rows: Sequence[str], columns: Sequence[str],
                 levels: Sequence[str], colors: Sequence[str]) -> None:
        self.grid, self.rows, self.columns, self.levels, self.colors = grid, list(rows), list(columns), list(levels), colors

    def _cell_text(self, level: str, names: Sequence[str]) -> str:
        if not names:
            return level
        width = max(6, int((self.CELL_INCHES - 0.15) / self.CHAR_INCHES))
        listed = textwrap.wrap(", ".join(names), width=width, break_long_words=False, break_on_hyphens=False)
        return "\n".join([level, *listed])

    def plot(self, *, marks: Mapping[tuple[str, str], Sequence[str]], title: str, xlabel: str, ylabel: str) -> Figure:
        shown_rows = self.rows[::-1]  # the highest row on top, as risk matrices are read
        texts = [[self._cell_text(cell, marks.get((row, column), []))
                  for column, cell in zip(self.columns, self.grid[self.rows.index(row)])] for row in shown_rows]
        lines = [max(2, *(text.count("\n") + 1 for text in row)) for row in texts]
        heights = [self.LINE_INCHES * n + 0.2 for n in lines]
        edges = np.concatenate([[0.0], np.cumsum(heights)])
        positions = np.array([[self.levels.index(cell) for cell in self.grid[self.rows.index(r)]] for r in shown_rows])
        figure = Figure(figsize=(self.CELL_INCHES * len(self.columns) + 2.2, edges[-1] + 1.3), layout="constrained")
        ax = figure.add_subplot()
        ax.pcolormesh(np.arange(len(self.columns) + 1), edges, positions, cmap=ListedColormap(self.colors),
                      vmin=-0.5, vmax=len(self.levels) - 0.5, edgecolors="white", linewidth=1.5)
        for i, row in enumerate(texts):
            middle = (edges[i] + edges[i + 1]) / 2
            for j, text in enumerate(row):
                ax.text(j + 0.5, middle, literal(text), ha="center", va="center", fontsize=self.FONT_SIZE, color="black")
        for (row, column) in marks:
            i = shown_rows.index(row)
            ax.add_patch(Rectangle((self.columns.index(column), edges[i]), 1, heights[i],
                                   fill=False, edgecolor="black", linewidth=3.5))
        ax.set_xlim(0, len(self.columns))
        ax.set_ylim(edges[-1], 0)
        ax.set_xticks(np.arange(len(self.columns)) + 0.5, [literal(c) for c in self.columns])
        ax.set_yticks((edges[:-1] + edges[1:]) / 2, [literal(r) for r in shown_rows])
        ax.tick_params(length=0)
        for spine in ax.spines.values():
            spine.set_visible(False)
        ax.set_title(literal(title), fontsize=11, loc="left")
        ax.set_xlabel(literal(xlabel))
        ax.set_ylabel(literal(ylabel))
        return figure


def _grouped(marks: Mapping[str, tuple[str, str]]) -> dict[tuple[str, str], list[str]]:
    cells: dict[tuple[str, str], list[str]] = defaultdict(list)
    for name, cell in marks.items():
        cells[cell].append(name)
    return cells


def inherent_grid(method: Methodology) -> list[list[str]]:
    """The inherent level of every (probability, severity) cell, whatever the method."""
    return [[scoring.inherent(method, scoring.probability(method, label=p), scoring.severity(method, score=s)).level
             for s in range(1, len(method.severity.labels) + 1)] for p in method.probability.labels]


def residual_grid(method: Methodology) -> list[list[str]]:
    """The residual level of every (effectiveness, inherent) cell.

    For a ``reduction`` residual a row is scored at its band's lower bound, the
    weakest effectiveness the row admits.
    """
    rows = []
    for band in method.effectiveness.levels:
        effectiveness = scoring.EffectivenessResult(level=band.label, pct=band.min, factor=band.factor)
        rows.append([scoring.residual(method, level, effectiveness, inherent_score=_top_score(method, level)).level
                     for level in method.inherent.labels])
    return rows


def _top_score(method: Methodology, inherent_level: str) -> int | None:
    """The highest probability x severity product that lands in ``inherent_level``."""
    if method.inherent.method != "product":
        return None
    products = [p * s for p in range(1, len(method.probability.labels) + 1)
                for s in range(1, len(method.severity.labels) + 1)]
    inside = [score for score in products if scoring.band_for(score, method.inherent.bands).label == inherent_level]  # type: ignore[arg-type]
    return max(inside) if inside else None


@plain_text
def inherent_heatmap(method: Methodology, *, marks: Mapping[str, tuple[str, str]], title: str = "Inherent risk") -> Figure:
    """The inherent matrix with each named module placed at its (probability, severity) cell.

    Parameters
    ----------
    method : Methodology
    marks : mapping of name to (probability label, severity label)
    title : str
    """
    plotter = _MatrixPlotter(grid=inherent_grid(method), rows=method.probability.labels,
                             columns=method.severity.labels, levels=method.inherent.labels,
                             colors=level_colors(method, "inherent", method.inherent.labels))
    return plotter.plot(marks=_grouped(marks), title=title, xlabel="Severity", ylabel="Probability")


@plain_text
def residual_heatmap(method: Methodology, *, marks: Mapping[str, tuple[str, str]], title: str = "Residual risk") -> Figure:
    """The residual matrix with each named module placed at its (effectiveness, inherent) cell."""
    # strongest first, so that the weakest effectiveness (the riskiest row) is drawn on top
    plotter = _MatrixPlotter(grid=residual_grid(method)[::-1], rows=method.effectiveness.labels[::-1],
                             columns=method.inherent.labels, levels=method.residual.labels,
                             colors=level_colors(method, "residual", method.residual.labels))
    return plotter.plot(marks=_grouped(marks), title=title, xlabel="Inherent risk",
                        ylabel="Mitigation effectiveness")


def post_control_grid(method: Methodology) -> list[list[str]]:
    """The residual level of every (post-control probability, post-control severity) cell."""
    inherent = method.inherent.labels[0]  # carried along only; it does not feed the residual
    return [[scoring.post_control_residual(method, scoring.probability(method, label=p),
                                           scoring.severity(method, score=s), inherent_level=inherent).level
             for s in range(1, len(method.severity.labels) + 1)] for p in method.probability.labels]


@plain_text
def post_control_heatmap(method: Methodology, *, marks: Mapping[str, tuple[str, str]],
                         title: str = "Residual risk") -> Figure:
    """The post-control residual matrix with each named module placed at its (post-control
    probability, post-control severity) cell."""
    plotter = _MatrixPlotter(grid=post_control_grid(method), rows=method.probability.labels,
                             columns=method.severity.labels, levels=method.residual.labels,
                             colors=level_colors(method, "residual", method.residual.labels))
    return plotter.plot(marks=_grouped(marks), title=title, xlabel="Post-control severity",
                        ylabel="Post-control probability")


@plain_text
def questionnaire_chart(method: Methodology, *, maturity_counts: Mapping[str, int],
                        area_pct: Mapping[str, float], overall_pct: float, title: str,
                        hide_values: bool = False) -> Figure:
    """Two panels: how many answers sit at each maturity level, and the score of each area
    against the effectiveness bands. ``hide_values`` draws the axes and bands without any
    bar, line or number, for a public version where the scores are confidential."""
    figure = Figure(figsize=(11, 3.6), layout="constrained")
    left, right = figure.subplots(1, 2, width_ratios=[1, 1.5])
    labels = [m.label for m in method.maturity]
    counts = [0 if hide_values else maturity_counts.get(label, 0) for label in labels]
    left.bar([literal(label) for label in labels], counts, color=sns.color_palette("Blues", len(labels)))
    left.set_title("Answers per maturity level", fontsize=10, loc="left")
    left.set_ylabel("answers")
    left.tick_params(axis="x", rotation=20)
    areas = list(area_pct)[::-1]
    right.barh([literal(a) for a in areas], [0 if hide_values else area_pct[a] for a in areas], color="#5c6bc0")
    for band in method.effectiveness.levels[1:]:
        right.axvline(band.min, color="grey", linestyle=":", linewidth=1)
        right.text(band.min, len(areas) - 0.4, f" {literal(band.label)}", fontsize=7, color="grey", va="bottom")
    right.set_xlim(0, 100)
    right.set_xlabel("score (%)")
    if hide_values:
        for ax in (left, right):
            ax.text(0.5, 0.5, REDACTED, transform=ax.transAxes, ha="center", va="center", fontsize=12, color="grey")
        right.set_title("Score by measure area", fontsize=10, loc="left", pad=14)
    else:
        right.axvline(overall_pct, color="black", linewidth=1.5)
        right.set_title(f"Score by measure area (overall {overall_pct:.1f} %)", fontsize=10, loc="left", pad=14)
    figure.suptitle(literal(title), fontsize=11, x=0.01, ha="left")
    return figure


def _share_bars(ax, frame: pd.DataFrame, *, title: str) -> None:
    _literal_frame(frame).plot.barh(ax=ax)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=len(frame.columns))
    ax.set_xlim(0, 100)
    ax.set_xlabel("share of statements (%)")
    ax.set_title(literal(title), loc="left", fontsize=10)


@plain_text
def sor_trend_chart(table: pd.DataFrame, *, platform: str) -> Figure:
    """One platform's statements per month and module, with the own-initiative and automated
    detection shares beside them."""
    rows = table[table["platform"] == platform]
    figure = Figure(figsize=(11, 3.8), layout="constrained")
    left, right = figure.subplots(1, 2)
    pivot = rows.pivot_table(index="month", columns="module", values="statements", aggfunc="sum").fillna(0)
    pivot = _literal_frame(pivot)
    pivot.reset_index(drop=True).plot(ax=left, marker="o")
    left.set_xticks(range(len(pivot)), pivot.index)
    left.set_title(literal(f"{platform}: statements per month"), loc="left", fontsize=10)
    left.set_ylabel("statements")
    left.legend(fontsize=7)
    _share_bars(right, sor.shares(rows, "module")[["own initiative", "automated detection"]],
                title="Proactive and automated shares by module")
    return figure


@plain_text
def sor_platform_chart(table: pd.DataFrame, *, module: str) -> Figure:
    """Platforms side by side for one module: statements, own-initiative and automation shares."""
    by_platform = sor.shares(table[table["module"] == module], "platform")
    figure = Figure(figsize=(11, 3.6), layout="constrained")
    left, right = figure.subplots(1, 2)
    _literal_frame(by_platform)["statements"].sort_values().plot.barh(ax=left, color="#5c6bc0")
    left.set_title(literal(f"{module}: statements by platform"), loc="left", fontsize=10)
    _share_bars(right, by_platform[["own initiative", "automated detection", "fully automated decision"]],
                title="Shares by platform")
    return figure
