"""What a run was measured on, as flat fields a person can group by and compare.

``run.json`` keeps the fingerprint nested the way the machine reported it; people
ask flatter questions ("which torch?", "same GPU?"), and two runs are only
comparable when the answers agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

__all__ = [
    "COMPARABILITY_KEYS",
    "FINGERPRINT_COLUMNS",
    "Difference",
    "device_name",
    "differences",
    "fingerprint_fields",
    "gpu_reason",
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
    """One fingerprint field whose value is not the same in every run."""

    field: str
    values: tuple[str | None, ...]  # one per run, in run order
    key: bool  # one of COMPARABILITY_KEYS: the numbers may differ because of it

    def describe(self, run_ids: Sequence[str]) -> str:
        shown = ", ".join(f"{v if v is not None else 'unknown'} ({r})" for v, r in zip(self.values, run_ids))
        return f"{self.field}: {shown}"


def differences(fields_per_run: Sequence[Mapping[str, str | None]]) -> list[Difference]:
    """Fingerprint fields that differ between runs, comparability keys first.

    ``started_at`` always differs and ``hostname``/``git_commit`` differing is
    expected, so they are listed but never key.
    """
    out: list[Difference] = []
    for name in FINGERPRINT_COLUMNS:
        if name == "started_at":
            continue
        values = tuple(f.get(name) for f in fields_per_run)
        if len(set(values)) > 1:
            out.append(Difference(name, values, name in COMPARABILITY_KEYS))
    return sorted(out, key=lambda d: not d.key)
