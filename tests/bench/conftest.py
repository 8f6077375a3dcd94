"""Shared by the bench tests: a zygote (starting one costs the torch + transformers imports), and a
throwaway git repository of a user's loading package with a real slowdown planted at one commit
(the bisect tests)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from loadbench.bench.sample.spawn import Zygote


@pytest.fixture(scope="session")
def zygote() -> Zygote:
    z = Zygote()
    z.warm_up()
    return z

PYPROJECT = """[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "lbbisectpkg"
version = "0.1"
dependencies = ["transformers"]
"""

LOADING = '''"""A user's loader: transformers' task class, after {busy_ms} ms of work on the CPU."""

import time

from transformers import AutoModelForCausalLM

BUSY_S = {busy_ms} / 1000


def load(checkpoint, task, device, dtype):
    deadline = time.process_time() + BUSY_S
    while time.process_time() < deadline:  # real work on the CPU, as a slower code path does
        pass
    return AutoModelForCausalLM.from_pretrained(checkpoint)
'''


def _git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"}
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          env=env).stdout.strip()


def _planted_repository(repo: Path, commits: int, slow_from: int, busy_ms: int = 40) -> list[str]:
    """``commits`` commits of package ``lbbisectpkg``; from the ``slow_from``-th (1-based) its load is slower.

    Returns the commits' hashes, oldest first. The commits between change a comment only.
    """
    (repo / "lbbisectpkg").mkdir(parents=True)
    _git(repo, "init", "--quiet", "--initial-branch", "main")
    (repo / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
    hashes = []
    for number in range(1, commits + 1):
        busy = busy_ms if number >= slow_from else 0
        (repo / "lbbisectpkg" / "__init__.py").write_text(f"# revision {number}\n", encoding="utf-8")
        (repo / "lbbisectpkg" / "loading.py").write_text(LOADING.format(busy_ms=busy), encoding="utf-8")
        _git(repo, "add", "-A")
        _git(repo, "commit", "--quiet", "-m", f"revision {number}" + (" (slower load)" if number == slow_from else ""))
        hashes.append(_git(repo, "rev-parse", "HEAD"))
    return hashes


@pytest.fixture
def git() -> Callable[..., str]:
    """``git(repo, *args)``: git's output, as a test's author would run it."""
    return _git


@pytest.fixture
def planted() -> Callable[..., list[str]]:
    """``planted(repo, commits, slow_from, busy_ms=40)``: the throwaway repository; its commits, oldest first."""
    return _planted_repository
