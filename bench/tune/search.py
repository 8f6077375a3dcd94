"""Where a tune spends its samples: successive halving, then one paired run to confirm the winner.

Every setting gets a few samples; the better half of them (by the goal) get as many
again, and so on until one contender is left beside the default, which is always kept.
A setting that is slow on three samples rarely wins on thirty, and the samples it would
have cost go to the settings whose order is still in doubt. The winner is then
confirmed against the default in a run of their own, interleaved round by round, so the
gain is read off paired samples and not off two rungs taken minutes apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loadbench.bench.tune.candidates import DEFAULT_SETTING
from loadbench.bench.tune.front import CONFIDENCE, Measured, added_per_sample
from loadbench.bench.tune.goals import Goal

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["FIRST_REPEATS", "Confirmation", "confirm", "ranked", "rung_repeats", "survivors"]

FIRST_REPEATS = 3


def rung_repeats(rung: int) -> int:
    """New samples per live setting in rung ``rung``: each rung doubles what a survivor has."""
    return FIRST_REPEATS if rung == 0 else FIRST_REPEATS * 2 ** (rung - 1)


def ranked(measured: dict[str, Measured], names: list[str], goal: Goal) -> list[str]:
    """``names`` that have a result and meet the goal's limit, best first."""
    usable = [measured[n] for n in names if measured[n].usable]
    fitting = [m for m in usable if goal.admits(m.added_bytes.median)]
    return [m.name for m in sorted(fitting, key=lambda m: goal.rank(m.load_s.median, m.added_bytes.median))]


def survivors(measured: dict[str, Measured], live: list[str], goal: Goal) -> list[str]:
    """The better half of the live contenders, and the default: who the next rung measures."""
    contenders = [n for n in ranked(measured, live, goal) if n != DEFAULT_SETTING]
    kept = contenders[:math.ceil(len(contenders) / 2)] if len(contenders) > 1 else contenders
    return [DEFAULT_SETTING, *kept]


@dataclass(frozen=True)
class Confirmation:
    """The paired run's answer: how much of the default's load time (or memory) the contender saves."""

    contender: str
    metric: str
    pairs: int
    gain: float  # 0.25: a quarter less than the default; negative: more
    ci_low: float
    ci_high: float

    @property
    def verdict(self) -> str:
        if self.ci_low > 0:
            return "better"
        if self.ci_high < 0:
            return "worse"
        return "inconclusive"

    def as_dict(self) -> dict[str, Any]:
        return {"contender": self.contender, "metric": self.metric, "pairs": self.pairs, "gain": self.gain,
                "ci_low": self.ci_low, "ci_high": self.ci_high, "verdict": self.verdict,
                "confidence": CONFIDENCE}


def _per_repeat(rows: pd.DataFrame, metric: str) -> pd.Series:
    if metric == "memory":
        return added_per_sample(rows, ["repeat"])  # one run: its rounds are the pairs
    return rows[rows["metric"] == metric].set_index("repeat")["value"]


def confirm(frame: pd.DataFrame, default: tuple[str, str], contender: tuple[str, str], name: str,
            metric: str) -> Confirmation | None:
    """The Hodges–Lehmann estimate and interval of the paired change, pairing samples of one round.

    Times (and memory, when every figure is positive) are compared as log ratios, so
    the interval is of a ratio; memory that can be 0 is compared as a difference,
    relative to the default's median. None when fewer than 6 rounds hold both: too
    few for a 95% interval.
    """
    import numpy as np

    from loadbench.results.comparison.stats import walsh_interval

    rows = frame[(~frame["warmup"].astype(bool)) & (frame["status"] == "ok")]
    sides = [_per_repeat(rows[(rows["path"] == p) & (rows["options"] == o)], metric) for p, o in (default, contender)]
    both = sides[0].index.intersection(sides[1].index)
    if len(both) < 6:
        return None
    base, cand = sides[0][both].to_numpy(float), sides[1][both].to_numpy(float)
    if (base > 0).all() and (cand > 0).all():
        estimate, low, high = walsh_interval(np.log(cand) - np.log(base), CONFIDENCE)
        gain, ci_low, ci_high = 1 - math.exp(estimate), 1 - math.exp(high), 1 - math.exp(low)
    else:
        scale = float(np.median(base)) or 1.0
        estimate, low, high = walsh_interval(cand - base, CONFIDENCE)
        gain, ci_low, ci_high = -estimate / scale, -high / scale, -low / scale
    return Confirmation(name, metric, len(both), gain, ci_low, ci_high)
