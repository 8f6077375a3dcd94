"""Split a load into phases by timing the library calls every path makes.

All four paths, ``pipeline()`` included, end up in the same few transformers entry points
(config, tokenizer and model ``from_pretrained``, ``Module.to``). Wrapping those, inside
the worker only, times the phases the same way for every path without changing what
the path does. Time is exclusive: a config load nested in a model load counts as
config, not twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import wraps
from typing import Any

from loadbench.loaders.common import set_phase_timer

__all__ = ["PHASES", "PhaseClock", "instrument"]

PHASES = ("config_s", "tokenizer_s", "weights_s", "to_device_s")


@dataclass
class PhaseClock:
    """Exclusive time per phase, accumulated while ``recording``."""

    totals: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PHASES, 0.0))
    recording: bool = False
    _stack: list[list[float]] = field(default_factory=list)  # [start, time in nested phases]

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        if not self.recording:
            yield
            return
        frame = [time.perf_counter(), 0.0]
        self._stack.append(frame)
        try:
            yield
        finally:
            self._stack.pop()
            elapsed = time.perf_counter() - frame[0]
            self.totals[name] += elapsed - frame[1]
            if self._stack:
                self._stack[-1][1] += elapsed

    @contextmanager
    def record(self) -> Iterator[PhaseClock]:
        self.recording = True
        try:
            yield self
        finally:
            self.recording = False


def _wrap_classmethod(owner: type, name: str, clock: PhaseClock, phase: str) -> None:
    original: Callable[..., Any] = owner.__dict__[name].__func__

    @wraps(original)
    def timed(cls: type, *args: Any, **kwargs: Any) -> Any:
        with clock.phase(phase):
            return original(cls, *args, **kwargs)

    setattr(owner, name, classmethod(timed))


def _wrap_method(owner: type, name: str, clock: PhaseClock, phase: str) -> None:
    original: Callable[..., Any] = owner.__dict__[name]

    @wraps(original)
    def timed(self: Any, *args: Any, **kwargs: Any) -> Any:
        with clock.phase(phase):
            return original(self, *args, **kwargs)

    setattr(owner, name, timed)


def instrument(clock: PhaseClock) -> None:
    """Patch the entry points in this process. Call once, in a worker only."""
    import torch
    from transformers import AutoConfig, AutoTokenizer, PretrainedConfig, PreTrainedModel
    from transformers.models.auto.auto_factory import _BaseAutoModelClass
    from transformers.tokenization_utils_base import PreTrainedTokenizerBase

    entry_points: tuple[tuple[tuple[type, ...], str], ...] = (
        ((AutoConfig, PretrainedConfig), "config_s"),
        ((AutoTokenizer, PreTrainedTokenizerBase), "tokenizer_s"),
        ((_BaseAutoModelClass, PreTrainedModel), "weights_s"),
    )
    for owners, phase in entry_points:
        for owner in owners:
            _wrap_classmethod(owner, "from_pretrained", clock, phase)
    _wrap_method(torch.nn.Module, "to", clock, "to_device_s")
    set_phase_timer(clock.phase)
