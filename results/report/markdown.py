"""The report as GitHub-flavoured markdown: for a PR comment or a CI job summary.

Plain tables and text only (no images), so it reads the same pasted anywhere;
the HTML report carries the plots.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from loadbench.results.analysis.ceiling import CEILING_LEGEND
from loadbench.results.analysis.metrics import HEADLINE, format_value
from loadbench.results.analysis.tables import Cell, Footnotes, path_table, spread_text, varying_settings
from loadbench.results.report.cases import case_table
from loadbench.results.report.env import environment_rows, node_columns, node_rows, nodes_sentence
from loadbench.results.report.glance import best_paths
from loadbench.results.report.model import Report
from loadbench.results.report.runs import VERDICT_RULE, RunChange
from loadbench.results.report.runs_table import run_comparison, verdict_notes
from loadbench.results.report.sweep import sweep

__all__ = ["CELL_LEGEND", "render_markdown"]

CELL_LEGEND = (
    "Cells: median over the measured samples (warmups excluded), ± the coefficient of variation; "
    "**bold**: the best path of the row; `!`: unstable (CV above {threshold:.0%}); "
    "`n/a [k]` / `FAILED [k]`: see note k; `—`: the path does not produce this metric."
)
_STATUS_TEXT = {"ok": "ok", "partly_failed": "partly FAILED", "failed": "FAILED", "not_applicable": "n/a"}


def _esc(text: object) -> str:
    """One table-safe line: pipes escaped, newlines folded."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool] | None = None) -> list[str]:
    right = right or [False] * len(header)
    lines = ["| " + " | ".join(_esc(h) for h in header) + " |",
             "|" + "|".join("---:" if r else "---" for r in right) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]  # cells come escaped (they may hold **bold**)
    return lines


def _cell(cell: Cell) -> str:
    text = _esc(cell.text)
    return f"**{text}**" if cell.best else text


def _warnings(report: Report) -> list[str]:
    out: list[str] = []
    if report.key_differences:
        ids = [r.letter for r in report.runs]
        out += ["> [!WARNING]",
                "> **These runs were measured in different environments**: differences between them may come "
                "from the environment, not from the code.", ">"]
        out += [f"> - {_esc(d.describe(ids))}" for d in report.key_differences]
        out.append("")
    for warning in report.warnings:
        out += ["> [!WARNING]", f"> {_esc(warning)}", ""]
    return out


def _environment(report: Report) -> list[str]:
    multi = len(report.runs) > 1
    header = ["", *([r.letter for r in report.runs] if multi else ["value"])]
    rows = []
    for label, values, differs, key in environment_rows(report):
        mark = " ≠" if differs else ""
        rows.append([f"{'**' + label + '**' if differs and key else label}{mark}", *(_esc(v) for v in values)])
    lines = ["## Environment", "", *_table(header, rows)]
    if multi and any(d for _, _, d, _ in environment_rows(report)):
        lines += ["", "`≠`: differs between the runs; **bold**: hardware or a key library version."]
    return lines + ["", *_nodes(report)]


def _nodes(report: Report) -> list[str]:
    """The machines of each run that was spread over several, after the environment table."""
    lines: list[str] = []
    for run, rows in node_rows(report):
        who = f"Run {_esc(run.label)}" if len(report.runs) > 1 else "This run"
        lines += [f"{who} {nodes_sentence(rows)}", "",
                  *_table(node_columns(rows), [[_esc(r[c]) for c in node_columns(rows)] for r in rows]), ""]
    return lines


def _results(report: Report, metrics: Sequence[str], notes: Footnotes) -> list[str]:
    lines = ["## Paths side by side", ""]
    any_unstable = any_ceiling = False
    unmeasured: dict[str, list[str]] = {}
    for run in report.runs:
        summary = report.run_summary(run.run_id)
        model = path_table(summary[summary["metric"].isin(list(metrics))], cv_threshold=report.cv_threshold,
                           notes=notes)
        multi = len(report.runs) > 1
        if multi:
            # Folded: with several runs the comparison above is what a reader looks at first.
            lines += ["<details>", f"<summary>Run {_esc(run.label)}</summary>", ""]
        if not model.rows:
            lines += ["No results.", *(["</details>"] if multi else []), ""]
            continue
        if model.title:
            lines += [f"*{_esc(model.title)}*", ""]
        rows = [[_esc(v) for v in keys.values()] + [_cell(c) for c in cells] for keys, cells in model.rows]
        lines += _table([*model.key_columns, *model.paths], rows,
                        [False] * len(model.key_columns) + [True] * len(model.paths))
        lines += ["", *(["</details>", ""] if multi else [])]
        any_unstable = any_unstable or model.any_unstable
        any_ceiling = any_ceiling or model.any_ceiling
        for reason, names in model.unmeasured.items():
            unmeasured.setdefault(reason, [])
            unmeasured[reason] += [n for n in names if n not in unmeasured[reason]]
    lines += [f"[{n}] {_esc(message)}  " for message, n in notes.numbers.items()]
    lines += [f"Not measured in any case: {', '.join(names)}: {_esc(reason)}  " for reason, names in unmeasured.items()]
    lines.append(CELL_LEGEND.format(threshold=report.cv_threshold))
    if any_ceiling:
        lines.append(f"\n{CEILING_LEGEND}")
    if any_unstable:
        lines.append(f"\n`!` **Unstable**: the samples' CV is above {report.cv_threshold:.0%}; take more repeats or "
                     "quiet the machine before trusting that median.")
    return lines + [""]


