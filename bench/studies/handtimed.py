"""Does loadbench's figure agree with a load timed by hand? Its own accuracy, measured.

The hand side: a fresh Python process imports torch and transformers and the
architecture (as a worker does before its clock), sets the page cache (warm or cold),
and times the path's own ``load`` with ``time.perf_counter`` around the call: no phases,
no memory probes, no zygote. Generation paths then decode with a streamer that
timestamps each token, as a user timing decode would.

The loadbench side is a real run (``api.run``: zygote, worker, probes, records) whose
executor takes a hand-timed sample of the same case right beside each measured sample,
alternating which goes first. This host's speed drifts by up to 2x within a second
(docs/MEASURING.md), so two medians taken minutes apart can differ by more than any
bias; pairs taken seconds apart share the drift, and the paired log-ratios give an
estimate and a 95% confidence interval (the signed-rank interval ``compare`` uses).
A path *agrees* when that interval lies inside ±tolerance, *differs* when it lies
outside, and is *unresolved* otherwise: more pairs would decide it.

    python -m loadbench.bench.studies.handtimed CHECKPOINT [--paths base task ...] [--task TASK] [--cache cold]
        [--samples 30] [--tolerance 0.05] [--output FILE.jsonl]
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadbench.bench.executors.base import Finished, Job
from loadbench.bench.executors.local import LocalExecutor, worker_cpus
from loadbench.bench.sample.protocol import SampleRequest
from loadbench.bench.studies.scripts import append_record, machine_info, spread
from loadbench.errors import UserError
from loadbench.vocabulary import CACHE_STATES, PATH_NAMES, WARM

__all__ = ["Agreement", "Pair", "PairedExecutor", "agreement", "hand_sample", "main", "measure_both"]

BENCHMARK = "handtimed"
NEW_TOKENS = 16
METRICS = ("load_s", "decode_tokens_per_s")
PAIRED = (*METRICS, "host_probe_s")  # what each side of a pair reports

# The fresh process: everything a user's script does, and nothing a harness adds. The
# host probe (the worker's own, outside both clocks) shows both sides ran at one speed.
_HAND = """
import json, os, sys, time
args = json.loads(sys.argv[1])
if args["cpus"]:
    os.sched_setaffinity(0, args["cpus"])
import torch
torch.set_num_threads(args["threads"])
from loadbench.bench.probes import page_cache as pagecache
from loadbench.bench.sample.offline import set_library_defaults
from loadbench.bench.probes.clocks import StepClock, host_probe_s
from loadbench.loaders import TASKS, LoadRequest, inspect_checkpoint, path_for
set_library_defaults()
info = inspect_checkpoint(args["checkpoint"])
task, path = TASKS[args["task"]], path_for(args["path"])
path.preimport(info, task)
(pagecache.warm if args["cache"] == "warm" else pagecache.evict)(info.path)
probe = host_probe_s()
started = time.perf_counter()
loaded = path.load(LoadRequest(info.path, task.name, "cpu", args["dtype"]), info, task)
out = {"load_s": time.perf_counter() - started, "host_probe_s": probe}
if loaded.generate is not None:
    clock = StepClock()
    clock.start()
    loaded.generate([args["prompt"]], args["new_tokens"], clock)
    out["decode_tokens_per_s"] = clock.decode_tokens_per_s(1)
