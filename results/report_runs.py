"""Runs side by side: every later run of a report judged against the first by ``compare``.

A report and ``loadbench compare`` must never disagree about the same two runs, so
the report has no verdict rule of its own: each later run goes through ``compare()``
against the first (the report's headline metrics only, different machines allowed,
since the report warns about them itself), and its table shows compare's verdict and
change per case × metric (× machine). Where compare refuses (too few samples to test
anything, no case in common), the run's cells stay empty and the reason is a note.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .comparability import CannotCompare
from .compare import compare
from .compare_settings import DEFAULT_ALPHA, DEFAULT_THRESHOLDS
from .report_cases import unmeasured_everywhere
from .schema import CASE_KEYS
from .tables import PATH_RANK, per_machine, reading_order

if TYPE_CHECKING:
    import pandas as pd

    from .report import Report, RunMeta

__all__ = ["COMPARE_METRICS", "NO_VERDICT", "VERDICT_RULE", "RunChange", "RunVerdicts", "judge_runs",
           "run_comparison", "verdict_notes"]

# What "runs side by side" compares: the outcomes a user feels, not their parts
# (phases) or facts without a better direction (bytes read).
COMPARE_METRICS: tuple[str, ...] = (
    "load_s", "first_forward_s", "ttft_s", "decode_tokens_per_s", "forward_tokens_per_s", "load_added_rss_bytes",
    "peak_rss_bytes", "gpu_load_added_bytes", "gpu_peak_used_bytes",
)
VERDICT_RULE = (
    "each later run is judged against the baseline as loadbench compare judges: a Mann–Whitney U test "
    f"(Holm-corrected per metric family, alpha {DEFAULT_ALPHA:g}) and a change of at least "
    + ", ".join(f"{v:.0%} ({k})" for k, v in DEFAULT_THRESHOLDS.items() if k != "other")
    + " make regressed or improved; the ratio is the Hodges–Lehmann estimate of later ÷ baseline "
    "(the median of all sample ratios)."
)


@dataclass(frozen=True)
class RunChange:
    """compare's judgement of one later run against the first, in one row of the table."""

    change: float  # compare's change: later / baseline - 1; NaN where a side has no samples
    verdict: str  # one of compare's VERDICTS; "" where compare gave none

    @property
    def ratio(self) -> float:
        return 1 + self.change

    def text(self) -> str:
        """"1.30× regressed", "new", or "—" when there is neither a ratio nor a verdict."""
        ratio = f"{self.ratio:.2f}×" if math.isfinite(self.change) else ""
        return " ".join(t for t in (ratio, self.verdict) if t) or "—"


NO_VERDICT = RunChange(math.nan, "")


@dataclass(frozen=True)
class RunVerdicts:
    """compare() of one later run against the first: its table, or why there is none."""

    run_id: str
    table: pd.DataFrame | None
    reason: str = ""


def judge_runs(runs: Sequence[RunMeta], records: pd.DataFrame,
               metrics: Sequence[str] = COMPARE_METRICS) -> list[RunVerdicts]:
    """compare() every run after the first against the first; a refusal becomes its reason, never an error."""
    if len(runs) < 2:
        return []
    first = records[records["run_id"] == runs[0].run_id]
    out = []
    for run in runs[1:]:
        later = records[records["run_id"] == run.run_id]
        try:
            out.append(RunVerdicts(run.run_id, compare(first, later, metrics=list(metrics), allow_mismatch=True)))
        except CannotCompare as exc:
            out.append(RunVerdicts(run.run_id, None, str(exc)))
    return out


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
