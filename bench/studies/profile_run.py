"""Where the seconds of a run go: fixed costs, per-sample harness, and the work the samples measure.

Times one ``loadbench run`` as a user starts it (a new process, the CLI), then the same
run through the API with a progress callback that stamps each sample's start, so that
the wall splits into: before the first sample (interpreter, imports, zygote, planning,
the ceiling), sampling, and after the last (closing, reports). Inside sampling, each
sample's measured work is what its records say it timed (import, load, first forward,
generation or the forward calls); the rest is the harness (fork, probes, cache
preparation, the equivalence re-load, records). A fresh ``python -c "import torch,
transformers"`` is timed in the same script, the unit the targets are stated in::

    python -m loadbench.bench.studies.profile_run                      # the default suite
    python -m loadbench.bench.studies.profile_run --checkpoint tiny-llama --repeats 10 --cache warm
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from loadbench.bench.studies.scripts import append_record, machine_info

IMPORT_COMMAND = (sys.executable, "-c", "import torch, transformers")


def fresh_import_s(times: int = 3) -> float:
    """Median wall of a new interpreter importing torch and transformers."""
    walls = []
    for _ in range(times):
        started = time.perf_counter()
        subprocess.run(IMPORT_COMMAND, check=True)
        walls.append(time.perf_counter() - started)
    return statistics.median(walls)


def measured_work_s(frame: Any, forward_iters: int) -> float:
    """Seconds the samples' records say were measured work: import, load, first forward, and the workload.

    The workload's time is recovered from its rates as the worker computed them: a
    generation is ``batch x new_tokens / e2e_tokens_per_s``; the forward calls are
    ``prompt_tokens x batch x iters / forward_tokens_per_s``.
    """
    ok = frame[frame["status"] == "ok"]
    keys = ["run_id", "checkpoint", "path", "task", "cache", "options", "env", "repeat", "warmup", "batch_size"]
    wide = ok.pivot_table(index=keys, columns="metric", values="value", aggfunc="first").reset_index()

    def column(name: str) -> Any:
        return wide[name].fillna(0.0) if name in wide else 0.0

    batch = wide["batch_size"].astype(float)
    work = column("load_s") + column("first_forward_s")
    if "e2e_tokens_per_s" in wide:
        work = work + (batch * column("new_tokens") / wide["e2e_tokens_per_s"]).fillna(0.0)
    if "forward_tokens_per_s" in wide:
        work = work + (batch * column("prompt_tokens") * forward_iters / wide["forward_tokens_per_s"]).fillna(0.0)
    # An architecture imported once in a case's zygote is on the record of each case that
    # shares it (warm and cold): the same value, counted once.
    imports = ok[ok["metric"] == "import_s"].drop_duplicates(["run_id", "checkpoint", "path", "task", "env", "value"])
    return float(work.sum() + imports["value"].sum())


def cli_wall_s(args: Sequence[str], output: Path) -> float:
    started = time.perf_counter()
    subprocess.run(["loadbench", "run", *args, "--output", str(output)], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def api_profile(args: argparse.Namespace, output: Path) -> dict[str, float]:
    """The API run's wall split at its first and last sample, and its samples' measured work."""
    from loadbench.bench import api

    stamps: list[float] = []
    done: list[float] = []

    def progress(label: str, finished: int, total: int) -> None:
        (done if label == "done" else stamps).append(time.perf_counter())

    settings: dict[str, Any] = {}
    if args.repeats is not None:
        settings["repeats"] = args.repeats
    if args.cache is not None:
        settings["cache"] = [args.cache]
    started = time.perf_counter()
    result = api.run(checkpoints=args.checkpoint, output=output, progress=progress, **settings)
    ended = time.perf_counter()
    sampling = done[0] - stamps[0]
    from loadbench.results import read_run_info

    work = measured_work_s(result.frame(), int(read_run_info(output)["suite"]["forward_iters"]))
    samples = len(stamps)
    return {"wall_s": ended - started, "before_s": stamps[0] - started, "sampling_s": sampling,
            "after_s": ended - done[0], "samples": samples, "measured_work_s": work,
            "harness_per_sample_s": (sampling - work) / samples}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadbench.bench.studies.profile_run",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", action="append", help="instead of the default suite's checkpoints")
    parser.add_argument("--repeats", type=int, help="repeats per case (default: the suite's)")
    parser.add_argument("--cache", choices=("warm", "cold"), help="one cache state (default: the suite's)")
    parser.add_argument("--output", type=Path, help="append the record to this JSON-lines file")
    args = parser.parse_args(argv)
    cli_args = [a for c in args.checkpoint or () for a in ("--checkpoint", c)]
    cli_args += ["--repeats", str(args.repeats)] * (args.repeats is not None)
    cli_args += ["--cache", args.cache] * (args.cache is not None)
    with tempfile.TemporaryDirectory() as scratch:
        imports = fresh_import_s()
        cli = cli_wall_s(cli_args, Path(scratch) / "cli")
        profile = api_profile(args, Path(scratch) / "api")
    harness = profile["harness_per_sample_s"]
    print(f"fresh `import torch, transformers`: {imports:.2f} s (median of 3)")
    print(f"`loadbench run {' '.join(cli_args)}` as a user starts it: {cli:.1f} s wall = "
          f"{cli / imports:.1f}x the import")
    print(f"the same through the API: {profile['wall_s']:.1f} s = {profile['before_s']:.1f} s before the first "
          f"sample + {profile['sampling_s']:.1f} s sampling + {profile['after_s']:.1f} s after the last")
    print(f"sampling: {profile['samples']} samples, {profile['measured_work_s']:.1f} s of measured work; harness "
          f"{harness * 1000:.0f} ms per sample = {harness / imports:.3f}x the import")
    append_record(args.output, {"study": "profile_run", "fresh_import_s": imports, "cli_wall_s": cli, **profile,
                                "args": cli_args, "machine": machine_info()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
