"""The report as one self-contained HTML file: tables, plots embedded as PNG, no scripts.

One file a person can mail, attach to a CI run or open offline: no external CSS,
JavaScript, fonts or images. Every cell and case carries data-* attributes so
tests (and scrapers) can read the page without parsing its prose.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from loadbench.results.analysis.metrics import HEADLINE
from loadbench.results.analysis.tables import Footnotes
from loadbench.results.report.env import environment_rows, node_columns, node_rows, nodes_sentence
from loadbench.results.report.html.compare import comparison_section, sweep_section
from loadbench.results.report.html.figures import run_plots
from loadbench.results.report.html.parts import CSS
from loadbench.results.report.html.parts import attrs as _attrs
from loadbench.results.report.html.parts import table as _table
from loadbench.results.report.html.tables import (
    all_metrics_table,
    cases_section,
    glance_section,
    notes_html,
    path_tables,
)
from loadbench.results.report.model import Report

__all__ = ["render_html"]


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


def render_html(report: Report, metrics: Sequence[str] = HEADLINE) -> str:
    """The whole report as one HTML document (a str), plots embedded as base64 PNG."""
    multi = len(report.runs) > 1
    title = f"{len(report.runs)} runs" if multi else f"run {report.runs[0].run_id}"
    body = [f"<h1>loadbench report: {escape(title)}</h1>",
            f'<p class="sub">{escape(", ".join(r.label if multi else str(r.run_dir) for r in report.runs))}</p>',
            _warnings(report), _environment(report)]
    body.append(comparison_section(report) if multi else glance_section(report))
    body += [sweep_section(report, run) for run in report.runs]
    body.append('<h2 id="paths">Paths side by side</h2>')
    for run in report.runs:
        if multi:
            body.append(f'<h3 id="run-{escape(run.letter)}">Run {escape(run.label)}</h3>')
        # Notes right under their table, numbered per run, so a reader never scrolls past plots for them.
        notes = Footnotes()
        table, model = path_tables(report, run, notes, metrics)
        body += [table, notes_html(notes, model.unmeasured, model.any_unstable, report.cv_threshold, model.any_ceiling),
                 run_plots(report, run)]
    body += [cases_section(report), '<h2 id="all">All metrics</h2>', all_metrics_table(report)]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>loadbench report: {escape(title)}</title>"
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head>'
            f"<body>{''.join(body)}</body></html>\n")
