"""What a report says, computed once for every output format.

A report is runs + their summary + what a reader must be warned about (different
environments, partial runs, failures). The markdown, HTML and export modules
only lay this out, so no format can quietly leave a warning out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from .frame import load
from .metrics import format_value
from .runinfo import Difference, differences, fingerprint_fields, gpu_reason, machine_key, node_fields, run_nodes
from .schema import CASE_KEYS
from .store import read_run_info
from .summary import CV_THRESHOLD, summarize
from .tables import PATH_ORDER, best_path, ordered_paths, per_machine, reading_order

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "COMPARE_METRICS",
    "FORMATS",
    "MIN_EFFECT",
    "Report",
    "RunMeta",
    "GLANCE_METRICS",
    "Glance",
    "NODE_COLUMNS",
    "best_paths",
    "build_report",
    "case_table",
    "change",
    "environment_rows",
    "node_rows",
    "run_comparison",
    "unmeasured_everywhere",
]

FORMATS: tuple[str, ...] = ("markdown", "html", "csv", "parquet", "json")
# What "runs side by side" compares: the outcomes a user feels, not their parts
# (phases) or facts without a better direction (bytes read).
COMPARE_METRICS: tuple[str, ...] = (
    "load_s", "first_forward_s", "ttft_s", "decode_tokens_per_s", "forward_tokens_per_s", "peak_rss_bytes",
    "gpu_peak_used_bytes",
)
# The "at a glance" table: which path wins each of these, per checkpoint.
GLANCE_METRICS: tuple[tuple[str, str], ...] = (
    ("load_s", "load time"), ("first_forward_s", "first call"), ("peak_rss_bytes", "peak RSS"),
    ("gpu_peak_used_bytes", "peak GPU memory"), ("decode_tokens_per_s", "decode tok/s"),
    ("forward_tokens_per_s", "forward tok/s"),
)
# A change smaller than this is not called better or worse, however tight the spread.
MIN_EFFECT = 0.05
# The nodes table of a run spread over several machines: one row per node.
NODE_COLUMNS: tuple[str, ...] = ("node", "host", "CPU", "GPUs", "torch threads", "machine")
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass(frozen=True)
class RunMeta:
    """One run of a report: where it is, what run.json says, and its letter (A, B…)."""

    run_id: str
    run_dir: Path
    info: dict[str, Any]
    letter: str

    @property
    def label(self) -> str:
        return f"{self.letter}: {self.run_id}"


@dataclass(frozen=True)
class Report:
    """The runs, their tidy records and summary, and the warnings that go on top."""

    runs: list[RunMeta]
    records: pd.DataFrame
    summary: pd.DataFrame
    differences: list[Difference]
    cv_threshold: float
    warnings: list[str] = field(default_factory=list)

    @property
    def key_differences(self) -> list[Difference]:
        """Differences in hardware or key library versions: the numbers may differ because of them."""
        return [d for d in self.differences if d.key]

    def run_summary(self, run_id: str) -> pd.DataFrame:
        return self.summary[self.summary["run_id"] == run_id]


def _cv_threshold(info: dict[str, Any]) -> float:
    suite = info.get("suite")
    value = suite.get("cv_threshold") if isinstance(suite, dict) else None
    return float(value) if isinstance(value, (int, float)) and value > 0 else CV_THRESHOLD


def build_report(run_dirs: str | Path | Iterable[str | Path], cv_threshold: float | None = None) -> Report:
    """Read the runs and work out everything a report shows.

    ``cv_threshold`` defaults to the first run's suite setting (else 10%).
    Raises NotARun / CorruptRun / DuplicateRun like ``load()``.
    """
    dirs = [Path(run_dirs)] if isinstance(run_dirs, (str, Path)) else [Path(d) for d in run_dirs]
    if not dirs:
        raise ValueError("a report needs at least one run directory")
    infos = [read_run_info(d) for d in dirs]
    records = load(dirs)
    threshold = cv_threshold if cv_threshold is not None else _cv_threshold(infos[0])
    runs = [RunMeta(str(info.get("run_id") or d.name), d, info, _LETTERS[i % len(_LETTERS)])
            for i, (d, info) in enumerate(zip(dirs, infos))]
    warnings = [f"run {r.label} is {r.info.get('status')}: its results are partial"
                for r in runs if r.info.get("status") not in ("complete", None)]
    warnings += _mixed_hardware(runs, records)
    return Report(runs, records, summarize(records, threshold),
                  differences([fingerprint_fields(i) for i in infos]) if len(infos) > 1 else [],
                  threshold, warnings)


def _mixed_hardware(runs: Sequence[RunMeta], records: pd.DataFrame) -> list[str]:
    """A warning per run whose samples come from unlike machines: its numbers are shown per machine."""
    if records.empty:
        return []
    counts = records.groupby("run_id", sort=False)["machine"].nunique(dropna=False)
    return [f"run {r.label} was measured on {counts[r.run_id]} different machines (see its nodes under "
            "Environment): each case is shown once per machine, never pooled"
            for r in runs if counts.get(r.run_id, 0) > 1]


def _fmt_gpus(info: dict[str, Any]) -> str:
    gpus = (info.get("fingerprint") or {}).get("gpus")
    if isinstance(gpus, list) and gpus:
        return "; ".join(
            f"{g.get('name', '?')} ({format_value(g.get('memory_bytes'), 'bytes')}, driver {g.get('driver', '?')})"
            if isinstance(g, dict) else str(g) for g in gpus)
    reason = gpu_reason(info)
    return f"none ({reason})" if reason else "unknown"


def _suite_text(info: dict[str, Any]) -> str:
    suite = info.get("suite")
    if not isinstance(suite, dict):
        return str(suite) if suite is not None else "unknown"
    return (f"{suite.get('name', '?')}: {suite.get('repeats', '?')} repeats, {suite.get('warmups', '?')} warmups, "
            f"{suite.get('new_tokens', '?')} new tokens")


# Environment rows: (label, compared between runs, hardware or key library version).
_ENV_ROWS: tuple[tuple[str, bool, bool], ...] = (
    ("run", False, False), ("directory", False, False), ("status", False, False), ("started", False, False),
    ("suite", True, False), ("CPU", True, True), ("CPU cores", True, True), ("torch threads", True, False),
    ("RAM", True, False), ("GPUs", True, True), ("OS", True, False), ("Python", True, False),
    ("torch", True, True), ("transformers", True, True), ("tokenizers", True, False), ("safetensors", True, False),
    ("loadbench", True, False), ("git commit", True, False), ("host", True, False), ("environment", True, False),
)


def _environment(run: RunMeta) -> dict[str, str]:
    """One run's environment, formatted for people, keyed by _ENV_ROWS label."""
    info = run.info
    fp = info.get("fingerprint") if isinstance(info.get("fingerprint"), dict) else {}
    flat = fingerprint_fields(info)
    env = fp.get("env") if isinstance(fp.get("env"), dict) else {}
    return {
        "run": run.run_id,
        "directory": str(run.run_dir),
        "status": str(info.get("status", "unknown")),
        "started": str(info.get("started_at", "unknown")),
        "suite": _suite_text(info),
        "CPU": flat["cpu_model"] or "unknown",
        "CPU cores": f"{fp.get('cpu_count', '?')} (usable {fp.get('cpu_affinity', '?')})",
        "torch threads": _threads(info),
        "RAM": format_value(fp.get("ram_bytes"), "bytes"),
        "GPUs": _fmt_gpus(info),
        "OS": str(fp.get("os") or "unknown"),
        "Python": flat["python_version"] or "unknown",
        **{name: flat[f"{name}_version"] or "unknown"
           for name in ("torch", "transformers", "tokenizers", "safetensors", "loadbench")},
        "git commit": (flat["git_commit"] or "none")[:12],
        "host": flat["hostname"] or "unknown",
        "environment": ", ".join(f"{k}={v}" for k, v in env.items()) or "none",
    }


