"""How a summary is cut into panels and drawn on a figure, shared so that bar and trend figures agree.

One panel per case (checkpoint × task and whatever else varies), the same cache order,
scale and path colours in every figure, so a reader can look from one to the next.
Figures are built with matplotlib's object API (no pyplot), which leaves a notebook's
chosen backend alone and needs no display.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loadbench.results.analysis.tables import CACHE_RANK, per_machine

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "Facet",
    "cache_order",
    "empty_panel",
    "figure_grid",
    "largest",
    "path_color",
    "png_bytes",
    "split_facets",
]

_PATH_COLORS = {"base": "#1f77b4", "task": "#ff7f0e", "custom": "#2ca02c", "pipeline": "#d62728"}
_EXTRA_COLORS = ("#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
_MAX_COLUMNS = 4


@dataclass(frozen=True)
class Facet:
    """One panel: its title and the summary rows it draws."""

    title: str
    rows: Any  # the summary rows of this facet (a DataFrame)
    by_key: dict[tuple[str, str, str], Any]  # (metric, path, cache) -> summary row; filtering per bar is slow


def split_facets(summary: pd.DataFrame, across: str | None = None) -> list[Facet]:
    """One panel per checkpoint × task (× dtype, device when they vary; × machine when a run was spread
    over unlike machines, whose bars must not land on one another), in reading order. ``across``: a key
    the panel's x axis spans, so not a panel of its own."""
    keys = ["checkpoint", "task"] + [k for k in ("env", "dtype", "device", "options")
                                     if k != across and k in summary and summary[k].nunique() > 1]
    keys += per_machine(summary)
    out = []
    for key, rows in summary.sort_values(keys, kind="stable").groupby(keys, sort=False, dropna=False):
        values = [str(k) for k in key]
        by_key = {(r.metric, r.path, r.cache): r for r in rows.itertuples(index=False)}
        out.append(Facet(values[0] + "\n" + " · ".join(values[1:]), rows, by_key))
    return out


def cache_order(summary: pd.DataFrame) -> list[str]:
    """The summary's page-cache states, warm before cold, in every figure alike."""
    return sorted(dict.fromkeys(summary["cache"]), key=lambda c: (CACHE_RANK.get(c, len(CACHE_RANK)), c))


def figure_grid(n_rows: int, n_facets: int, row_height: float = 3.0) -> tuple[Figure, list[list[Axes]]]:
    """A figure of ``n_rows`` metric rows × ``n_facets`` panels, wrapped at a few columns; axes[row][facet]."""

    from matplotlib.figure import Figure

    columns = max(1, min(n_facets, _MAX_COLUMNS))
    wraps = math.ceil(n_facets / columns)
    fig = Figure(figsize=(4.2 * columns + 0.6, row_height * n_rows * wraps + 0.9), dpi=100,
                 layout="constrained")
    grid = fig.subplots(n_rows * wraps, columns, squeeze=False)
    # axes[row][facet]: rows are metrics, facets wrap onto further row blocks.
    axes = [[grid[(i // columns) * n_rows + r][i % columns] for i in range(n_facets)] for r in range(n_rows)]
    for i in range(n_facets, wraps * columns):
        for r in range(n_rows):
            grid[(i // columns) * n_rows + r][i % columns].set_visible(False)
    return fig, axes


def empty_panel(ax: Axes, what: str) -> None:
    """Say on a panel that no path measured ``what``, rather than leave it blank."""
    ax.text(0.5, 0.5, f"no path measured\n{what}", transform=ax.transAxes, ha="center", va="center",
            fontsize=9, color="#777777")
    ax.set_yticks([])


def largest(summary: pd.DataFrame, metrics: Sequence[str]) -> float:
    """The top of the metrics' whiskers (or medians) over all panels, which picks one unit for the axis."""
    rows = summary[summary["metric"].isin(list(metrics)) & (summary["status"] == "ok")]
    return float(rows[["median", "q3"]].max().max()) if len(rows) else 0.0


def path_color(path: str) -> str:
    """The path's colour, the same in every figure."""
    if path in _PATH_COLORS:
        return _PATH_COLORS[path]
    # Stable across processes (str hash() is salted), so a path keeps its colour.
    return _EXTRA_COLORS[sum(map(ord, path)) % len(_EXTRA_COLORS)]


def png_bytes(fig: Figure, dpi: int = 100) -> bytes:
    """The figure as PNG bytes (for embedding); does not keep the figure open anywhere."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()
