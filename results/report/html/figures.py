"""The report's plots as inline PNG figures, each with the caption that says how to read it.

Embedded as base64 so the page stays one file that opens offline; every figure carries
data-* attributes (plot kind, run) so tests can find it without reading the caption.
"""

from __future__ import annotations

import base64
from html import escape
from typing import Any

from loadbench.results.report.html.parts import attrs as _attrs
from loadbench.results.report.model import Report, RunMeta
from loadbench.results.report.plots.bars import load_time_figure, memory_figure, throughput_figure
from loadbench.results.report.plots.drift import host_drift_figure
from loadbench.results.report.plots.panels import png_bytes
from loadbench.results.report.plots.pngs import Builder, draw_pngs

__all__ = ["PLOT_CAPTIONS", "figure_html", "png_html", "run_plots"]

PLOT_CAPTIONS: dict[str, str] = {
    "host_drift": (
        "Host speed over the run: the same fixed loop, timed just before each sample's load (outside it), in the "
        "order the samples were measured; the line is a rolling median. A step or a slope here is the machine, "
        "not the loading code. Environments measured in one run see it alike, which is why their paired compare "
        "holds where two runs measured apart do not."
    ),
    "load_time": (
        "Load time by path, stacked by phase (the median of each phase: config, tokenizer, weights, to device, "
        "the unattributed rest). Black line: the median of load_s; whisker: its interquartile range (25th to 75th "
        "percentile) over the measured samples. Phase medians need not add up exactly to the total's median."
    ),
    "memory": (
        "Peak memory by path: the worker's resident set (kernel high-water mark) and, on CUDA, the device memory "
        "NVML saw in use. Bar: median; whisker: interquartile range."
    ),
    "throughput": (
        "Tokens per second by path. Decoding (paths that generate) and forward passes (the others) are different "
        "workloads, so each has its own row; \u201c\u2014\u201d marks a path that does not run that workload. "
        "Bar: median; whisker: interquartile range."
    ),
    "sweep": (
        "Each metric per path across the run's environments, in the order the run named them. Marker: median; "
        "whisker: interquartile range; dashed: cold page cache. Axes start at zero."
    ),
    "trend": (
        "Headline metrics across the runs, in the order given. Marker: median; whisker: interquartile range; "
        "dashed: cold page cache. Axes start at zero."
    ),
}
_CACHE_NOTE = " Hatched bars: cold page cache (files evicted before each sample); plain: warm."


def figure_html(kind: str, fig: Any, caption: str, run: RunMeta | None) -> str:
    """The figure as an inline PNG with its caption; empty when there is no figure."""
    return png_html(kind, None if fig is None else png_bytes(fig), caption, run)


def png_html(kind: str, png: bytes | None, caption: str, run: RunMeta | None) -> str:
    """A drawn figure as an inline PNG with its caption; empty when there is none."""
    if png is None:
        return ""
    data = base64.b64encode(png).decode("ascii")
    alt = f"{kind.replace('_', ' ')} plot" + (f" of run {run.run_id}" if run else "")
    attrs = _attrs(plot=kind, run=run.run_id if run else "all")
    return (f'<figure class="plot"{attrs}><img alt="{escape(alt)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{escape(caption)}</figcaption></figure>")


def run_plots(report: Report, run: RunMeta) -> str:
    """One run's figures path by path: load time, memory, throughput, and the host's drift (drawn on two cores)."""
    summary = report.run_summary(run.run_id)
    records = report.records[report.records["run_id"] == run.run_id]
    cache_note = _CACHE_NOTE if summary["cache"].nunique() > 1 else ""
    figures: dict[str, Builder] = {
        "load_time": lambda: load_time_figure(summary),
        "memory": lambda: memory_figure(summary),
        "throughput": lambda: throughput_figure(summary),
        "host_drift": lambda: host_drift_figure(records),
    }
    captions = {kind: PLOT_CAPTIONS[kind] + ("" if kind == "host_drift" else cache_note) for kind in figures}
    pngs = draw_pngs(list(figures.values()))
    return "".join(png_html(kind, png, captions[kind], run) for kind, png in zip(figures, pngs))
