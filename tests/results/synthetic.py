"""A realistic run written through RunWriter in milliseconds: three checkpoints, four paths,
warm and cold cache, load phases, memory, tokens/s, one failed case and one not-applicable
path. Values follow a formula, so tests can compute what a report must show.

Imported by path (tests are not a package), from tests/results/conftest.py and
tests/bench/cli/test_report.py.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any
from unittest import mock

from loadbench.results import RunWriter, Sample

PATHS = ("base", "task", "custom", "pipeline")
CHECKPOINTS = {"tiny-llama": "text-generation", "tiny-bert": "text-classification", "tiny-t5": "text2text-generation"}
CACHES = ("warm", "cold")
REPEATS = 3
PHASES = {"config_s": 0.05, "tokenizer_s": 0.10, "weights_s": 0.75, "to_device_s": 0.04, "load_other_s": 0.06}
NA_REASON = "transformers 5 has no pipeline for text2text-generation"
FAILED = ("tiny-bert", "pipeline", "cold")  # every sample of this case fails
FAIL_ERROR = ("RuntimeError", "worker crashed: out of memory")
UNSTABLE = ("tiny-llama", "custom", "warm")  # load_s spread far above a 10% CV
GPU_REASON = "device is cpu: GPU memory is measured for CUDA devices only"

FINGERPRINT: dict[str, Any] = {
    "hostname": "bench-01",
    "os": "Linux-6.1-x86_64",
    "cpu_model": "AMD EPYC 7763",
    "cpu_count": 2,
    "cpu_affinity": 2,
    "ram_bytes": 16 * 1024**3,
    "gpus": "NVML unavailable: NVML Shared Library Not Found",
    "python": "3.11.7",
    "packages": {"loadbench": "0.1.0", "torch": "2.13.0+cpu", "transformers": "5.24.0", "tokenizers": "0.23.3",
                 "safetensors": "0.8.0"},
    "git_commit": "0123456789abcdef",
    "env": {},
}


def load_seconds(checkpoint: str, path: str, cache: str, slowdown: float = 1.0, repeats: int = REPEATS) -> list[float]:
    """The measured load_s samples of one case (warmup excluded): ``repeats`` of them, median ``base``."""
    base = {"tiny-llama": 0.200, "tiny-bert": 0.150, "tiny-t5": 0.250}[checkpoint]
    base *= {"base": 1.0, "task": 1.1, "custom": 1.2, "pipeline": 1.5}[path]
    base *= 1.5 if cache == "cold" else 1.0
    base *= slowdown if path == "task" else 1.0
    if (checkpoint, path, cache) == UNSTABLE:
        return [base * (0.6, 1.0, 1.6)[i % 3] for i in range(repeats)]
    return [base * (0.99 + 0.02 * i / (repeats - 1)) for i in range(repeats)]


def peak_rss(path: str) -> float:
    return {"base": 300, "task": 310, "custom": 305, "pipeline": 330}[path] * 1024**2


def tokens_per_s(checkpoint: str, path: str) -> tuple[str, float] | None:
    """(metric, median) of the case's throughput metric."""
    generating = CHECKPOINTS[checkpoint] != "text-classification" and path in ("task", "pipeline")
    if generating:
        return "decode_tokens_per_s", {"task": 400.0, "pipeline": 380.0}[path]
    return "forward_tokens_per_s", {"base": 6000.0, "task": 5800.0, "custom": 5500.0, "pipeline": 4000.0}[path]


