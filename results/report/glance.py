"""The "at a glance" table of a report: per checkpoint and setting, which path wins each headline metric.

A reading aid, not a verdict: a winner is the best median, and the paths listed next
to it with "≈" are those whose interquartile range overlaps the winner's, so a reader
does not take a difference inside the spread for a ranking.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loadbench.results.analysis.metrics import format_value
from loadbench.results.analysis.tables import best_path, ordered_paths, per_machine
from loadbench.results.report.cases import case_order

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["GLANCE_METRICS", "Glance", "best_paths"]

# The "at a glance" table: which path wins each of these, per checkpoint.
GLANCE_METRICS: tuple[tuple[str, str], ...] = (
    ("load_s", "load time"), ("first_forward_s", "first call"), ("load_added_rss_bytes", "memory the load adds"),
    ("peak_rss_bytes", "peak RSS"), ("gpu_load_added_bytes", "GPU memory the load adds"),
    ("gpu_peak_used_bytes", "peak GPU memory"), ("decode_tokens_per_s", "decode tok/s"),
    ("forward_tokens_per_s", "forward tok/s"),
)


@dataclass(frozen=True)
class Glance:
    """The winner of one metric for one case setting, and how sure that is."""

    best: str | None  # None: no clear winner (a tie, no better direction, or one path only)
    row: Any  # the best path's summary row; the only path's when one path measured it; else None
    compared: int  # paths with a number
    within_spread: tuple[str, ...]  # other paths whose IQR overlaps the winner's: not clearly worse

    def text(self) -> tuple[str, str]:
        """(main text, note): "task 172 ms", "≈ base, custom" when others are within the spread."""
        if self.best is None:
            if self.row is not None:
                return f"{self.row.path} {format_value(self.row.median, self.row.unit)}", "the only path measured"
            return "no clear winner", f"{self.compared} paths tie"
        main = f"{self.best} {format_value(self.row.median, self.row.unit)}"
        return main, ("≈ " + ", ".join(self.within_spread)) if self.within_spread else ""


def _overlaps(a: Any, b: Any) -> bool:
    return not (a.q3 < b.q1 or b.q3 < a.q1)


def best_paths(summary: pd.DataFrame) -> tuple[list[str], list[dict[str, Any]]]:
    """The "at a glance" view: per checkpoint × task × case setting (× machine), the best path of each
    GLANCE_METRICS metric.

    Returns (metric labels, rows); each row has the case keys (and run_id) and
    ``cells``: one Glance per metric, or None where no path measured it.
    """
    measured = [(m, label) for m, label in GLANCE_METRICS
                if (summary["metric"].eq(m) & summary["status"].eq("ok")).any()]
    keys = ["run_id", "checkpoint", "task", "dtype", "device", "options", "cache", "env", *per_machine(summary)]
    wanted = summary[summary["metric"].isin([m for m, _ in measured])]
    index: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in wanted.itertuples(index=False):
        index.setdefault((*(getattr(r, k) for k in keys), r.metric), {})[r.path] = r
    rows: list[dict[str, Any]] = []
    for key, _ in case_order(wanted).groupby(keys, sort=False, dropna=False):
        cells: list[Glance | None] = []
        for metric, _ in measured:
            group = index.get((*key, metric), {})
            ok = {p: r for p, r in group.items() if r.status == "ok"}
            if not ok:
                cells.append(None)
                continue
            best = best_path(group)
            row = group.get(best) if best else (next(iter(ok.values())) if len(ok) == 1 else None)
            near = tuple(p for p in ordered_paths(ok) if row is not None and p != best and _overlaps(row, ok[p]))
            cells.append(Glance(best, row, len(ok), near))
        rows.append({**dict(zip(keys, key)), "cells": cells})
    return [label for _, label in measured], rows
