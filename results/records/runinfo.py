"""What a run was measured on, as flat fields a person can group by and compare.

``run.json`` keeps the fingerprint nested the way the machine reported it; people
ask flatter questions ("which torch?", "same GPU?"), and two runs are only
comparable when the answers agree. A run whose samples were taken on several
machines lists each one's fingerprint under ``nodes``; a record's ``node`` says
which one measured it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "COMPARABILITY_KEYS",
    "FINGERPRINT_COLUMNS",
    "MACHINE_KEYS",
    "Difference",
    "device_name",
    "differences",
    "fingerprint_fields",
    "gpu_reason",
    "machine_fields",
    "machine_key",
    "named_environments",
    "node_fields",
    "node_fingerprint",
    "run_nodes",
]

# One column each in load(); the order is the order a reader scans an environment.
FINGERPRINT_COLUMNS: tuple[str, ...] = (
    "started_at", "hostname", "cpu_model", "cpu_count", "gpus", "python_version", "torch_version",
    "transformers_version", "tokenizers_version", "safetensors_version", "loadbench_version", "git_commit",
)
# Fields that change the numbers by themselves: runs that differ here measure the
# environment as much as the code.
COMPARABILITY_KEYS: tuple[str, ...] = (
    "cpu_model", "cpu_count", "gpus", "torch_version", "transformers_version",
)
# The hardware that names a machine: library versions are not part of it, so that a
# torch upgrade can be compared with the same machine's older numbers on purpose.
MACHINE_KEYS: tuple[str, ...] = ("cpu_model", "cpu_count", "gpus")
_PACKAGES = ("torch", "transformers", "tokenizers", "safetensors", "loadbench")


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _gpu_names(gpus: Any) -> str | None:
    # A string is the reason there are none ("NVML unavailable: ..."): no GPU to name.
    if not isinstance(gpus, list) or not gpus:
        return None
    names = [str(g.get("name", "?")) if isinstance(g, Mapping) else str(g) for g in gpus]
    return ", ".join(names)


def fingerprint_fields(info: Mapping[str, Any]) -> dict[str, str | None]:
    """The FINGERPRINT_COLUMNS of one run.json; anything it does not record is None.

    Reads the nested ``fingerprint`` that ``loadbench run`` writes, falling back to
    flat top-level keys (``torch``, ``python``, ``host``) that hand-made run.json
    files use.
    """
    fp = info.get("fingerprint")
    fp = fp if isinstance(fp, Mapping) else {}
    packages = fp.get("packages")
    packages = packages if isinstance(packages, Mapping) else {}

    def pick(*candidates: tuple[Mapping[str, Any], str]) -> str | None:
        for source, key in candidates:
            if _text(source.get(key)) is not None:
                return _text(source.get(key))
        return None

    out: dict[str, str | None] = {
        "started_at": pick((info, "started_at")),
        "hostname": pick((fp, "hostname"), (info, "hostname"), (info, "host")),
        "cpu_model": pick((fp, "cpu_model"), (info, "cpu_model")),
        "cpu_count": pick((fp, "cpu_count"), (info, "cpu_count")),
        "gpus": _gpu_names(fp.get("gpus")),
        "python_version": pick((fp, "python"), (info, "python")),
    }
    for name in _PACKAGES:
        out[f"{name}_version"] = pick((packages, name), (info, name), (info, f"{name}_version"))
    out["git_commit"] = pick((fp, "git_commit"), (info, "git_commit"))
    return {k: out[k] for k in FINGERPRINT_COLUMNS}


def named_environments(info: Mapping[str, Any]) -> list[str]:
    """The environments a run's suite named (run.json's ``suite.environments``), in that order.

    The first is the run's baseline, or its anchor in a history; empty for a run of one environment.
    """
    suite = info.get("suite")
    entries = suite.get("environments") if isinstance(suite, Mapping) else None
    return [str(e.get("name")) for e in entries if isinstance(e, Mapping)] if isinstance(entries, list) else []


def run_nodes(info: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """run.json's ``nodes`` (node id -> fingerprint); empty for a run measured on one machine."""
    nodes = info.get("nodes")
    if not isinstance(nodes, Mapping):
        return {}
    return {str(k): v for k, v in nodes.items() if isinstance(v, Mapping)}


def node_fingerprint(info: Mapping[str, Any], node: str | None) -> Mapping[str, Any]:
    """The fingerprint of the machine that measured a record of ``node`` in this run.

    A null node, and a node that run.json does not list (a run written before nodes
    were recorded), stand for the run's own ``fingerprint``.
    """
    nodes = run_nodes(info)
    if node is not None and node in nodes:
        return nodes[node]
    fp = info.get("fingerprint")
    return fp if isinstance(fp, Mapping) else {}


