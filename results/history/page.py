"""The history as a static page: a trend per case and metric, every sample shown, change points marked.

One self-contained HTML file (``index.html``, PNG figures inline, no scripts) that CI can
publish as it is: on a branch served as a site, or as an artifact. Each run links to its
own report where the history knows one, relative to the page when it can be.
"""

from __future__ import annotations

import base64
import math
import os
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

from loadbench.results.analysis.metrics import axis_scale
from loadbench.results.history.show import History, MachineHistory, _case_text, _median, _percent
from loadbench.results.report.html.parts import CSS
from loadbench.results.report.html.parts import attrs as _attrs
from loadbench.results.report.plots.panels import png_bytes

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from loadbench.results.history.changes import Series

__all__ = ["write_page"]

_CAPTION = ("Every sample of every run (dots, in the order the runs were added), the median of each run (line), "
            "and the change points found (dashed red: slower or more; dashed green: faster or less), each with its "
            "size and interval. Axes start at zero.")


def _figure(series: Series, machine: MachineHistory) -> Figure:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 2.6), layout="constrained")
    ax = fig.add_subplot()
    factor, unit = axis_scale(series.unit, max(max(v) for v in series.values))
    xs = [machine.position(run) for run in series.runs]
    for x, values in zip(xs, series.values, strict=True):
        jitter = [x + 0.18 * ((i % 7) - 3) / 3 for i in range(len(values))]
        ax.scatter(jitter, [v / factor for v in values], s=12, color="#1f77b4", alpha=0.6, linewidths=0)
    medians = [_median(v) / factor for v in series.values]
    ax.plot(xs, medians, color="#1f2328", linewidth=1.2, marker="o", markersize=3)
    for point in machine.points_of(series):
        x = xs[point.index] - 0.5
        ax.axvline(x, color="#cf222e" if point.regression else "#1a7f37", linestyle="--", linewidth=1)
        ax.annotate(f"{_percent(point.change)} at {point.label}", (x, 0.02), xycoords=("data", "axes fraction"),
                    fontsize=8, rotation=90, va="bottom", ha="right")
    labels = [run.label for run in machine.runs]
    step = max(1, math.ceil(len(labels) / 30))
    ax.set_xticks(range(0, len(labels), step), labels[::step], fontsize=7, rotation=45, ha="right")
    ax.set_xlim(-0.6, len(labels) - 0.4)
    ax.set_ylim(0, max(max(v) for v in series.values) / factor * 1.08)
    ax.set_ylabel(f"{series.metric} ({unit})", fontsize=9)
    ax.tick_params(axis="y", labelsize=8)
    ax.grid(color="#e8e8e8", linewidth=0.6)
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def _link(report: str | None, output: Path) -> str:
    if not report:
        return "—"
    try:
        href = os.path.relpath(report, output)
    except ValueError:  # another drive (Windows)
        href = Path(report).as_uri()
    return f'<a href="{escape(href)}">report</a>'


def _machine_section(machine: MachineHistory, output: Path) -> str:
    parts = [f"<h2 id=\"{escape(machine.machine)}\">Machine {escape(machine.machine)}</h2>",
             f'<p class="sub">{len(machine.runs)} runs, {len(machine.change_points)} change point(s) in '
             f"{len(machine.series)} series</p>"]
    for series in machine.series:
        if len(series.runs) < 2:
            continue
        points = machine.points_of(series)
        text = "; ".join(f"{_percent(p.change)} ({_percent(p.ci_low)} … {_percent(p.ci_high)}) at {p.label}"
                         for p in points) or "no change point"
        data = base64.b64encode(png_bytes(_figure(series, machine))).decode("ascii")
        title = f"{_case_text(series.case)} · {series.metric}"
        attrs = _attrs(checkpoint=series.case["checkpoint"], path=series.case["path"], metric=series.metric,
                       changes=str(len(points)))
        parts.append(f'<figure class="plot"{attrs}><figcaption><strong>{escape(title)}</strong>: {escape(text)}'
                     f'</figcaption><img alt="{escape(title)} across runs" src="data:image/png;base64,{data}">'
                     "</figure>")
    rows = "".join(f"<tr{_attrs(label=run.label)}><td>{i}</td><td>{escape(run.label)}</td><td>{escape(run.run_id)}"
                   f"</td><td>{escape(run.added_at)}</td><td>{_link(run.report, output)}</td></tr>"
                   for i, run in enumerate(machine.runs, 1))
    parts.append("<h3>Runs</h3><table><tr><th>#</th><th>label</th><th>run</th><th>added</th><th>report</th></tr>"
                 f"{rows}</table>")
    return "".join(parts)


def write_page(history: History, output: str | Path) -> Path:
    """Write ``output/index.html`` and return its path."""
    from loadbench.results.records.durable import write_text_atomic

    directory = Path(output)
    directory.mkdir(parents=True, exist_ok=True)
    body = [f"<h1>loadbench history</h1><p class=\"sub\">{escape(history.root)}</p>",
            f"<p>{escape(_CAPTION)}</p>"]
    if not history.machines:
        body.append("<p>No runs yet: add some with <code>loadbench history add RUN</code>.</p>")
    body += [_machine_section(m, directory.resolve()) for m in history.machines]
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>loadbench history</title>"
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head>'
            f"<body>{''.join(body)}</body></html>\n")
    path = directory / "index.html"
    write_text_atomic(path, page)
    return path
