"""Which pages a case's zygote wrote, and how a fork of it copies them before anything is timed.

A fork shares its parent's memory copy-on-write: the first write to a shared page costs a
fault and a page copy. A worker that imports its architecture itself writes those pages
during the import (timed as ``import_s``). A worker forked from a zygote that already
imported it would pay those copies during the load instead: +8% ``load_s`` on tiny-llama
(4,900 against 3,300 page faults; bench/studies/README.md#profile_run). So the case's zygote
lists the pages only it maps (the import's writes: the pagemap's "exclusively mapped"
bit, read while the first zygote still shares the rest), and each worker forked from it
copies them with ``MADV_POPULATE_WRITE`` before its timers start, which leaves it where
a worker that imported the architecture itself stands.

Copying all of them costs about 20 ms a worker (30 MB for tiny-llama), more than the
previous worker's exit leaves to do it in; a sample writes about a fifth of them. So a
warmup sample, whose numbers are not kept, copies nothing and reports at its end which
of them it wrote (``rewritten``); the workers after it copy only those.
"""

from __future__ import annotations

import ctypes
import functools
import os
import struct
import sys
from typing import BinaryIO

__all__ = ["PageRanges", "privatize", "rewritten", "union", "written_ranges"]

PageRanges = list[tuple[int, int]]  # (address, length in bytes)
copied_bytes: int | None = None  # what ``privatize`` copied into this process, if it ran here

MADV_POPULATE_WRITE = 23  # Linux 5.14; the mmap module of Python 3.11 does not name it
_PRESENT = 1 << 63
_EXCLUSIVE = 1 << 56  # Linux 4.2: the page is mapped by this process only
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@functools.cache  # looked up once in a zygote; its forks inherit it
def _madvise() -> ctypes._CFuncPtr:  # type: ignore[name-defined]
    libc = ctypes.CDLL(None, use_errno=True)
    madvise = libc.madvise
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    madvise.restype = ctypes.c_int
    return madvise


def written_ranges() -> PageRanges | str:
    """The private writable pages only this process maps, or why they cannot be known or copied here."""
    if not sys.platform.startswith("linux"):
        return "copying a zygote's pages ahead needs Linux's /proc/self/pagemap"
    ranges: PageRanges = []
    try:
        with open("/proc/self/maps", encoding="ascii") as maps, \
                open("/proc/self/pagemap", "rb", buffering=0) as pagemap:
            for line in maps:
                fields = line.split()
                perms = fields[1]
                if perms[1] != "w" or perms[3] != "p" or (len(fields) > 5 and fields[5] in ("[vvar]", "[vsyscall]")):
                    continue
                low, high = (int(bound, 16) for bound in fields[0].split("-"))
                ranges += _exclusive(pagemap, low, high - low)
    except OSError as exc:
        return f"cannot read this process's page map ({exc.strerror or exc})"
    return ranges if _can_populate(ranges) else "this kernel lacks MADV_POPULATE_WRITE (Linux 5.14)"


def _exclusive(pagemap: BinaryIO, address: int, length: int) -> PageRanges:
    """The pages from ``address`` on (``length`` bytes) that are present and mapped by this process only."""
    pagemap.seek(address // _PAGE * 8)
    return _runs(address, pagemap.read(length // _PAGE * 8))


def _runs(low: int, entries: bytes) -> PageRanges:
    """Consecutive present, exclusively mapped pages of one mapping, as address ranges."""
    runs: PageRanges = []
    start: int | None = None
    wanted = _PRESENT | _EXCLUSIVE
    for index, (entry,) in enumerate(struct.iter_unpack("=Q", entries)):
        if entry & wanted == wanted:
            if start is None:
                start = index
        elif start is not None:
            runs.append((low + start * _PAGE, (index - start) * _PAGE))
            start = None
    if start is not None:
        runs.append((low + start * _PAGE, (len(entries) // 8 - start) * _PAGE))
    return runs


def _can_populate(ranges: PageRanges) -> bool:
    if not ranges:
        return True
    address, _ = ranges[0]
    return _madvise()(address, _PAGE, MADV_POPULATE_WRITE) == 0


def rewritten(ranges: PageRanges) -> PageRanges:
    """Of its zygote's ``ranges``, the pages this fork has written (copied on write): now mapped by it only."""
    found: PageRanges = []
    with open("/proc/self/pagemap", "rb", buffering=0) as pagemap:
        for address, length in ranges:
            found += _exclusive(pagemap, address, length)
    return found


def union(first: PageRanges, second: PageRanges) -> PageRanges:
    """The pages of either, as ranges."""
    pages = sorted({address // _PAGE + n for address, length in (*first, *second) for n in range(length // _PAGE)})
    ranges: PageRanges = []
    for page in pages:
        if ranges and ranges[-1][0] + ranges[-1][1] == page * _PAGE:
            ranges[-1] = (ranges[-1][0], ranges[-1][1] + _PAGE)
        else:
            ranges.append((page * _PAGE, _PAGE))
    return ranges


def privatize(ranges: PageRanges) -> int:
    """Copy ``ranges`` into this process (a fork) now; the number of ranges the kernel refused.

    A refused range (unmapped meanwhile) only leaves its copies to happen on first write.
    """
    global copied_bytes
    madvise = _madvise()
    copied_bytes = sum(length for _, length in ranges)
    return sum(madvise(address, length, MADV_POPULATE_WRITE) != 0 for address, length in ranges)