def samples(run_id: str, slowdown: float = 1.0, repeats: int = REPEATS) -> list[Sample]:
    out: list[Sample] = []
    for checkpoint, task in CHECKPOINTS.items():
        for path in PATHS:
            for cache in CACHES:
                case = {"checkpoint": checkpoint, "path": path, "task": task, "dtype": "auto", "device": "cpu",
                        "cache": cache}
                if checkpoint == "tiny-t5" and path == "pipeline":
                    out.append(Sample.not_applicable(case, run_id, 0, "load_s", NA_REASON))
                    continue
                if (checkpoint, path, cache) == FAILED:
                    out += [Sample.failed(case, run_id, r, "load_s", *FAIL_ERROR) for r in range(repeats + 1)]
                    continue
                loads = load_seconds(checkpoint, path, cache, slowdown, repeats)
                for repeat, load in enumerate([loads[1] * 3] + loads):  # the first is a (wild) warmup
                    extra = {"warmup": repeat == 0, "attn_implementation": "sdpa", "resident_dtype": "float32"}
                    out.append(Sample.ok(case, run_id, repeat, "load_s", load, **extra))
                    out += [Sample.ok(case, run_id, repeat, m, load * share, **extra) for m, share in PHASES.items()]
                    out.append(Sample.ok(case, run_id, repeat, "first_forward_s", 0.01 + 0.001 * repeat, **extra))
                    out.append(Sample.ok(case, run_id, repeat, "peak_rss_bytes", peak_rss(path) + repeat, **extra))
                    out.append(Sample.not_applicable(case, run_id, repeat, "gpu_peak_used_bytes", GPU_REASON,
                                                     **extra))
                    metric, median = tokens_per_s(checkpoint, path)  # type: ignore[misc]
                    out.append(Sample.ok(case, run_id, repeat, metric, median * (1 + 0.01 * (repeat - 2)), **extra))
    return out


def run_info(run_id: str, torch: str | None = None, cpu_model: str | None = None,
             repeats: int = REPEATS) -> dict[str, Any]:
    fingerprint = copy.deepcopy(FINGERPRINT)
    if torch is not None:
        fingerprint["packages"]["torch"] = torch
    if cpu_model is not None:
        fingerprint["cpu_model"] = cpu_model
    suite = {"name": "default", "repeats": repeats, "warmups": 1, "new_tokens": 16, "cv_threshold": 0.1}
    return {"run_id": run_id, "suite": suite, "fingerprint": fingerprint, "seed": 1, "threads": 2}


def write_run(run_dir: Path, run_id: str = "20260101T000000Z-aaaa", slowdown: float = 1.0,
              torch: str | None = None, cpu_model: str | None = None, status: str = "complete",
              repeats: int = REPEATS) -> Path:
    """Write the synthetic run into run_dir and return it.

    Through the real RunWriter, minus its per-sample fsync: durability is not under test
    here, and on a busy disk ~800 syncs take seconds.
    """
    with mock.patch.object(os, "fsync", lambda fd: None):
        writer = RunWriter.create(run_dir, run_info(run_id, torch, cpu_model, repeats))
        for sample in samples(run_id, slowdown, repeats):
            writer.append(sample)
        writer.close(status)  # type: ignore[arg-type]
    return run_dir


# A second kind of machine, for runs spread over nodes of unlike hardware.
OTHER_NODE: dict[str, Any] = {**copy.deepcopy(FINGERPRINT), "hostname": "bench-02", "cpu_model": "Intel Xeon Gold 6338",
                              "cpu_count": 64, "cpu_affinity": 64}
NODES: dict[str, dict[str, Any]] = {"bench-01-1a2b3c4d": copy.deepcopy(FINGERPRINT), "bench-02-5e6f7a8b": OTHER_NODE}


def write_spread_run(run_dir: Path, run_id: str = "20260103T000000Z-cccc",
                     nodes: dict[str, dict[str, Any]] | None = None) -> Path:
    """The synthetic run with its samples taken on the nodes of ``nodes`` (default NODES) in turn, by repeat.

    With the default nodes, even repeats (the warmup among them) ran on bench-01 and odd
    ones on bench-02, so every case has numbers from both machines.
    """
    nodes = NODES if nodes is None else nodes
    ids = list(nodes)
    with mock.patch.object(os, "fsync", lambda fd: None):
        writer = RunWriter.create(run_dir, {**run_info(run_id), "nodes": copy.deepcopy(nodes)})
        for sample in samples(run_id):
            writer.append(Sample(**{**sample.to_dict(), "node": ids[sample.repeat % len(ids)]}))
        writer.close()
    return run_dir
