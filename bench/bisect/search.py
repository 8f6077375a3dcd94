"""How a bisect decides, step by step, from paired comparisons alone (no measuring here).

1. **The ends.** GOOD and BAD are measured against each other: the metric must have
   changed (its interval excludes 0 and its estimate reaches the metric's threshold), and
   the change's sign is the direction that later steps look for.
2. **A middle.** The release halfway between the two ends still open is measured against
   both, in one run (the middle first, as the baseline). A change counts at a step when it
   reaches **half the change of the range still open** on the log scale (that range's ends
   were measured against each other, or against the middle, one step before; so where
   the change came in several releases, each step follows the half holding more of what
   is left of it, and ends at one release that made a large part of it): the question is whether the
   middle is already like BAD or still like GOOD, so a step is decided by a change of the
   size being looked for, not by the 3% a gate looks for. A threshold is one fraction for
   both signs of a ratio, and the middle's two comparisons move opposite ways, so it is
   taken on the side of a decrease (``1 - e^(-|log overall| / 2)``: 47% for a x3.5
   change), which a move of half the change reaches either way. The later end moved away from
   the middle in the direction: the change lies after it. The earlier end moved away the
   other way: it lies at or before it. Both: the first one is followed. Neither, with
   both sides decided unchanged: the change is spread over many releases and no single one
   made it. Otherwise inconclusive: the bisect stops with the range still open.
3. **The confirmation.** When the two ends are neighbours, a separate paired run of the
   later one against the earlier, at the metric's own threshold, gives the step's size
   and its interval, and must show the change again.

Each step's intervals are confidence sequences at ``alpha / (steps planned x comparisons
in the step)``: Bonferroni over the whole bisect, valid under the measuring-until-decided
each step does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

__all__ = ["Move", "Reading", "half_change", "planned_steps", "read_ends", "read_middle", "read_confirmation"]

Move = Literal["left", "right", "spread", "inconclusive", "changed", "unchanged"]


@dataclass(frozen=True)
class Reading:
    """One paired comparison as a step reads it: the candidate against the baseline."""

    verdict: str  # as compare decides it: regressed, improved, changed, unchanged, inconclusive, ...
    change: float  # median paired ratio - 1
    ci_low: float
    ci_high: float
    pairs: int

    @property
    def sign(self) -> int | None:
        """+1 or -1 for a change past the threshold, 0 for unchanged, None for anything undecided."""
        if self.verdict in ("regressed", "improved", "changed"):
            return 1 if self.change > 0 else -1
        return 0 if self.verdict == "unchanged" else None


def planned_steps(candidates: int) -> int:
    """Runs a bisect of ``candidates`` versions takes at most: the ends, the middles, the confirmation."""
    return 1 + max(0, math.ceil(math.log2(max(candidates - 1, 1)))) + 1


def half_change(change: float) -> float:
    """Half of ``change`` on the log scale as a threshold both signs reach: x3.5 (or /3.5) overall gives 0.47."""
    return 1 - math.exp(-abs(math.log1p(change)) / 2)


def read_ends(reading: Reading) -> Move:
    """``changed`` when BAD differs from GOOD past the threshold; else unchanged or inconclusive."""
    if reading.sign:
        return "changed"
    return "unchanged" if reading.sign == 0 else "inconclusive"


def read_middle(earlier_vs_middle: Reading, later_vs_middle: Reading, direction: int) -> Move:
    """Where the change lies from the middle's two comparisons (each against the middle)."""
    if earlier_vs_middle.sign == -direction:
        return "left"
    if later_vs_middle.sign == direction:
        return "right"
    if earlier_vs_middle.sign == 0 and later_vs_middle.sign == 0:
        return "spread"
    return "inconclusive"


def read_confirmation(reading: Reading, direction: int) -> Move:
    """``changed`` when the neighbour pair shows the change in the direction looked for."""
    if reading.sign == direction:
        return "changed"
    return "unchanged" if reading.sign == 0 else "inconclusive"
