"""Figures of a summary: load time by phase, peak memory and tokens/s by path, trends across runs.

Every bar is a median and every whisker the interquartile range of the same
measured samples, so a plot never shows more certainty than the numbers have.
Figures are built with matplotlib's object API (no pyplot), which leaves a
notebook's chosen backend alone and needs no display.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .metrics import axis_scale
from .tables import CACHE_RANK, ordered_paths, per_machine

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "LOAD_PHASES",
    "THROUGHPUT_METRICS",
    "TREND_METRICS",
    "load_time_figure",
    "memory_figure",
    "png_bytes",
    "throughput_figure",
    "trend_figure",
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
TREND_METRICS: tuple[tuple[str, str], ...] = (
    ("load_s", "load time"), ("load_added_rss_bytes", "RSS the load adds"), ("peak_rss_bytes", "peak RSS"),
    ("gpu_peak_used_bytes", "peak GPU memory"), ("decode_tokens_per_s", "decode"), ("forward_tokens_per_s", "forward"),
)
_PHASE_COLORS = ("#9ecae1", "#fdae6b", "#3182bd", "#a1d99b", "#bdbdbd")
_PATH_COLORS = {"base": "#1f77b4", "task": "#ff7f0e", "custom": "#2ca02c", "pipeline": "#d62728"}
_EXTRA_COLORS = ("#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
_MAX_COLUMNS = 4


@dataclass(frozen=True)
class _Facet:
    title: str
    rows: Any  # the summary rows of this facet (a DataFrame)
    by_key: dict[tuple[str, str, str], Any]  # (metric, path, cache) -> summary row; filtering per bar is slow


def _facets(summary: pd.DataFrame, across: str | None = None) -> list[_Facet]:
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
        out.append(_Facet(values[0] + "\n" + " · ".join(values[1:]), rows, by_key))
    return out


def _caches(summary: pd.DataFrame) -> list[str]:
    return sorted(dict.fromkeys(summary["cache"]), key=lambda c: (CACHE_RANK.get(c, len(CACHE_RANK)), c))


def _figure(n_rows: int, n_facets: int, row_height: float = 3.0) -> tuple[Figure, list[list[Axes]]]:
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


def _row(facet: _Facet, metric: str, path: str, cache: str) -> Any | None:
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


def _empty_panel(ax: Axes, what: str) -> None:
    ax.text(0.5, 0.5, f"no path measured\n{what}", transform=ax.transAxes, ha="center", va="center",
            fontsize=9, color="#777777")
    ax.set_yticks([])


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


def _largest(summary: pd.DataFrame, metrics: Sequence[str]) -> float:
    rows = summary[summary["metric"].isin(list(metrics)) & (summary["status"] == "ok")]
    return float(rows[["median", "q3"]].max().max()) if len(rows) else 0.0


def load_time_figure(summary: pd.DataFrame) -> Figure | None:
    """Load time per path, stacked by phase; whisker: load_s median with its IQR.

    One panel per checkpoint; with warm and cold cache, the cold bar (hatched)
    stands right of the warm one. None when no case measured load_s.
    """
    from matplotlib.patches import Patch

    if not (summary["metric"].eq("load_s") & summary["status"].eq("ok")).any():
        return None
    facets, caches = _facets(summary), _caches(summary)
    factor, label = axis_scale("s", _largest(summary, ["load_s"]))
    fig, axes = _figure(1, len(facets), row_height=3.4)
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
    facets, caches = _facets(summary), _caches(summary)
    fig, axes = _figure(len(present), len(facets))
    for r, (metric, name) in enumerate(present):
        factor, label = axis_scale(str(summary.loc[summary["metric"] == metric, "unit"].iloc[0]),
                                   _largest(summary, [metric]))
        for ax, facet in zip(axes[r], facets):
            paths = ordered_paths(facet.rows["path"])
            slots, width = _slots(len(paths), len(caches))
            if not (facet.rows["metric"].eq(metric) & facet.rows["status"].eq("ok")).any():
                _empty_panel(ax, name)
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
                           color=[_path_color(path) for _, _, path in bars], edgecolor="#333333", linewidth=0.4,
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


def _path_color(path: str) -> str:
    if path in _PATH_COLORS:
        return _PATH_COLORS[path]
    # Stable across processes (str hash() is salted), so a path keeps its colour.
    return _EXTRA_COLORS[sum(map(ord, path)) % len(_EXTRA_COLORS)]


def trend_figure(summary: pd.DataFrame, labels: dict[str, str] | None = None, *, across: str = "run_id",
                 order: Sequence[str] | None = None,
                 metrics: Sequence[tuple[str, str]] = TREND_METRICS) -> Figure | None:
    """Headline metrics across runs (x: runs in load order), one line per path.

    ``across="env"`` draws a sweep instead: x is a run's environments, in ``order``.
    Markers are medians, whiskers IQRs; dashed lines are the cold cache. ``labels``
    maps the x values to tick labels. None when fewer than two x values.
    """
    from matplotlib.lines import Line2D

    run_ids = list(order) if order is not None else list(dict.fromkeys(summary[across]))
    if len(run_ids) < 2:
        return None
    labels = labels or {}
    present = [(m, name) for m, name in metrics
               if (summary["metric"].eq(m) & summary["status"].eq("ok")).any()]
    if not present:
        return None
    facets, caches = _facets(summary, across), _caches(summary)
    fig, axes = _figure(len(present), len(facets), row_height=2.6)
    styles: list[Any] = ["-", "--", ":", "-."]  # matplotlib types linestyle as a Literal
    all_paths = ordered_paths(summary["path"])
    for r, (metric, name) in enumerate(present):
        factor, label = axis_scale(str(summary.loc[summary["metric"] == metric, "unit"].iloc[0]),
                                   _largest(summary, [metric]))
        for ax, facet in zip(axes[r], facets):
            rows = facet.rows[(facet.rows["metric"] == metric) & (facet.rows["status"] == "ok")]
            if rows.empty:
                _empty_panel(ax, name)
            for path in ordered_paths(rows["path"]):
                for c, cache in enumerate(caches):
                    line = rows[(rows["path"] == path) & (rows["cache"] == cache)]
                    # Nudge each path × cache sideways so whiskers at one run do not hide each other.
                    slot, slots = all_paths.index(path) * len(caches) + c, len(all_paths) * len(caches)
                    nudge = 0.04 * (slot - (slots - 1) / 2)
                    line = line[line[across].isin(run_ids)].sort_values(
                        across, key=lambda xs: xs.map(run_ids.index))  # lines run left to right
                    xs = [run_ids.index(rid) + nudge for rid in line[across]]
                    if not xs:
                        continue
                    med = line["median"].to_numpy() / factor
                    err = [(line["median"] - line["q1"]).to_numpy() / factor,
                           (line["q3"] - line["median"]).to_numpy() / factor]
                    ax.errorbar(xs, med, yerr=err, color=_path_color(path), linestyle=styles[c % len(styles)],
                                marker="o", markersize=4, linewidth=1.2, capsize=2, elinewidth=0.8)
            ticks = [labels.get(r_, r_) for r_ in run_ids]
            long = max(len(t) for t in ticks) > 6 and "\n" not in "".join(ticks)
            ax.set_xticks(range(len(run_ids)), ticks, fontsize=8 if not long else 7, rotation=15 if long else 0,
                          ha="right" if long else "center")
            ax.set_xlim(-0.4, len(run_ids) - 0.6)
            if not rows.empty:
                # From zero: a 1 MiB change must not look like a doubling.
                ax.set_ylim(0, float(rows["q3"].fillna(rows["median"]).max()) / factor * 1.08)
            ax.set_ylabel(f"{name} ({label})", fontsize=9)
            ax.tick_params(axis="y", labelsize=8)
            ax.grid(color="#e8e8e8", linewidth=0.6)
            ax.spines[["top", "right"]].set_visible(False)
            if r == 0:
                ax.set_title(facet.title, fontsize=10)
    handles = [Line2D([], [], color=_path_color(p), marker="o", label=p) for p in all_paths]
    if len(caches) > 1:
        handles += [Line2D([], [], color="#444444", linestyle=styles[c % len(styles)], label=f"{cache} cache")
                    for c, cache in enumerate(caches)]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=8, frameon=False)
    return fig


def png_bytes(fig: Figure, dpi: int = 100) -> bytes:
    """The figure as PNG bytes (for embedding); does not keep the figure open anywhere."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()
