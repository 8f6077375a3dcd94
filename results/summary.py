"""Per-case statistics, and the report that puts the loading paths side by side.

The point of loadbench is comparing paths for the same checkpoint, so the report
makes paths the columns; anything without a number says why in a footnote
instead of silently leaving a gap.
"""

from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING, Any, Iterable

from .metrics import METRICS, MISSING, format_value
from .schema import CASE_KEYS

if TYPE_CHECKING:
    import pandas as pd
    from rich.console import Group

__all__ = ["PATH_ORDER", "SUMMARY_COLUMNS", "render_summary", "summarize", "summary_text"]

# The four loading paths, in the order a reader compares them; others follow.
PATH_ORDER: tuple[str, ...] = ("base", "task", "custom", "pipeline")

SUMMARY_COLUMNS: tuple[str, ...] = (
    *CASE_KEYS, "metric", "n", "n_failed", "median", "min", "max", "iqr", "cv", "unstable",
    "unit", "direction", "status", "reason",
)
CV_THRESHOLD = 0.10
_NEEDED = (
    *CASE_KEYS, "metric", "value", "unit", "direction", "status", "reason", "error_type", "error",
    "warmup",
)
# Case keys that are usually the same across a report: each gets a column only
# when it varies, otherwise it is named once in the title.
_TITLE_KEYS: tuple[str, ...] = ("dtype", "device", "cache")


def _message(record: Any) -> str:
    if record.status == "failed":
        return f"{record.error_type}: {record.error}"
    return str(record.reason)


def _stats(values: pd.Series) -> dict[str, float]:
    n = len(values)
    if n == 0:
        return {k: math.nan for k in ("median", "min", "max", "iqr", "cv")}
    mean = float(values.mean())
    cv = float(values.std(ddof=1)) / mean if n >= 2 and mean != 0 else math.nan
    return {
        "median": float(values.median()),
        "min": float(values.min()),
        "max": float(values.max()),
        "iqr": float(values.quantile(0.75) - values.quantile(0.25)),
        "cv": cv,
    }


def summarize(df: pd.DataFrame, cv_threshold: float = CV_THRESHOLD) -> pd.DataFrame:
    """One row per case × metric, over the ok samples of a ``load()`` frame.

    Warmup samples (``warmup`` true) are taken to be discarded and are left out
    entirely: they count in neither ``n`` nor ``n_failed``, give no ``reason``,
    and a case × metric that has only warmup samples gets no row.
    ``n`` counts ok samples and ``n_failed`` failed ones; ``cv`` (std/mean, ddof=1)
    is NaN below two samples; ``unstable`` is true when cv exceeds ``cv_threshold``. ``status`` is ok when any sample is ok, else failed
    when any failed, else not_applicable. ``reason`` is the first failure or
    not-applicable message, kept even when other repeats were ok.
    """
    import pandas as pd

    missing = [c for c in _NEEDED if c not in df.columns]
    if missing:
        raise ValueError(f"summarize() needs a load() frame; missing column(s): {', '.join(missing)}")
    measured = df[~df["warmup"].eq(True)]
    rows: list[dict[str, Any]] = []
    keys = [*CASE_KEYS, "metric"]
    for key, group in measured.groupby(keys, sort=False, dropna=False):
        ok = group[group["status"] == "ok"]["value"].astype("float64")
        failed = group[group["status"] == "failed"]
        not_ok = group[group["status"] != "ok"]
        if len(ok):
            status = "ok"
        elif len(failed):
            status = "failed"
        else:
            status = "not_applicable"
        # A failure explains more than a not_applicable, so it wins the reason slot.
        explain = failed if len(failed) else not_ok
        reason = _message(next(explain.itertuples())) if len(explain) else None
        rows.append({
            **dict(zip(keys, key)),
            "n": len(ok),
            "n_failed": len(failed),
            **_stats(ok),
            "unit": group["unit"].iloc[0],
            "direction": group["direction"].iloc[0],
            "status": status,
            "reason": reason,
        })
    out = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    out["unstable"] = out["cv"].abs() > cv_threshold  # NaN (one sample) compares False
    return out.astype({"n": "int64", "n_failed": "int64", "unstable": "bool"} | {
        c: "float64" for c in ("median", "min", "max", "iqr", "cv")
    })


def _ordered_paths(paths: list[str]) -> list[str]:
    known = [p for p in PATH_ORDER if p in paths]
    return known + [p for p in dict.fromkeys(paths) if p not in PATH_ORDER]


class _Footnotes:
    """Numbers distinct messages in order of first use; one text, one number."""

    def __init__(self) -> None:
        self.numbers: dict[str, int] = {}

    def ref(self, message: str) -> str:
        # One line per footnote: tracebacks-as-messages would swamp the table.
        line = " ".join(str(message).strip().splitlines()[0].split()) if str(message).strip() else "?"
        return f"[{self.numbers.setdefault(line, len(self.numbers) + 1)}]"


def _spread(row: Any) -> str:
    if row.n < 2 or not math.isfinite(row.cv):
        return ""
    pct = abs(row.cv) * 100
    text = " ±<1%" if 0 < pct < 1 else f" ±{pct:.0f}%"
    return text + (" !" if row.unstable else "")


