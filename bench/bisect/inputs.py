"""What a bisect is asked for, checked before anything is built: one case, settings a step can run with.

The public ``loadbench.bisect`` (bench/api.py) calls these; each raises BisectError (a
UserError) in one line, so a mistake costs no environment build.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from loadbench.bench.bisect.candidates import BisectError, Candidate, commits, releases
from loadbench.bench.suite import Suite

__all__ = ["candidates_for", "check_suite", "default_output", "take_step_settings"]

# Settings a bisect sets for each step itself, and those it takes as each step's.
_OWN = ("environments", "until_decided", "compare")
_BUDGETS = ("max_repeats", "max_minutes")


def take_step_settings(settings: dict[str, Any]) -> tuple[int | None, dict[str, Any]]:
    """Take out of ``settings`` what each step gets (repeats, budgets); the rest make the suite (warm by default)."""
    taken = [k for k in _OWN if settings.get(k) is not None]
    if taken:
        raise BisectError(f"`{taken[0]}`: a bisect chooses each step's environments and measures until decided "
                          "itself; drop it")
    repeats = settings.pop("repeats", None)
    budget = {k: settings.pop(k, None) for k in _BUDGETS}
    if settings.get("cache") is None:
        settings["cache"] = ["warm"]
    return repeats, budget


def check_suite(suite: Suite, repeats: int | None, budget: Mapping[str, Any]) -> None:
    """One case, and settings a step's run accepts (checked now, not after the first environments are built)."""
    axes = {"checkpoint": len(suite.checkpoints), "device": len(suite.device), "dtype": len(suite.dtype),
            "cache state": len(suite.cache), "setting": len(suite.settings),
            **({} if suite.settings else {"path": len(suite.paths),
                                          **{f"option {k}": len(v) for k, v in suite.options.items()}})}
    many = [f"{n} {axis}s" for axis, n in axes.items() if n > 1]
    if many:
        raise BisectError(f"a bisect follows one case, and the suite has {', '.join(many)}: name one, e.g. "
                          "--checkpoint tiny-llama --paths task")
    suite.with_overrides(environments=[{"name": n, "python": sys.executable} for n in ("a", "b")],
                         until_decided=True, repeats=repeats or 1, **budget)


def candidates_for(package: str | None, repo: str | Path | None, good: str, bad: str,
                   pre: bool) -> tuple[list[Candidate], str]:
    """What is walked (a package's releases, or a repository's commits; the caller gives one), and its name."""
    if package is not None:
        return releases(package, good, bad, pre=pre), package
    assert repo is not None
    return commits(Path(repo), good, bad), Path(repo).resolve().name


def default_output(target: str, good: str, bad: str) -> Path:
    """``runs/bisect-WHAT-GOOD-BAD``: the same bisect asked again finds its steps there."""
    return Path("runs") / re.sub(r"[^A-Za-z0-9._-]+", "_", f"bisect-{target}-{good}-{bad}")[:120]
