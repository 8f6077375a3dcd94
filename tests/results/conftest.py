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


@pytest.fixture
def golden_run(tmp_path: Path) -> Path:
    """The hand-written v1 golden files laid out as a run directory."""
    run_dir = tmp_path / "golden_run"
    run_dir.mkdir()
    shutil.copy(GOLDEN / "run.json", run_dir / "run.json")
    shutil.copy(GOLDEN / "samples_v1.jsonl", run_dir / "samples.jsonl")
    return run_dir