def _cases(report: Report) -> list[str]:
    cases = case_table(report.summary)
    multi = len(report.runs) > 1
    letters = {r.run_id: r.letter for r in report.runs}
    varying = varying_settings(cases)
    header = [*(["run"] if multi else []), "checkpoint", "task", "path", *varying, "status", "samples", "detail"]
    rows = []
    # Only what needs a reader's attention; the HTML report lists every case.
    for c in cases[cases["status"] != "ok"].itertuples(index=False):
        status = _STATUS_TEXT.get(c.status, c.status)
        rows.append([*([letters[c.run_id]] if multi else []), _esc(c.checkpoint), _esc(c.task), _esc(c.path),
                     *(_esc(getattr(c, k)) for k in varying), f"**{status}**" if c.status != "ok" else status,
                     str(c.samples), _esc(c.detail)])
    counts = cases["status"].value_counts()
    summary_line = ", ".join(f"{counts[s]} {_STATUS_TEXT[s]}" for s in _STATUS_TEXT if s in counts)
    lines = ["## Cases", "", f"{len(cases)} cases: {summary_line}." + (" The others:" if rows else ""), ""]
    if rows:
        lines += _table(header, rows, [False] * (len(header) - 2) + [True, False])
    return lines + [""]


def _glance(report: Report) -> list[str]:
    labels, rows = best_paths(report.summary)
    if not rows:
        return []
    multi = len(report.runs) > 1
    letters = {r.run_id: r.letter for r in report.runs}
    varying = varying_settings(rows)
    body = []
    for row in rows:
        cells = []
        for g in row["cells"]:
            if g is None:
                cells.append("—")
                continue
            main, note = g.text()
            main = f"**{_esc(main)}**" if g.best else _esc(main)
            cells.append(main + (f" <sub>{_esc(note)}</sub>" if note else ""))
        body.append([*([letters[row["run_id"]]] if multi else []), _esc(row["checkpoint"]), _esc(row["task"]),
                     *(_esc(row[k]) for k in varying), *cells])
    header = [*(["run"] if multi else []), "checkpoint", "task", *varying, *labels]
    return ["## At a glance", "",
            "The best path per checkpoint by median; `≈` lists paths whose interquartile range overlaps the "
            "winner's, which are not clearly worse.", "", *_table(header, body), ""]


_LOUD = ("regressed", "improved", "failed", "inconclusive")


def _ratio(change: RunChange) -> str:
    text = _esc(change.text())
    return text.replace(change.verdict, f"**{change.verdict}**") if change.verdict in _LOUD else text


def _value(row: Any) -> str:
    if row is None:
        return "—"
    if row.status != "ok":
        return "FAILED" if row.status == "failed" else "n/a"
    return format_value(row.median, row.unit) + spread_text(row)


def _comparison(report: Report) -> list[str]:
    first = report.runs[0].letter
    later = [r.letter for r in report.runs[1:]]
    rows = run_comparison(report)
    varying = varying_settings(rows)
    header = ["checkpoint", "path", *varying, "metric", *[r.letter for r in report.runs],
              *[f"{x} / {first}" for x in later]]
    body = [[_esc(r["checkpoint"]), _esc(r["path"]), *(_esc(r[k]) for k in varying), _esc(r["metric"]),
             *(_esc(_value(c)) for c in r["cells"]), *(_ratio(ch) for ch in r["changes"])] for r in rows]
    notes = [f"> {_esc(note)}" for note in verdict_notes(report)]
    return ["## Runs side by side", "", f"Baseline: run {first}; {_esc(VERDICT_RULE)}", "",
            *(notes + [""] if notes else []),
            *_table(header, body, [False] * (len(header) - len(report.runs) - len(later))
                    + [True] * (len(report.runs) + len(later))), ""]


def _sweep(report: Report) -> list[str]:
    """Each run over several environments: a column per environment, in the order the run named them."""
    lines: list[str] = []
    for run in report.runs:
        found = sweep(report, run)
        if found is None:
            continue
        header = ["checkpoint", *found.keys, "metric", "path", *found.envs]
        body = [[_esc(r[k]) for k in ("checkpoint", *found.keys, "metric", "path")]
                + [_esc(f"{_value(c)} {ratio}".rstrip()) for c, ratio in zip(r["cells"], r["ratios"])]
                for r in found.rows]
        versions = "; ".join(f"**{_esc(env)}**: {_esc(found.versions[env] or 'versions not recorded')}"
                             for env in found.envs)
        who = f" (run {run.letter})" if len(report.runs) > 1 else ""
        lines += [f"## Across environments{who}", "", versions + ".", "",
                  f"Medians ± CV; ×: the median as a multiple of {_esc(found.envs[0])}'s. `loadbench compare RUN "
                  "--baseline-env A --candidate-env B` tests two of them pair by pair.", "",
                  *_table(header, body, [False] * (len(header) - len(found.envs)) + [True] * len(found.envs)), ""]
    return lines


def render_markdown(report: Report, metrics: Sequence[str] = HEADLINE) -> str:
    """The report as markdown: environment first, warnings on top, then numbers, then every case."""
    multi = len(report.runs) > 1
    title = f"{len(report.runs)} runs" if multi else f"run {report.runs[0].run_id}"
    lines = [f"# loadbench report: {_esc(title)}", "", *_warnings(report), *_environment(report)]
    lines += _comparison(report) if multi else _glance(report)
    lines += _sweep(report)
    lines += _results(report, metrics, Footnotes())
    lines += _cases(report)
    return "\n".join(lines).rstrip() + "\n"
