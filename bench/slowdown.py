"""A controlled, real slowdown of transformers' loading: what a regression gate must catch.

``install(0.10)`` makes every outermost call of a model's or a tokenizer's
``from_pretrained`` and of ``pipeline()`` take 10% longer than it just took, spent in a
busy loop on the same core: the shape of a real regression in loading code (more work,
proportional to the work done), not a fixed sleep and not an edited record.
bench/validate_paired.py installs it into a benchmark environment with a ``.pth`` line,
so every process of that environment, its zygote included, loads more slowly.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["install", "pth_line"]

_depth = threading.local()


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
    from .offline import set_library_defaults

    set_library_defaults()  # as the zygote would before its own import of transformers
    import transformers
    from transformers import modeling_utils, pipelines, tokenization_utils_base

    for owner in (modeling_utils.PreTrainedModel, tokenization_utils_base.PreTrainedTokenizerBase):
        original = owner.__dict__["from_pretrained"].__func__
        owner.from_pretrained = classmethod(_slower(original, fraction))  # type: ignore[method-assign,assignment]
    slow_pipeline = _slower(pipelines.pipeline, fraction)
    pipelines.pipeline = slow_pipeline
    transformers.pipeline = slow_pipeline


def pth_line(fraction: float) -> str:
    """The line of a ``.pth`` file that installs the slowdown when the environment's Python starts."""
    return f"import loadbench.bench.slowdown as _s; _s.install({fraction!r})\n"
