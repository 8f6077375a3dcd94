"""A tune's report: the settings table (markdown and HTML) and the front as a scatter plot.

Each point is a setting's median load time against the median memory its load added,
with its 95% interval as whiskers where the samples bound it; the front's points are
joined and named, so the trade-off reads at a glance.
"""

from __future__ import annotations

import base64
import math
from html import escape
from typing import TYPE_CHECKING, Any

from loadbench.bench.tune.candidates import DEFAULT_SETTING
from loadbench.bench.tune.front import Estimate
from loadbench.results.analysis.metrics import format_value
from loadbench.results.report.html.parts import CSS, attrs, table

if TYPE_CHECKING:
    from loadbench.bench.tune.answer import TuneResult

__all__ = ["front_figure", "render_html", "render_markdown", "table_rows"]

_HEADER = ("setting", "load time (95% interval)", "memory the load added (95% interval)", "samples",
           "max |diff| vs base", "on front", "note")


def _estimate(e: Estimate | None, unit: str) -> str:
    if e is None:
        return "—"
    bounds = (f"{format_value(e.low, unit)} … {format_value(e.high, unit)}"
              if math.isfinite(e.low) and math.isfinite(e.high) else f"unbounded at n={e.n}")
    return f"{format_value(e.median, unit)} ({bounds})"


def table_rows(result: TuneResult) -> list[tuple[str, ...]]:
    """One row per setting: its figures, or why it has none."""
    rows: list[tuple[str, ...]] = []
    for setting in result.settings:
        m = result.measured.get(setting.name)
        if setting.not_applicable is not None:
            rows.append((setting.name, "n/a", "n/a", "0", "—", "", setting.not_applicable))
            continue
        if m is None or (m.load_s is None and m.failed is None):
            rows.append((setting.name, "—", "—", "0", "—", "", "not measured"))
            continue
        note = ("recommended" if setting.name == result.recommended else "") if m.failed is None else \
            f"FAILED: {m.failed}"
        reference = setting.path == "base" and setting.name == DEFAULT_SETTING  # what the others are checked against
        diff = "reference" if reference else "—" if m.max_abs_diff is None else f"{m.max_abs_diff:.3g}"
        rows.append((setting.name, _estimate(m.load_s, "s"), _estimate(m.added_bytes, "bytes"),
                     str(m.load_s.n if m.load_s else 0), diff, "yes" if m.on_front else "", note))
    return rows


def render_markdown(result: TuneResult) -> str:
    lines = [f"# loadbench tune: {result.checkpoint}", "",
             f"{result.task} on {result.device}, goal `{result.goal.text}`; {result.minutes:.1f} of "
             f"{result.budget_minutes:g} minutes.", "", f"**{result.explanation}**", "",
             "| " + " | ".join(_HEADER) + " |", "|" + "---|" * len(_HEADER)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in table_rows(result)]
    lines += ["", "The code:", "", "```python", result.code, "```", "", f"GPU: {result.gpu}."]
    if result.stopped:
        lines += ["", f"The halving stopped early: {result.stopped}."]
    return "\n".join(lines) + "\n"


def _label_offsets(points: list[tuple[float, float]], names: list[str], ax: Any) -> list[tuple[int, int]]:
    """Offsets (in points) for each label so that no two overlap: greedy, each the nearest free spot."""
    fig = ax.figure
    fig.canvas.draw()
    scale = fig.dpi / 72
    placed: list[tuple[float, float, float]] = []  # left, right, baseline in display units
    offsets = []
    tries = [(dx, dy) for dy in (4, -12, 16, -24, 28, -36, 40, -48, 52, -60, 64, -72) for dx in (6, None)]
    for (x, y), name in zip(points, names, strict=True):
        px, py = ax.transData.transform((x, y))
        width = len(name) * 4.9 * scale  # 8-point text
        for dx, dy in tries:
            shift = 6 if dx is not None else -6 - len(name) * 4.9
            left = px + shift * scale
            box = (left, left + width, py + dy * scale)
            if all(box[1] < a or box[0] > b or abs(box[2] - c) > 11 * scale for a, b, c in placed):
                break
        placed.append(box)
        offsets.append((round(shift), dy))
    return offsets


