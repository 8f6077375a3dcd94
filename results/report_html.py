"""The report as one self-contained HTML file: tables, plots embedded as PNG, no scripts.

One file a person can mail, attach to a CI run or open offline: no external CSS,
JavaScript, fonts or images. Every cell and case carries data-* attributes so
tests (and scrapers) can read the page without parsing its prose.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from html import escape
from typing import Any

from .ceiling import CEILING_LEGEND
from .html_parts import CSS
from .html_parts import attrs as _attrs
from .html_parts import key_cells as _key_cells
from .html_parts import table as _table
from .metrics import HEADLINE, format_value, get_metric
from .plot_drift import host_drift_figure
from .plots import load_time_figure, memory_figure, png_bytes, throughput_figure, trend_figure
from .report import Report, RunMeta
from .report_cases import case_table
from .report_env import environment_rows, node_columns, node_rows, nodes_sentence
from .report_glance import best_paths
from .report_runs import VERDICT_RULE, RunChange, run_comparison, verdict_notes
from .report_sweep import SWEEP_PLOT_METRICS, sweep
from .tables import Footnotes, path_table, per_machine, reading_order, spread_text, varying_settings

__all__ = ["PLOT_CAPTIONS", "render_html"]

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
_STATUS_TEXT = {"ok": "ok", "partly_failed": "partly FAILED", "failed": "FAILED", "not_applicable": "n/a"}

def _warnings(report: Report) -> str:
    out = []
    if report.key_differences:
        ids = [r.letter for r in report.runs]
        items = "".join(f"<li>{escape(d.describe(ids))}</li>" for d in report.key_differences)
        out.append('<div class="warning key" id="fingerprint-warning"><strong>These runs were measured in '
                   "different environments</strong>: differences between them may come from the environment, "
                   f"not from the code.<ul>{items}</ul></div>")
    out += [f'<div class="warning">{escape(w)}</div>' for w in report.warnings]
    return "".join(out)


def _environment(report: Report) -> str:
    multi = len(report.runs) > 1
    if not multi:
        # One run: label/value pairs in two column pairs, so the environment does not push the results away.
        pairs = [(label, values[0]) for label, values, _, _ in environment_rows(report)]
        half = (len(pairs) + 1) // 2
        rows = []
        for left, right in zip(pairs[:half], pairs[half:] + [("", "")]):
            rows.append("<tr>" + "".join(f"<th>{escape(k)}</th><td class=\"wrap\">{escape(v)}</td>"
                                         for k, v in (left, right)) + "</tr>")
        return f'<h2 id="environment">Environment</h2>{_table([], rows, "env")}{_nodes(report)}'
    header = ["", *([r.letter for r in report.runs] if multi else ["value"])]
    rows = []
    for label, values, differs, key in environment_rows(report):
        cls = ("differs key" if key else "differs") if differs else ""
        cells = "".join(f"<td>{escape(v)}</td>" for v in values)
        rows.append(f'<tr class="{cls}"><th>{escape(label)}{" ≠" if differs else ""}</th>{cells}</tr>')
    note = ('<p class="notes">Highlighted: differs between the runs (red: hardware or a key library '
            "version).</p>" if multi else "")
    return f'<h2 id="environment">Environment</h2>{_table(header, rows, "env")}{note}{_nodes(report)}'


def _nodes(report: Report) -> str:
    """The machines of each run that was spread over several, under the environment table."""
    out = []
    for run, rows in node_rows(report):
        who = f"Run {run.label}" if len(report.runs) > 1 else "This run"
        body = ["<tr" + _attrs(run=run.run_id, node=r["node"]) + ">"
                + "".join(f"<td>{escape(r[c])}</td>" for c in node_columns(rows)) + "</tr>" for r in rows]
        out.append(f"<p>{escape(who)} {escape(nodes_sentence(rows))}</p>" + _table(node_columns(rows), body, "nodes"))
    return "".join(out)


def _path_tables(report: Report, run: RunMeta, notes: Footnotes, metrics: Sequence[str]) -> tuple[str, Any]:
    summary = report.run_summary(run.run_id)
    model = path_table(summary[summary["metric"].isin(list(metrics))], cv_threshold=report.cv_threshold,
                       notes=notes)
    if not model.rows:
        return "<p>No results.</p>", model
    rows = []
    previous: list[str] | None = None
    for keys, cells in model.rows:
        key_cells, new_group = _key_cells(list(keys.values()), previous)
        previous = list(keys.values())
        tds = []
        for c in cells:
            flags = ("num", c.status, "best" if c.best else "", "unstable" if c.unstable else "")
            cls = " ".join(x for x in flags if x)
            attrs = _attrs(run=run.run_id, **{k: v for k, v in keys.items()}, path=c.path, status=c.status)
            title = f' title="{escape(c.tooltip)}"' if c.tooltip else ""
            tds.append(f'<td class="{cls}"{attrs}{title}>{escape(c.text)}</td>')
        rows.append(f'<tr class="{"group" if new_group else ""}">{key_cells}{"".join(tds)}</tr>')
    title = f'<p class="sub">{escape(model.title)}</p>' if model.title else ""
    return title + _table([*model.key_columns, *model.paths], rows, "paths"), model


def _figure(kind: str, fig: Any, caption: str, run: RunMeta | None) -> str:
    if fig is None:
        return ""
    data = base64.b64encode(png_bytes(fig)).decode("ascii")
    alt = f"{kind.replace('_', ' ')} plot" + (f" of run {run.run_id}" if run else "")
    attrs = _attrs(plot=kind, run=run.run_id if run else "all")
    return (f'<figure class="plot"{attrs}><img alt="{escape(alt)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{escape(caption)}</figcaption></figure>")


def _plots(report: Report, run: RunMeta) -> str:
    summary = report.run_summary(run.run_id)
    cache_note = _CACHE_NOTE if summary["cache"].nunique() > 1 else ""
    parts = [
        _figure("load_time", load_time_figure(summary), PLOT_CAPTIONS["load_time"] + cache_note, run),
        _figure("memory", memory_figure(summary), PLOT_CAPTIONS["memory"] + cache_note, run),
        _figure("throughput", throughput_figure(summary), PLOT_CAPTIONS["throughput"] + cache_note, run),
        _figure("host_drift", host_drift_figure(report.records[report.records["run_id"] == run.run_id]),
                PLOT_CAPTIONS["host_drift"], run),
    ]
    return "".join(parts)


def _notes(notes: Footnotes, unmeasured: dict[str, list[str]], any_unstable: bool, threshold: float,
           any_ceiling: bool = False) -> str:
    lines = [f"<p>[{n}] {escape(message)}</p>" for message, n in notes.numbers.items()]
    lines += [f"<p>Not measured in any case: {escape(', '.join(names))}: {escape(reason)}</p>"
              for reason, names in unmeasured.items()]
    lines.append(
        "<p>Cells: median over the measured samples (warmups excluded) ± the coefficient of variation; hover for "
        f"n, IQR, min and max. ★ green: the best path of the row; <span class=\"unstable\">!</span>: unstable "
        f"(CV above {threshold:.0%}); n/a [k] / FAILED [k]: see note k; —: the path does not produce this "
        "metric.</p>")
    if any_ceiling:
        lines.append(f"<p>{escape(CEILING_LEGEND)}</p>")
    if any_unstable:
        lines.append(f'<p class="unstable"><strong>! Unstable</strong>: the samples\' CV is above {threshold:.0%}; '
                     "take more repeats or quiet the machine before trusting that median.</p>")
    return f'<div class="notes">{"".join(lines)}</div>'


def _cases(report: Report) -> str:
    cases = case_table(report.summary)
    letters = {r.run_id: r.letter for r in report.runs}
    multi = len(report.runs) > 1
    varying = varying_settings(cases)
    rows = []
    previous: tuple[str, str] | None = None
    for c in cases.itertuples(index=False):
        machine = {"machine": c.machine} if "machine" in varying else {}
        attrs = _attrs(run=c.run_id, checkpoint=c.checkpoint, task=c.task, path=c.path, dtype=c.dtype,
                       device=c.device, cache=c.cache, **machine, status=c.status)
        cells = [*([letters[c.run_id]] if multi else []), c.checkpoint, c.task, c.path,
                 *(getattr(c, k) for k in varying)]
        group = " group" if (c.run_id, c.checkpoint) != previous else ""
        keys = "".join(f"<td>{escape(str(v))}</td>" for v in cells)
        rows.append(f'<tr class="case{group}"{attrs}>{keys}'
                    f'<td class="st-{c.status}">{escape(_STATUS_TEXT.get(c.status, c.status))}</td>'
                    f'<td class="num">{c.samples}</td><td class="wrap">{escape(c.detail)}</td></tr>')
        previous = (c.run_id, c.checkpoint)
    counts = cases["status"].value_counts()
    line = ", ".join(f"{counts[s]} {_STATUS_TEXT[s]}" for s in _STATUS_TEXT if s in counts)
    header = [*(["run"] if multi else []), "checkpoint", "task", "path", *varying, "status", "samples", "detail"]
    return (f'<h2 id="cases">Cases</h2><p>{len(cases)} cases: {escape(line)}. Every case is listed; '
            "<em>samples</em> counts the measured (non-warmup) samples of load_s.</p>"
            + _table(header, rows, "cases"))


def _glance(report: Report) -> str:
    labels, rows = best_paths(report.summary)
    if not rows:
        return ""
    multi = len(report.runs) > 1
    letters = {r.run_id: r.letter for r in report.runs}
    varying = varying_settings(rows)
    body = []
    previous: list[str] | None = None
    for row in rows:
        keys = [*([letters[row["run_id"]]] if multi else []), row["checkpoint"], row["task"],
                *(row[k] for k in varying)]
        key_cells, new_group = _key_cells(keys, previous)
        previous = keys
        cells = []
        for g in row["cells"]:
            if g is None:
                cells.append('<td class="missing">—</td>')
                continue
            main, note = g.text()
            cls = "win" if g.best else ""
            note_html = f'<span class="note">{escape(note)}</span>' if note else ""
            cells.append(f'<td class="{cls}">{escape(main)}{note_html}</td>')
        body.append(f'<tr class="{"group" if new_group else ""}">{key_cells}{"".join(cells)}</tr>')
    header = [*(["run"] if multi else []), "checkpoint", "task", *varying, *labels]
    return ('<h2 id="glance">At a glance</h2><p>The best path per checkpoint by median. ≈ lists the paths whose '
            "interquartile range overlaps the winner's: they are not clearly worse.</p>"
            + _table(header, body, "glance"))


def _ratio_cell(change: RunChange) -> str:
    if change.text() == "—":
        return '<td class="num missing">—</td>'
    cls = f" {change.verdict}" if change.verdict in ("regressed", "improved", "failed") else ""
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


def _comparison(report: Report) -> str:
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
    trend = _figure("trend", trend_figure(report.summary, labels), PLOT_CAPTIONS["trend"], None)
    notes = "".join(f'<div class="warning">{escape(note)}</div>' for note in verdict_notes(report))
    return ('<h2 id="comparison">Runs side by side</h2>'
            f"<p>Baseline: run {first}; {escape(VERDICT_RULE)}</p>" + notes + trend + _table(header, body, "compare"))


def _sweep(report: Report, run: RunMeta) -> str:
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
    plot = _figure("sweep", trend_figure(found.summary, labels, across="env", order=found.envs,
                                         metrics=SWEEP_PLOT_METRICS), PLOT_CAPTIONS["sweep"], run)
    return (f'<h2 id="sweep">Across environments</h2><p>Medians ± CV per environment, in the order the run named '
            f"them; ×: the median as a multiple of {escape(first)}'s. <code>loadbench compare "
            f"{escape(str(run.run_dir))}</code> tests any two of them pair by pair, with a confidence "
            "interval.</p>" + _table(header, body, "sweep") + plot)


def _tick(env: str, versions: str) -> str:
    """An environment's tick label: its name, and its transformers version where the name does not say it."""
    version = versions.split(" · ")[0].removeprefix("transformers ") if versions.startswith("transformers ") else ""
    return f"{env}\n{version}" if version and version not in env else env


