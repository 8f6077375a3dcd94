"""The sections that set measurements side by side: later runs against the first, a run's environments.

Both show a median per column with a ratio to the first column and a trend plot, so
they share the cells; a reader sees at once what changed and by how much.
"""

from __future__ import annotations

from html import escape
from typing import Any

from loadbench.results.analysis.metrics import format_value
from loadbench.results.analysis.tables import spread_text, varying_settings
from loadbench.results.report.html.figures import PLOT_CAPTIONS, figure_html
from loadbench.results.report.html.parts import attrs as _attrs
from loadbench.results.report.html.parts import key_cells as _key_cells
from loadbench.results.report.html.parts import table as _table
from loadbench.results.report.model import Report, RunMeta
from loadbench.results.report.plots.trends import trend_figure
from loadbench.results.report.runs import VERDICT_RULE, RunChange
from loadbench.results.report.runs_table import run_comparison, verdict_notes
from loadbench.results.report.sweep import SWEEP_PLOT_METRICS, sweep

__all__ = ["comparison_section", "sweep_section"]


def _ratio_cell(change: RunChange) -> str:
    if change.text() == "—":
        return '<td class="num missing">—</td>'
    cls = f" {change.verdict}" if change.verdict in ("regressed", "improved", "failed", "inconclusive") else ""
    return f'<td class="num{cls}"{_attrs(verdict=change.verdict)}>{escape(change.text())}</td>'


def _value_cell(row: Any, note: str = "", data: str = "") -> str:
    """A summary row's median (± CV) as a cell; ``note`` under it, ``data`` its data-* attributes."""
    if row is None:
        return f'<td class="num missing"{data}>—</td>'
    if row.status != "ok":
        label = "FAILED" if row.status == "failed" else "n/a"
        return f'<td class="num {row.status}"{data} title="{escape(str(row.reason))}">{label}</td>'
    cls = "num unstable" if row.unstable else "num"
    tip = f"n={row.n}, IQR {format_value(row.q1, row.unit)}–{format_value(row.q3, row.unit)}"
    text = format_value(row.median, row.unit) + spread_text(row)
    below = f' <span class="note">{escape(note)}</span>' if note else ""
    return f'<td class="{cls}"{data} title="{escape(tip)}">{escape(text)}{below}</td>'


def comparison_section(report: Report) -> str:
    """Several runs: each metric per run, later runs as a multiple of the first, with verdicts."""
    first = report.runs[0].letter
    later = [r.letter for r in report.runs[1:]]
    rows = run_comparison(report)
    varying = varying_settings(rows)
    body = []
    previous: list[str] | None = None
    for r in rows:
        values = [str(r[k]) for k in ("checkpoint", "path", *varying, "metric")]
        keys, new_group = _key_cells(values, previous, grey=1)
        previous = values
        body.append(f'<tr class="{"group" if new_group else ""}">{keys}{"".join(_value_cell(c) for c in r["cells"])}'
                    f"{''.join(_ratio_cell(ch) for ch in r['changes'])}</tr>")
    header = ["checkpoint", "path", *varying, "metric", *[r.letter for r in report.runs],
              *[f"{x} / {first}" for x in later]]
    labels = {r.run_id: r.letter for r in report.runs}
    trend = figure_html("trend", trend_figure(report.summary, labels), PLOT_CAPTIONS["trend"], None)
    notes = "".join(f'<div class="warning">{escape(note)}</div>' for note in verdict_notes(report))
    return ('<h2 id="comparison">Runs side by side</h2>'
            f"<p>Baseline: run {first}; {escape(VERDICT_RULE)}</p>" + notes + trend + _table(header, body, "compare"))


def sweep_section(report: Report, run: RunMeta) -> str:
    """A run over several environments: each headline metric per path, environment by environment."""
    found = sweep(report, run)
    if found is None:
        return ""
    first = found.envs[0]
    body = []
    previous: list[str] | None = None
    for r in found.rows:
        values = [r[k] for k in ("checkpoint", *found.keys, "metric")]
        keys, new_group = _key_cells([*values, r["path"]], previous, grey=len(values))
        previous = [*values, r["path"]]
        cells = [_value_cell(cell, ratio, _attrs(env=env, path=r["path"], metric=r["metric"]))
                 for env, cell, ratio in zip(found.envs, r["cells"], r["ratios"])]
        body.append(f'<tr class="{"group" if new_group else ""}">{keys}{"".join(cells)}</tr>')
    header = ["checkpoint", *found.keys, "metric", "path",
              *(f"{env}\n{found.versions[env]}" if found.versions[env] else env for env in found.envs)]
    labels = {env: _tick(env, found.versions[env]) for env in found.envs}
    plot = figure_html("sweep", trend_figure(found.summary, labels, across="env", order=found.envs,
                                             metrics=SWEEP_PLOT_METRICS), PLOT_CAPTIONS["sweep"], run)
    return (f'<h2 id="sweep">Across environments</h2><p>Medians ± CV per environment, in the order the run named '
            f"them; ×: the median as a multiple of {escape(first)}'s. <code>loadbench compare "
            f"{escape(str(run.run_dir))}</code> tests any two of them pair by pair, with a confidence "
            "interval.</p>" + _table(header, body, "sweep") + plot)


def _tick(env: str, versions: str) -> str:
    """An environment's tick label: its name, and its transformers version where the name does not say it."""
    version = versions.split(" · ")[0].removeprefix("transformers ") if versions.startswith("transformers ") else ""
    return f"{env}\n{version}" if version and version not in env else env
