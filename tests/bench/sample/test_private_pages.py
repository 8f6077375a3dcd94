"""A fork copies in the pages its zygote wrote, so its own first writes to them cost no copy."""

from __future__ import annotations

import mmap
import os
import resource
import sys

import pytest

from loadbench.bench.sample.private_pages import privatize, written_ranges

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="page maps are Linux's")

PAGES = 256


def _faults_writing(buffer: mmap.mmap) -> int:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for offset in range(0, len(buffer), mmap.PAGESIZE):
        buffer[offset] = 2
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def _child_faults(buffer: mmap.mmap, written: list[tuple[int, int]] | None) -> int:
    """Page faults a fork takes writing every page of ``buffer``, having copied ``written`` in first (or not)."""
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(reader)
            if written is not None:
                privatize(written)
            os.write(writer, str(_faults_writing(buffer)).encode())
        finally:
            os._exit(0)
    os.close(writer)
    with os.fdopen(reader) as answer:
        faults = int(answer.read())
    os.waitpid(pid, 0)
    return faults


def _in_a_fresh_fork(check) -> None:
    """Run ``check`` in a fork of this process: its pages then start shared, as a case zygote's do."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            check()
            code = 0
        finally:
            os._exit(code)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0


def test_the_pages_a_process_wrote_are_listed_and_a_fork_copies_them_ahead() -> None:
    if isinstance(reason := written_ranges(), str):
        pytest.skip(reason)

    def check() -> None:
        buffer = mmap.mmap(-1, PAGES * mmap.PAGESIZE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        _faults_writing(buffer)  # written here: mapped by this process only
        written = written_ranges()
        assert not isinstance(written, str)
        assert sum(length for _, length in written) >= PAGES * mmap.PAGESIZE
        assert _child_faults(buffer, None) >= PAGES  # each first write in a fork copies a page
        assert _child_faults(buffer, written) < PAGES // 8  # copied before: almost none left

    _in_a_fresh_fork(check)
