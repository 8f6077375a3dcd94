"""Figures of one run's summary path by path: load time by phase, peak memory, tokens/s.

Every bar is a median and every whisker the interquartile range of the same
measured samples, so a plot never shows more certainty than the numbers have.
A bar that is missing says why (n/a, FAILED, —), since an empty slot reads as zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from loadbench.results.analysis.metrics import axis_scale
from loadbench.results.analysis.tables import ordered_paths
from loadbench.results.report.plots.panels import (
    Facet,
    cache_order,
    empty_panel,
    figure_grid,
    largest,
    path_color,
    split_facets,
)

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "LOAD_PHASES",
    "THROUGHPUT_METRICS",
    "load_time_figure",
    "memory_figure",
    "throughput_figure",
]

# Exclusive parts of load_s, bottom of the stack first.
LOAD_PHASES: tuple[tuple[str, str], ...] = (
    ("config_s", "config"), ("tokenizer_s", "tokenizer"), ("weights_s", "weights"),
    ("to_device_s", "to device"), ("load_other_s", "other"),
)
MEMORY_METRICS: tuple[tuple[str, str], ...] = (
    ("load_added_rss_bytes", "RSS the load adds"), ("peak_rss_bytes", "peak RSS"),
    ("gpu_load_added_bytes", "GPU memory the load adds"), ("gpu_peak_used_bytes", "peak GPU memory"),
)
THROUGHPUT_METRICS: tuple[tuple[str, str], ...] = (
    ("decode_tokens_per_s", "decode"), ("forward_tokens_per_s", "forward"),
)
_PHASE_COLORS = ("#9ecae1", "#fdae6b", "#3182bd", "#a1d99b", "#bdbdbd")


def _row(facet: Facet, metric: str, path: str, cache: str) -> Any | None:
    """The summary row, or for a path whose load did not succeed, the load_s row that says why."""
    row = facet.by_key.get((metric, path, cache))
    if row is None:
        load = facet.by_key.get(("load_s", path, cache))
        if load is not None and load.status != "ok":
            return load
    return row


def _placeholder(ax: Axes, x: float, row: Any | None) -> None:
    """Say on the plot why a bar is missing: an empty slot reads as zero."""
    if row is None:
        # The path does not produce this metric (the table's "—").
        ax.text(x, 0.02, "—", transform=ax.get_xaxis_transform(), ha="center", va="bottom", fontsize=9,
                color="#999999")
        return
    text, color = ("FAILED", "#c0392b") if row.status == "failed" else ("n/a", "#777777")
    ax.text(x, 0.02, text, transform=ax.get_xaxis_transform(), rotation=90, ha="center", va="bottom",
            fontsize=8, color=color)


def _whiskers(ax: Axes, points: list[tuple[float, Any]], factor: float) -> None:
    """IQR whiskers at (x, summary row) points with two or more samples, drawn in one call."""
    points = [(x, row) for x, row in points if row.n >= 2]
    if not points:
        return
    xs = [x for x, _ in points]
    medians = [row.median / factor for _, row in points]
    below = [(row.median - row.q1) / factor for _, row in points]
    above = [(row.q3 - row.median) / factor for _, row in points]
    ax.errorbar(xs, medians, yerr=[below, above], fmt="none", ecolor="black", elinewidth=1, capsize=3)


def _slots(n_paths: int, n_caches: int) -> tuple[list[list[float]], float]:
    width = 0.8 / n_caches
    return [[p - 0.4 + width * (c + 0.5) for c in range(n_caches)] for p in range(n_paths)], width * 0.92


def _style_axis(ax: Axes, paths: Sequence[str], unit_label: str, title: str | None) -> None:
    ax.set_xticks(range(len(paths)), paths, fontsize=9)
    ax.set_ylabel(unit_label, fontsize=9)
    ax.tick_params(axis="y", labelsize=8)
    ax.grid(axis="y", color="#e0e0e0", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.spines[["top", "right"]].set_visible(False)
    if title:
        ax.set_title(title, fontsize=10)


def _cache_legend(caches: Sequence[str]) -> list[Any]:
    from matplotlib.patches import Patch

    if len(caches) < 2:
        return []
    return [Patch(facecolor="white", edgecolor="#444444", hatch="" if i == 0 else "///", label=f"{c} cache")
            for i, c in enumerate(caches)]


def _hatch(cache_index: int) -> str:
    return "" if cache_index == 0 else "///"


def load_time_figure(summary: pd.DataFrame) -> Figure | None:
    """Load time per path, stacked by phase; whisker: load_s median with its IQR.

    One panel per checkpoint; with warm and cold cache, the cold bar (hatched)
    stands right of the warm one. None when no case measured load_s.
    """
    from matplotlib.patches import Patch

    if not (summary["metric"].eq("load_s") & summary["status"].eq("ok")).any():
        return None
    facets, caches = split_facets(summary), cache_order(summary)
    factor, label = axis_scale("s", largest(summary, ["load_s"]))
    fig, axes = figure_grid(1, len(facets), row_height=3.4)
    for ax, facet in zip(axes[0], facets):
        paths = ordered_paths(facet.rows["path"])
        slots, width = _slots(len(paths), len(caches))
        totals: list[tuple[float, Any]] = []
        for c, cache in enumerate(caches):
            # One bar() call per phase and cache: per-bar calls make big reports slow.
            xs, stacks = [], []
            for p, path in enumerate(paths):
                x, total = slots[p][c], _row(facet, "load_s", path, cache)
                if total is None or total.status != "ok":
                    _placeholder(ax, x, total)
                    continue
                phases = [_row(facet, metric, path, cache) for metric, _ in LOAD_PHASES]
                xs.append(x)
                stacks.append([r.median / factor if r is not None and r.status == "ok" else 0.0 for r in phases])
                totals.append((x, total))
            bottom = [0.0] * len(xs)
            for i, color in enumerate(_PHASE_COLORS):
                heights = [stack[i] for stack in stacks]
                ax.bar(xs, heights, width, bottom=bottom, color=color, edgecolor="#555555", linewidth=0.4,
                       hatch=_hatch(c))
                bottom = [b + h for b, h in zip(bottom, heights)]
        if totals:
            ax.hlines([t.median / factor for _, t in totals], [x - width / 2 for x, _ in totals],
                      [x + width / 2 for x, _ in totals], color="black", linewidth=1.2)
        _whiskers(ax, totals, factor)
        _style_axis(ax, paths, f"load time ({label})", facet.title)
    handles = [Patch(facecolor=c, edgecolor="#555555", label=name) for (_, name), c in zip(LOAD_PHASES, _PHASE_COLORS)]
    fig.legend(handles=handles + _cache_legend(caches), loc="outside lower center",
               ncols=len(handles) + len(caches), fontsize=8, frameon=False)
    return fig


def _bars_figure(summary: pd.DataFrame, metrics: Sequence[tuple[str, str]]) -> Figure | None:
    """Rows of simple bars, one row per metric that any case measured."""
    present = [(m, name) for m, name in metrics
               if (summary["metric"].eq(m) & summary["status"].eq("ok")).any()]
    if not present:
        return None
    facets, caches = split_facets(summary), cache_order(summary)
    fig, axes = figure_grid(len(present), len(facets))
    for r, (metric, name) in enumerate(present):
        factor, label = axis_scale(str(summary.loc[summary["metric"] == metric, "unit"].iloc[0]),
                                   largest(summary, [metric]))
        for ax, facet in zip(axes[r], facets):
            paths = ordered_paths(facet.rows["path"])
            slots, width = _slots(len(paths), len(caches))
            if not (facet.rows["metric"].eq(metric) & facet.rows["status"].eq("ok")).any():
                empty_panel(ax, name)
                _style_axis(ax, paths, "", facet.title if r == 0 else None)
                continue
            points: list[tuple[float, Any]] = []
            for c, cache in enumerate(caches):
                bars: list[tuple[float, Any, str]] = []
                for p, path in enumerate(paths):
                    x, row = slots[p][c], _row(facet, metric, path, cache)
                    if row is None or row.status != "ok":
                        _placeholder(ax, x, row)
                        continue
                    bars.append((x, row, path))
                if bars:
                    ax.bar([x for x, _, _ in bars], [row.median / factor for _, row, _ in bars], width,
                           color=[path_color(path) for _, _, path in bars], edgecolor="#333333", linewidth=0.4,
                           hatch=_hatch(c), alpha=0.85)
                points += [(x, row) for x, row, _ in bars]
            _whiskers(ax, points, factor)
            _style_axis(ax, paths, f"{name} ({label})", facet.title if r == 0 else None)
    legend = _cache_legend(caches)
    if legend:
        fig.legend(handles=legend, loc="outside lower center", ncols=len(legend), fontsize=8, frameon=False)
    return fig


def memory_figure(summary: pd.DataFrame) -> Figure | None:
    """Peak CPU RSS per path, and peak GPU memory where it was measured."""
    return _bars_figure(summary, MEMORY_METRICS)


def throughput_figure(summary: pd.DataFrame) -> Figure | None:
    """Decode tokens/s (generating paths) and forward tokens/s (the others), one row each.

    They are different workloads, so they never share an axis.
    """
    return _bars_figure(summary, THROUGHPUT_METRICS)
