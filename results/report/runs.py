"""Runs side by side: every later run of a report judged against the first by ``compare``.

A report and ``loadbench compare`` must never disagree about the same two runs, so
the report has no verdict rule of its own: each later run goes through ``compare()``
against the first (the report's headline metrics only, different machines allowed,
since the report warns about them itself), and its table shows compare's verdict and
change per case × metric (× machine), ``inconclusive`` included where the samples decide
neither way. Where compare refuses (too few samples to bound any change, no case in
common), the run's cells stay empty and the reason is a note.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from loadbench.results.comparison.comparability import CannotCompare
from loadbench.results.comparison.render import unpaired_rule
from loadbench.results.comparison.settings import DEFAULT_ALPHA, DEFAULT_THRESHOLDS
from loadbench.results.comparison.unpaired import compare

if TYPE_CHECKING:
    import pandas as pd


__all__ = ["COMPARE_METRICS", "NO_VERDICT", "VERDICT_RULE", "RunChange", "RunVerdicts", "judge_runs"]

# What "runs side by side" compares: the outcomes a user feels, not their parts
# (phases) or facts without a better direction (bytes read).
COMPARE_METRICS: tuple[str, ...] = (
    "load_s", "first_forward_s", "ttft_s", "decode_tokens_per_s", "forward_tokens_per_s", "load_added_rss_bytes",
    "peak_rss_bytes", "gpu_load_added_bytes", "gpu_peak_used_bytes",
)
VERDICT_RULE = (
    "each later run is judged against the baseline as loadbench compare judges: "
    + unpaired_rule(DEFAULT_ALPHA) + "; thresholds "
    + ", ".join(f"{v:.0%} ({k})" for k, v in DEFAULT_THRESHOLDS.items() if k != "other")
    + "; the ratio is the Hodges–Lehmann estimate of later ÷ baseline (the median of all sample ratios)."
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


def judge_runs(run_ids: Sequence[str], records: pd.DataFrame,
               metrics: Sequence[str] = COMPARE_METRICS) -> list[RunVerdicts]:
    """compare() every run after the first against the first; a refusal becomes its reason, never an error."""
    if len(run_ids) < 2:
        return []
    first = records[records["run_id"] == run_ids[0]]
    out = []
    for run_id in run_ids[1:]:
        later = records[records["run_id"] == run_id]
        try:
            out.append(RunVerdicts(run_id, compare(first, later, metrics=list(metrics), allow_mismatch=True)))
        except CannotCompare as exc:
            out.append(RunVerdicts(run_id, None, str(exc)))
    return out
