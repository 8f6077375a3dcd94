"""The "paths side by side" table as data, so the terminal, markdown and HTML show the same thing.

Rendering a cell is a decision (what counts as best, how a failure points at its
reason); making it once here keeps the three outputs from drifting apart.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loadbench.results.analysis.ceiling import ceiling_text
from loadbench.results.analysis.metrics import METRICS, MISSING, format_value
from loadbench.vocabulary import CACHE_STATES, DEFAULT_OPTIONS, PATH_NAMES

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CACHE_RANK", "PATH_RANK", "SETTING_KEYS", "Cell", "Footnotes", "PathTable", "best_path", "ordered_paths",
           "path_table", "per_machine", "reading_order", "spread_text", "varying_settings"]

# Where a path and a cache state sort in every table: the vocabulary's order; unknown ones follow.
PATH_RANK: dict[str, int] = {p: i for i, p in enumerate(PATH_NAMES)}
CACHE_RANK: dict[str, int] = {c: i for i, c in enumerate(CACHE_STATES)}
# What is usually the same across a report: each gets a column only when it
# varies. The case keys among them are otherwise named once in the title; the
# machine key is not (it is long, and the environment section names the machine).
SETTING_KEYS: tuple[str, ...] = ("env", "dtype", "device", "options", "cache", "machine")
_TITLE_KEYS: tuple[str, ...] = ("dtype", "device", "options", "cache")


@dataclass(frozen=True)
class Cell:
    """One path's entry in a row: its text, and what a renderer may want to style."""

    text: str
    status: str  # ok | failed | not_applicable | missing (no record for this path)
    best: bool = False
    unstable: bool = False
    path: str = ""
    tooltip: str = ""


@dataclass
class Footnotes:
    """Numbers distinct messages in order of first use; one text, one number."""

    numbers: dict[str, int] = field(default_factory=dict)

    def ref(self, message: object) -> str:
        # One line per footnote: tracebacks-as-messages would swamp the table.
        text = str(message).strip()
        line = " ".join(text.splitlines()[0].split()) if text else "?"
        return f"[{self.numbers.setdefault(line, len(self.numbers) + 1)}]"


@dataclass(frozen=True)
class PathTable:
    """Rows of (key values, one Cell per path), plus everything said under the table."""

    title: str
    key_columns: list[str]
    paths: list[str]
    rows: list[tuple[dict[str, str], list[Cell]]]
    notes: dict[str, int]
    unmeasured: dict[str, list[str]]
    any_unstable: bool
    cv_threshold: float
    any_ceiling: bool = False  # some cell shows a rate or a share of the machine's ceiling (CEILING_LEGEND)


def ordered_paths(paths: Iterable[str]) -> list[str]:
    """The known paths in PATH_NAMES order, then any others (fast loaders, module:function) by name.

    By name, not as first seen: the order of a run's rows is shuffled, and two reports of
    one suite must not swap its columns.
    """
    paths = set(paths)
    return [p for p in PATH_NAMES if p in paths] + sorted(p for p in paths if p not in PATH_RANK)


def best_path(rows: dict[str, Any]) -> str | None:
    """The path with the best median among ok rows, or None when there is no clear winner.

    No winner when fewer than two paths have numbers, the metric has no better
    direction, or the best median is shared (all-zero differences are not a ranking).
    """
    ok = {p: r.median for p, r in rows.items() if r.status == "ok" and math.isfinite(r.median)}
    direction = next(iter(rows.values())).direction
    if len(ok) < 2 or direction not in ("lower", "higher"):
        return None
    pick = min if direction == "lower" else max
    best = pick(ok, key=ok.__getitem__)
    if sum(1 for v in ok.values() if v == ok[best]) > 1:
        return None
    return best


def spread_text(row: Any) -> str:
    """" ±12%" (CV) after a median, " ±12% !" when unstable; "" below two samples."""
    if row.n < 2 or not math.isfinite(row.cv):
        return ""
    pct = abs(row.cv) * 100
    text = " ±<1%" if 0 < pct < 0.5 else f" ±{pct:.0f}%"  # what rounds to 0% but is not 0
    return text + (" !" if row.unstable else "")


def _tooltip(row: Any) -> str:
    if row.status != "ok":
        return ""
    parts = [f"n={row.n}", f"min {format_value(row.min, row.unit)}", f"max {format_value(row.max, row.unit)}"]
    if row.n >= 2:
        parts.insert(1, f"IQR {format_value(row.q1, row.unit)}–{format_value(row.q3, row.unit)}")
    if math.isfinite(row.cv):
        parts.append(f"CV {abs(row.cv):.1%}")
    return ", ".join(parts)


