"""Change points in a history: where a series of runs moved, by how much, and what else changed there.

Candidates come from ruptures (binary segmentation with its rank cost, over every sample
of every run in the order the runs were added, each proposed break moved to the nearest
run boundary). The rank cost needs no distribution, and an outlier weighs no more than any
other sample. Binary segmentation, not PELT: ruptures' PELT took 7 s for one series of
1,000 samples here and grows with the square; binary segmentation took 0.25 s for 5,000.
Otava and MongoDB's signal-processing-algorithms do E-Divisive with a significance test,
but pin numpy below what torch installs (2.2.0 and < 2), so neither can live in the same
environment; ruptures needs only numpy and scipy.

Segmentation proposes; it does not test. A candidate is kept only when the runs on either side
(back to the previous kept break, on to the next) differ by an interval that excludes no
change, at ``alpha`` divided by the number of series tested (Bonferroni: a history is read
as a whole, like the gate's family), and by at least the metric's threshold. The interval
is the two-sample Hodges–Lehmann one over the runs' medians, not over their samples:
samples of one run share that run's state (its processes, the state the machine was in then),
and on this project's VM same-code runs differed by up to 50% at the run level while their
samples looked tight, so a test over samples would call each such jump a change (it did,
in 11 of 48 series of a 30-run A/A history). The price: a break needs enough runs on each
side (about 8 with 48 series tested) before it can be told at all. An anchored series (a
candidate environment over the run's first, block by block: store.py) is tested over its
blocks instead: the state a run shares divides out of each ratio. The weakest candidate
that fails is dropped and its neighbours tested again, until every break left passes.
docs/HISTORY.md has what this gives on real histories.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from loadbench.results.comparison.settings import family_of
from loadbench.results.comparison.stats import Interval, two_sample_interval
from loadbench.results.history.store import ANCHORED_UNIT, HistoryRun
from loadbench.results.records.schema import CASE_KEYS

__all__ = ["ALPHA", "ChangePoint", "HISTORY_THRESHOLDS", "MIN_RUNS", "Series", "change_points", "series_of"]

ALPHA = 0.05
# Runs differ by more than blocks of one paired run do (page cache, other jobs, the time of
# day), so a change between runs must be larger than the paired gate's 3% to count.
HISTORY_THRESHOLDS: dict[str, float] = {"time": 0.05, "memory": 0.05, "throughput": 0.10, "other": 0.10}
MIN_RUNS = 3  # runs on each side of a break: fewer cannot tell a step from one odd run
PENALTY_PER_LOG_N = 3.0  # the segmentation's penalty is this times log(samples): it proposes; the test decides


@dataclass(frozen=True, eq=False)
class Series:
    """One case × metric across the runs that measured it, in the order they were added (compared by identity)."""

    case: dict[str, str]
    metric: str
    unit: str
    direction: str
    runs: list[HistoryRun] = field(repr=False)
    values: list[list[float]] = field(repr=False)

    @property
    def key(self) -> tuple[tuple[str, ...], str]:
        return tuple(self.case[k] for k in CASE_KEYS), self.metric


@dataclass(frozen=True)
class ChangePoint:
    """A break before ``runs[index]``: ``change`` is the relative shift of the later runs, with its interval."""

    series: Series = field(repr=False)
    index: int
    interval: Interval
    threshold: float
    differences: list[dict[str, str | None]]
    # None: the interval is on log values. Else the values were not all positive (memory a
    # load adds can be negative), the interval is in their units and this is the magnitude
    # of the median before the break that the change is relative to.
    scale: float | None = None

    @property
    def label(self) -> str:
        return self.series.runs[self.index].label

    @property
    def previous_label(self) -> str:
        return self.series.runs[self.index - 1].label

    @property
    def change(self) -> float:
        return _relative(self.interval.estimate, self.scale)

    @property
    def ci_low(self) -> float:
        return _relative(self.interval.low, self.scale)

    @property
    def ci_high(self) -> float:
        return _relative(self.interval.high, self.scale)

    @property
    def regression(self) -> bool:
        worse = 1 if self.series.direction == "lower" else -1
        return self.interval.direction == worse

    def as_dict(self) -> dict[str, Any]:
        finite = (lambda v: v if math.isfinite(v) else None)  # noqa: E731
        return {**{k: self.series.case[k] for k in ("checkpoint", "path")}, "case": self.series.case,
                "metric": self.series.metric, "label": self.label, "previous_label": self.previous_label,
                "change": self.change, "ci_low": finite(self.ci_low), "ci_high": finite(self.ci_high),
                "regression": self.regression, "threshold": self.threshold, "differences": self.differences}


def _relative(shift: float, scale: float | None) -> float:
    """A shift as a relative change: from log values (``scale`` None), or over the median before the break."""
    return math.expm1(shift) if scale is None else shift / scale


def series_of(runs: Sequence[HistoryRun], metrics: Sequence[str] | None = None) -> list[Series]:
    """Every case × metric measured by any of ``runs`` (one machine's), in the runs' order."""
    found: dict[tuple[tuple[str, ...], str], tuple[str, str, list[HistoryRun], list[list[float]]]] = {}
    for run in runs:
        for (case, metric), (unit, direction, values) in run.series.items():
            if metrics is not None and metric not in metrics:
                continue
            entry = found.setdefault((case, metric), (unit, direction, [], []))
            entry[2].append(run)
            entry[3].append(values)
    return [Series(dict(zip(CASE_KEYS, case, strict=True)), metric, unit, direction, entry_runs, values)
            for (case, metric), (unit, direction, entry_runs, values) in sorted(found.items())]


def _scaled(values: list[list[float]]) -> tuple[list[list[float]], bool]:
    """Log values where every value is positive (a change is then a ratio), else the values as they are."""
    on_log = all(v > 0 for run in values for v in run)
    return ([[math.log(v) for v in run] for run in values] if on_log else [list(run) for run in values]), on_log


def _candidates(logs: list[list[float]]) -> list[int]:
    """Run indices where the segmentation proposes a break (a break before that run), each segment ≥ MIN_RUNS runs."""
    import numpy as np
    import ruptures

    signal = np.concatenate([np.asarray(v, dtype=float) for v in logs]).reshape(-1, 1)
    ends = np.cumsum([len(v) for v in logs])  # sample index where each run ends
    if not np.isfinite(signal).all() or np.ptp(signal) == 0:
        return []
    breaks = ruptures.Binseg(model="rank", min_size=2, jump=1).fit(signal).predict(
        pen=PENALTY_PER_LOG_N * math.log(len(signal)))
    runs = sorted({int(np.argmin(np.abs(ends - b))) + 1 for b in breaks[:-1]})  # the run after the boundary
    kept: list[int] = []
    for index in runs:
        if index - (kept[-1] if kept else 0) >= MIN_RUNS and len(logs) - index >= MIN_RUNS:
            kept.append(index)
    return kept


def _test(logs: list[list[float]], start: int, index: int, end: int, alpha: float, per_block: bool) -> Interval:
    """The shift of the runs ``index:end`` from the runs ``start:index``.

    Each run counts once (its median), unless ``per_block``: an anchored series' values are
    ratios of two samples taken back to back, in which the state a run shares divides out,
    so each block counts (docs/HISTORY.md measures that same-code runs' medians of such
    ratios scatter no more than their blocks predict).
    """
    if per_block:
        return two_sample_interval([v for run in logs[start:index] for v in run],
                                   [v for run in logs[index:end] for v in run], alpha)
    before = [statistics.median(run) for run in logs[start:index]]
    after = [statistics.median(run) for run in logs[index:end]]
    return two_sample_interval(before, after, alpha)


def _versions(run: HistoryRun) -> dict[str, str]:
    python = run.fingerprint.get("python_version")
    return {**run.packages, **({"python": str(python)} if python else {})}


def _differences(before: HistoryRun, after: HistoryRun) -> list[dict[str, str | None]]:
    """The dependency versions (and Python's) that differ between the runs on either side of a break."""
    old, new = _versions(before), _versions(after)
    return [{"package": k, "before": old.get(k), "after": new.get(k)}
            for k in sorted(old.keys() | new.keys()) if old.get(k) != new.get(k)]


def _threshold(series: Series, thresholds: Mapping[str, float]) -> float:
    family = family_of(_unit_of_metric(series))
    return thresholds.get(series.metric, thresholds.get(family, HISTORY_THRESHOLDS[family]))


def _unit_of_metric(series: Series) -> str:
    """The metric's own unit, also for an anchored series (whose values are ratios of it)."""
    from loadbench.results.analysis.metrics import METRICS

    if series.unit == ANCHORED_UNIT and series.metric in METRICS:
        return METRICS[series.metric].unit
    return series.unit


def _scale_before(logs: list[list[float]], start: int, index: int) -> float:
    before = statistics.median(statistics.median(run) for run in logs[start:index])
    return abs(before) or math.inf  # a median of 0: no relative change can be told


def _breaks(series: Series, alpha: float, threshold: float) -> list[tuple[int, Interval, float | None]]:
    logs, on_log = _scaled(series.values)
    if len(logs) < 2 * MIN_RUNS:
        return []
    kept = _candidates(logs)
    while kept:
        bounds = [0, *kept, len(logs)]
        per_block = series.unit == ANCHORED_UNIT
        tests = [_test(logs, bounds[i], bounds[i + 1], bounds[i + 2], alpha, per_block) for i in range(len(kept))]
        scales = [None if on_log else _scale_before(logs, bounds[i], bounds[i + 1]) for i in range(len(kept))]
        failing = [(t.p_value, i) for i, (t, scale) in enumerate(zip(tests, scales, strict=True))
                   if t.direction == 0 or abs(_relative(t.estimate, scale)) < threshold]
        if not failing:
            return list(zip(kept, tests, scales, strict=True))
        kept.pop(max(failing)[1])
    return []


def change_points(series: Sequence[Series], *, alpha: float = ALPHA,
                  thresholds: Mapping[str, float] | None = None) -> list[ChangePoint]:
    """The breaks in every series, Bonferroni over the series given."""
    tested = max(1, len(series))
    found = []
    for one in series:
        threshold = _threshold(one, thresholds or {})
        for index, interval, scale in _breaks(one, alpha / tested, threshold):
            found.append(ChangePoint(one, index, interval, threshold,
                                     _differences(one.runs[index - 1], one.runs[index]), scale))
    return found
