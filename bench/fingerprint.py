"""The environment a run was measured in: what must match before two runs are compared.

Library versions come from package metadata, not imports, so taking a fingerprint
does not slow the CLI or disturb the measurements.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import subprocess
from importlib.metadata import PackageNotFoundError, distribution, version
from typing import Any
from urllib.parse import unquote, urlparse

import psutil

__all__ = ["checkouts", "fingerprint", "gpu_inventory", "hardware", "local_cuda_available", "node_id", "PACKAGES",
           "ENV_PREFIXES"]

PACKAGES = ("loadbench", "torch", "transformers", "tokenizers", "safetensors", "nvidia-ml-py")
ENV_PREFIXES = ("HF_", "TRANSFORMERS_", "OMP_", "MKL_", "CUDA_", "PYTORCH_", "TOKENIZERS_")


def _package_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def local_cuda_available() -> bool:
    """Whether torch sees a CUDA device on this machine: what ``device = "auto"`` means here.

    Imports torch, so it is asked only once the input is known good.
    """
    import torch

    return bool(torch.cuda.is_available())


def _git_commit(where: str | None = None, *, dirty: bool = False) -> str | None:
    command = ["git", "describe", "--always", "--dirty", "--abbrev=40"] if dirty else ["git", "rev-parse", "HEAD"]
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=5, cwd=where)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def checkouts() -> dict[str, str]:
    """The git commit (``-dirty`` when changed) of each of PACKAGES installed from a local checkout.

    pip records where a package came from in its ``direct_url.json`` (PEP 610): two
    environments that both say "loadbench 0.1.0" may hold different commits.
    """
    found = {}
    for name in PACKAGES:
        try:
            text = distribution(name).read_text("direct_url.json")
        except PackageNotFoundError:
            continue
        try:
            url = urlparse(json.loads(text or "{}").get("url", ""))
        except (ValueError, AttributeError):
            continue
        if url.scheme == "file" and os.path.isdir(unquote(url.path)):
            commit = _git_commit(unquote(url.path), dirty=True)
            if commit is not None:
                found[name] = commit
    return found


def gpu_inventory() -> list[dict[str, Any]] | str:
    """Name, UUID, memory and driver of each visible NVIDIA GPU, or why there are none."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception as exc:  # NVMLError_LibraryNotFound and friends: no NVIDIA driver here
        return f"NVML unavailable: {exc}"
    try:
        driver = pynvml.nvmlSystemGetDriverVersion()
        cuda = pynvml.nvmlSystemGetCudaDriverVersion_v2()
        gpus = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            gpus.append({
                "index": index,
                "name": pynvml.nvmlDeviceGetName(handle),
                "uuid": pynvml.nvmlDeviceGetUUID(handle),
                "memory_bytes": int(pynvml.nvmlDeviceGetMemoryInfo(handle).total),
                "driver": driver,
                "cuda_driver": f"{cuda // 1000}.{cuda % 1000 // 10}",
            })
        return gpus
    finally:
        pynvml.nvmlShutdown()


def hardware() -> dict[str, Any]:
    """The machine alone (host, CPU, RAM, GPUs): what stays when libraries, commits and settings change."""
    return {
        "hostname": platform.node(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "ram_bytes": int(psutil.virtual_memory().total),
        "gpus": gpu_inventory(),
    }


def fingerprint() -> dict[str, Any]:
    """Machine, libraries and settings that decide the numbers."""
    machine = hardware()
    return {
        "hostname": machine["hostname"],
        "os": platform.platform(),
        "cpu_model": machine["cpu_model"],
        "cpu_count": machine["cpu_count"],
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "ram_bytes": machine["ram_bytes"],
        "gpus": machine["gpus"],
        "python": platform.python_version(),
        "packages": {name: _package_version(name) for name in PACKAGES},
        "git_commit": _git_commit(),
        "checkouts": checkouts(),
        "env": {k: v for k, v in sorted(os.environ.items())
                if k.startswith(ENV_PREFIXES) and not k.endswith(("TOKEN", "KEY", "SECRET"))},
    }


def node_id(machine: dict[str, Any]) -> str:
    """A short id for a node's fingerprint: its host name and a digest of the rest.

    Records name the node that measured them by this id; run.json's ``nodes`` maps it
    back to the whole fingerprint. The same machine in the same state keeps its id, so a
    resumed run adds no node; anything that changed (a library, the GPUs) makes a new one.
    """
    digest = hashlib.sha256(json.dumps(machine, sort_keys=True, default=str).encode()).hexdigest()[:8]
    host = re.sub(r"[^A-Za-z0-9.-]+", "-", str(machine.get("hostname") or "node")).strip("-")[:24] or "node"
    return f"{host}-{digest}"