def _cell(row: Any, notes: Footnotes, spread: bool, best: bool) -> Cell:
    if row.status == "ok":
        text = format_value(row.median, row.unit) + (spread_text(row) if spread else "") + ceiling_text(row)
        if row.n_failed:
            text += f" ({row.n_failed} FAILED {notes.ref(row.reason)})"
        return Cell(text, "ok", best=best, unstable=bool(row.unstable), path=row.path, tooltip=_tooltip(row))
    label = "FAILED" if row.status == "failed" else "n/a"
    return Cell(f"{label} {notes.ref(row.reason)}", row.status, path=row.path, tooltip=str(row.reason))


def varying_settings(rows: Any) -> list[str]:
    """The SETTING_KEYS that take more than one value (a missing one counts) in a frame or list of dicts."""
    if hasattr(rows, "columns"):
        return [k for k in SETTING_KEYS if k in rows.columns and rows[k].nunique(dropna=False) > 1]
    return [k for k in SETTING_KEYS if len({_setting(r.get(k)) for r in rows}) > 1]


def per_machine(summary: pd.DataFrame) -> list[str]:
    """``["machine"]`` when some run of the summary was measured on more than one machine, else ``[]``.

    What to add to the keys of a view that puts runs side by side: one run's machines
    must stay apart, while two runs on different hardware are still compared (the
    report warns about that separately).
    """
    if "machine" not in summary.columns or summary.empty:
        return []
    return ["machine"] if summary.groupby("run_id")["machine"].nunique(dropna=False).gt(1).any() else []


def _setting(value: Any) -> str | None:
    # NaN is not equal to itself: without this, every missing machine would count as another.
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def reading_order(summary: pd.DataFrame) -> pd.DataFrame:
    """Checkpoints and tasks sorted by name, metrics in registry order, warm before cold, then machine.

    Not first appearance: runs visit cases in a shuffled order.
    """
    order = {name: i for i, name in enumerate(METRICS)}
    keyed = summary.assign(
        _m=summary["metric"].map(lambda m: order.get(m, len(order))),
        _cache=summary["cache"].map(lambda c: CACHE_RANK.get(c, len(CACHE_RANK))),
    )
    machine = ["machine"] if "machine" in summary.columns else []
    env = ["env"] if "env" in summary.columns else []  # a metric's environments side by side
    options = ["options"] if "options" in summary.columns else []
    keys = ["checkpoint", "task", "_m", *env, "dtype", "device", *options, "_cache", *machine]
    return keyed.sort_values(keys, kind="stable").drop(columns=["_m", "_cache"])


def _split_unmeasured(summary: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """Metrics that are n/a everywhere for one reason (GPU memory on a CPU run) make a
    line under the table instead of a row of identical cells."""
    unmeasured: dict[str, list[str]] = {}
    for metric, group in summary.groupby("metric", sort=False):
        if (group["status"] == "not_applicable").all() and group["reason"].nunique() == 1:
            unmeasured.setdefault(str(group["reason"].iloc[0]), []).append(str(metric))
    dropped = [m for metrics in unmeasured.values() for m in metrics]
    return summary[~summary["metric"].isin(dropped)], unmeasured


def path_table(summary: pd.DataFrame, *, spread: bool = True, cv_threshold: float = 0.10,
               notes: Footnotes | None = None) -> PathTable:
    """One row per (checkpoint, task, [varying dtype/device/cache/machine], metric), one cell per path.

    Takes a ``summarize()`` frame of one run (filter it first to pick metrics). Pass
    ``notes`` to share footnote numbers between several tables. Two machines that
    measured one case give two rows, never one cell that hides the other.
    """
    notes = notes if notes is not None else Footnotes()
    if summary.empty:
        return PathTable("", [], [], [], notes.numbers, {}, False, cv_threshold)
    summary, unmeasured = _split_unmeasured(reading_order(summary))
    if summary.empty:  # nothing but one reason for every metric (say, no sample could run)
        return PathTable("", [], [], [], notes.numbers, unmeasured, False, cv_threshold)
    paths = ordered_paths(summary["path"])
    varying = varying_settings(summary)
    title = " · ".join(f"{k} {summary[k].iloc[0]}" for k in _TITLE_KEYS
                       if k in summary.columns and k not in varying
                       and not (k == "options" and summary[k].iloc[0] == DEFAULT_OPTIONS))
    key_columns = ["checkpoint", "task", *varying, "metric"]
    rows: list[tuple[dict[str, str], list[Cell]]] = []
    for key, group in summary.groupby(key_columns, sort=False, dropna=False):
        by_path = {r.path: r for r in group.itertuples(index=False)}
        best = best_path(by_path)
        cells = [
            Cell(MISSING, "missing", path=p) if p not in by_path else _cell(by_path[p], notes, spread, p == best)
            for p in paths
        ]
        rows.append((dict(zip(key_columns, (_setting(k) or "unknown" for k in key))), cells))
    any_unstable = bool(spread and summary["unstable"].any())
    any_ceiling = any(ceiling_text(row) for row in summary.itertuples(index=False))
    return PathTable(title, key_columns, paths, rows, notes.numbers, unmeasured, any_unstable, cv_threshold,
                     any_ceiling)
