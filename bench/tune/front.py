"""Each setting's load time and added memory with intervals, and the Pareto front they draw.

A setting is summarised over every sample of it the tune took (all rungs pooled: one
machine, one session). Its interval is the distribution-free one for a median (order
statistics, scipy's ``quantile_test``): no shape is assumed for load times, whose tails
are long. With too few samples for the level the interval is unbounded, and shown so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Estimate", "Measured", "added_per_sample", "mark_front", "measured_settings", "median_interval"]

CONFIDENCE = 0.95
MEMORY_METRICS = ("load_added_rss_bytes", "gpu_load_added_bytes")


@dataclass(frozen=True)
class Estimate:
    median: float
    low: float  # -inf / inf when the samples are too few to bound the median at CONFIDENCE
    high: float
    n: int


def median_interval(values: Sequence[float]) -> Estimate:
    import numpy as np
    from scipy.stats import quantile_test

    data = np.asarray(values, dtype=float)
    median = float(np.median(data))
    interval = quantile_test(data, q=median, p=0.5).confidence_interval(CONFIDENCE)
    low, high = float(interval.low), float(interval.high)
    return Estimate(median, -math.inf if math.isnan(low) else low, math.inf if math.isnan(high) else high,
                    int(data.size))


@dataclass
class Measured:
    """What the tune knows of one setting."""

    name: str
    load_s: Estimate | None = None
    added_bytes: Estimate | None = None  # CPU resident memory the load added, plus GPU memory where measured
    gpu_added_bytes: Estimate | None = None
    to_device_share: float | None = None  # of the load's time, the share spent moving weights to the device
    max_abs_diff: float | None = None  # the equivalence check's largest difference from the base load
    failed: str | None = None  # why it has no result (its first error), when it has none
    on_front: bool = False

    @property
    def usable(self) -> bool:
        return self.failed is None and self.load_s is not None and self.added_bytes is not None


def _first_error(rows: pd.DataFrame) -> str | None:
    bad = rows[rows["status"] != "ok"]
    if bad.empty:
        return None
    row = bad.iloc[0]
    return f"{row['metric']}: {row['error'] or row['reason'] or row['status']}"


def measured_settings(frame: pd.DataFrame, names: dict[tuple[str, str], str]) -> dict[str, Measured]:
    """Every setting in ``names`` ((path, options text) -> name), summarised from ``frame``'s measured samples."""
    found: dict[str, Measured] = {}
    rows = frame[~frame["warmup"].astype(bool)]
    for (path, options), name in names.items():
        mine = rows[(rows["path"] == path) & (rows["options"] == options)]
        result = Measured(name)
        found[name] = result
        if mine.empty:
            continue
        result.failed = _first_error(mine[mine["metric"].isin(["load_s", "max_abs_diff_vs_base"])])
        ok = mine[mine["status"] == "ok"]
        by_metric = {m: g.sort_values("repeat")["value"].to_numpy(float) for m, g in ok.groupby("metric")}
        if len(by_metric.get("load_s", ())) == 0:
            result.failed = result.failed or "no load succeeded"
            continue
        result.load_s = median_interval(by_metric["load_s"])
        result.added_bytes = _added(ok)
        if len(by_metric.get("gpu_load_added_bytes", ())):
            result.gpu_added_bytes = median_interval(by_metric["gpu_load_added_bytes"])
        if len(by_metric.get("to_device_s", ())):
            result.to_device_share = float(sum(by_metric["to_device_s"]) / sum(by_metric["load_s"]))
        if len(by_metric.get("max_abs_diff_vs_base", ())):
            result.max_abs_diff = float(max(by_metric["max_abs_diff_vs_base"]))
    return found


def added_per_sample(rows: pd.DataFrame, keys: Sequence[str] = ("run_id", "repeat")) -> pd.Series:
    """Per sample (``keys``), CPU plus GPU memory the load added; a sample without its CPU figure has no total."""
    total = rows[rows["metric"].isin(MEMORY_METRICS)].groupby(list(keys))["value"].sum()
    cpu = rows[rows["metric"] == MEMORY_METRICS[0]].set_index(list(keys)).index
    return total[total.index.isin(cpu)]


def _added(ok: pd.DataFrame) -> Estimate | None:
    per_sample = added_per_sample(ok)
    return median_interval(per_sample.to_numpy(float)) if len(per_sample) else None


def mark_front(settings: dict[str, Measured]) -> list[str]:
    """Mark and return the settings no other beats on both load time and added memory (medians)."""
    usable = [m for m in settings.values() if m.usable]

    def point(m: Measured) -> tuple[float, float]:
        assert m.load_s is not None and m.added_bytes is not None
        return m.load_s.median, m.added_bytes.median

    front = []
    for m in usable:
        t, b = point(m)
        m.on_front = not any(point(o)[0] <= t and point(o)[1] <= b and point(o) != (t, b) for o in usable)
        if m.on_front:
            front.append(m.name)
    return sorted(front, key=lambda name: point(settings[name]))


def as_dict(m: Measured) -> dict[str, Any]:
    def est(e: Estimate | None) -> dict[str, Any] | None:
        if e is None:
            return None
        return {"median": e.median, "low": e.low if math.isfinite(e.low) else None,
                "high": e.high if math.isfinite(e.high) else None, "n": e.n}

    return {"load": est(m.load_s), "added_bytes": est(m.added_bytes), "gpu_added_bytes": est(m.gpu_added_bytes),
            "to_device_share": m.to_device_share, "max_abs_diff": m.max_abs_diff, "failed": m.failed,
            "on_front": m.on_front}