def _all_metrics(report: Report) -> str:
    multi = len(report.runs) > 1
    letters = {r.run_id: r.letter for r in report.runs}
    # Only a run spread over unlike machines needs the (long) machine key to tell its rows apart.
    machine = bool(per_machine(report.summary))
    envs = report.summary["env"].nunique() > 1
    options = report.summary["options"].nunique() > 1
    rows = []
    for r in reading_order(report.summary).itertuples(index=False):
        median, q1, q3, low, high = (format_value(v, r.unit) for v in (r.median, r.q1, r.q3, r.min, r.max))
        values = ([median, f"{q1} – {q3}" if r.n >= 2 else "—", low, high,
                   f"{abs(r.cv):.1%}" if math.isfinite(r.cv) else "—"] if r.status == "ok" else ["—"] * 5)
        keys = [*([letters[r.run_id]] if multi else []), r.checkpoint, r.task, r.path, r.dtype, r.device,
                *([r.options] if options else []), r.cache, *([r.env] if envs else []),
                *([r.machine] if machine else [])]
        rows.append("<tr>" + "".join(f"<td>{escape(str(v))}</td>" for v in keys)
                    + f'<td title="{escape(_describe(r.metric))}">{escape(r.metric)}</td>'
                    + f'<td class="num">{r.n}</td>' + "".join(f'<td class="num">{escape(v)}</td>' for v in values)
                    + f'<td class="st-{r.status}">{escape(_STATUS_TEXT.get(r.status, r.status))}'
                    + ("" if not r.n_failed or r.status != "ok" else f" ({r.n_failed} failed)") + "</td>"
                    + f'<td class="wrap">{escape(r.reason) if isinstance(r.reason, str) else ""}</td></tr>')
    header = [*(["run"] if multi else []), "checkpoint", "task", "path", "dtype", "device",
              *(["options"] if options else []), "cache", *(["env"] if envs else []),
              *(["machine"] if machine else []), "metric", "n", "median", "IQR (q1 – q3)",
              "min", "max", "CV", "status", "reason"]
    return (f"<details><summary>Show all {len(rows)} rows (every run × case × metric; hover a metric for its "
            "meaning)</summary>"
            + _table(header, rows, "all") + "</details>")


