"""Headline metrics across runs or across a run's environments: the figure that shows a change.

One line per path and cache, x the runs (or environments) in the order given, each
point a median with its interquartile range, axes from zero, so a drift between runs
is seen at its true size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from loadbench.results.analysis.metrics import axis_scale
from loadbench.results.analysis.tables import ordered_paths
from loadbench.results.report.plots.panels import (
    cache_order,
    empty_panel,
    figure_grid,
    largest,
    path_color,
    split_facets,
)

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = ["TREND_METRICS", "trend_figure"]

TREND_METRICS: tuple[tuple[str, str], ...] = (
    ("load_s", "load time"), ("load_added_rss_bytes", "RSS the load adds"), ("peak_rss_bytes", "peak RSS"),
    ("gpu_peak_used_bytes", "peak GPU memory"), ("decode_tokens_per_s", "decode"), ("forward_tokens_per_s", "forward"),
)


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
    facets, caches = split_facets(summary, across), cache_order(summary)
    fig, axes = figure_grid(len(present), len(facets), row_height=2.6)
    styles: list[Any] = ["-", "--", ":", "-."]  # matplotlib types linestyle as a Literal
    all_paths = ordered_paths(summary["path"])
    for r, (metric, name) in enumerate(present):
        factor, label = axis_scale(str(summary.loc[summary["metric"] == metric, "unit"].iloc[0]),
                                   largest(summary, [metric]))
        for ax, facet in zip(axes[r], facets):
            rows = facet.rows[(facet.rows["metric"] == metric) & (facet.rows["status"] == "ok")]
            if rows.empty:
                empty_panel(ax, name)
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
                    ax.errorbar(xs, med, yerr=err, color=path_color(path), linestyle=styles[c % len(styles)],
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
    handles = [Line2D([], [], color=path_color(p), marker="o", label=p) for p in all_paths]
    if len(caches) > 1:
        handles += [Line2D([], [], color="#444444", linestyle=styles[c % len(styles)], label=f"{cache} cache")
                    for c, cache in enumerate(caches)]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=8, frameon=False)
    return fig
