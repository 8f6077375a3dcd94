"""Load the workers' core the same way on any machine: seeded bursts of busy work at a set duty cycle.

The figures of a comparison on a busy runner depend on how busy it was. To reproduce
them elsewhere, this keeps the core(s) loadbench pins its workers to busy for a set
fraction of the time (``--duty``), in bursts of pure-Python work whose busy and idle
lengths are drawn from exponential distributions with a seeded RNG: not periodic, so
they cannot lock into step with the samples, and the same for the same seed. It runs
until stopped (SIGTERM, SIGINT: exit 0) or for ``--minutes``, and prints at exit the
share of the time it was in a burst and the share of CPU time it got.

    python -m loadbench.bench.studies.contention --duty 0.3 --seed 1 [--burst-ms 50] [--cpus LIST] [--minutes M]

From Python, ``with contention(0.3, seed=1): ...`` runs it around a measurement.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Any, NoReturn

from loadbench.bench.executors.local import worker_cpus
from loadbench.bench.probes.clocks import fixed_loop

__all__ = ["Contention", "Tally", "burn", "contention", "main", "parse_cpus", "schedule"]

MODULE = "loadbench.bench.studies.contention"
CHUNK = 2_000  # iterations of the fixed loop between clock reads: ~0.2 ms on the 2-core VM
STOP_TIMEOUT_S = 30.0
_FRACTION = re.compile(r"busy fraction ([0-9.]+)")


class _Stopped(Exception):
    """Raised by the signal handler: ends a burst or an idle wait at once."""


@dataclass(frozen=True)
class Tally:
    """What one core's generator did: seconds in bursts, its CPU seconds, and the seconds it ran."""

    busy_s: float
    cpu_s: float
    elapsed_s: float


def schedule(duty: float, seed: int, burst_ms: float = 50.0, stream: int = 0) -> Iterator[tuple[float, float]]:
    """Endless (busy seconds, idle seconds) pairs: exponential, mean busy ``burst_ms``, mean idle set by ``duty``.

    A pure function of its arguments (the RNG is seeded from them, ``stream`` separating
    the cores of one generator), so a seed names one schedule on every machine.
    """
    rng = random.Random(f"contention:{seed}:{stream}")
    mean_busy = burst_ms / 1000
    mean_idle = mean_busy * (1 - duty) / duty
    while True:
        busy = rng.expovariate(1 / mean_busy)
        idle = rng.expovariate(1 / mean_idle) if mean_idle > 0 else 0.0
        yield busy, idle


_stop_early: list[int] = []  # signals that came before a burn could end on them


def _note_stop(signum: int, frame: FrameType | None) -> None:
    _stop_early.append(signum)


def _raise_stopped(signum: int, frame: FrameType | None) -> NoReturn:
    raise _Stopped


def burn(bursts: Iterator[tuple[float, float]], deadline: float | None) -> Tally:
    """Follow ``bursts`` on this process's CPU until SIGTERM/SIGINT or ``deadline`` (perf_counter)."""
    started, cpu_started = time.perf_counter(), time.process_time()
    busy_s, burst_start = 0.0, None
    try:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, _raise_stopped)  # inside the try: a signal may come the moment it is set
        if _stop_early:
            raise _Stopped
        for busy, idle in bursts:
            burst_start = time.perf_counter()
            end = burst_start + busy if deadline is None else min(burst_start + busy, deadline)
            while time.perf_counter() < end:
                fixed_loop(CHUNK)
            busy_s += time.perf_counter() - burst_start
            burst_start = None
            now = time.perf_counter()
            if deadline is not None and now + idle >= deadline:
                time.sleep(max(0.0, deadline - now))
                break
            time.sleep(idle)
    except _Stopped:
        if burst_start is not None:
            busy_s += time.perf_counter() - burst_start
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_IGN)  # a second signal must not cut the report short
    return Tally(busy_s, time.process_time() - cpu_started, time.perf_counter() - started)


def _core(cpu: int | None, duty: float, seed: int, burst_ms: float, stream: int, deadline: float | None,
          sender: Any = None) -> Tally:
    if cpu is not None:
        os.sched_setaffinity(0, [cpu])
    tally = burn(schedule(duty, seed, burst_ms, stream), deadline)
    if sender is not None:
        sender.send(tally)
    return tally


def run(duty: float, seed: int, burst_ms: float, cpus: list[int] | None, minutes: float | None) -> Tally:
    """One generator per CPU (this process takes the first, forked children the rest); their mean tally."""
    deadline = None if minutes is None else time.perf_counter() + 60 * minutes
    targets: list[int | None] = list(cpus) if cpus else [None]
    context = multiprocessing.get_context("fork")
    children = []
    for stream, cpu in enumerate(targets[1:], start=1):
        receiver, sender = context.Pipe(duplex=False)
        child = context.Process(target=_core, args=(cpu, duty, seed, burst_ms, stream, deadline, sender))
        child.start()
        children.append((child, receiver))
    tallies = [_core(targets[0], duty, seed, burst_ms, 0, deadline)]
    for child, receiver in children:
        if child.is_alive() and child.pid is not None:
            os.kill(child.pid, signal.SIGTERM)
        if receiver.poll(STOP_TIMEOUT_S):
            tallies.append(receiver.recv())
        child.join(STOP_TIMEOUT_S)
    count = len(tallies)
    return Tally(sum(t.busy_s for t in tallies) / count, sum(t.cpu_s for t in tallies) / count,
                 max(t.elapsed_s for t in tallies))


