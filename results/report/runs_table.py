"""The "runs side by side" table of a report: each case x metric, one cell per run, compare's verdicts.

The verdicts are ``runs.judge_runs``'s (compare's own); this module only lays them out
beside the summary cells they judge, for the markdown and HTML reports.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from loadbench.results.analysis.tables import PATH_RANK, per_machine, reading_order
from loadbench.results.records.schema import CASE_KEYS
from loadbench.results.report.cases import unmeasured_everywhere
from loadbench.results.report.runs import COMPARE_METRICS, NO_VERDICT, RunChange

if TYPE_CHECKING:
    import pandas as pd

    from loadbench.results.report.model import Report

__all__ = ["run_comparison", "verdict_notes"]


def verdict_notes(report: Report) -> list[str]:
    """One line per later run that compare refused to judge, with compare's reason."""
    letters = {r.run_id: r.label for r in report.runs}
    return [f"Run {letters[v.run_id]} has no verdicts: {v.reason}" for v in report.verdicts if v.table is None]


def _machine(value: Any) -> str | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def _place(entries: list[dict[str, Any]], verdicts: pd.DataFrame, later: int, per_machine_rows: bool) -> None:
    """Put every compare row into the entry of its case × metric (and machine) as ``changes[later - 1]``.

    compare keeps machines apart only where a side has several or both share one; a
    row it pooled across two single-machine runs goes where the later run's cell is
    (else where the baseline's is).
    """
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for entry in entries:
        groups.setdefault((*(entry[k] for k in CASE_KEYS), entry["metric"]), []).append(entry)
    for row in verdicts.to_dict(orient="records"):
        group = groups.get((*(row[k] for k in CASE_KEYS), row["metric"]), [])
        machine = _machine(row["machine"])
        if per_machine_rows and machine is not None:
            group = [e for e in group if (_machine(e["machine"]) or "unknown") == machine]
        elif per_machine_rows:
            group = ([e for e in group if e["cells"][later] is not None]
                     or [e for e in group if e["cells"][0] is not None])
        if group:
            group[0]["changes"][later - 1] = RunChange(float(row["change"]), str(row["verdict"] or ""))


def run_comparison(report: Report, metrics: Sequence[str] = COMPARE_METRICS) -> list[dict[str, Any]]:
    """Rows for the "runs side by side" table: one per case × metric, the first run as baseline.

    Each row: the case keys, metric, ``cells`` (one summary row or None per run)
    and ``changes`` (a RunChange of every later run against the first: compare's
    change and verdict, NO_VERDICT where compare has no row for it or refused the
    run). Metrics that no case measured (GPU memory on a CPU) are left out. When a
    run was measured on several machines, rows are per ``machine`` as well (a key of
    the row then), so its machines are never folded into one cell.
    """
    skip = {m for ms in unmeasured_everywhere(report.summary).values() for m in ms}
    summary = report.summary[report.summary["metric"].isin([m for m in metrics if m not in skip])]
    run_ids = [r.run_id for r in report.runs]
    machine = per_machine(summary)
    names = ("checkpoint", "task", "dtype", "device", "options", "cache", "env", *machine, "metric", "path")
    rows: dict[tuple[str, ...], dict[str, Any]] = {}
    for row in reading_order(summary).itertuples(index=False):
        key = tuple(getattr(row, n) for n in names)
        entry = rows.setdefault(key, {**dict(zip(names, key)), "cells": [None] * len(run_ids),
                                      "changes": [NO_VERDICT] * (len(run_ids) - 1)})
        entry["cells"][run_ids.index(row.run_id)] = row
    # reading_order() put checkpoint, task, metric and cache in order; paths go in PATH_NAMES order within.
    first_seen = {key[:-1]: i for i, key in reversed(list(enumerate(rows)))}
    out = [rows[k] for k in sorted(rows, key=lambda k: (first_seen[k[:-1]], PATH_RANK.get(k[-1], len(PATH_RANK))))]
    for later, verdicts in enumerate(report.verdicts, start=1):
        if verdicts.table is not None:
            _place(out, verdicts.table, later, bool(machine))
    return out
