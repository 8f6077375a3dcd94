"""Wide views of the summary for the two questions people ask: which path, and which run.

Both are pivots of ``summarize()``; they never recompute statistics, so a number
in a pivot is the same number as in the summary and in every report.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loadbench.results.analysis.summary import WrongFrame
from loadbench.results.analysis.tables import best_path, ordered_paths, per_machine
from loadbench.results.records.schema import CASE_KEYS

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["by_path", "by_run"]

_STATS = ("median", "q1", "q3", "min", "max", "iqr", "cv", "n")


def _summary(frame: pd.DataFrame) -> pd.DataFrame:
    from loadbench.results.analysis.summary import summarize

    return frame if "median" in frame.columns else summarize(frame)


def _check_stat(stat: str) -> None:
    if stat not in _STATS:
        raise WrongFrame(f"stat must be one of {', '.join(_STATS)}, got {stat!r}")


def by_path(frame: pd.DataFrame, stat: str = "median") -> pd.DataFrame:
    """Paths side by side: one row per case (minus path) × metric, one column per path.

    Takes a ``load()`` or ``summarize()`` frame. The index is ``checkpoint, task,
    dtype, device, cache, env, metric``, led by ``run_id`` when the frame holds
    several runs, with ``machine`` before ``metric`` when a run was spread over
    unlike machines. Columns: the paths (base, task, custom, pipeline first), then
    ``unit``, ``direction`` and ``best``: the path with the best median, or NA
    when fewer than two paths measured it, it has no better direction, or the
    best is tied. Cells are NaN where the path has no number (not applicable,
    failed, or not measured): ``summarize()`` says which, and why.
    """
    import pandas as pd

    _check_stat(stat)
    summary = _summary(frame)
    keys = [k for k in CASE_KEYS if k != "path"] + per_machine(summary) + ["metric"]
    if summary["run_id"].nunique() > 1:
        keys = ["run_id", *keys]
    paths = ordered_paths(summary["path"])
    wide = summary.pivot_table(index=keys, columns="path", values=stat, aggfunc="first", sort=False,
                               dropna=False)
    wide = wide.reindex(columns=paths)
    wide.columns.name = None
    meta = summary.groupby(keys, sort=False)[["unit", "direction"]].first()
    best = summary.groupby(keys, sort=False)[["path", "status", "median", "direction"]].apply(
        lambda g: best_path({r.path: r for r in g.itertuples(index=False)}))
    out = wide.join(meta)
    out["best"] = pd.Series(best, dtype="object").reindex(out.index)
    return out


def by_run(frame: pd.DataFrame, baseline: str | None = None, stat: str = "median") -> pd.DataFrame:
    """Runs side by side: one row per case × metric, one column per run, and ratios.

    Takes a ``load()`` or ``summarize()`` frame of two or more runs. Columns are
    ``unit``, ``direction``, one column per run id (in load order) holding
    ``stat``, then ``"<run> / <baseline>"`` for every other run: its value over
    the baseline's (the first run unless ``baseline`` names one). A run spread
    over unlike machines gives a row per ``machine`` (an index level before
    ``metric``). Whether a ratio above 1 is better depends on ``direction``. A
    ratio of medians is not a significance test: check the spread (``iqr``,
    ``cv``) before calling it a change.
    """
    _check_stat(stat)
    summary = _summary(frame)
    run_ids = list(dict.fromkeys(summary["run_id"]))
    if len(run_ids) < 2:
        raise WrongFrame(f"by_run() needs two or more runs, got {len(run_ids)}")
    baseline = run_ids[0] if baseline is None else baseline
    if baseline not in run_ids:
        raise WrongFrame(f"baseline {baseline!r} is not one of the runs: {', '.join(run_ids)}")
    keys = [*CASE_KEYS, *per_machine(summary), "metric"]
    wide = summary.pivot_table(index=keys, columns="run_id", values=stat, aggfunc="first", sort=False,
                               dropna=False)
    wide = wide.reindex(columns=run_ids)
    wide.columns.name = None
    out = summary.groupby(keys, sort=False)[["unit", "direction"]].first().join(wide)
    for run_id in run_ids:
        if run_id != baseline:
            # 0/0 and x/0 are NaN/inf by pandas rules; a zero baseline has no ratio worth showing.
            ratio = out[run_id] / out[baseline].where(out[baseline] != 0)
            out[f"{run_id} / {baseline}"] = ratio
    return out
