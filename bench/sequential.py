"""Measure until decided: more blocks only where a gated row is still inconclusive.

After the suite's ``repeats`` rounds, a run with ``until_decided`` looks, after every
round, at the paired comparison of each candidate environment with the baseline (the first
environment), exactly as ``loadbench compare RUN`` would judge it, and gives one more
block to each case that still has an inconclusive gated row. A case whose gated rows are
all decided stops. The run ends when no case is left, when a gated row regressed (the gate
fails whatever the other rows say, so more samples would only cost), or at a budget:
``max_repeats`` blocks per case or ``max_minutes`` of measuring.

The paired intervals are confidence sequences (results/comparison/stats.sign_sequence),
valid whenever one looks and whenever one stops, so this optional stopping keeps the
gate's false-alarm rate (docs/REGRESSIONS.md measures it). Every decision is a function of
the records of the rounds before it, so a resumed run replays them and continues the
same plan.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loadbench.results.records.schema import CASE_KEYS

if TYPE_CHECKING:
    import pandas as pd

    from loadbench.bench.suite import Suite

__all__ = ["DEFAULT_MAX_REPEATS", "Look", "STOP_REASONS", "look", "look_at_run"]

# Blocks per case a run with until_decided takes at most unless told (`max_repeats`).
DEFAULT_MAX_REPEATS = 60
# Why a case stopped taking blocks, as run.json's ``sequential.cases`` records it.
STOP_REASONS: dict[str, str] = {
    "decided": "every gated row decided",
    "regression": "a gated row regressed: the gate fails whatever the rest says",
    "max_repeats": "reached max_repeats blocks, rows still inconclusive",
    "max_minutes": "reached max_minutes, rows still inconclusive",
}
_KEYS = tuple(k for k in CASE_KEYS if k != "env")


@dataclass(frozen=True)
class Look:
    """What one look found: the cases still undecided (by block key) and the gated rows that regressed."""

    undecided: dict[tuple[str, ...], list[str]] = field(default_factory=dict)
    regressed: list[str] = field(default_factory=list)


def _describe(row: dict[str, Any], candidate: str) -> str:
    def percent(value: float) -> str:
        return "unbounded" if math.isnan(value) else f"{value * 100:+.1f}%"

    return (f"{row['checkpoint']}/{row['path']} {row['metric']} in {candidate}: {percent(row['ci_low'])} … "
            f"{percent(row['ci_high'])} (±{row['threshold'] * 100:g}%)")


def look(frame: pd.DataFrame, suite: Suite, gate: Sequence[str] | None = None) -> Look:
    """Judge every candidate environment against the baseline on ``frame`` (a ``load()`` frame of the run).

    Uses the suite's ``[compare]`` thresholds and alpha (the paired defaults otherwise)
    and the gate (``gate``, else the table's ``gate``, else GATE_METRICS), as ``loadbench
    compare RUN`` does. Only
    the gated metrics are read: the diagnostics are judged in families of their own, so
    they cannot change a gated verdict.
    """
    from loadbench.results.comparison.comparability import CannotCompare
    from loadbench.results.comparison.paired import DEFAULT_PAIRED_ALPHA, GATE_METRICS, compare_paired
    from loadbench.results.comparison.settings import compare_settings_from_table

    settings = compare_settings_from_table(suite.compare)
    gated = list(gate if gate is not None else settings.gate or GATE_METRICS)
    if settings.metrics is not None:
        gated = [m for m in gated if m in settings.metrics]
    frame = frame[frame["metric"].isin(gated)]
    names = [e.name for e in suite.environments]
    found = Look()
    for candidate in names[1:]:
        try:
            table = compare_paired(frame, baseline_env=names[0], candidate_env=candidate,
                                   thresholds=settings.thresholds, gate=gated,
                                   alpha=settings.alpha if settings.alpha is not None else DEFAULT_PAIRED_ALPHA)
        except CannotCompare:  # too few pairs in every gated row to bound anything yet
            return Look({tuple(r): ["too few pairs to bound any change yet"] for r in _case_keys(frame)})
        for row in table[table["gated"].astype(bool)].to_dict("records"):
            key = tuple(str(row[k]) for k in _KEYS)
            if row["verdict"] == "inconclusive":
                found.undecided.setdefault(key, []).append(_describe(row, candidate))
            elif row["verdict"] in ("regressed", "failed"):
                found.regressed.append(_describe(row, candidate))
    return found


def _case_keys(frame: pd.DataFrame) -> list[tuple[str, ...]]:
    return [tuple(str(v) for v in key) for key in frame[list(_KEYS)].drop_duplicates().itertuples(index=False)]


def look_at_run(run_dir: Path, suite: Suite, before_repeat: int) -> Look:
    """``look`` at the run's records of the rounds before ``before_repeat`` (a resumed run sees what the run saw)."""
    import warnings

    from loadbench.results import TruncatedRunWarning, load

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TruncatedRunWarning)
        frame = load(run_dir)
    return look(frame[frame["repeat"] < before_repeat], suite)


def block_keys(cases: Sequence[Any]) -> list[tuple[str, ...]]:
    """The block keys of ``cases`` (plan.Case), each once, in order."""
    return list(dict.fromkeys(tuple(str(v) for v in c.block_key) for c in cases))


def summary_lines(state: dict[str, Any] | None) -> list[str]:
    """What a person reads after a run with until_decided: how many cases decided, and what stayed open."""
    if not state or not isinstance(state.get("cases"), dict):
        return []
    cases = state["cases"]
    if not cases:  # interrupted before any case stopped
        return [f"until decided: {state.get('looks', 0)} look(s), {state.get('minutes', 0):.1f} min so far; "
                "no case has stopped yet"]
    by_reason: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for label, stop in cases.items():
        by_reason.setdefault(str(stop.get("why")), []).append((label, stop))
    blocks = [int(stop.get("blocks", 0)) for stop in cases.values()]
    lines = [f"until decided: {len(cases)} case(s), {min(blocks, default=0)}-{max(blocks, default=0)} blocks each, "
             f"{state.get('minutes', 0):.1f} min; "
             + ", ".join(f"{len(items)} {reason.replace('_', ' ')}" for reason, items in by_reason.items())]
    if state.get("regressed"):
        lines.append("stopped early, a gated row regressed: " + "; ".join(state["regressed"][:3]))
    for reason in ("max_repeats", "max_minutes"):
        for label, stop in by_reason.get(reason, []):
            lines.append(f"  still inconclusive at {reason.replace('_', ' ')} ({stop.get('blocks')} blocks): {label}: "
                         + "; ".join(stop.get("inconclusive") or []))
    return lines