def _describe(metric: str) -> str:
    try:
        return get_metric(metric).description
    except KeyError:
        return ""


def render_html(report: Report, metrics: Sequence[str] = HEADLINE) -> str:
    """The whole report as one HTML document (a str), plots embedded as base64 PNG."""
    multi = len(report.runs) > 1
    title = f"{len(report.runs)} runs" if multi else f"run {report.runs[0].run_id}"
    body = [f"<h1>loadbench report: {escape(title)}</h1>",
            f'<p class="sub">{escape(", ".join(r.label if multi else str(r.run_dir) for r in report.runs))}</p>',
            _warnings(report), _environment(report)]
    body.append(_comparison(report) if multi else _glance(report))
    body += [_sweep(report, run) for run in report.runs]
    body.append('<h2 id="paths">Paths side by side</h2>')
    for run in report.runs:
        if multi:
            body.append(f'<h3 id="run-{escape(run.letter)}">Run {escape(run.label)}</h3>')
        # Notes right under their table, numbered per run, so a reader never scrolls past plots for them.
        notes = Footnotes()
        table, model = _path_tables(report, run, notes, metrics)
        body += [table, _notes(notes, model.unmeasured, model.any_unstable, report.cv_threshold, model.any_ceiling),
                 _plots(report, run)]
    body += [_cases(report), '<h2 id="all">All metrics</h2>', _all_metrics(report)]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>loadbench report: {escape(title)}</title>"
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head>'
            f"<body>{''.join(body)}</body></html>\n")
