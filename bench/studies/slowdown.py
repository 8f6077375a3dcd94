"""A controlled, real slowdown of transformers' loading: what a regression gate must catch.

``install(0.10)`` makes every outermost call of a model's or a tokenizer's
``from_pretrained`` and of ``pipeline()`` take 10% longer than it just took, spent in a
busy loop on the same core: the shape of a real regression in loading code (more work,
proportional to the work done), not a fixed sleep and not an edited record.
bench/studies/validate_paired.py installs it into a benchmark environment with a ``.pth`` line,
so every process of that environment, its zygote included, loads more slowly.

``install_bloat(0.10)`` is the memory counterpart: every outermost model
``from_pretrained`` keeps, for the rest of the process, a buffer of 10% of the resident
memory the call added, written through so that it is resident: a load that holds a
second copy of part of what it read, the shape of the peak-memory regressions upgrades
have brought.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["install", "install_bloat", "install_here", "pth_line"]

_depth = threading.local()
_kept: list[Any] = []  # what the bloated loads hold on to, for the life of the process


def _spin(seconds: float) -> None:
    until = time.perf_counter() + seconds
    while time.perf_counter() < until:
        pass


def _slower(function: Callable[..., Any], fraction: float) -> Callable[..., Any]:
    @functools.wraps(function)
    def slower(*args: Any, **kwargs: Any) -> Any:
        depth = getattr(_depth, "value", 0)
        _depth.value = depth + 1
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            _depth.value = depth
            if depth == 0:  # a nested call (pipeline -> from_pretrained) is already inside the outer one
                _spin(fraction * (time.perf_counter() - started))

    return slower


def install(fraction: float) -> None:
    """Slow transformers' loading entry points down by ``fraction`` of their own time."""
    from loadbench.bench.sample.offline import set_library_defaults

    set_library_defaults()  # as the zygote would before its own import of transformers
    import transformers
    from transformers import modeling_utils, pipelines, tokenization_utils_base

    for owner in (modeling_utils.PreTrainedModel, tokenization_utils_base.PreTrainedTokenizerBase):
        original = owner.__dict__["from_pretrained"].__func__
        owner.from_pretrained = classmethod(_slower(original, fraction))  # type: ignore[method-assign,assignment]
    slow_pipeline = _slower(pipelines.pipeline, fraction)
    pipelines.pipeline = slow_pipeline
    transformers.pipeline = slow_pipeline


def _resident_bytes() -> int:
    from loadbench.bench.probes.proc_status import read_status_bytes

    return read_status_bytes(["VmRSS"])["VmRSS"]


def _bloated(function: Callable[..., Any], fraction: float) -> Callable[..., Any]:
    @functools.wraps(function)
    def bloated(*args: Any, **kwargs: Any) -> Any:
        depth = getattr(_depth, "value", 0)
        _depth.value = depth + 1
        before = _resident_bytes() if depth == 0 else 0
        try:
            return function(*args, **kwargs)
        finally:
            _depth.value = depth
            if depth == 0 and (extra := int(fraction * max(0, _resident_bytes() - before))) > 0:
                import torch

                _kept.append(torch.ones(extra, dtype=torch.uint8))  # every page written: resident

    return bloated


def install_bloat(fraction: float) -> None:
    """Make every outermost model load keep ``fraction`` of the memory it added once more."""
    from loadbench.bench.sample.offline import set_library_defaults

    set_library_defaults()
    from transformers import modeling_utils

    owner = modeling_utils.PreTrainedModel
    original = owner.__dict__["from_pretrained"].__func__
    owner.from_pretrained = classmethod(_bloated(original, fraction))  # type: ignore[method-assign,assignment]


def install_here(fraction: float, kind: str = "time") -> None:
    """What a ``.pth`` line runs at a Python's start: ``install`` (or ``install_bloat``), except
    in loadbench's memory watcher.

    The watcher is a Python process of the environment, started beside every sample; it
    never loads a model, and importing transformers there would cost each sample of the
    slowed environment seconds of the other core that the other environment's samples do
    not pay: a difference that is not the slowdown.
    """
    import sys

    from loadbench.bench.probes.cpu_memory import WATCHER_MODULE

    if WATCHER_MODULE not in sys.orig_argv:
        {"time": install, "memory": install_bloat}[kind](fraction)


def pth_line(fraction: float, kind: str = "time") -> str:
    """The line of a ``.pth`` file that installs the slowdown (``kind="time"``) or the bloat
    (``"memory"``) when the environment's Python starts."""
    if kind not in ("time", "memory"):
        raise KeyError(kind)
    return f"import loadbench.bench.studies.slowdown as _s; _s.install_here({fraction!r}, {kind!r})\n"
