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


@pytest.fixture
def golden_run_v3(tmp_path: Path) -> Path:
    """The v3 golden files: a run spread over two nodes of unlike GPUs (run.json ``nodes``),
    every record naming its node, one warmup, one not_applicable, one failure, and one
    node_lost failure that a retry on the other node superseded."""
    return _golden(tmp_path, "golden_run_v3", "run_v3.json", "samples_v3.jsonl")


@pytest.fixture
def golden_run_v4(tmp_path: Path) -> Path:
    """The v3 golden run as v4 writes it: each sample's records consecutive, each counting them
    (``sample_records``)."""
    return _golden(tmp_path, "golden_run_v4", "run_v4.json", "samples_v4.jsonl")


def _synthetic():
    """tests/results/synthetic.py, imported by path: tests are not a package."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("loadbench_tests_synthetic", Path(__file__).parent / "synthetic.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def synthetic():
    """The synthetic-run module: its constants say what the runs it writes hold."""
    return _synthetic()


@pytest.fixture(scope="session")
def _synthetic_originals(tmp_path_factory: pytest.TempPathFactory, synthetic) -> dict[str, Path]:
    # Written once: RunWriter syncs every sample to disk, which is slow on a busy machine.
    root = tmp_path_factory.mktemp("synthetic")
    return {
        "single": synthetic.write_run(root / "single", "20260101T000000Z-aaaa"),
        "b": synthetic.write_run(root / "b", "20260102T000000Z-bbbb", slowdown=1.3, torch="2.14.0+cpu"),
        "a10": synthetic.write_run(root / "a10", "20260101T000000Z-aaaa", repeats=10),
        "b10": synthetic.write_run(root / "b10", "20260102T000000Z-bbbb", slowdown=1.3, torch="2.14.0+cpu",
                                   repeats=10),
    }


@pytest.fixture
def synthetic_run(tmp_path: Path, _synthetic_originals: dict[str, Path]) -> Path:
    """One complete synthetic run (three checkpoints × four paths × warm/cold), a fresh copy per test."""
    return Path(shutil.copytree(_synthetic_originals["single"], tmp_path / "run_single"))


@pytest.fixture
def synthetic_pair(tmp_path: Path, _synthetic_originals: dict[str, Path]) -> tuple[Path, Path]:
    """Two synthetic runs: B has a 30% slower task path and a different torch (fresh copies)."""
    a = Path(shutil.copytree(_synthetic_originals["single"], tmp_path / "run_a"))
    b = Path(shutil.copytree(_synthetic_originals["b"], tmp_path / "run_b"))
    return a, b


@pytest.fixture
def synthetic_pair_10(tmp_path: Path, _synthetic_originals: dict[str, Path]) -> tuple[Path, Path]:
    """The synthetic pair with 10 measured repeats per case: enough for compare to reach verdicts."""
    a = Path(shutil.copytree(_synthetic_originals["a10"], tmp_path / "run_a10"))
    b = Path(shutil.copytree(_synthetic_originals["b10"], tmp_path / "run_b10"))
    return a, b
