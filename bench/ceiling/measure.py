"""This machine's ceiling: measured once, kept in loadbench's cache, recorded with every run.

The rates (``ceiling_probes``) take tens of seconds and describe the hardware, not the
code, so they are cached per machine (the hardware part of the fingerprint: a new
commit or library does not make a new machine) and, for storage, per filesystem of
the checkpoint. A damaged cache file is measured again, never trusted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loadbench.bench.ceiling.probes import Rate, cold_read_rate, cuda_rates, memory_rates
from loadbench.errors import UserError

__all__ = ["CACHE_FILE", "CACHE_VERSION", "Ceiling", "CeilingError", "cache_path", "cached_ceiling", "filesystem_key",
           "machine_ceiling", "machine_key", "measure_apart", "run_ceiling"]

CACHE_FILE = "ceiling.json"
CACHE_VERSION = 1
_APART_TIMEOUT_S = 600.0  # a slow disk reads 3 x 256 MiB in well under a minute; a hung one must not hang the run
# The rates that do not depend on where the checkpoint is, in the order people read them.
MEMORY_RATES: tuple[str, ...] = ("memory_read", "memory_copy", "h2d_pinned", "h2d_pageable", "device_memory_read")
LABELS: dict[str, str] = {
    "cold_read": "storage cold read", "memory_read": "memory read", "memory_copy": "memory copy",
    "h2d_pinned": "host to device (pinned)", "h2d_pageable": "host to device (pageable)",
    "device_memory_read": "device memory read",
}


class CeilingError(UserError):
    """The directory whose storage is to be measured is not usable."""


@dataclass(frozen=True)
class Ceiling:
    """What this machine allows, as rates in bytes per second (each with its repeats, or why not)."""

    machine: str
    filesystem: str
    cold_read: Rate
    memory_read: Rate
    memory_copy: Rate
    h2d_pinned: Rate
    h2d_pageable: Rate
    device_memory_read: Rate

    def rates(self) -> dict[str, Rate]:
        return {f.name: getattr(self, f.name) for f in fields(self) if isinstance(getattr(self, f.name), Rate)}

    def to_dict(self) -> dict[str, Any]:
        return {"machine": self.machine, "filesystem": self.filesystem,
                **{name: rate.to_dict() for name, rate in self.rates().items()}}

    @classmethod
    def from_dict(cls, data: Any) -> Ceiling:
        """A Ceiling from to_dict's output; raises ValueError on anything else."""
        if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in ("machine", "filesystem")):
            raise ValueError("not a ceiling")
        try:
            rates = {name: Rate.from_dict(data[name]) for name in ("cold_read", *MEMORY_RATES)}
        except KeyError as exc:
            raise ValueError(f"a ceiling without {exc}") from None
        return cls(data["machine"], data["filesystem"], **rates)

    def lines(self) -> list[str]:
        """One line per rate, for people."""
        return [f"machine {self.machine}", f"filesystem {self.filesystem}",
                *(f"{LABELS[name]}: {rate.text()}" for name, rate in self.rates().items())]


def machine_key() -> str:
    """The node id of this machine's hardware (fingerprint.hardware): the cache's key."""
    from loadbench.bench.fingerprint import hardware, node_id

    return node_id(hardware())


def filesystem_key(directory: Path) -> str:
    """The mount point and device number of the filesystem that holds ``directory``."""
    device = directory.stat().st_dev
    mount = directory.resolve()
    while not os.path.ismount(mount) and mount.parent != mount:
        mount = mount.parent
    return f"{mount} (device {os.major(device)}:{os.minor(device)})"


def cache_path() -> Path:
    from loadbench.loaders.checkpoints.builtin import cache_root

    return cache_root() / CACHE_FILE


def _read_cache(path: Path) -> dict[str, Any]:
    """The cache's contents; empty when missing, unreadable, damaged or of another version."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != CACHE_VERSION or not isinstance(data.get("machines"), dict):
        return {}
    return data


def _write_cache(path: Path, data: dict[str, Any]) -> None:
    """Replace the cache atomically; a cache that cannot be written only costs a measurement next time."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(temporary, path)
    except OSError:
        pass


def _cached(entry: Any, names: tuple[str, ...]) -> dict[str, Rate] | None:
    """The named rates of a cache entry; None when any is missing or damaged."""
    if not isinstance(entry, dict):
        return None
    try:
        return {name: Rate.from_dict(entry[name]) for name in names}
    except (KeyError, ValueError):
        return None