print(json.dumps(out))
"""


def hand_sample(checkpoint: Path, path: str, task: str, cache: str, threads: int, cpus: list[int] | None,
                prompt: str, dtype: str = "auto", new_tokens: int = NEW_TOKENS) -> dict[str, float]:
    """One hand-timed load (and decode) in a fresh process."""
    args = {"checkpoint": str(checkpoint), "path": path, "task": task, "cache": cache, "threads": threads,
            "cpus": cpus, "prompt": prompt, "dtype": dtype, "new_tokens": new_tokens}
    done = subprocess.run([sys.executable, "-c", _HAND, json.dumps(args)], capture_output=True, text=True,
                          check=False, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"hand-timed {path} failed: {done.stderr.strip().splitlines()[-1:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


@dataclass(frozen=True)
class Pair:
    """One measured loadbench sample and the hand-timed sample taken beside it."""

    path: str
    loadbench: dict[str, float]
    hand: dict[str, float]
    hand_first: bool


class PairedExecutor(LocalExecutor):
    """loadbench's local executor, taking a hand-timed sample beside each measured one.

    Warmup samples (the first ``warmup_jobs``) get no partner. Which side goes first
    alternates for each path, so neither always runs just after the other's process exit.
    """

    def __init__(self, threads: int, cpus: list[int] | None, warmup_jobs: int,
                 hand: Callable[[SampleRequest, int, list[int] | None], dict[str, float]],
                 kept: Callable[[Pair], None] = lambda pair: None) -> None:
        """``kept(pair)`` hears each pair as it is taken (to put it on disk at once)."""
        super().__init__(threads, cpus)
        self.warmup_jobs, self.hand, self.kept = warmup_jobs, hand, kept
        self.pairs: list[Pair] = []

    def run(self, jobs: Sequence[Job], started: Callable[[Job], None]) -> Iterator[Finished]:
        for job in jobs:
            measured = job.index >= self.warmup_jobs
            # Alternated per path: counted over all paths, a run's random case order could
            # give one path mostly one order.
            hand_first = measured and sum(p.path == job.request.path for p in self.pairs) % 2 == 1
            hand = self.hand(job.request, self.threads, self.cpus) if hand_first else {}
            finished = next(iter(super().run([job], started)))
            if measured and not hand_first:
                hand = self.hand(job.request, self.threads, self.cpus)
            if measured and finished.reply is not None:
                ours = {m["metric"]: float(m["value"]) for m in finished.reply.metrics}
                self.pairs.append(Pair(job.request.path, ours, hand, hand_first))
                self.kept(self.pairs[-1])
            yield finished


def _hand_for(request: SampleRequest, threads: int, cpus: list[int] | None) -> dict[str, float]:
    return hand_sample(Path(request.checkpoint_dir), request.path, request.task, request.cache, threads, cpus,
                       request.prompt, request.dtype, request.new_tokens)


@dataclass(frozen=True)
class Agreement:
    """loadbench against the hand-timed process for one path and metric."""

    ratio: float  # Hodges-Lehmann estimate of loadbench / hand, from the paired log-ratios
    low: float
    high: float
    verdict: str  # "agrees", "differs" or "unresolved"


def agreement(ours: Sequence[float], theirs: Sequence[float], tolerance: float) -> Agreement:
    """The paired ratio, its 95% interval, and what it says against ±tolerance."""
    import numpy as np

    from loadbench.results.comparison.stats import walsh_interval

    estimate, low, high = (math.exp(x) for x in walsh_interval(np.log(ours) - np.log(theirs)))
    inside = 1 - tolerance <= low and high <= 1 + tolerance
    outside = high < 1 - tolerance or low > 1 + tolerance
    return Agreement(estimate, low, high, "agrees" if inside else "differs" if outside else "unresolved")


def _both_sides(pairs: Sequence[Pair], metric: str) -> tuple[list[float], list[float]]:
    """``metric`` from the pairs where both sides report it: loadbench's values, then the hand-timed ones."""
    both = [(p.loadbench[metric], p.hand[metric]) for p in pairs if metric in p.loadbench and metric in p.hand]
    return [ours for ours, _ in both], [hand for _, hand in both]