def parse_cpus(text: str, allowed: Sequence[int]) -> list[int]:
    """``"1"`` or ``"0,2"`` into CPU numbers, each one this process may run on; ValueError naming the bad one."""
    cpus = []
    for part in text.split(","):
        try:
            cpu = int(part.strip())
        except ValueError:
            raise ValueError(f"--cpus {text!r}: {part.strip()!r} is not a CPU number") from None
        if cpu not in allowed:
            raise ValueError(f"--cpus {text!r}: CPU {cpu} is not one this process may use "
                             f"({', '.join(map(str, allowed))})")
        cpus.append(cpu)
    return list(dict.fromkeys(cpus))


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message}\n")  # one line, not the usage block


def _args(argv: Sequence[str] | None) -> tuple[argparse.Namespace, list[int] | None]:
    parser = _Parser(prog=f"python -m {MODULE}", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--duty", type=float, required=True, help="fraction of the time busy, in (0, 1]")
    parser.add_argument("--seed", type=int, required=True, help="seed of the burst and idle lengths")
    parser.add_argument("--burst-ms", type=float, default=50.0, help="mean burst length in ms (default 50)")
    parser.add_argument("--cpus", help="comma-separated CPUs (default: those loadbench pins its workers to)")
    parser.add_argument("--minutes", type=float, help="stop after this long (default: until SIGTERM/SIGINT)")
    args = parser.parse_args(argv)
    if not 0 < args.duty <= 1:
        parser.error(f"--duty {args.duty:g}: give a fraction of the time in (0, 1]")
    if not (args.burst_ms > 0 and math.isfinite(args.burst_ms)):
        parser.error(f"--burst-ms {args.burst_ms:g}: give a positive mean burst length")
    if args.minutes is not None and not (args.minutes > 0 and math.isfinite(args.minutes)):
        parser.error(f"--minutes {args.minutes:g}: give a positive duration")
    allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if args.cpus is None:
        return args, worker_cpus(None, pin=True)[1]
    if not allowed:
        parser.error(f"--cpus {args.cpus!r}: this system cannot pin a process to CPUs")
    try:
        return args, parse_cpus(args.cpus, allowed)
    except ValueError as exc:
        parser.error(str(exc))


def main(argv: Sequence[str] | None = None) -> int:
    """Run until stopped or ``--minutes``; exit 0, 2 on bad input."""
    args, cpus = _args(argv)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _note_stop)  # before the start line: whoever reads it may stop us at once
    until = "until stopped" if args.minutes is None else f"for {args.minutes:g} min"
    print(f"contention: busy work on CPUs {cpus or 'any'} for {args.duty:.0%} of the time, bursts of "
          f"~{args.burst_ms:g} ms (exponential, seed {args.seed}), {until}; pid {os.getpid()}", flush=True)
    tally = run(args.duty, args.seed, args.burst_ms, cpus, args.minutes)
    elapsed = max(tally.elapsed_s, 1e-9)
    print(f"contention: stopped after {tally.elapsed_s:.1f} s; busy fraction {tally.busy_s / elapsed:.3f} "
          f"(CPU time {tally.cpu_s / elapsed:.3f} of the wall time)", flush=True)
    return 0


class Contention:
    """A running generator: its start line, and once stopped, the busy fraction it reported."""

    def __init__(self, process: subprocess.Popen[str], started: str) -> None:
        self.process, self.started = process, started
        self.report = ""

    @property
    def busy_fraction(self) -> float | None:
        """The share of the time it was in a burst; None until it has stopped and said so."""
        found = _FRACTION.search(self.report)
        return float(found.group(1)) if found else None

    def stop(self) -> None:
        """SIGTERM, then its report; SIGKILL if it does not end in time."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            out, _ = self.process.communicate(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, _ = self.process.communicate()
        self.report = out or ""


@contextmanager
def contention(duty: float, seed: int, cpus: Sequence[int] | None = None, *, burst_ms: float = 50.0,
               minutes: float | None = None) -> Iterator[Contention]:
    """Run the generator in a subprocess for the ``with`` block; it is busy when the block starts.

    Raises RuntimeError with its message when it refuses its arguments.
    """
    command = [sys.executable, "-m", MODULE, "--duty", repr(duty), "--seed", str(seed), "--burst-ms", repr(burst_ms)]
    if cpus is not None:
        command += ["--cpus", ",".join(map(str, cpus))]
    if minutes is not None:
        command += ["--minutes", repr(minutes)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    started = process.stdout.readline()
    if not started:
        _, err = process.communicate()
        raise RuntimeError(f"the contention generator did not start: {err.strip()}")
    generator = Contention(process, started.strip())
    try:
        yield generator
    finally:
        generator.stop()


if __name__ == "__main__":
    sys.exit(main())
