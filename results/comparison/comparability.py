"""Whether two sides may be compared: their machines and libraries, and which rows stay apart per machine.

A comparison of numbers measured on different hardware or library versions says more
about the environment than about the code, so this is checked before any statistics,
and samples of different machines are never pooled into one row.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from loadbench.errors import UserError
from loadbench.results.records.runinfo import COMPARABILITY_KEYS, Difference, differences

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CannotCompare", "by_machine", "check_comparable", "fingerprint_differences"]


class CannotCompare(UserError):
    """The inputs cannot be compared (exit 2): no data, no common cases, bad settings, or different machines."""

    def __init__(self, message: str, differences: Sequence[Difference] = ()) -> None:
        super().__init__(message)
        self.differences = tuple(differences)


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _fingerprints(df: pd.DataFrame) -> list[tuple[str, dict[str, str | None]]]:
    """(label, comparability fields) of every distinct machine and library set of every run.

    Every (run, machine) pair counts, not a run's first row: a run spread over unlike
    machines (or nodes with other libraries) differs from itself. The label is the run
    id, followed by `` @ <machine>`` when the run has more than one entry.
    """
    present = [k for k in COMPARABILITY_KEYS if k in df.columns]
    if "run_id" not in df.columns or not present:
        return []
    by = ["run_id", *(["machine"] if "machine" in df.columns else [])]
    combos = df[[*by, *present]].drop_duplicates()
    entries = combos["run_id"].value_counts()
    out = []
    for row in combos.to_dict(orient="records"):
        run_id = str(row["run_id"])
        label = f"{run_id} @ {row['machine']}" if entries[row["run_id"]] > 1 and "machine" in row else run_id
        out.append((label, {k: (None if _missing(row[k]) else str(row[k])) for k in present}))
    return out


def fingerprint_differences(baseline: pd.DataFrame, candidate: pd.DataFrame) -> tuple[list[str], list[Difference]]:
    """Who (baseline first) and the comparability keys that differ among them.

    Who is one label per run, or per run × machine for a run measured on several
    machines (``"<run> @ <machine>"``); each Difference carries the same labels.
    """
    runs = _fingerprints(baseline) + _fingerprints(candidate)
    labels = [label for label, _ in runs]
    found = differences([fields for _, fields in runs], labels) if len(runs) > 1 else []
    return labels, [d for d in found if d.key]


def check_comparable(baseline: pd.DataFrame, candidate: pd.DataFrame, allow_mismatch: bool) -> None:
    """Raise CannotCompare, naming what differs, when the sides' machines or key libraries differ
    and ``allow_mismatch`` is not set."""
    _, diffs = fingerprint_differences(baseline, candidate)
    if diffs and not allow_mismatch:
        what = "; ".join(f"{d.field}: {' vs '.join(dict.fromkeys(str(v or 'unknown') for v in d.values))}"
                         for d in diffs)
        raise CannotCompare(f"the runs were measured on different machines or libraries ({what}); "
                            "pass `allow_mismatch` to compare anyway", diffs)


def by_machine(base: pd.DataFrame, cand: pd.DataFrame) -> bool:
    """Whether rows are kept apart per machine.

    They are whenever a side was measured on several machines, so that no side's
    hardware is pooled, and when both sides share their one machine. Two sides on one
    machine each, but different ones, are compared with each other: that is what
    ``allow_mismatch`` is for.
    """
    if "machine" not in base.columns or "machine" not in cand.columns:
        return False
    bm, cm = _machines(base), _machines(cand)
    return len(bm) > 1 or len(cm) > 1 or bm == cm


def _machines(df: pd.DataFrame) -> set[str | None]:
    return {None if _missing(m) else str(m) for m in df["machine"].unique()}
