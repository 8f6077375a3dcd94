"""Harness self-benchmark: what a sample pays for its fresh process, zygote vs. naive.

loadbench forks each sample's worker from a zygote that already imported torch and
transformers. This measures that per-sample overhead (fork, pipe, reap; no work) next to
a harness without a zygote, which starts a new python and pays the imports per sample.
Both run interleaved (ABAB...) in one run, so machine drift hits both alike.

    python -m loadbench.bench.studies.selfbench [--samples N] [--output FILE.jsonl]

Workers import its target by name, so its
top level stays light: rich is imported only where it is used.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadbench.bench.sample.spawn import Zygote
from loadbench.bench.sample.zygote_channel import ZYGOTE_MODULE
from loadbench.bench.studies.scripts import append_record, benchmark_args, machine_info, spread

__all__ = ["SelfBenchResult", "TARGET_RATIO", "main", "run_selfbench"]

TARGET_RATIO = 0.25  # done when the zygote's overhead is at most a quarter of the naive one
BENCHMARK = "harness_overhead"
# The naive harness pays, per sample, the very imports the zygote pays once.
NAIVE_COMMAND = (sys.executable, "-c", f"import {ZYGOTE_MODULE}")
CALL_TIMEOUT_S = 120.0


def _noop_target(conn: Any, payload: str, log_path: str | None) -> None:
    """A sample with no work: what remains of its wall time is the harness's overhead."""
    conn.send_bytes(b"{}")


@dataclass(frozen=True)
class SelfBenchResult:
    """Per-sample wall times (s) of both variants and the ratio of their medians."""

    zygote_s: tuple[float, ...]
    naive_s: tuple[float, ...]
    zygote_start_s: float  # the first call, excluded: starts the fork server (one-off per run)
    median_zygote_s: float
    median_naive_s: float
    ratio: float  # median_zygote_s / median_naive_s

    @property
    def passed(self) -> bool:
        return self.ratio <= TARGET_RATIO


def _time_zygote(zygote: Zygote) -> float:
    from loadbench.bench.studies.selfbench import _noop_target  # by its name: this module may run as __main__

    start = time.perf_counter()
    reply = zygote.call(_noop_target, "", CALL_TIMEOUT_S)
    elapsed = time.perf_counter() - start
    if reply != b"{}":
        raise RuntimeError(f"no-op worker replied {reply!r}")
    return elapsed


def _time_naive() -> float:
    # The same offline settings the zygote sets before its imports, so both import alike.
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    start = time.perf_counter()
    subprocess.run(NAIVE_COMMAND, check=True, env=env, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=CALL_TIMEOUT_S)
    return time.perf_counter() - start


def run_selfbench(samples: int, output: str | Path | None = None) -> SelfBenchResult:
    """Time ``samples`` zygote and naive samples, interleaved; append records to ``output``."""
    if samples < 1:
        raise ValueError(f"samples must be at least 1, got {samples}")
    path = Path(output) if output is not None else None
    zygote = Zygote()
    zygote.warm_up()
    zygote_start_s = _time_zygote(zygote)  # waits for the fork server, then one fork
    timed: dict[str, list[float]] = {"zygote": [], "naive_process": []}
    for i in range(samples):
        for variant, measure in (("zygote", lambda: _time_zygote(zygote)), ("naive_process", _time_naive)):
            value = measure()
            timed[variant].append(value)
            append_record(path, {"benchmark": BENCHMARK, "variant": variant, "sample": i, "value": value, "unit": "s"})
    median_zygote = statistics.median(timed["zygote"])
    median_naive = statistics.median(timed["naive_process"])
    result = SelfBenchResult(
        zygote_s=tuple(timed["zygote"]), naive_s=tuple(timed["naive_process"]), zygote_start_s=zygote_start_s,
        median_zygote_s=median_zygote, median_naive_s=median_naive, ratio=median_zygote / median_naive,
    )
    append_record(path, {"benchmark": BENCHMARK, "summary": {
        "samples": samples, "zygote_start_s": zygote_start_s, "median_zygote_s": median_zygote,
        "median_naive_s": median_naive, "ratio": result.ratio, "target_ratio": TARGET_RATIO,
        "passed": result.passed, "naive_command": list(NAIVE_COMMAND[1:]), "machine": machine_info(),
    }})
    return result


def _print_report(result: SelfBenchResult) -> None:
    from rich.console import Console
    from rich.table import Table

    info = machine_info()
    console = Console()
    console.print(f"machine: {info['cpu_count']} CPUs, python {info['python']}, torch {info['torch']}, "
                  f"transformers {info['transformers']}")
    console.print(f"naive baseline: {' '.join(NAIVE_COMMAND[1:])!r} in a new python per sample")
    table = Table(title=f"per-sample harness overhead, {len(result.zygote_s)} samples each (ms)")
    for column in ("variant", "median", "IQR", "min", "max"):
        table.add_column(column, justify="left" if column == "variant" else "right")
    for name, values in (("loadbench (zygote fork)", result.zygote_s),
                         ("naive (new python)", result.naive_s)):
        table.add_row(name, *(f"{1000 * v:.1f}" for v in spread(values)))
    console.print(table)
    console.print(f"one-off zygote start (first call, excluded): {1000 * result.zygote_start_s:.0f} ms")
    console.print(f"ratio of medians overhead / naive = {result.ratio:.4f} ({1 / result.ratio:.0f}x faster)")
    verdict = "[green]PASS[/green]" if result.passed else "[red]FAIL[/red]"
    console.print(f"{verdict}: ratio {result.ratio:.4f} {'<=' if result.passed else '>'} target {TARGET_RATIO}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the self-benchmark and print it; exit 0 whatever the verdict (it is a measurement)."""
    args = benchmark_args(argv, "loadbench.bench.studies.selfbench", __doc__ or "", 10, 1, "samples per variant")
    _print_report(run_selfbench(args.samples, args.output))
    return 0


if __name__ == "__main__":
    sys.exit(main())
