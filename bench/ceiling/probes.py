"""What the hardware allows, measured: cold sequential reads, memory reads and copies, host-to-device copies.

A load's time says which path is faster; these rates say how far a load is from
what the disk and memory could give. Each is the median of a few repeats with its
spread kept, and anything that cannot be measured says why instead of a number.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from loadbench.bench.probes import page_cache as pagecache

__all__ = ["MiB", "Rate", "cold_read_rate", "cuda_rates", "gb_per_s", "memory_rates", "not_measured"]

MiB = 1 << 20
_READ_BUFFER = 8 * MiB  # large reads: the rate of the storage, not of the syscalls
_WRITE_BLOCK = 64 * MiB
# A repeat counts as cold only when nearly all its bytes came from storage (/proc/self/io).
_COLD_SHARE = 0.9


@dataclass(frozen=True)
class Rate:
    """One measured rate in bytes per second: the median of ``repeats``, or why there is none."""

    median: float | None
    repeats: tuple[float, ...] = ()
    size_bytes: int = 0
    reason: str | None = None  # "not measured: ..." when median is None
    note: str | None = None  # a caveat that does not void the number

    @property
    def spread(self) -> float | None:
        """(max - min) / median of the repeats; None without a number."""
        if self.median is None or not self.repeats or self.median == 0:
            return None
        return (max(self.repeats) - min(self.repeats)) / self.median

    def text(self) -> str:
        """"1.39 GB/s (median of 3 × 256 MiB, spread 8%)", or the reason."""
        if self.median is None:
            return self.reason or "not measured"
        spread = self.spread
        shown = f", spread {spread:.0%}" if spread is not None else ""
        note = f"; {self.note}" if self.note else ""
        return (f"{gb_per_s(self.median)} (median of {len(self.repeats)} × {self.size_bytes // MiB} MiB"
                f"{shown}{note})")

    def to_dict(self) -> dict[str, Any]:
        return {"median_bytes_per_s": self.median, "repeats_bytes_per_s": list(self.repeats),
                "size_bytes": self.size_bytes, "reason": self.reason, "note": self.note}

    @classmethod
    def from_dict(cls, data: Any) -> Rate:
        """A Rate from to_dict's output; raises ValueError on anything else (a damaged cache)."""
        if not isinstance(data, dict):
            raise ValueError("a rate must be an object")
        median, repeats = data.get("median_bytes_per_s"), data.get("repeats_bytes_per_s", [])
        reason, note, size = data.get("reason"), data.get("note"), data.get("size_bytes", 0)
        numbers = [median, *repeats] if median is not None else list(repeats)
        if (not isinstance(repeats, list) or not all(isinstance(v, (int, float)) and v > 0 for v in numbers)
                or not isinstance(size, int) or (median is None and not isinstance(reason, str))
                or not all(v is None or isinstance(v, str) for v in (reason, note))):
            raise ValueError("not a rate")
        return cls(None if median is None else float(median), tuple(float(v) for v in repeats), size, reason, note)


def gb_per_s(value: float) -> str:
    """Bytes per second as "1.39 GB/s" (decimal, as disks and memory are rated)."""
    scaled = value / 1e9
    return f"{scaled:.0f} GB/s" if scaled >= 100 else f"{scaled:#.3g} GB/s"


def not_measured(why: str) -> Rate:
    return Rate(None, reason=f"not measured: {why}")


def _rate(seconds: list[float], size: int, note: str | None = None) -> Rate:
    rates = tuple(size / s for s in seconds if s > 0)
    if not rates:
        return not_measured("the clock did not advance")
    return Rate(statistics.median(rates), rates, size, note=note)


def _scratch(directory: Path) -> Path | str:
    """A new temporary folder on ``directory``'s filesystem, or why none can be made.

    The checkpoint's own folder first (its storage is what a load reads), then its
    parents while they stay on the same device.
    """
    device = directory.stat().st_dev
    for where in (directory, *directory.parents):
        try:
            if where.stat().st_dev != device:
                break
            return Path(tempfile.mkdtemp(prefix=".loadbench-ceiling-", dir=where))
        except OSError:
            continue
    return f"no writable folder on the filesystem of {directory}"


def _write(file: Path, size: int) -> None:
    # Random bytes: a compressing filesystem would read zeros far faster than weights.
    block = os.urandom(min(_WRITE_BLOCK, size))
    with open(file, "wb", buffering=0) as out:
        written = 0
        while written < size:
            written += out.write(block[: size - written])
        os.fsync(out.fileno())  # dirty pages cannot be dropped


