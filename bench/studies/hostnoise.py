"""How steady is this machine? The same fixed computation, timed again and again.

A load of a small checkpoint is mostly Python on one core, so it can be no steadier
than the core it runs on. This times a fixed pure-Python loop, pinned where loadbench
pins its workers, and reports its spread in wall and CPU time, with the time the
hypervisor took away (steal, from /proc/stat). Its CV is the floor under every CV a run
reports on this machine: when it is near ``cv_threshold``, unstable cases say more about
the host than about the paths.

    python -m loadbench.bench.studies.hostnoise [--samples N] [--output FILE.jsonl]
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from loadbench.bench.executors.local import worker_cpus
from loadbench.bench.probes.clocks import fixed_loop
from loadbench.bench.studies.scripts import append_record, benchmark_args, machine_info, spread

__all__ = ["HostNoise", "main", "measure_host_noise"]

BENCHMARK = "host_noise"
LOOP_ITERATIONS = 1_500_000  # ~0.15 s on the 2-core VM: the size of a tiny checkpoint's load
PAUSE_S = 0.2  # between samples, as between loadbench's samples


@dataclass(frozen=True)
class HostNoise:
    """Wall and CPU seconds of each repetition of the fixed loop, and steal seconds during it."""

    wall_s: tuple[float, ...]
    cpu_s: tuple[float, ...]
    steal_s: float | None  # None where /proc/stat does not say (not Linux)
    cpus: list[int] | None

    @property
    def wall_cv(self) -> float:
        return _cv(self.wall_s)

    @property
    def cpu_cv(self) -> float:
        return _cv(self.cpu_s)


def _cv(values: Sequence[float]) -> float:
    return statistics.stdev(values) / statistics.mean(values) if len(values) > 1 else float("nan")


def _steal_ticks() -> int | None:
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = stat.readline().split()
        return int(fields[8])  # cpu user nice system idle iowait irq softirq steal
    except (OSError, IndexError, ValueError):
        return None



def measure_host_noise(samples: int, iterations: int = LOOP_ITERATIONS,
                       output: str | Path | None = None) -> HostNoise:
    """Time the fixed loop ``samples`` times on the CPUs loadbench's workers use."""
    if samples < 2:
        raise ValueError(f"samples must be at least 2 for a spread, got {samples}")
    _, cpus = worker_cpus(None, pin=True)
    allowed = os.sched_getaffinity(0) if cpus is not None else None
    if cpus is not None:
        os.sched_setaffinity(0, cpus)
    try:
        return _timed_loops(samples, iterations, Path(output) if output is not None else None, cpus)
    finally:
        if allowed is not None:  # the caller's process gets its CPUs back (a test session, a notebook)
            os.sched_setaffinity(0, allowed)


def _timed_loops(samples: int, iterations: int, path: Path | None, cpus: list[int] | None) -> HostNoise:
    wall, cpu = [], []
    steal_start = _steal_ticks()
    for i in range(samples):
        wall_start, cpu_start = time.perf_counter(), time.thread_time()
        fixed_loop(iterations)
        wall.append(time.perf_counter() - wall_start)
        cpu.append(time.thread_time() - cpu_start)
        append_record(path, {"benchmark": BENCHMARK, "sample": i, "wall_s": wall[-1], "cpu_s": cpu[-1]})
        time.sleep(PAUSE_S)
    steal_end = _steal_ticks()
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    steal = None if steal_start is None or steal_end is None else (steal_end - steal_start) / ticks
    result = HostNoise(tuple(wall), tuple(cpu), steal, cpus)
    append_record(path, {"benchmark": BENCHMARK, "summary": {
        "samples": samples, "iterations": iterations, "cpus": cpus, "wall_cv": result.wall_cv,
        "cpu_cv": result.cpu_cv, "steal_s": steal, "machine": machine_info()}})
    return result


def _print_report(result: HostNoise, iterations: int) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"a fixed loop of {iterations:,} iterations, pinned to CPUs {result.cpus or 'any'}, "
                  f"{len(result.wall_s)} times")
    table = Table(title="host noise (ms)")
    for column in ("clock", "median", "IQR", "min", "max", "max/min", "CV"):
        table.add_column(column, justify="left" if column == "clock" else "right")
    for name, values in (("wall", result.wall_s), ("CPU time", result.cpu_s)):
        median, iqr, low, high = spread(values)
        table.add_row(name, f"{1000 * median:.1f}", f"{1000 * iqr:.1f}", f"{1000 * low:.1f}", f"{1000 * high:.1f}",
                      f"{high / low:.2f}", f"{100 * _cv(values):.1f}%")
    console.print(table)
    steal = "not reported by this OS" if result.steal_s is None else f"{result.steal_s:.2f} s (all CPUs)"
    console.print(f"steal during the run: {steal}")
    console.print("CPU time moving with wall time means the core itself ran slower (shared host, frequency), "
                  "not that the process waited; no harness can time a CPU-bound load steadier than this.")


def main(argv: Sequence[str] | None = None) -> int:
    """Measure and print; exit 0 whatever the figures (it is a measurement)."""
    args = benchmark_args(argv, "loadbench.bench.studies.hostnoise", __doc__ or "", 60, 2,
                          "repetitions of the fixed loop")
    _print_report(measure_host_noise(args.samples, LOOP_ITERATIONS, args.output), LOOP_ITERATIONS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