def front_figure(result: TuneResult) -> Any:
    """Load time against added memory, log scales (settings differ by orders), the front joined."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 5.6), layout="constrained")
    ax = fig.add_subplot()
    usable = [m for m in result.measured.values() if m.usable and m.load_s is not None and m.added_bytes is not None]
    points = []
    for m in usable:
        assert m.load_s is not None and m.added_bytes is not None
        x, y = m.added_bytes.median / 2**20, m.load_s.median
        xerr = [[x - m.added_bytes.low / 2**20], [m.added_bytes.high / 2**20 - x]] \
            if math.isfinite(m.added_bytes.low) and math.isfinite(m.added_bytes.high) else None
        yerr = [[y - m.load_s.low], [m.load_s.high - y]] \
            if math.isfinite(m.load_s.low) and math.isfinite(m.load_s.high) else None
        color = "#1a7f37" if m.on_front else "#8c959f"
        ax.errorbar([x], [y], xerr=xerr, yerr=yerr, fmt="o", color=color, ecolor=color, alpha=0.9, capsize=3,
                    markersize=9 if m.name == result.recommended else 6)
        points.append((x, y))
    front = sorted((m.added_bytes.median / 2**20, m.load_s.median) for m in usable
                   if m.on_front and m.added_bytes is not None and m.load_s is not None)
    if len(front) > 1:
        ax.step([p[0] for p in front], [p[1] for p in front], where="post", color="#1a7f37", alpha=0.5)
    from matplotlib.ticker import FuncFormatter, LogLocator

    ax.set_xscale("log")
    ax.set_yscale("log")
    for axis, unit in ((ax.xaxis, None), (ax.yaxis, "s")):
        axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        axis.set_major_formatter(FuncFormatter(lambda v, _, unit=unit: f"{v:g}" if unit is None
                                               else format_value(v, unit)))
        axis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    ax.set_xlabel("memory the load added (MiB, median and 95% interval, log scale)")
    ax.set_ylabel("load time (median and 95% interval, log scale)")
    ax.set_title(f"{result.checkpoint}: the Pareto front (green) of {len(usable)} settings")
    ax.grid(alpha=0.3, which="both")
    order = sorted(range(len(points)), key=lambda i: (points[i][1], points[i][0]))
    offsets = _label_offsets([points[i] for i in order], [usable[i].name for i in order], ax) if points else []
    for i, offset in zip(order, offsets, strict=True):
        m = usable[i]
        ax.annotate(m.name, points[i], textcoords="offset points", xytext=offset, fontsize=8,
                    fontweight="bold" if m.on_front else "normal",
                    arrowprops={"arrowstyle": "-", "color": "#bbb", "lw": 0.6} if offset != (6, 4) else None)
    return fig


def render_html(result: TuneResult) -> str:
    from loadbench.results.report.plots.panels import png_bytes

    figure = front_figure(result)
    image = base64.b64encode(png_bytes(figure)).decode("ascii")
    rows = []
    for row in table_rows(result):
        classes = [' class="best"' if row[-1] == "recommended" else "", *[""] * (len(row) - 2), ' class="wrap"']
        cells = "".join(f"<td{cls}>{escape(cell)}</td>" for cls, cell in zip(classes, row, strict=True))
        rows.append(f"<tr{attrs(setting=row[0], on_front=row[5] == 'yes')}>{cells}</tr>")
    stopped = f"<p class='note'>The halving stopped early: {escape(result.stopped)}.</p>" if result.stopped else ""
    title = f"loadbench tune: {escape(result.checkpoint)}"
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{title}</title>
<style>{CSS}</style></head><body>
<h1>loadbench tune: {escape(result.checkpoint)}</h1>
<p class="sub"><code>{escape(result.checkpoint_dir)}</code> ·
{escape(result.task)} on {escape(result.device)} · goal <code>{escape(result.goal.text)}</code> ·
{result.minutes:.1f} of {result.budget_minutes:g} minutes</p>
<p{attrs(recommended=result.recommended)}><strong>{escape(result.explanation)}</strong></p>
<figure><img alt="load time against added memory per setting" src="data:image/png;base64,{image}">
<figcaption>Each point a setting: median load time against the median memory its load added, whiskers the 95%
interval of each median where the samples bound it. Green: the Pareto front (no other setting is both faster and
lighter).</figcaption></figure>
<h2>Settings</h2>{table(_HEADER, rows)}
<h2>The code</h2><pre>{escape(result.code)}</pre>
<p>GPU: {escape(result.gpu)}.</p>{stopped}
</body></html>
"""
