"""Per-case statistics, and the terminal table that puts the loading paths side by side.

Statistics are robust ones (median, quartiles) because load times are skewed:
one page-cache miss or a busy neighbour moves a mean, not a median.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from loadbench.errors import UserError
from loadbench.results.analysis.ceiling import CEILING_LEGEND, DERIVED_COLUMNS, FRAME_CEILING_COLUMNS, derive
from loadbench.results.analysis.tables import Footnotes, PathTable, path_table
from loadbench.results.records.schema import CASE_KEYS

if TYPE_CHECKING:
    import pandas as pd
    from rich.console import Group
    from rich.table import Table

__all__ = ["CV_THRESHOLD", "SUMMARY_COLUMNS", "WrongFrame", "render_summary", "summarize", "summary_text"]

SUMMARY_COLUMNS: tuple[str, ...] = (
    "run_id", *CASE_KEYS, "machine", "metric", "n", "n_failed", "median", "q1", "q3", "min", "max", "iqr", "cv",
    "unstable", "unit", "direction", "status", "reason", *DERIVED_COLUMNS,
)
CV_THRESHOLD = 0.10
_NEEDED = (
    "run_id", *CASE_KEYS, "metric", "value", "unit", "direction", "status", "reason", "error_type", "error",
    "warmup",
)
_STATS = ("median", "q1", "q3", "min", "max", "iqr", "cv")



class WrongFrame(UserError):
    """A frame or argument these views cannot use: not a load() frame, a stat or run that is not there."""

def summarize(df: pd.DataFrame, cv_threshold: float = CV_THRESHOLD) -> pd.DataFrame:
    """One row per run × case × machine × metric, over the ok samples of a ``load()`` frame.

    Runs are never pooled: a frame of two runs gives each case two rows, in the
    order the runs were loaded. Nor are machines: a run whose samples were taken
    on two machines gives each case a row per ``machine`` (missing when the frame
    has no ``machine`` column, as with ``load(fingerprint=False)``). Warmup
    samples (``warmup`` true) are taken to be discarded and are left out
    entirely: they count in neither ``n`` nor ``n_failed``, give no ``reason``,
    and a case × metric that has only warmup samples gets no row. ``n`` counts
    ok samples and ``n_failed`` failed ones;
    ``q1``/``q3`` are the 25th/75th percentiles (linear interpolation, pandas'
    default) and ``iqr = q3 - q1``; ``cv`` (std/mean, ddof=1) is NaN below two
    samples; ``unstable`` is true when cv exceeds ``cv_threshold``. ``status`` is
    ok when any sample is ok, else failed when any failed, else not_applicable.
    ``reason`` is the first failure message (``error_type: error``), else the
    first not-applicable reason, kept even when other repeats were ok.
    """
    import pandas as pd

    missing = [c for c in _NEEDED if c not in df.columns]
    if missing:
        raise WrongFrame(f"summarize() needs a load() frame; missing column(s): {', '.join(missing)}")
    keys = ["run_id", *CASE_KEYS, "machine", "metric"]
    # Only the needed columns: filtering a wide frame group by group is what makes this slow.
    ceiling = [c for c in FRAME_CEILING_COLUMNS if c in df.columns]
    needed = [*_NEEDED, *(["machine"] if "machine" in df.columns else []), *ceiling]
    measured = df.loc[~df["warmup"].eq(True), needed].reset_index(drop=True)
    if "machine" not in measured.columns:
        measured["machine"] = pd.Series([None] * len(measured), dtype=measured["unit"].dtype)
    if measured.empty:
        return _typed(pd.DataFrame(columns=list(SUMMARY_COLUMNS)), cv_threshold)
    # Group ids in order of first appearance: the output keeps the frame's order.
    group = pd.Series(measured.groupby(keys, sort=False, dropna=False).ngroup().to_numpy(), name="group")
    out = measured[[*keys, "unit", "direction", *ceiling]].groupby(group, sort=True).first()

    status = measured["status"]
    ok = measured["value"].where(status == "ok").astype("float64").groupby(group, sort=True)
    q = ok.quantile([0.25, 0.75]).unstack()
    mean, std = ok.mean(), ok.std(ddof=1)
    out["n"] = ok.count()
    out["n_failed"] = (status == "failed").groupby(group, sort=True).sum()
    out["median"], out["q1"], out["q3"] = ok.median(), q[0.25], q[0.75]
    out["min"], out["max"] = ok.min(), ok.max()
    out["iqr"] = out["q3"] - out["q1"]
    out["cv"] = (std / mean.where(mean != 0)).where(out["n"] >= 2)
    out["unstable"] = False
    out["status"] = "not_applicable"
    out.loc[out["n_failed"] > 0, "status"] = "failed"
    out.loc[out["n"] > 0, "status"] = "ok"
    # A failure explains more than a not_applicable, so it wins the reason slot.
    message = (measured["error_type"].astype("object") + ": " + measured["error"].astype("object")).where(
        status == "failed", measured["reason"].astype("object"))
    failed_msg = message.where(status == "failed").groupby(group, sort=True).first()
    other_msg = message.where(status != "ok").groupby(group, sort=True).first()
    out["reason"] = failed_msg.combine_first(other_msg).reindex(out.index)
    return _typed(derive(out.reset_index(drop=True))[list(SUMMARY_COLUMNS)], cv_threshold)


def _typed(out: pd.DataFrame, cv_threshold: float) -> pd.DataFrame:
    # NaN (one sample) compares False; a quantity with no better direction (bytes read,
    # token counts) is a fact to report, not a timing to trust or distrust.
    out = out.astype({"n": "int64", "n_failed": "int64"} | {c: "float64" for c in (*_STATS, *DERIVED_COLUMNS)})
    out["unstable"] = (out["cv"].abs() > cv_threshold) & (out["direction"] != "none")
    out["unstable"] = out["unstable"].astype("bool")
    text = out["unit"].dtype if len(out) else "object"
    out["reason"] = out["reason"].astype(text)
    out["machine"] = out["machine"].astype(text)
    return out


def render_summary(df: pd.DataFrame, *, spread: bool = True, metrics: Iterable[str] | None = None,
                   cv_threshold: float = CV_THRESHOLD) -> Group:
    """A table with one row per (checkpoint, task, metric) and one column per path.

    Accepts a ``load()`` frame or a ``summarize()`` frame. Cells hold the median
    (± cv when ``spread``); "n/a [k]" and "FAILED [k]" point at footnotes below
    the table; "—" means the path has no record for that metric. dtype, device
    and cache get columns only when they vary, otherwise they go in the title;
    machine gets a column only when it varies (a run spread over unlike machines).
    Several runs give one table each, sharing the footnotes.
    """
    from rich.console import Group
    from rich.text import Text

    summary = df if "median" in df.columns else summarize(df, cv_threshold)
    if metrics is not None:
        summary = summary[summary["metric"].isin(list(metrics))]
    if summary.empty:
        return Group(Text("no results"))
    notes = Footnotes()
    runs = list(dict.fromkeys(summary["run_id"]))
    parts: list[Any] = []
    unmeasured: dict[str, list[str]] = {}
    any_unstable = any_ceiling = False
    for run_id in runs:
        model = path_table(summary[summary["run_id"] == run_id], spread=spread, cv_threshold=cv_threshold,
                           notes=notes)
        if len(runs) > 1:
            parts.append(Text(f"run {run_id}", style="bold"))
        parts.append(_rich_table(model))
        for reason, names in model.unmeasured.items():
            unmeasured.setdefault(reason, [])
            unmeasured[reason] += [n for n in names if n not in unmeasured[reason]]
        any_unstable = any_unstable or model.any_unstable
        any_ceiling = any_ceiling or model.any_ceiling
    footer = [Text(f"[{n}] {message}") for message, n in notes.numbers.items()]
    footer += [Text(f"not measured in any case: {', '.join(names)}: {reason}")
               for reason, names in unmeasured.items()]
    if any_ceiling:
        footer.append(Text(CEILING_LEGEND))
    if any_unstable:
        footer.append(Text(f"! unstable: the samples' CV is above {cv_threshold:.0%}; "
                           "take more repeats or quiet the machine before trusting that median"))
    return Group(*parts, *footer)


def _rich_table(model: PathTable) -> Table:
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(model.title) if model.title else None, box=box.SIMPLE_HEAD)
    for name in model.key_columns:
        table.add_column(name, no_wrap=name == "metric")
    for path in model.paths:
        table.add_column(path, justify="right")
    for keys, cells in model.rows:
        table.add_row(*(Text(v) for v in keys.values()),
                      *(Text(c.text, style="bold" if c.best else "") for c in cells))
    return table


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
