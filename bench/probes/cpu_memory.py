"""The worker's CPU memory probes: the kernel's own peak, and its split by kind from outside.

Nothing samples inside the worker while a phase runs. A sampler thread there took its
interpreter lock (and its pinned core) every 10 ms; docs/MEASURING.md has what that cost.
Instead:

- the phase's peak resident memory is the kernel's high-water mark (VmHWM), reset just
  before the phase by writing ``5`` to ``/proc/self/clear_refs`` (Linux 4.0 and later)
  and read just after it: exact, even for a spike shorter than any sampling period;
- the kernel keeps no peak per kind, so the anonymous and file-backed peaks come from
  the watcher (``bench/probes/rss_watcher.py``), a process that reads this one's
  ``/proc/<pid>/status`` every 10 ms from another core.

Where the reset is refused (or has no effect) the RSS peak is the watcher's maximum too,
and the result says so (``exact``). Resetting loses the process-lifetime peak, so the
mark read just before each reset is kept, with each phase's peak: ``lifetime_peak_rss_bytes``
is still the peak of the whole process.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadbench.bench.probes.clocks import peak_rss_bytes
from loadbench.bench.probes.proc_status import STATUS_PATH, RamReading, read_ram
from loadbench.bench.probes.rss_watcher import BEGIN, END, READY, WATCH, WATCHING

__all__ = ["CLEAR_REFS_PATH", "CpuMemory", "CpuMemoryProbe", "Phase", "SAMPLE_PERIOD_S", "start_shared_watcher"]

CLEAR_REFS_PATH = Path("/proc/self/clear_refs")
RESET_HWM = "5"  # proc(5), /proc/pid/clear_refs: "reset the peak resident set size"
# Before each reset, a wait: most refusals clear at once (an arena returned), but the kernel
# can take resident pages away by itself (DAMON's pageout of idle pages, reclaim), and a
# reset while it does so never holds.
RESET_WAITS_S = (0.0, 0.0, 0.001, 0.004, 0.016)
RESET_ATTEMPTS = len(RESET_WAITS_S)
SAMPLE_PERIOD_S = 0.010
WATCHER_MODULE = "loadbench.bench.probes.rss_watcher"
WATCHER_TIMEOUT_S = 30.0  # its start (a Python process) and each answer; it answers in microseconds


@dataclass(frozen=True)
class CpuMemory:
    """Resident memory of this process over one phase.

    Each peak is the maximum of its own series (they need not come from the same moment)
    and covers the readings just before and just after the phase. ``peak_rss_bytes`` is
    the kernel's high-water mark over the phase when ``exact``, else the watcher's
    maximum. The peaks by kind are None where the OS does not split resident memory
    (not Linux, or a kernel before 4.5); any peak is None when the watcher failed
    (``error`` says how) and nothing else could stand in for it.
    """

    start_rss_bytes: int
    start_anon_bytes: int | None
    start_file_bytes: int | None
    peak_rss_bytes: int | None
    peak_anon_bytes: int | None
    peak_file_bytes: int | None
    exact: bool
    samples: int  # the watcher's readings during the phase
    period_s: float
    errors: int = 0  # readings the watcher could not take
    error: str | None = None


class Phase:
    """One phase's handle: its ``result`` once the with-block has ended."""

    def __init__(self) -> None:
        self._result: CpuMemory | None = None

    @property
    def result(self) -> CpuMemory:
        if self._result is None:
            raise RuntimeError("Phase.result is available after the with-block ends")
        return self._result


