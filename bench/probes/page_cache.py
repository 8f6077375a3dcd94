"""Put a checkpoint's files in or out of the page cache before a sample.

Load time depends on whether the weights are already in RAM. ``warm`` reads every
file once; ``cold`` asks the kernel to drop their cached pages (posix_fadvise
DONTNEED: no root needed, and only these files are affected). Whether the sample
then really read from disk is measured, not assumed: see ``disk_read_bytes``.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["warm", "evict", "disk_read_bytes", "CHUNK_BYTES"]

CHUNK_BYTES = 1 << 20


def _files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file())


def warm(directory: Path) -> int:
    """Read every file of the checkpoint; returns the bytes read."""
    total = 0
    for path in _files(directory):
        with open(path, "rb", buffering=0) as handle:
            while chunk := handle.read(CHUNK_BYTES):
                total += len(chunk)
    return total


def evict(directory: Path) -> str | None:
    """Drop the checkpoint's files from the page cache; the reason when that is impossible."""
    if not hasattr(os, "posix_fadvise"):
        return "this OS has no posix_fadvise: the page cache could not be emptied, so 'cold' is not cold"
    for path in _files(directory):
        fd = os.open(path, os.O_RDONLY)
        try:
            # Dirty pages (a checkpoint just written) are not dropped: write them out first.
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    return None


def disk_read_bytes() -> int | None:
    """Bytes this process has caused to be read from storage (Linux /proc/self/io)."""
    try:
        with open("/proc/self/io", encoding="ascii") as io:
            for line in io:
                if line.startswith("read_bytes:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None
