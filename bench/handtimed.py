"""Does loadbench's figure agree with a load timed by hand? Its own accuracy, measured.

For each path, fresh Python processes each import torch and transformers and the
architecture (as a worker does before its clock), set the page cache (warm or cold),
and time the path's own ``load`` with ``time.perf_counter`` around the call: no phases,
no memory probes, no zygote. Generation paths then decode ``new_tokens`` with a streamer
that timestamps each token, as a user timing decode would. loadbench measures the same
cases; the two alternate in rounds so that drift hits both. Printed: per path, both
medians, their ratio and the spread; ``--output`` appends the figures as JSON lines.

    python -m loadbench.bench.handtimed CHECKPOINT [--paths base task ...] [--task TASK] [--cache cold]
        [--samples 10] [--rounds 2] [--output FILE.jsonl]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .scripts import append_record, machine_info, spread

__all__ = ["hand_sample", "main", "measure_both"]

BENCHMARK = "handtimed"
NEW_TOKENS = 16

# The fresh process: everything a user's script does, and nothing a harness adds.
_HAND = """
import json, os, sys, time
args = json.loads(sys.argv[1])
if args["cpus"]:
    os.sched_setaffinity(0, args["cpus"])
import torch
torch.set_num_threads(args["threads"])
from loadbench.bench import pagecache
from loadbench.bench.offline import set_library_defaults
from loadbench.bench.probes import StepClock
from loadbench.loaders import TASKS, LoadRequest, inspect_checkpoint, path_for
set_library_defaults()
info = inspect_checkpoint(args["checkpoint"])
task, path = TASKS[args["task"]], path_for(args["path"])
path.preimport(info, task)
(pagecache.warm if args["cache"] == "warm" else pagecache.evict)(info.path)
started = time.perf_counter()
loaded = path.load(LoadRequest(info.path, task.name, "cpu", args["dtype"]), info, task)
out = {"load_s": time.perf_counter() - started}
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


def measure_both(checkpoint: str, paths: Sequence[str], cache: str, samples: int, rounds: int,
                 output: Path | None = None, task: str | None = None) -> list[dict[str, Any]]:
    """Per path and metric: loadbench's median and the hand-timed one, from alternating rounds."""
    from . import api
    from .suite import DEFAULT_PROMPT, CheckpointEntry, Suite

    loadbench: dict[tuple[str, str], list[float]] = {}
    hand: dict[tuple[str, str], list[float]] = {}
    per_round = -(-samples // rounds)
    with tempfile.TemporaryDirectory(prefix="loadbench-handtimed-") as scratch:
        for index in range(rounds):
            entry = CheckpointEntry(**({"builtin": checkpoint} if not Path(checkpoint).exists() else
                                       {"path": str(Path(checkpoint).resolve())}), tasks=[task] if task else "primary")
            suite = Suite(checkpoints=[entry], paths=list(paths), cache=[cache], device=["cpu"], repeats=per_round,
                          warmups=1, new_tokens=NEW_TOKENS)
            result = api.run(suite, output=Path(scratch) / f"r{index}", reports=False)
            frame = result.frame()
            info = json.loads((result.run_dir / "run.json").read_text(encoding="utf-8"))
            threads, cpus = int(info["threads"]), info.get("cpus")
            measured = frame[~frame["warmup"] & (frame["status"] == "ok")]
            task = str(measured["task"].iloc[0])
            for (path, metric), rows in measured.groupby(["path", "metric"]):
                if metric in ("load_s", "decode_tokens_per_s"):
                    loadbench.setdefault((str(path), str(metric)), []).extend(rows["value"].tolist())
            directory = Path(next(iter(info["checkpoints"])))  # the directory the run resolved and loaded
            for _ in range(per_round):
                for path in paths:
                    for metric, value in hand_sample(directory, path, task, cache, threads, cpus,
                                                     DEFAULT_PROMPT).items():
                        hand.setdefault((path, metric), []).append(value)
    rows_out = []
    for key in sorted(hand):
        ours, theirs = loadbench.get(key, []), hand[key]
        if not ours:
            continue
        ours_median, ours_iqr, _, _ = spread(ours)
        hand_median, hand_iqr, _, _ = spread(theirs)
        row = {"checkpoint": checkpoint, "path": key[0], "metric": key[1], "cache": cache,
               "loadbench_median": ours_median, "loadbench_iqr": ours_iqr, "loadbench_n": len(ours),
               "hand_median": hand_median, "hand_iqr": hand_iqr, "hand_n": len(theirs),
               "ratio": ours_median / hand_median}
        rows_out.append(row)
        append_record(output, {"benchmark": BENCHMARK, **machine_info(), **row})
    return rows_out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadbench.bench.handtimed",
                                     description=(__doc__ or "").splitlines()[0])
    parser.add_argument("checkpoint", help="a checkpoint directory or a built-in name")
    parser.add_argument("--paths", nargs="+", default=["base", "task", "custom", "pipeline"])
    parser.add_argument("--task", help="the task to load for (default: the checkpoint's own)")
    parser.add_argument("--cache", choices=("warm", "cold"), default="warm")
    parser.add_argument("--samples", type=int, default=10, help="per path and side (default 10)")
    parser.add_argument("--rounds", type=int, default=2, help="alternations of loadbench and hand (default 2)")
    parser.add_argument("--output", type=Path, help="append one JSON line per path and metric")
    args = parser.parse_args(argv)
    if args.samples < 2 or args.rounds < 1 or args.rounds > args.samples:
        parser.error("--samples must be at least 2, and --rounds between 1 and --samples")
    rows = measure_both(args.checkpoint, args.paths, args.cache, args.samples, args.rounds, args.output, args.task)
    print(f"{'path':16} {'metric':20} {'loadbench':>12} {'by hand':>12} {'ratio':>7}  (medians; IQR in brackets)")
    for row in rows:
        print(f"{row['path']:16} {row['metric']:20} {row['loadbench_median']:12.4g} {row['hand_median']:12.4g} "
              f"{row['ratio']:7.3f}  [{row['loadbench_iqr']:.3g} / {row['hand_iqr']:.3g}]  "
              f"n={row['loadbench_n']}/{row['hand_n']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