def measure_both(checkpoint: str, paths: Sequence[str], cache: str, samples: int, tolerance: float = 0.05,
                 output: Path | None = None, task: str | None = None, progress: bool = False) -> list[dict[str, Any]]:
    """Per path and metric: both medians and the paired ratio, from ``samples`` pairs per path."""
    from loadbench.bench import api
    from loadbench.bench.suite import suite_from_dict

    local = Path(checkpoint).exists()
    entry = {"path": str(Path(checkpoint).resolve())} if local else {"builtin": checkpoint}
    suite = suite_from_dict({"checkpoints": [{**entry, "tasks": [task] if task else "primary"}], "paths": list(paths),
                             "cache": [cache], "device": ["cpu"], "repeats": samples, "warmups": 1,
                             "new_tokens": NEW_TOKENS}, "handtimed")
    threads, cpus = worker_cpus(suite.threads, suite.pin_cpus)

    def kept(pair: Pair) -> None:
        append_record(output, {"benchmark": f"{BENCHMARK}-pair", "checkpoint": checkpoint, "cache": cache,
                               "path": pair.path, "hand_first": pair.hand_first,
                               **{f"loadbench_{k}": pair.loadbench[k] for k in PAIRED if k in pair.loadbench},
                               **{f"hand_{k}": v for k, v in pair.hand.items()}})

    executor = PairedExecutor(threads, cpus, warmup_jobs=len(paths) * suite.warmups, hand=_hand_for, kept=kept)
    with tempfile.TemporaryDirectory(prefix="loadbench-handtimed-") as scratch:
        api.run(suite, output=Path(scratch) / "run", executor=executor, reports=False, progress=progress)
    rows = []
    machine = machine_info()
    for path in paths:
        pairs = [p for p in executor.pairs if p.path == path]
        probes_ours, probes_hand = _both_sides(pairs, "host_probe_s")
        probe_ratio = spread(probes_ours)[0] / spread(probes_hand)[0] if probes_ours else None
        for metric in METRICS:
            ours, theirs = _both_sides(pairs, metric)
            if len(ours) < 2:
                continue
            found = agreement(ours, theirs, tolerance)
            ours_median, ours_iqr, _, _ = spread(ours)
            hand_median, hand_iqr, _, _ = spread(theirs)
            row = {"checkpoint": checkpoint, "path": path, "metric": metric, "cache": cache, "pairs": len(ours),
                   "loadbench_median": ours_median, "loadbench_iqr": ours_iqr,
                   "hand_median": hand_median, "hand_iqr": hand_iqr, "ratio": found.ratio,
                   "ratio_low": found.low, "ratio_high": found.high, "tolerance": tolerance,
                   "verdict": found.verdict, "host_probe_ratio": probe_ratio}
            rows.append(row)
            append_record(output, {"benchmark": BENCHMARK, **machine, **row})
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadbench.bench.studies.handtimed",
                                     description=(__doc__ or "").splitlines()[0])
    parser.add_argument("checkpoint", help="a checkpoint directory or a built-in name")
    parser.add_argument("--paths", nargs="+", default=list(PATH_NAMES))
    parser.add_argument("--task", help="the task to load for (default: the checkpoint's own)")
    parser.add_argument("--cache", choices=CACHE_STATES, default=WARM)
    parser.add_argument("--samples", type=int, default=30, help="pairs per path (default 30)")
    parser.add_argument("--tolerance", type=float, default=0.05,
                        help="the agreement asked for, as a fraction (default 0.05: within ±5%%)")
    parser.add_argument("--output", type=Path, help="append one JSON line per pair as it is taken, then one per "
                        "path and metric")
    args = parser.parse_args(argv)
    if args.samples < 6:
        parser.error("--samples must be at least 6: fewer pairs cannot give a 95% interval")
    if not 0 < args.tolerance < 1:
        parser.error("--tolerance must be a fraction between 0 and 1, such as 0.05")
    if ("/" in args.checkpoint or args.checkpoint.startswith(".")) and not Path(args.checkpoint).is_dir():
        parser.error(f"{args.checkpoint}: no such checkpoint directory")
    from loadbench.loaders import TASKS

    if args.task is not None and args.task not in TASKS:
        parser.error(f"--task {args.task!r}: unknown task; known: {', '.join(TASKS)}")
    try:
        rows = measure_both(args.checkpoint, args.paths, args.cache, args.samples, args.tolerance, args.output,
                            args.task, progress=sys.stderr.isatty())
    except UserError as exc:  # a checkpoint, path or task it cannot use: one line, before any sample
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    print(f"{'path':16} {'metric':20} {'loadbench':>10} {'by hand':>10} {'ratio':>6} {'95% interval':>15}  verdict "
          f"(medians; ratio from the paired samples)")
    for row in rows:
        print(f"{row['path']:16} {row['metric']:20} {row['loadbench_median']:10.4g} {row['hand_median']:10.4g} "
              f"{row['ratio']:6.3f} {row['ratio_low']:7.3f}-{row['ratio_high']:<7.3f}  {row['verdict']} "
              f"(n={row['pairs']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
