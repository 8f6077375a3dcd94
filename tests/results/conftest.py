"""Shared fixtures: a case, and runs written through the real RunWriter."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from loadbench.results import RunWriter, Sample

GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture
def case() -> dict[str, str]:
    return {
        "checkpoint": "org/model",
        "path": "base",
        "task": "feature-extraction",
        "dtype": "float32",
        "device": "cpu",
        "cache": "warm",
    }


@pytest.fixture
def make_run(tmp_path: Path) -> Callable[[Iterable[Sample]], Path]:
    """Write samples into a fresh run directory and return it."""
    counter = iter(range(1_000_000))

    def make(samples: Iterable[Sample]) -> Path:
        run_dir = tmp_path / f"run{next(counter)}"
        with RunWriter.create(run_dir, {"suite": "test"}) as writer:
            for sample in samples:
                writer.append(sample)
        return run_dir

    return make


def _golden(tmp_path: Path, name: str, run_json: str, samples: str) -> Path:
    run_dir = tmp_path / name
    run_dir.mkdir()
    shutil.copy(GOLDEN / run_json, run_dir / "run.json")
    shutil.copy(GOLDEN / samples, run_dir / "samples.jsonl")
    return run_dir


@pytest.fixture
def golden_run(tmp_path: Path) -> Path:
    """The hand-written v1 golden files laid out as a run directory.

    They are kept as v1 wrote them: reading them proves that migration works.
    """
    return _golden(tmp_path, "golden_run", "run.json", "samples_v1.jsonl")


@pytest.fixture
def golden_run_v2(tmp_path: Path) -> Path:
    """The hand-written v2 golden files: a warm and a cold case, one warmup sample,
    one not_applicable and one failed record."""
    return _golden(tmp_path, "golden_run_v2", "run_v2.json", "samples_v2.jsonl")
