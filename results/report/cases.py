"""Every case of a report and its status: ok, partly failed, failed or not applicable, with the reason.

A case that produced no number must be as visible as one that did; this table is
where a reader finds it, and the order it sets (warm before cold, paths in the usual
order) is the order every per-case view of a report follows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loadbench.results.analysis.tables import CACHE_RANK, PATH_RANK, per_machine
from loadbench.results.records.schema import CASE_KEYS

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["case_order", "case_table", "unmeasured_everywhere"]


def unmeasured_everywhere(summary: pd.DataFrame) -> dict[str, list[str]]:
    """reason -> metrics that no case of the summary measured, all for that one reason
    (GPU memory on a CPU run): said once instead of in every case."""
    out: dict[str, list[str]] = {}
    for metric, group in summary.groupby("metric", sort=False):
        if (group["status"] == "not_applicable").all() and group["reason"].nunique() == 1:
            out.setdefault(str(group["reason"].iloc[0]), []).append(str(metric))
    return out


def case_table(summary: pd.DataFrame) -> pd.DataFrame:
    """One row per run × case (× machine): status (ok / partly failed / failed / not applicable), samples, reason.

    Every case of the summary is here, so a case that produced no number is as
    visible as one that did. ``samples`` is the measured count of load_s (else the
    largest n of any metric); ``detail`` names what failed or does not apply.
    """
    import pandas as pd

    skip = {m for ms in unmeasured_everywhere(summary).values() for m in ms}
    rows = []
    keys = ["run_id", *CASE_KEYS, *per_machine(summary)]
    for key, group in case_order(summary).groupby(keys, sort=False, dropna=False):
        group = group[~group["metric"].isin(skip)] if not group["metric"].isin(skip).all() else group
        load_s = group[group["metric"] == "load_s"]
        samples = int(load_s["n"].iloc[0]) if len(load_s) else int(group["n"].max())
        failed = group[(group["status"] == "failed") | (group["n_failed"] > 0)]
        na = group[group["status"] == "not_applicable"]
        if (group["status"] == "not_applicable").all():
            status, detail = "not_applicable", str(na["reason"].iloc[0])
        elif (group["status"] == "failed").all() or (len(load_s) and load_s["status"].iloc[0] == "failed"):
            status, detail = "failed", str(failed["reason"].iloc[0])
        elif len(failed):
            worst = failed.sort_values("n_failed", ascending=False).iloc[0]
            status = "partly_failed"
            detail = (f"{_metric_list(failed)}: {int(worst['n_failed'])} repeat(s) failed: {worst['reason']}"
                      if worst["n_failed"] else f"{_metric_list(failed)} failed: {worst['reason']}")
        else:
            status, detail = "ok", ""
        if status == "ok" and len(na):
            detail = f"{_metric_list(na)} not applicable: {na['reason'].iloc[0]}"
        rows.append({**dict(zip(keys, key)), "status": status, "samples": samples, "detail": detail})
    return pd.DataFrame(rows, columns=[*keys, "status", "samples", "detail"])


def case_order(summary: pd.DataFrame) -> pd.DataFrame:
    """Runs in load order, then checkpoint, task, dtype, device, warm before cold, environment, machine,
    paths in PATH_NAMES order."""
    runs = {r: i for i, r in enumerate(dict.fromkeys(summary["run_id"]))}
    keyed = summary.assign(
        _r=summary["run_id"].map(runs),
        _c=summary["cache"].map(lambda c: CACHE_RANK.get(c, len(CACHE_RANK))),
        _p=summary["path"].map(lambda p: PATH_RANK.get(p, len(PATH_RANK))),
    )
    # Summaries built before machines were tracked have no such column.
    machine = ["machine"] if "machine" in summary.columns else []
    env = ["env"] if "env" in summary.columns else []
    options = ["options"] if "options" in summary.columns else []
    keys = ["_r", "checkpoint", "task", "dtype", "device", *options, "_c", *env, *machine, "_p", "path"]
    return keyed.sort_values(keys, kind="stable").drop(columns=["_r", "_c", "_p"])


def _metric_list(rows: pd.DataFrame, limit: int = 4) -> str:
    names = list(dict.fromkeys(rows["metric"]))
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")
