"""The report's result tables: at a glance, paths side by side with their notes, cases, every metric.

Each cell carries data-* attributes (run, case, path, status), so tests and scrapers
read the numbers without parsing the prose around them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from typing import Any

from loadbench.results.analysis.ceiling import CEILING_LEGEND
from loadbench.results.analysis.metrics import format_value, get_metric
from loadbench.results.analysis.tables import (
    Footnotes,
    path_table,
    per_machine,
    reading_order,
    varying_settings,
)
from loadbench.results.report.cases import case_table
from loadbench.results.report.glance import best_paths
from loadbench.results.report.html.parts import attrs as _attrs
from loadbench.results.report.html.parts import key_cells as _key_cells
from loadbench.results.report.html.parts import table as _table
from loadbench.results.report.model import Report, RunMeta

__all__ = ["all_metrics_table", "cases_section", "glance_section", "notes_html", "path_tables"]

_STATUS_TEXT = {"ok": "ok", "partly_failed": "partly FAILED", "failed": "FAILED", "not_applicable": "n/a"}


def glance_section(report: Report) -> str:
    """One run: the best path per checkpoint and headline metric."""
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


def path_tables(report: Report, run: RunMeta, notes: Footnotes, metrics: Sequence[str]) -> tuple[str, Any]:
    """One run's metrics with its paths side by side (HTML), and the table model its notes come from."""
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


def notes_html(notes: Footnotes, unmeasured: dict[str, list[str]], any_unstable: bool, threshold: float,
               any_ceiling: bool = False) -> str:
    """The notes under a path table: its numbered footnotes and how to read a cell."""
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


def cases_section(report: Report) -> str:
    """Every case of every run with its status, sample count and what went wrong."""
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


def all_metrics_table(report: Report) -> str:
    """Every run × case × metric with its full spread, folded away under a summary line."""
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
