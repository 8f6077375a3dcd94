"""What ``loadbench history show`` says: per machine, each series' latest value, its trend and its change points."""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from loadbench.results.analysis.metrics import format_value
from loadbench.results.comparison.paired import GATE_METRICS
from loadbench.results.history.changes import ALPHA, ChangePoint, Series, change_points, series_of
from loadbench.results.history.store import HistoryError, HistoryRun, read

__all__ = ["HISTORY_FORMAT", "History", "MachineHistory", "analyze"]

HISTORY_FORMAT = "loadbench-history/1"
_BARS = "▁▂▃▄▅▆▇█"
TREND_RUNS = 12


@dataclass(frozen=True)
class MachineHistory:
    """One machine's runs, its series and the change points found in them."""

    machine: str
    runs: list[HistoryRun] = field(repr=False)
    series: list[Series] = field(repr=False)
    change_points: list[ChangePoint]

    def points_of(self, one: Series) -> list[ChangePoint]:
        """The change points of one series, in run order."""
        return [c for c in self.change_points if c.series is one]

    def position(self, run: HistoryRun) -> int:
        """Where ``run`` stands among this machine's runs (numbers are unique within a machine)."""
        return self._positions[run.number]

    @cached_property
    def _positions(self) -> dict[int, int]:
        return {r.number: i for i, r in enumerate(self.runs)}

    def standing_regressions(self, since: str | None) -> list[ChangePoint]:
        """Each series' latest break where it is a regression, at or after the run labelled ``since``."""
        labels = [r.label for r in self.runs]
        start = labels.index(since) if since in labels else 0
        out = []
        for one in self.series:
            points = self.points_of(one)
            if points and points[-1].regression and self.position(one.runs[points[-1].index]) >= start:
                out.append(points[-1])
        return out


@dataclass(frozen=True)
class History:
    """A whole history read and analysed; ``exit_code`` for a nightly job."""

    root: str
    machines: list[MachineHistory]
    alpha: float
    since: str | None = None

    @property
    def change_points(self) -> list[ChangePoint]:
        return [c for m in self.machines for c in m.change_points]

    def standing_regressions(self) -> list[ChangePoint]:
        """Series whose newest run sits after a regressing break: their latest break, where it is one.

        With ``since``, a break before the run of that label does not count (a regression
        accepted earlier no longer fails every nightly job).
        """
        return [c for m in self.machines for c in m.standing_regressions(self.since)]

    def exit_code(self, fail_on_regression: bool) -> int:
        return 1 if fail_on_regression and self.standing_regressions() else 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": HISTORY_FORMAT, "history": self.root, "alpha": self.alpha,
            "machines": [{
                "machine": m.machine, "runs": [{"label": r.label, "run_id": r.run_id, "added_at": r.added_at,
                                               "report": r.report} for r in m.runs],
                "series": [{"case": s.case, "metric": s.metric, "unit": s.unit, "direction": s.direction,
                            "labels": [r.label for r in s.runs], "medians": [_finite(_median(v)) for v in s.values]}
                           for s in m.series],
            } for m in self.machines],
            "change_points": [{"machine": m.machine, **c.as_dict()} for m in self.machines for c in m.change_points],
            "standing_regressions": [c.as_dict() for c in self.standing_regressions()],
        }

    def text(self) -> str:
        if not self.machines:
            return f"history {self.root}: no runs yet; add some with `loadbench history add RUN`"
        lines = []
        for m in self.machines:
            lines.append(f"history {self.root} · machine {m.machine} · {len(m.runs)} runs "
                         f"({m.runs[0].label} … {m.runs[-1].label})")
            rows = [("case", "metric", "runs", "latest", f"trend (last {TREND_RUNS})", "change points")]
            for one in m.series:
                medians = [_median(v) for v in one.values]
                points = m.points_of(one)
                rows.append((_case_text(one.case), one.metric, str(len(one.runs)), format_value(medians[-1], one.unit),
                             _sparkline(medians[-TREND_RUNS:]), "; ".join(_point_text(c) for c in points) or "none"))
            lines += _aligned(rows)
            standing = m.standing_regressions(self.since)
            tested = len(m.series)
            lines.append(f"{len(m.change_points)} change point(s) in {tested} series "
                         f"(alpha {self.alpha:g}, Bonferroni over the {tested}); "
                         + (f"❌ the newest run is after a regression in {len(standing)} series"
                            if standing else "the newest run is after no regression"))
            for c in m.change_points:
                if c.differences:
                    changed = ", ".join(f"{d['package']} {d['before'] or '—'} → {d['after'] or '—'}"
                                        for d in c.differences)
                    lines.append(f"  at {c.label}: {changed}")
        return "\n".join(lines)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def _case_text(case: Mapping[str, str]) -> str:
    extra = [case[k] for k in ("dtype", "device", "cache", "options", "env") if case.get(k) not in ("", "auto", "cpu",
                                                                                                    "warm", "default")]
    return " · ".join([case["checkpoint"], case["path"], *extra])


def _sparkline(values: Sequence[float]) -> str:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return ""
    low, high = min(finite), max(finite)
    span = (high - low) or 1.0
    return "".join(_BARS[min(len(_BARS) - 1, int((v - low) / span * len(_BARS)))] if math.isfinite(v) else " "
                   for v in values)


def _percent(value: float) -> str:
    return f"{value:+.1%}" if math.isfinite(value) else ("+∞" if value > 0 else "−∞")


def _point_text(c: ChangePoint) -> str:
    mark = "❌" if c.regression else "✅"
    return (f"{mark} {_percent(c.change)} ({_percent(c.ci_low)} … {_percent(c.ci_high)}) "
            f"at {c.label} (after {c.previous_label})")


def _aligned(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def analyze(root: str | Path | None = None, *, metrics: Sequence[str] | None = None, alpha: float = ALPHA,
            thresholds: Mapping[str, float] | None = None, since: str | None = None,
            anchored: bool = False) -> History:
    """Read the history at ``root`` and find its change points, machine by machine (gated metrics by default).

    ``anchored``: only the anchored series (each candidate environment over the runs' first,
    block by block), in which the machine's own changes divide out; fewer series tested,
    too, so each can show a smaller change.
    """
    from loadbench.results.history.store import ANCHORED_UNIT, history_root

    wanted = list(metrics) if metrics else list(GATE_METRICS)
    machines = []
    found = read(root)
    if since is not None and not any(since == run.label for runs in found.values() for run in runs):
        raise HistoryError(f"--since {since}: no run of the history has that label; give one that `history show` "
                           "lists")
    for key, runs in found.items():
        series = [s for s in series_of(runs, wanted) if not anchored or s.unit == ANCHORED_UNIT]
        machines.append(MachineHistory(key, runs, series, change_points(series, alpha=alpha, thresholds=thresholds)))
    return History(str(history_root(root)), machines, alpha, since)
