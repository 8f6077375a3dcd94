"""Runs for a history: one case's load time from a seeded generator, a step where a test plants one."""

from __future__ import annotations

import copy
import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from loadbench.results import RunWriter, Sample

CASE = {"checkpoint": "tiny-llama", "path": "task", "task": "text-generation", "dtype": "auto", "device": "cpu",
        "cache": "warm"}
FINGERPRINT: dict[str, Any] = {
    "hostname": "bench-01", "cpu_model": "AMD EPYC 7763", "cpu_count": 2, "gpus": "NVML unavailable",
    "python": "3.11.7", "packages": {"loadbench": "0.1.0", "torch": "2.13.0+cpu", "transformers": "5.24.0"},
}
MakeRun = Callable[..., Path]


@pytest.fixture
def history_run(tmp_path: Path) -> MakeRun:
    """``make(number, factor=1.0, transformers=None, cpu_model=None, repeats=8, added_mib=None)``: a finished run.

    Its load_s samples scatter 3% (lognormal, seeded by ``number``) around 100 ms × ``factor``;
    with ``added_mib``, the memory its load adds scatters ±4 MiB around that (below zero too).
    Its git commit is ``c{number:02d}``, so the history labels it so.
    """

    def make(number: int, factor: float = 1.0, transformers: str | None = None, cpu_model: str | None = None,
             repeats: int = 8, added_mib: float | None = None) -> Path:
        run_id = f"20260101T0000{number:02d}Z-{number:04x}"
        fingerprint = copy.deepcopy(FINGERPRINT)
        fingerprint["git_commit"] = f"c{number:02d}"
        if transformers:
            fingerprint["packages"]["transformers"] = transformers
        if cpu_model:
            fingerprint["cpu_model"] = cpu_model
        rng = random.Random(number)
        run_dir = tmp_path / "runs" / f"run{number:02d}"
        with mock.patch.object(os, "fsync", lambda fd: None):
            writer = RunWriter.create(run_dir, {"run_id": run_id, "suite": {"name": "t"}, "fingerprint": fingerprint,
                                                "git_commit": fingerprint["git_commit"]})
            writer.append(Sample.ok(CASE, run_id, 0, "load_s", 0.5, warmup=True))
            for repeat in range(1, repeats + 1):
                writer.append(Sample.ok(CASE, run_id, repeat, "load_s", 0.100 * factor * rng.lognormvariate(0, 0.03)))
                writer.append(Sample.ok(CASE, run_id, repeat, "peak_rss_bytes", 300e6 * rng.uniform(0.999, 1.001)))
                if added_mib is not None:
                    added = (added_mib + rng.uniform(-4, 4)) * 2**20
                    writer.append(Sample.ok(CASE, run_id, repeat, "load_added_rss_bytes", added))
            writer.close()
        return run_dir

    return make


@pytest.fixture
def anchored_run(tmp_path: Path) -> MakeRun:
    """``make(number, factor=1.0, repeats=8)``: a run of two environments, ``ref`` (named first) and ``head``.

    The machine's speed differs from run to run (±25%, lognormal, seeded by ``number``) and
    moves both samples of a block alike, as a virtual core running at another speed for a
    minute does; ``head`` is ``factor`` times ``ref`` besides, each sample with 3% of its own.
    """

    def make(number: int, factor: float = 1.0, repeats: int = 8) -> Path:
        run_id = f"20260101T0100{number:02d}Z-{number:04x}"
        fingerprint = {**copy.deepcopy(FINGERPRINT), "git_commit": f"c{number:02d}"}
        rng = random.Random(1000 + number)
        machine = rng.lognormvariate(0, 0.25)
        run_dir = tmp_path / "anchored" / f"run{number:02d}"
        suite = {"name": "t", "environments": [{"name": "ref", "python": "x"}, {"name": "head", "python": "y"}]}
        with mock.patch.object(os, "fsync", lambda fd: None):
            writer = RunWriter.create(run_dir, {"run_id": run_id, "suite": suite, "fingerprint": fingerprint,
                                                "git_commit": fingerprint["git_commit"]})
            for repeat in range(1, repeats + 1):
                for env, times in (("ref", 1.0), ("head", factor)):
                    value = 0.100 * machine * times * rng.lognormvariate(0, 0.03)
                    writer.append(Sample.ok({**CASE, "env": env}, run_id, repeat, "load_s", value, block=repeat))
            writer.close()
        return run_dir

    return make