def _max(*values: int | None) -> int | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def _start_watcher(pid: int, period_s: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", WATCHER_MODULE, str(pid), repr(period_s)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True)


# The zygote's watcher, inherited by every worker it forks (start_shared_watcher).
_shared: subprocess.Popen[bytes] | None = None


def start_shared_watcher(period_s: float = SAMPLE_PERIOD_S) -> None:
    """Start one watcher for every later fork of this process (the zygote's workers) to share.

    A watcher of its own cost each worker a Python start it had to wait for (25 ms once
    the architecture's import no longer hid it) and the wait for its exit.
    """
    global _shared
    _shared = _start_watcher(0, period_s)


class _Watcher:
    """This process's end of the watcher: one line out per command, one line back per ``end``.

    Either its own (``spawn``), or the zygote's (``attach``), turned to this process
    first. Raw reads: a buffered reader would hide a second line from select.
    """

    def __init__(self, process: subprocess.Popen[bytes], cpus: Collection[int] | None, *, shared: bool) -> None:
        assert process.stdin is not None and process.stdout is not None
        self._process, self.shared = process, shared
        self._in, self._out = process.stdin.fileno(), process.stdout.fileno()
        self._pending = b""
        if cpus and hasattr(os, "sched_setaffinity"):
            try:
                os.sched_setaffinity(process.pid, cpus)
            except OSError:  # it still measures, only nearer the worker
                pass
        self._greeting = WATCHING + b" %d" % os.getpid() if shared else READY
        if shared:
            self._send(WATCH + b" %d" % os.getpid())
        self._ready = False

    @classmethod
    def spawn(cls, period_s: float, cpus: Collection[int] | None) -> _Watcher:
        return cls(_start_watcher(os.getpid(), period_s), cpus, shared=False)

    @classmethod
    def attach(cls, cpus: Collection[int] | None) -> _Watcher | None:
        """The zygote's watcher, if this process is one of its forks and it still takes commands.

        Not ``poll()``: the watcher is the zygote's child, not this process's.
        """
        if _shared is None:
            return None
        try:
            return cls(_shared, cpus, shared=True)
        except OSError:  # it ended: its input is a broken pipe
            return None

    def _send(self, line: bytes) -> None:
        os.write(self._in, line + b"\n")  # one write: a line of a worker killed mid-way is never torn

    def _receive(self) -> bytes:
        while b"\n" not in self._pending:
            if not select.select([self._out], [], [], WATCHER_TIMEOUT_S)[0]:
                raise TimeoutError(f"the memory watcher did not answer within {WATCHER_TIMEOUT_S:g} s")
            chunk = os.read(self._out, 4096)
            if not chunk:
                raise RuntimeError(f"the memory watcher ended (exit code {self._process.poll()})")
            self._pending += chunk
        line, self._pending = self._pending.split(b"\n", 1)
        return line

    def begin(self) -> None:
        if not self._ready:  # started (or told to watch) with the worker; by now it has had its time
            # A shared watcher's earlier lines (its start, an answer a killed worker never read) come first.
            while (line := self._receive()) != self._greeting:
                if not self.shared:
                    raise RuntimeError(f"the memory watcher started with {line!r}")
            self._ready = True
        self._send(BEGIN)

    def end(self) -> dict[str, Any]:
        self._send(END)
        answer: dict[str, Any] = json.loads(self._receive())
        return answer

    def close(self) -> None:
        """Every answer is in. The zygote's stays for the next worker; one's own is killed, not asked to end
        (its exit took 7 ms of the worker's, 0.9 ms this way)."""
        if self.shared:
            return
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.close()
        self._process.kill()
        self._process.wait()
        self._process.stdout.close()


class CpuMemoryProbe:
    """This process's resident memory over phases: ``with probe.phase() as p: ...``, then ``p.result``.

    Enter it early: the watcher starts then (``watcher_cpus``: where it may run; away
    from the worker's cores), and the first phase waits until it can take readings.
    A watcher that fails leaves the peaks by kind (and, without the reset, the RSS peak)
    unmeasured with the reason; the work in the phase goes on either way.
    """

    def __init__(self, period_s: float = SAMPLE_PERIOD_S, *, watcher_cpus: Collection[int] | None = None,
                 status_path: Path = STATUS_PATH, clear_refs_path: Path = CLEAR_REFS_PATH) -> None:
        self.period_s = period_s
        self._watcher_cpus = watcher_cpus
        self._status = status_path
        self._clear_refs = clear_refs_path
        self._watcher: _Watcher | None = None
        self._watcher_failed: str | None = None
        self._peaks_seen: int | None = None  # the kernel's marks before each reset, and each phase's peak

    def __enter__(self) -> CpuMemoryProbe:
        shared = _Watcher.attach(self._watcher_cpus) if self.period_s == SAMPLE_PERIOD_S else None
        if shared is not None:
            self._watcher = shared
        else:
            self._spawn_watcher()
        return self

    def _spawn_watcher(self) -> None:
        try:
            self._watcher = _Watcher.spawn(self.period_s, self._watcher_cpus)
        except OSError as exc:
            self._watcher_failed = f"the memory watcher did not start ({exc})"

    def __exit__(self, *exc: object) -> None:
        if self._watcher is not None:
            self._watcher.close()

    def _reset(self) -> tuple[RamReading, bool]:
        """The phase's start reading, and whether the kernel's mark now starts from it.

        Right after a reset the mark equals the resident size; a mark above it was not
        reset, or memory was freed between the reset and the reading (another thread, or
        the interpreter returning an arena, the kernel reclaiming pages). The reset is tried
        again for the latter, a few times, waiting a little longer each time: a mark taken
        above the start would pass freed memory off as the phase's.
        """
        start = read_ram(self._status)
        for wait_s in RESET_WAITS_S:
            if wait_s:
                time.sleep(wait_s)
            self._peaks_seen = _max(self._peaks_seen, start.hwm)  # the lifetime peak keeps it
            try:
                with self._clear_refs.open("w") as clear_refs:
                    clear_refs.write(RESET_HWM)
            except OSError:  # not Linux, before 4.0, a container that hides it: the watcher's peak instead
                return read_ram(self._status), False
            start = read_ram(self._status)
            if start.hwm is None:
                return start, False
            if start.hwm <= start.rss:
                return start, True
        return start, False

    def _watcher_failed_with(self, exc: Exception) -> None:
        assert self._watcher is not None
        self._watcher_failed = f"the memory watcher failed ({exc})"
        self._watcher.close()
        self._watcher = None

    def _begin_watch(self) -> None:
        if self._watcher is not None:
            try:
                self._watcher.begin()
            except (OSError, ValueError, RuntimeError) as exc:  # TimeoutError is an OSError
                if not self._watcher.shared:
                    self._watcher_failed_with(exc)
                    return
                # The zygote's failed (ended, or hung): one of this process's own instead, never
                # the zygote's again, which could fail the same way.
                self._watcher = None
                self._spawn_watcher()
                self._begin_watch()

    def _end_watch(self) -> dict[str, Any] | None:
        if self._watcher is not None:
            try:
                return self._watcher.end()
            except (OSError, ValueError, RuntimeError) as exc:
                self._watcher_failed_with(exc)
        return None

    @contextmanager
    def phase(self) -> Iterator[Phase]:
        """Readings just before and just after the block, the kernel's mark and the watcher's in between."""
        start, exact = self._reset()
        self._begin_watch()
        handle = Phase()
        try:
            yield handle
        finally:
            sampled = self._end_watch()
            last = read_ram(self._status)
            handle._result = self._result(start, last, exact, sampled)

    def _result(self, start: RamReading, last: RamReading, exact: bool, sampled: dict[str, Any] | None) -> CpuMemory:
        watched = sampled is not None
        sampled = sampled or {}
        split = start.anon is not None
        peak_rss = (_max(start.rss, last.rss, last.hwm if exact else None, sampled.get("rss"))
                    if exact or watched else None)
        # The kernel updates the counters behind VmRSS and VmHWM in batches: a VmRSS read in
        # the phase can stand a page above the mark, and the lifetime peak must still cover it.
        self._peaks_seen = _max(self._peaks_seen, peak_rss)
        return CpuMemory(
            start_rss_bytes=start.rss, start_anon_bytes=start.anon, start_file_bytes=start.file,
            peak_rss_bytes=peak_rss,
            peak_anon_bytes=_max(start.anon, last.anon, sampled.get("anon")) if watched and split else None,
            peak_file_bytes=_max(start.file, last.file, sampled.get("file")) if watched and split else None,
            exact=exact, samples=int(sampled.get("samples", 0)), period_s=self.period_s,
            errors=int(sampled.get("errors", 0)),
            error=None if watched else self._watcher_failed or "the memory watcher was not running")

    def lifetime_peak_rss_bytes(self) -> int:
        """The whole process's peak: the marks read before each reset, every phase's peak, and the mark now."""
        return _max(self._peaks_seen, peak_rss_bytes()) or 0