def node_fields(info: Mapping[str, Any], node: str | None) -> dict[str, str | None]:
    """``fingerprint_fields`` of one node's fingerprint; run-level keys (started_at) still come from info."""
    return fingerprint_fields({**info, "fingerprint": node_fingerprint(info, node)})


def machine_fields(fields: Mapping[str, Any]) -> dict[str, str | None]:
    """The MACHINE_KEYS of flat fingerprint fields (a ``load()`` row too), a run.json, or its fingerprint, as text."""
    if isinstance(fields.get("fingerprint"), Mapping):  # a run.json
        fields = fingerprint_fields(fields)
    elif "packages" in fields or isinstance(fields.get("gpus"), list):  # a run.json's fingerprint
        fields = fingerprint_fields({"fingerprint": fields})
    return {k: _present(fields.get(k)) for k in MACHINE_KEYS}


def _present(value: Any) -> str | None:
    # A frame row holds NaN where a fingerprint had nothing: the same machine as None.
    if value is None or (isinstance(value, float) and value != value):
        return None
    return str(value)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40]


def machine_key(fields: Mapping[str, Any]) -> str:
    """A short stable key of the hardware in ``fields`` (flat fingerprint fields or a run.json).

    A readable slug of the CPU, CPU count and GPUs plus a 10-digit hash of exactly
    MACHINE_KEYS: the same hardware always maps to the same key, wherever it was read.
    """
    machine = machine_fields(fields)
    digest = hashlib.sha256(json.dumps([machine[k] for k in MACHINE_KEYS]).encode()).hexdigest()[:10]
    gpus = _slug(machine["gpus"]) if machine["gpus"] else "nogpu"
    return f"{_slug(machine['cpu_model'] or 'unknown-cpu')}-{machine['cpu_count'] or 'x'}cpu-{gpus}-{digest}"


def gpu_reason(info: Mapping[str, Any]) -> str | None:
    """Why a run has no GPUs listed, when the fingerprint says (e.g. no NVML)."""
    fp = info.get("fingerprint")
    gpus = fp.get("gpus") if isinstance(fp, Mapping) else None
    if isinstance(gpus, str):
        return gpus
    return "none found" if gpus == [] else None


def device_name(device: str, fields: Mapping[str, str | None]) -> str | None:
    """The hardware behind a record's ``device`` ("cpu", "cuda:1") in one run.

    The GPU is picked by the index in the device string among the names the run
    listed; when all GPUs share one name (the usual case) the index does not matter.
    """
    if not device.startswith("cuda"):
        return fields.get("cpu_model")
    names = (fields.get("gpus") or "").split(", ")
    names = [n for n in names if n]
    if not names:
        return None
    if len(set(names)) == 1:
        return names[0]
    _, _, index = device.partition(":")
    position = int(index) if index.isdigit() else 0
    return names[position] if position < len(names) else None


@dataclass(frozen=True)
class Difference:
    """One fingerprint field whose value is not the same in every run (or every machine of a run)."""

    field: str
    values: tuple[str | None, ...]  # one per run, in run order; or one per entry of labels
    key: bool  # one of COMPARABILITY_KEYS: the numbers may differ because of it
    # Whose each value is, when that is not simply one run each (a run measured on two machines).
    labels: tuple[str, ...] = ()

    def describe(self, run_ids: Sequence[str]) -> str:
        """The field and each value with its owner: ``labels`` when set, else ``run_ids`` in order."""
        owners = self.labels or tuple(run_ids)
        shown = ", ".join(f"{v if v is not None else 'unknown'} ({r})" for v, r in zip(self.values, owners))
        return f"{self.field}: {shown}"


def differences(fields_per_run: Sequence[Mapping[str, str | None]],
                labels: Sequence[str] = ()) -> list[Difference]:
    """Fingerprint fields that differ between runs, comparability keys first.

    ``started_at`` always differs and ``hostname``/``git_commit`` differing is
    expected, so they are listed but never key. ``labels`` (one per entry of
    ``fields_per_run``) go into each Difference, for entries that are not one run each.
    """
    out: list[Difference] = []
    for name in FINGERPRINT_COLUMNS:
        if name == "started_at":
            continue
        values = tuple(f.get(name) for f in fields_per_run)
        if len(set(values)) > 1:
            out.append(Difference(name, values, name in COMPARABILITY_KEYS, tuple(labels)))
    return sorted(out, key=lambda d: not d.key)
