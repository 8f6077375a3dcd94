"""One reading of a process's resident memory, from ``/proc/<pid>/status``, split by kind.

RAM is split into anonymous and file-backed pages because a memory-mapped safetensors
file shows up as file-backed RSS (reclaimable page cache) while a copied state dict is
anonymous (real cost). The worker reads itself here, and the watcher reads the worker.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["RamReading", "STATUS_PATH", "read_ram", "read_status_bytes", "status_path"]

STATUS_PATH = Path("/proc/self/status")


def status_path(pid: int) -> Path:
    """The status file of process ``pid`` (Linux)."""
    return Path(f"/proc/{pid}/status")


@dataclass(frozen=True)
class RamReading:
    """Resident bytes at one moment; ``anon``/``file`` None where the OS does not split RSS.

    ``file`` counts RssFile + RssShmem (a mapping on tmpfs or /dev/shm is shmem), so
    anon + file = rss. ``hwm`` is the kernel's VmHWM: the peak since the process started
    or since its high-water mark was last reset.
    """

    rss: int
    anon: int | None
    file: int | None
    hwm: int | None


def read_status_bytes(keys: Iterable[str], path: Path = STATUS_PATH) -> dict[str, int]:
    """The given status fields in bytes; those the file lacks (or no file) are absent.

    One read of one file, no process scan: cheap enough to run every sampling period.
    """
    try:
        text = path.read_text()
    except OSError:
        text = ""
    wanted = set(keys)
    found: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in wanted:
            found[key] = int(rest.split()[0]) * 1024  # the kernel writes kB
    return found


def read_ram(path: Path = STATUS_PATH, pid: int | None = None) -> RamReading:
    """One reading from ``path``; psutil where the file is missing (not Linux, /proc hidden)."""
    kb = read_status_bytes(("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem"), path)
    if "VmRSS" not in kb:
        import psutil

        return RamReading(rss=int(psutil.Process(pid or os.getpid()).memory_info().rss), anon=None, file=None,
                          hwm=None)
    anon = kb.get("RssAnon")  # RssAnon/RssFile: Linux 4.5 and later
    file = kb["RssFile"] + kb.get("RssShmem", 0) if "RssFile" in kb else None
    return RamReading(rss=kb["VmRSS"], anon=anon, file=file, hwm=kb.get("VmHWM"))
