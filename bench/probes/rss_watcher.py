"""The watcher: a small process that samples a worker's resident memory from outside it.

A sampler thread inside the worker shares its interpreter lock with the load it
measures, and a pinned worker's core as well; this process reads the worker's
``/proc/<pid>/status`` from another core and takes nothing from it. The worker opens a
phase with the line ``begin`` and closes it with ``end`` on this process's stdin; each
``end`` is answered with one JSON line, the peaks of the readings taken in between, one
every ``period_s`` and one at each end. Between phases it sleeps. End of input, which is
also what the worker's death looks like, ends it.

One watcher can serve worker after worker (the zygote keeps one for all its workers,
bench/probes/cpu_memory.py): ``watch PID`` turns it to another process, ending any phase
a worker that died left open, and is answered ``watching PID``, which tells the new
worker that every answer before it (one a dead worker never read) is behind it.

    python -m loadbench.bench.probes.rss_watcher PID PERIOD_S     # PID 0: none until ``watch``
"""

from __future__ import annotations

import json
import os
import select
import signal
import sys
import time
from typing import IO, Any

from loadbench.bench.probes.proc_status import read_ram, status_path

__all__ = ["BEGIN", "END", "READY", "WATCH", "WATCHING", "PhasePeaks", "main", "watch"]

# One line each way: the commands, and the watcher's first line (it can take readings).
READY, BEGIN, END, WATCH, WATCHING = b"ready", b"begin", b"end", b"watch", b"watching"


def _max(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else max(a, b)


class PhasePeaks:
    """The maxima of one phase's readings, each series on its own, and how many there were."""

    def __init__(self) -> None:
        self.rss: int | None = None
        self.anon: int | None = None
        self.file: int | None = None
        self.samples = 0
        self.errors = 0

    def add(self, pid: int) -> None:
        """One reading of ``pid``; an error (the process is ending, a torn read) is counted, never raised."""
        try:
            reading = read_ram(status_path(pid), pid)
        except Exception:  # OSError, psutil's errors, a line the parser did not expect
            self.errors += 1
            return
        self.rss = _max(self.rss, reading.rss)
        self.anon = _max(self.anon, reading.anon)
        self.file = _max(self.file, reading.file)
        self.samples += 1

    def to_dict(self) -> dict[str, Any]:
        return {"rss": self.rss, "anon": self.anon, "file": self.file, "samples": self.samples,
                "errors": self.errors}


def watch(pid: int, period_s: float, commands: int, answers: IO[bytes]) -> None:
    """Serve phases of ``pid`` until ``commands`` (a file descriptor) reaches its end."""
    answers.write(READY + b"\n")
    answers.flush()
    phase: PhasePeaks | None = None
    due = 0.0
    pending = b""
    while True:
        timeout = None if phase is None else max(0.0, due - time.monotonic())
        if not select.select([commands], [], [], timeout)[0]:
            assert phase is not None  # no timeout between phases
            phase.add(pid)
            due = time.monotonic() + period_s  # a late reading is not made up with a burst
            continue
        chunk = os.read(commands, 4096)  # raw reads: a buffered reader would hide a second line from select
        if not chunk:
            return
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            command, _, argument = line.partition(b" ")
            if command == WATCH and argument.isdigit():
                pid, phase = int(argument), None
                answers.write(WATCHING + b" " + argument + b"\n")
                answers.flush()
            elif line == BEGIN:
                phase = PhasePeaks()
                phase.add(pid)
                due = time.monotonic() + period_s
            elif line == END:
                ended = phase or PhasePeaks()
                ended.add(pid)
                answers.write(json.dumps(ended.to_dict()).encode() + b"\n")
                answers.flush()
                phase = None


def main(argv: list[str] | None = None) -> int:
    pid, period_s = (argv or sys.argv[1:])[:2]
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the run; end of input ends this
    try:
        watch(int(pid), float(period_s), sys.stdin.fileno(), sys.stdout.buffer)
    except BrokenPipeError:  # the one it answers is gone (a run that ended as this started): nothing to say
        os._exit(0)  # not via the interpreter's exit, whose flush of stdout would fail the same way
    return 0


if __name__ == "__main__":
    sys.exit(main())
