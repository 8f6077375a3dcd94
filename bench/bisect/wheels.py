"""A commit of a user's repository as a wheel an environment can install, built once per commit.

The commit is checked out into a temporary worktree (the user's own checkout is not
touched) and built with ``pip wheel``: with the build backend installed here where it is
(no download), else in pip's isolated build. The wheel is kept in loadbench's cache under
the commit's hash, so the environment built from it is keyed by the commit.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from loadbench.bench.bisect.candidates import BisectError

__all__ = ["requirement_for_commit", "wheel_cache"]


def wheel_cache(repo: Path) -> Path:
    """Where the wheels of ``repo``'s commits are kept: one folder per repository in loadbench's cache."""
    from loadbench.loaders.checkpoints.builtin import cache_root

    key = hashlib.sha256(str(repo.resolve()).encode("utf-8")).hexdigest()[:12]
    return cache_root() / "bisect-wheels" / key


def _requirement(wheel: Path) -> str:
    return f"{wheel.name.split('-')[0]} @ {wheel.resolve().as_uri()}"


def _built(folder: Path) -> Path | None:
    wheels = sorted(folder.glob("*.whl")) if folder.is_dir() else []
    return wheels[0] if len(wheels) == 1 else None


def _pip_wheel(source: Path, into: Path, isolated: bool) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--disable-pip-version-check",
                           *([] if isolated else ["--no-build-isolation"]), "-w", str(into), str(source)],
                          capture_output=True, text=True)


def requirement_for_commit(repo: Path, commit: str, cache: Path | None = None) -> str:
    """``name @ file:///…whl``: the commit's package, built into a wheel (or found built)."""
    folder = (cache or wheel_cache(repo)) / commit
    if (wheel := _built(folder)) is not None:
        return _requirement(wheel)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.with_name(f".{commit}.{os.getpid()}-{uuid.uuid4().hex[:8]}")
    with tempfile.TemporaryDirectory(prefix="loadbench-bisect-") as scratch:
        tree = Path(scratch) / "src"
        added = subprocess.run(["git", "-C", str(repo), "worktree", "add", "--detach", "--quiet", str(tree), commit],
                               capture_output=True, text=True)
        if added.returncode != 0:
            raise BisectError(f"--repo {repo}: cannot check out {commit[:10]} ({added.stderr.strip()})")
        try:
            done = _pip_wheel(tree, staging, isolated=False)
            if done.returncode != 0:
                done = _pip_wheel(tree, staging, isolated=True)
        finally:
            subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force", str(tree)], capture_output=True)
    try:
        if done.returncode != 0 or (wheel := _built(staging)) is None:
            reason = (done.stderr.strip().splitlines() or ["no wheel written"])[-1].removeprefix("ERROR: ")
            raise BisectError(f"--repo {repo}: commit {commit[:10]} does not build into a wheel ({reason}); each "
                              "commit must be an installable package (a pyproject.toml at the top)")
        if folder.exists():  # a folder left without its one wheel
            shutil.rmtree(folder)
        os.replace(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    wheel = _built(folder)
    if wheel is None:
        raise BisectError(f"{folder}: holds no single wheel; delete it and run the bisect again")
    return _requirement(wheel)