def _stamp(rates: Mapping[str, Rate]) -> dict[str, Any]:
    return {**{name: rate.to_dict() for name, rate in rates.items()},
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds")}


def _measure_memory() -> dict[str, Rate]:
    read, copy = memory_rates()
    pinned, pageable, device = cuda_rates()
    return {"memory_read": read, "memory_copy": copy, "h2d_pinned": pinned, "h2d_pageable": pageable,
            "device_memory_read": device}


def _entries(path: Path, machine: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The cache, its machines, this machine's entry and that entry's filesystems (empty where missing)."""
    data = _read_cache(path)
    machines: dict[str, Any] = data.get("machines", {})
    found = machines.get(machine)
    entry: dict[str, Any] = found if isinstance(found, dict) else {}
    found = entry.get("filesystems")
    filesystems: dict[str, Any] = found if isinstance(found, dict) else {}
    return data, machines, entry, filesystems


def cached_ceiling(checkpoint_dir: str | Path) -> Ceiling | None:
    """The ceiling the cache holds for this machine and the directory's filesystem; None when it holds none.

    Only reads a file: a run's driver may call it (measuring needs a process of its own, ``measure_apart``).
    """
    directory = Path(checkpoint_dir).expanduser()
    if not directory.is_dir():
        return None
    machine, filesystem = machine_key(), filesystem_key(directory)
    _, _, entry, filesystems = _entries(cache_path(), machine)
    memory = _cached(entry.get("memory"), MEMORY_RATES)
    disk = _cached(filesystems.get(filesystem), ("cold_read",))
    return None if memory is None or disk is None else Ceiling(machine, filesystem, **disk, **memory)


def machine_ceiling(checkpoint_dir: str | Path, *, refresh: bool = False) -> Ceiling:
    """This machine's ceiling, with the cold read rate of the filesystem that holds ``checkpoint_dir``.

    Measured the first time (tens of seconds; nothing else should run meanwhile), then
    read from ``cache_path()``; ``refresh`` measures again and replaces the cached rates.
    """
    directory = Path(checkpoint_dir).expanduser()
    if not directory.is_dir():
        what = "is a file, not a directory" if directory.exists() else "no such directory"
        raise CeilingError(f"{directory}: {what}; give the checkpoint's directory (or any directory "
                           "on the storage to measure)")
    path, machine, filesystem = cache_path(), machine_key(), filesystem_key(directory)
    data, machines, entry, filesystems = _entries(path, machine)
    memory = None if refresh else _cached(entry.get("memory"), MEMORY_RATES)
    disk = None if refresh else _cached(filesystems.get(filesystem), ("cold_read",))
    if memory is None or disk is None:
        if disk is None:
            disk = {"cold_read": cold_read_rate(directory)}
            filesystems[filesystem] = _stamp(disk)
        if memory is None:
            memory = _measure_memory()
            entry["memory"] = _stamp(memory)
        entry["filesystems"] = filesystems
        _write_cache(path, {"version": CACHE_VERSION, "machines": {**machines, machine: entry}})
    return Ceiling(machine, filesystem, **disk, **memory)


def measure_apart(directory: str | Path) -> Ceiling:
    """machine_ceiling in a fresh interpreter (``loadbench ceiling --json``).

    A CUDA context made in a run's driver would stay for the whole run, holding device
    memory that every sample's NVML readings would count.
    """
    command = [sys.executable, "-m", "loadbench", "ceiling", "--json", str(directory)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=_APART_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CeilingError(f"{directory}: measuring the machine's ceiling failed ({exc})") from None
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise CeilingError(f"{directory}: measuring the machine's ceiling failed ({why})")
    try:
        return Ceiling.from_dict(json.loads(done.stdout))
    except ValueError as exc:
        raise CeilingError(f"{directory}: `loadbench ceiling --json` printed no ceiling ({exc})") from None


def run_ceiling(checkpoints: Mapping[str, str]) -> dict[str, Any]:
    """run.json's ``ceiling``: the machine's rates, and each checkpoint's storage (label -> directory given).

    Every filesystem is measured once, however many checkpoints it holds; a ceiling that
    cannot be measured is recorded with the reason, and the run goes on without it. A
    cached one is read here: a process of its own per checkpoint cost each run 0.4 s apiece.
    """
    from loadbench.bench.fingerprint import hardware

    try:
        by_label = {label: cached_ceiling(directory) or measure_apart(directory)
                    for label, directory in checkpoints.items()}
    except CeilingError as exc:
        return {"not_measured": str(exc)}
    if not by_label:
        return {"not_measured": "the run loads no checkpoint"}
    first = next(iter(by_label.values()))
    return {
        "machine": first.machine,
        "hostname": hardware()["hostname"],
        **{name: getattr(first, name).to_dict() for name in MEMORY_RATES},
        "storage": {label: {"filesystem": c.filesystem, "cold_read": c.cold_read.to_dict()}
                    for label, c in by_label.items()},
    }