def _cell_text(row: Any, notes: _Footnotes, spread: bool) -> str:
    if row.status == "ok":
        text = format_value(row.median, row.unit) + (_spread(row) if spread else "")
        if row.n_failed:
            text += f" ({row.n_failed} FAILED {notes.ref(row.reason)})"
        return text
    label = "FAILED" if row.status == "failed" else "n/a"
    return f"{label} {notes.ref(row.reason)}"


def _best_path(rows: dict[str, Any]) -> str | None:
    ok = {p: r.median for p, r in rows.items() if r.status == "ok"}
    direction = next(iter(rows.values())).direction
    if len(ok) < 2 or direction not in ("lower", "higher"):
        return None
    pick = min if direction == "lower" else max
    return pick(ok, key=ok.__getitem__)


def render_summary(df: pd.DataFrame, *, spread: bool = True, metrics: Iterable[str] | None = None,
                   cv_threshold: float = CV_THRESHOLD) -> Group:
    """A table with one row per (checkpoint, task, metric) and one column per path.

    Accepts a ``load()`` frame or a ``summarize()`` frame. Cells hold the median
    (± cv when ``spread``); "n/a [k]" and "FAILED [k]" point at footnotes below
    the table; "—" means the path has no record for that metric. dtype, device
    and cache get columns only when they vary, otherwise they go in the title.
    """
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    summary = df if "median" in df.columns else summarize(df, cv_threshold)
    if metrics is not None:
        summary = summary[summary["metric"].isin(list(metrics))]
    if summary.empty:
        return Group(Text("no results"))
    summary, unmeasured = _split_unmeasured(_in_reading_order(summary))
    paths = _ordered_paths(list(summary["path"]))
    varying = [k for k in _TITLE_KEYS if summary[k].nunique() > 1]
    fixed = [f"{k} {summary[k].iloc[0]}" for k in _TITLE_KEYS if k not in varying]
    row_keys = ["checkpoint", "task", *varying, "metric"]

    table = Table(title=Text(" · ".join(fixed)) if fixed else None, box=box.SIMPLE_HEAD)
    for name in row_keys:
        table.add_column(name, no_wrap=name == "metric")
    for path in paths:
        table.add_column(path, justify="right")

    notes = _Footnotes()
    for key, group in summary.groupby(row_keys, sort=False):
        by_path = {r.path: r for r in group.itertuples(index=False)}
        best = _best_path(by_path)
        cells = []
        for path in paths:
            row = by_path.get(path)
            text = MISSING if row is None else _cell_text(row, notes, spread)
            cells.append(Text(text, style="bold" if path == best else ""))
        table.add_row(*(Text(str(k)) for k in key), *cells)

    footer = [Text(f"[{n}] {message}") for message, n in notes.numbers.items()]
    footer += [Text(f"not measured in any case: {', '.join(names)}: {reason}")
               for reason, names in unmeasured.items()]
    if spread and summary["unstable"].any():
        footer.append(Text(f"! unstable: the samples' CV is above {cv_threshold:.0%}; "
                           "take more repeats or quiet the machine before trusting that median"))
    return Group(table, *footer)


def _in_reading_order(summary: pd.DataFrame) -> pd.DataFrame:
    """Checkpoints and tasks sorted by name, metrics in registry order.

    Not first appearance: runs visit cases in a shuffled order.
    """
    order = {name: i for i, name in enumerate(METRICS)}
    ranks = {
        "checkpoint": {v: i for i, v in enumerate(sorted(set(summary["checkpoint"])))},
        "task": {v: i for i, v in enumerate(sorted(set(summary["task"])))},
    }
    keyed = summary.assign(
        _c=summary["checkpoint"].map(ranks["checkpoint"]),
        _t=summary["task"].map(ranks["task"]),
        _m=summary["metric"].map(lambda m: order.get(m, len(order))),
    )
    return keyed.sort_values(["_c", "_t", "_m"], kind="stable").drop(columns=["_c", "_t", "_m"])


def _split_unmeasured(summary: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """Metrics that are n/a everywhere for one reason (GPU memory on a CPU run) make a
    line under the table instead of a row of identical cells."""
    unmeasured: dict[str, list[str]] = {}
    for metric, group in summary.groupby("metric", sort=False):
        if (group["status"] == "not_applicable").all() and group["reason"].nunique() == 1:
            unmeasured.setdefault(str(group["reason"].iloc[0]), []).append(str(metric))
    dropped = [m for metrics in unmeasured.values() for m in metrics]
    return summary[~summary["metric"].isin(dropped)], unmeasured


def summary_text(df: pd.DataFrame, width: int = 160, *, spread: bool = True,
                 metrics: Iterable[str] | None = None, cv_threshold: float = CV_THRESHOLD) -> str:
    """The rendered summary as plain text (no colour or styles), for tests and the CLI."""
    from rich.console import Console

    buffer = io.StringIO()
    console = Console(
        file=buffer, width=width, color_system=None, force_terminal=False,
        no_color=True, highlight=False, emoji=False, markup=False,
    )
    console.print(render_summary(df, spread=spread, metrics=metrics, cv_threshold=cv_threshold))
    # Rich pads every line to the table width; trailing blanks only get in the way.
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n"
