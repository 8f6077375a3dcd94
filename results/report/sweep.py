"""A run over several environments as a sweep: each headline metric per path, across them.

"What did the upgrade do to loading" reads left to right: one column per environment in
the order the run named them, each headed by the versions it ran, and every later
column's median as a multiple of the first's. The pair-by-pair test of any two of them
is ``loadbench compare RUN``; this is the overview.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loadbench.results.analysis.tables import PATH_RANK, reading_order
from loadbench.results.report.cases import unmeasured_everywhere
from loadbench.results.report.model import Report, RunMeta

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["SWEEP_METRICS", "SWEEP_PLOT_METRICS", "Sweep", "environment_order", "sweep"]

# The headline of a sweep: load time, memory during the load (where upgrades regress as
# often as in time), and what the loaded model then does.
SWEEP_METRICS: tuple[str, ...] = (
    "load_s", "load_peak_rss_bytes", "load_added_rss_bytes", "gpu_peak_used_bytes", "decode_tokens_per_s",
    "forward_tokens_per_s",
)
SWEEP_PLOT_METRICS: tuple[tuple[str, str], ...] = (
    ("load_s", "load time"), ("load_peak_rss_bytes", "peak RSS during load"),
    ("load_added_rss_bytes", "RSS the load added"),
    ("gpu_peak_used_bytes", "peak GPU memory"), ("decode_tokens_per_s", "decode"),
    ("forward_tokens_per_s", "forward"),
)
VERSION_COLUMNS: tuple[tuple[str, str], ...] = (
    ("transformers_version", "transformers"), ("torch_version", "torch"), ("tokenizers_version", "tokenizers"),
)


@dataclass(frozen=True)
class Sweep:
    """One run's environments in order, what each ran, and a row per case × metric × path."""

    envs: list[str]
    versions: dict[str, str]  # env -> "transformers 4.57.6 · torch 2.13.0 · tokenizers 0.22.2"
    keys: list[str]  # the case columns that vary in this run, besides checkpoint, metric and path
    # keys + metric + path, "cells": a summary row or None per env, "ratios": each cell's median as a
    # multiple of the first environment's ("" for the first, and where either has none)
    rows: list[dict[str, Any]]
    summary: pd.DataFrame  # the run's summary of the sweep metrics (for the plot)


def environment_order(info: dict[str, Any], present: Sequence[str]) -> list[str]:
    """The run's environments in the order it named them (run.json's suite), then any others it holds."""
    from loadbench.results.records.runinfo import named_environments

    named = named_environments(info)
    return [e for e in named if e in present] + sorted(set(present) - set(named))


def _versions(records: pd.DataFrame, env: str) -> str:
    rows = records[records["env"] == env]
    parts = []
    for column, name in VERSION_COLUMNS:
        found = sorted(str(v) for v in rows[column].dropna().unique()) if column in rows else []
        if found:
            parts.append(f"{name} {'/'.join(found)}")
    return " · ".join(parts)


def sweep(report: Report, run: RunMeta, metrics: Sequence[str] = SWEEP_METRICS) -> Sweep | None:
    """The run as a sweep; None when it measured fewer than two environments."""
    summary = report.run_summary(run.run_id)
    envs = environment_order(run.info, list(dict.fromkeys(summary["env"])))
    if len(envs) < 2:
        return None
    skip = {m for names in unmeasured_everywhere(summary).values() for m in names}
    summary = summary[summary["metric"].isin([m for m in metrics if m not in skip])]
    keys = [k for k in ("task", "dtype", "device", "cache") if summary[k].nunique() > 1]
    names = ("checkpoint", *keys, "metric", "path")
    rows: dict[tuple[str, ...], dict[str, Any]] = {}
    for row in reading_order(summary).itertuples(index=False):
        key = tuple(str(getattr(row, n)) for n in names)
        entry = rows.setdefault(key, {**dict(zip(names, key)), "cells": [None] * len(envs)})
        entry["cells"][envs.index(row.env)] = row
    first_seen = {key[:-1]: i for i, key in reversed(list(enumerate(rows)))}
    ordered = sorted(rows, key=lambda k: (first_seen[k[:-1]], PATH_RANK.get(k[-1], len(PATH_RANK))))
    for entry in rows.values():
        entry["ratios"] = ["", *(ratio_text(cell, entry["cells"][0]) for cell in entry["cells"][1:])]
    records = report.records[report.records["run_id"] == run.run_id]
    return Sweep(envs, {env: _versions(records, env) for env in envs}, keys, [rows[k] for k in ordered], summary)


def ratio_text(cell: Any, first: Any) -> str:
    """A later environment's median as a multiple of the first's ("×5.91"); "" where either has none."""
    if cell is None or first is None or cell.status != "ok" or first.status != "ok" or not first.median:
        return ""
    return f"×{cell.median / first.median:.2f}"