def environment_rows(report: Report) -> list[tuple[str, list[str], bool, bool]]:
    """(label, one value per run, differs, key) for the environment table that heads a report.

    ``differs`` is only set for fields that describe the environment (not ids or
    times); ``key`` marks hardware and key library versions.
    """
    per_run = [_environment(r) for r in report.runs]
    rows = []
    for label, compared, key in _ENV_ROWS:
        values = [env[label] for env in per_run]
        rows.append((label, values, compared and len(set(values)) > 1, key))
    return rows


def _threads(info: Mapping[str, Any]) -> str:
    """The run's torch threads; a run on several nodes has each node's (they may differ)."""
    if info.get("threads") is not None:
        return str(info["threads"])
    per_node = sorted({str(fp["threads"]) for fp in run_nodes(info).values() if fp.get("threads") is not None})
    return ", ".join(per_node) or "unknown"


def node_rows(report: Report) -> list[tuple[RunMeta, list[dict[str, str]]]]:
    """The nodes of every run that lists more than one in run.json's ``nodes``: (run, one row per node).

    Rows are keyed by NODE_COLUMNS. A run with one node or none is left out: its
    environment column already says everything.
    """
    out = []
    for run in report.runs:
        nodes = run_nodes(run.info)
        if len(nodes) < 2:
            continue
        rows = []
        for node, fp in nodes.items():
            flat = node_fields(run.info, node)
            rows.append({"node": node, "host": flat["hostname"] or "unknown", "CPU": flat["cpu_model"] or "unknown",
                         "GPUs": _fmt_gpus({"fingerprint": fp}), "torch threads": str(fp.get("threads", "unknown")),
                         "machine": machine_key(flat)})
        out.append((run, rows))
    return out


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
    for key, group in _case_order(summary).groupby(keys, sort=False, dropna=False):
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