def _read_cold(file: Path, buffer: memoryview) -> tuple[float, int, int | None]:
    """Drop the file's cached pages, read it whole; (seconds, bytes, bytes from storage or None)."""
    fd = os.open(file, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        before = pagecache.disk_read_bytes()
        started = time.perf_counter()
        total = 0
        while count := os.readv(fd, [buffer]):
            total += count
        seconds = time.perf_counter() - started
        after = pagecache.disk_read_bytes()
    finally:
        os.close(fd)
    return seconds, total, None if before is None or after is None else after - before


def cold_read_rate(directory: Path, size_bytes: int = 256 * MiB, repeats: int = 3) -> Rate:
    """Sequential read rate of ``directory``'s storage with the page cache emptied (posix_fadvise DONTNEED).

    A temporary file of ``size_bytes`` (less when the filesystem is short of space) is
    written, synced, dropped from the cache and read with large buffers ``repeats``
    times. A repeat whose bytes did not come from storage voids the measurement.
    """
    if not hasattr(os, "posix_fadvise"):
        return not_measured("this OS has no posix_fadvise, so the page cache cannot be emptied")
    scratch = _scratch(directory)
    if isinstance(scratch, str):
        return not_measured(scratch)
    try:
        size = min(size_bytes, shutil.disk_usage(scratch).free // 4) // MiB * MiB
        if size < min(size_bytes, 16 * MiB):
            return not_measured(f"too little free space on the filesystem of {directory}")
        file = scratch / "read-test"
        _write(file, size)
        buffer = memoryview(bytearray(_READ_BUFFER))
        seconds: list[float] = []
        verified = True
        for _ in range(repeats):
            taken, total, from_storage = _read_cold(file, buffer)
            if total != size:
                return not_measured(f"read {total} of the {size} bytes written")
            if from_storage is None:
                verified = False
            elif from_storage < _COLD_SHARE * size:
                return not_measured(f"posix_fadvise(DONTNEED) left the file cached: only {from_storage} of "
                                    f"{size} bytes came from storage")
            seconds.append(taken)
        return _rate(seconds, size, None if verified else "cold reads not verified (no /proc/self/io)")
    except OSError as exc:
        return not_measured(f"the read test on {directory} failed ({exc.strerror or exc})")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _timed(action: Callable[[], Any], repeats: int, sync: Callable[[], Any] = lambda: None) -> list[float]:
    """Seconds of each of ``repeats`` calls, after one untimed call (first touch faults pages in)."""
    action()
    sync()
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        sync()
        seconds.append(time.perf_counter() - started)
    return seconds


def memory_rates(size_bytes: int = 512 * MiB, repeats: int = 5) -> tuple[Rate, Rate]:
    """(read, copy) rates of host memory with torch's threads: a sum over, and a copy between, large tensors.

    The copy rate counts the bytes copied (each is read once and written once). Sizes are
    cut to an eighth of the available memory when that is less.
    """
    import psutil
    import torch

    size = min(size_bytes, psutil.virtual_memory().available // 8) // 4 * 4
    if size < MiB:
        reason = not_measured("too little free memory")
        return reason, reason
    source = torch.ones(size // 4, dtype=torch.float32)
    target = torch.empty_like(source)
    return _rate(_timed(source.sum, repeats), size), _rate(_timed(partial(target.copy_, source), repeats), size)


def _no_cuda(torch: Any) -> str | None:
    if torch.version.cuda is None:
        return f"no CUDA device (torch {torch.__version__} is built without CUDA)"
    if not torch.cuda.is_available():
        return f"no CUDA device (torch {torch.__version__} sees none)"
    return None


def _host_to_device(torch: Any, size: int, pinned: bool, repeats: int) -> Rate:
    source = torch.ones(size, dtype=torch.uint8, pin_memory=pinned)
    target = torch.empty(size, dtype=torch.uint8, device="cuda")
    return _rate(_timed(partial(target.copy_, source), repeats, torch.cuda.synchronize), size)


def _device_read(torch: Any, size: int, repeats: int) -> Rate:
    tensor = torch.ones(size // 4, dtype=torch.float32, device="cuda")
    return _rate(_timed(tensor.sum, repeats, torch.cuda.synchronize), size)


def cuda_rates(size_bytes: int = 256 * MiB, repeats: int = 5) -> tuple[Rate, Rate, Rate]:
    """(pinned, pageable) host-to-device copy rates, and the device memory's read rate, on the current GPU.

    The device read is a sum over four times ``size_bytes``: well above any GPU's L2 cache.
    """
    import torch

    reason = _no_cuda(torch)
    if reason is not None:
        return not_measured(reason), not_measured(reason), not_measured(reason)
    size = size_bytes // 4 * 4
    rates = (_host_to_device(torch, size, True, repeats), _host_to_device(torch, size, False, repeats),
             _device_read(torch, 4 * size, repeats))
    torch.cuda.empty_cache()
    return rates
