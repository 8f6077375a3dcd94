"""Shared by the bench tests: a zygote (starting one costs the torch + transformers imports), and a
throwaway git repository of a user's loading package with a real slowdown planted at one commit
(the bisect tests)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from loadbench.bench.sample.spawn import Zygote


@pytest.fixture(scope="session")
def zygote() -> Zygote:
    z = Zygote()
    z.warm_up()
    return z

@pytest.fixture
def planted(git: Callable[..., str], user_package: Callable[..., None]) -> Callable[..., list[str]]:
    """``planted(repo, commits, slow_from, busy_ms=40)``: a throwaway repository of package ``lbbisectpkg``.

    From the ``slow_from``-th commit (1-based) on, its ``load`` does ``busy_ms`` of CPU work
    first; the commits between change a comment only. Returns the hashes, oldest first.
    """

    def make(repo: Path, commits: int, slow_from: int, busy_ms: int = 40) -> list[str]:
        repo.mkdir(parents=True)
        git(repo, "init", "--quiet", "--initial-branch", "main")
        hashes = []
        for number in range(1, commits + 1):
            user_package(repo, "lbbisectpkg", busy_ms if number >= slow_from else 0)
            (repo / "lbbisectpkg" / "__init__.py").write_text(f"# revision {number}\n", encoding="utf-8")
            git(repo, "add", "-A")
            slower = " (slower load)" if number == slow_from else ""
            git(repo, "commit", "--quiet", "-m", f"revision {number}{slower}")
            hashes.append(git(repo, "rev-parse", "HEAD"))
        return hashes

    return make