def _machine(summary: pd.DataFrame) -> list[str]:
    # Summaries built before machines were tracked have no such column.
    return ["machine"] if "machine" in summary.columns else []


def _case_order(summary: pd.DataFrame) -> pd.DataFrame:
    """Runs in load order, then checkpoint, task, dtype, device, warm before cold, machine, paths in PATH_ORDER."""
    runs = {r: i for i, r in enumerate(dict.fromkeys(summary["run_id"]))}
    paths = {p: i for i, p in enumerate(PATH_ORDER)}
    keyed = summary.assign(
        _r=summary["run_id"].map(runs),
        _c=summary["cache"].map(lambda c: {"warm": 0, "cold": 1}.get(c, 2)),
        _p=summary["path"].map(lambda p: paths.get(p, len(paths))),
    )
    keys = ["_r", "checkpoint", "task", "dtype", "device", "_c", *_machine(summary), "_p", "path"]
    return keyed.sort_values(keys, kind="stable").drop(columns=["_r", "_c", "_p"])


def _metric_list(rows: pd.DataFrame, limit: int = 4) -> str:
    names = list(dict.fromkeys(rows["metric"]))
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def change(base: Any, other: Any) -> tuple[float, str]:
    """(ratio other/base, verdict) for two summary rows of one case × metric.

    The verdict is "better"/"worse" only when the two interquartile ranges do not
    overlap (each run having at least two samples) and the medians differ by at
    least MIN_EFFECT; otherwise "~" (within the spread). A reading aid, not a
    significance test.
    """
    if base is None or other is None or base.status != "ok" or other.status != "ok":
        return math.nan, ""
    ratio = other.median / base.median if base.median else math.nan
    if base.direction not in ("lower", "higher"):
        return ratio, ""
    if base.n < 2 or other.n < 2 or not math.isfinite(ratio) or abs(ratio - 1) < MIN_EFFECT:
        return ratio, "~"
    if other.q1 > base.q3:
        return ratio, "worse" if base.direction == "lower" else "better"
    if other.q3 < base.q1:
        return ratio, "better" if base.direction == "lower" else "worse"
    return ratio, "~"


def run_comparison(report: Report, metrics: Sequence[str] = COMPARE_METRICS) -> list[dict[str, Any]]:
    """Rows for the "runs side by side" table: one per case × metric, the first run as baseline.

    Each row: the case keys, metric, ``cells`` (one summary row or None per run)
    and ``changes`` ((ratio, verdict) of every later run against the first).
    Metrics that no case measured (GPU memory on a CPU) are left out. When a run
    was measured on several machines, rows are per ``machine`` as well (a key of
    the row then), so its machines are never folded into one cell.
    """
    skip = {m for ms in unmeasured_everywhere(report.summary).values() for m in ms}
    summary = report.summary[report.summary["metric"].isin([m for m in metrics if m not in skip])]
    run_ids = [r.run_id for r in report.runs]
    names = ("checkpoint", "task", "dtype", "device", "cache", *per_machine(summary), "metric", "path")
    rows: dict[tuple[str, ...], dict[str, Any]] = {}
    path_rank = {p: i for i, p in enumerate(PATH_ORDER)}
    for row in reading_order(summary).itertuples(index=False):
        key = tuple(getattr(row, n) for n in names)
        entry = rows.setdefault(key, {**dict(zip(names, key)), "cells": [None] * len(run_ids)})
        entry["cells"][run_ids.index(row.run_id)] = row
    # reading_order() put checkpoint, task, metric and cache in order; paths go in PATH_ORDER within.
    first_seen = {key[:-1]: i for i, key in reversed(list(enumerate(rows)))}
    out = [rows[k] for k in sorted(rows, key=lambda k: (first_seen[k[:-1]], path_rank.get(k[-1], len(path_rank))))]
    for entry in out:
        entry["changes"] = [change(entry["cells"][0], c) for c in entry["cells"][1:]]
    return out


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
    keys = ["run_id", "checkpoint", "task", "dtype", "device", "cache", *per_machine(summary)]
    wanted = summary[summary["metric"].isin([m for m, _ in measured])]
    index: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in wanted.itertuples(index=False):
        index.setdefault((*(getattr(r, k) for k in keys), r.metric), {})[r.path] = r
    rows: list[dict[str, Any]] = []
    for key, _ in _case_order(wanted).groupby(keys, sort=False, dropna=False):
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
