"""The environment that heads a report: one column per run, and the nodes of a run spread over several.

Formatting a fingerprint for people (GPU lists, library versions, thread counts) is
its own job, apart from what a report computes, so every output format shows the
same rows and marks the same differences.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from loadbench.results.analysis.ceiling import ceiling_summary
from loadbench.results.analysis.metrics import format_value
from loadbench.results.records.runinfo import fingerprint_fields, gpu_reason, machine_key, node_fields, run_nodes

if TYPE_CHECKING:
    from loadbench.results.report.model import Report, RunMeta

__all__ = ["ENV_ROWS", "NODE_COLUMNS", "environment_rows", "node_columns", "node_rows", "nodes_sentence"]

# Environment rows: (label, compared between runs, hardware or key library version).
ENV_ROWS: tuple[tuple[str, bool, bool], ...] = (
    ("run", False, False), ("directory", False, False), ("status", False, False), ("started", False, False),
    ("suite", True, False), ("CPU", True, True), ("CPU cores", True, True), ("torch threads", True, False),
    ("RAM", True, False), ("GPUs", True, True), ("OS", True, False), ("Python", True, False),
    ("torch", True, True), ("transformers", True, True), ("tokenizers", True, False), ("safetensors", True, False),
    ("loadbench", True, False), ("git commit", True, False), ("host", True, False), ("environment", True, False),
    ("ceiling", False, False),
)
# The nodes table of a run spread over several machines: one row per node.
NODE_COLUMNS: tuple[str, ...] = ("node", "environment", "python", "torch", "transformers", "checkouts", "host",
                                 "CPU", "GPUs", "torch threads", "machine")


def _fmt_gpus(info: dict[str, Any]) -> str:
    fingerprint = info.get("fingerprint")
    gpus = fingerprint.get("gpus") if isinstance(fingerprint, dict) else None
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


def _threads(info: Mapping[str, Any]) -> str:
    """The run's torch threads; a run on several nodes has each node's (they may differ)."""
    if info.get("threads") is not None:
        return str(info["threads"])
    per_node = sorted({str(fp["threads"]) for fp in run_nodes(info).values() if fp.get("threads") is not None})
    return ", ".join(per_node) or "unknown"


def _environment(run: RunMeta) -> dict[str, str]:
    """One run's environment, formatted for people, keyed by ENV_ROWS label."""
    info = run.info
    fp: dict[str, Any] = info["fingerprint"] if isinstance(info.get("fingerprint"), dict) else {}
    flat = fingerprint_fields(info)
    env: dict[str, Any] = fp["env"] if isinstance(fp.get("env"), dict) else {}
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
        "ceiling": ceiling_summary(info),
    }


def environment_rows(report: Report) -> list[tuple[str, list[str], bool, bool]]:
    """(label, one value per run, differs, key) for the environment table that heads a report.

    ``differs`` is only set for fields that describe the environment (not ids or
    times); ``key`` marks hardware and key library versions.
    """
    per_run = [_environment(r) for r in report.runs]
    rows = []
    for label, compared, key in ENV_ROWS:
        values = [env[label] for env in per_run]
        rows.append((label, values, compared and len(set(values)) > 1, key))
    return rows


def nodes_sentence(rows: list[dict[str, str]]) -> str:
    """How a run's nodes table is introduced: Python environments of one machine, or machines."""
    if rows and "environment" in rows[0]:
        return f"was measured in {len(rows)} Python environments (a node each):"
    return f"was measured on {len(rows)} nodes:"


def node_columns(rows: list[dict[str, str]]) -> list[str]:
    """The NODE_COLUMNS these rows have: the environment ones only for a run with environments."""
    return [c for c in NODE_COLUMNS if rows and c in rows[0]]


def _environment_cells(fp: Mapping[str, Any]) -> dict[str, str]:
    found_packages, found_checkouts = fp.get("packages"), fp.get("checkouts")
    packages: dict[str, Any] = found_packages if isinstance(found_packages, dict) else {}
    checkouts: dict[str, Any] = found_checkouts if isinstance(found_checkouts, dict) else {}
    return {"environment": str(fp.get("environment") or "—"),
            "python": str(fp.get("python_executable") or fp.get("python") or "unknown"),
            "torch": str(packages.get("torch") or "unknown"),
            "transformers": str(packages.get("transformers") or "unknown"),
            "checkouts": ", ".join(f"{k} {str(v)[:12]}" for k, v in checkouts.items()) or "—"}


def node_rows(report: Report) -> list[tuple[RunMeta, list[dict[str, str]]]]:
    """The nodes of every run that lists more than one in run.json's ``nodes``: (run, one row per node).

    Rows are keyed by NODE_COLUMNS (``node_columns`` says which). A run with one node or
    none is left out: its environment column already says everything. A run with several
    Python environments has a node per environment, named in ``environment``.
    """
    out = []
    for run in report.runs:
        nodes = run_nodes(run.info)
        if len(nodes) < 2:
            continue
        rows = []
        with_envs = any(fp.get("environment") for fp in nodes.values())
        for node, fp in nodes.items():
            flat = node_fields(run.info, node)
            rows.append({"node": node, **(_environment_cells(fp) if with_envs else {}),
                         "host": flat["hostname"] or "unknown", "CPU": flat["cpu_model"] or "unknown",
                         "GPUs": _fmt_gpus({"fingerprint": fp}), "torch threads": str(fp.get("threads", "unknown")),
                         "machine": machine_key(flat)})
        out.append((run, rows))
    return out
