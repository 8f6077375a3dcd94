"""What a tune optimises: the goal a user states, parsed once, and the one number each setting is ranked by."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from loadbench.errors import UserError

__all__ = ["GOALS", "Goal", "TuneError", "parse_goal", "parse_size"]

GOALS = ("fastest", "least-memory", "fastest-within-memory=SIZE")


class TuneError(UserError):
    """A tune that cannot start as asked; the message names the input."""


@dataclass(frozen=True)
class Goal:
    """``fastest``, ``least-memory``, or ``fastest-within-memory`` under ``limit_bytes``."""

    kind: str
    limit_bytes: int | None = None

    @property
    def text(self) -> str:
        return self.kind if self.limit_bytes is None else f"{self.kind}={_size_text(self.limit_bytes)}"

    @property
    def metric(self) -> str:
        """What the confirmation pairs: memory for least-memory, load time otherwise."""
        return "memory" if self.kind == "least-memory" else "load_s"

    def rank(self, load_s: float, added_bytes: float) -> tuple[float, float]:
        """Smaller is better; a setting over the memory limit ranks after every one within it."""
        if self.kind == "least-memory":
            return added_bytes, load_s
        over = self.limit_bytes is not None and added_bytes > self.limit_bytes
        return (math.inf if over else load_s), added_bytes

    def admits(self, added_bytes: float) -> bool:
        return self.limit_bytes is None or added_bytes <= self.limit_bytes


_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$", re.IGNORECASE)


def parse_size(text: str, where: str) -> int:
    """Bytes from ``4GiB``, ``512MB``, ``1.5 GiB`` or a plain number of bytes."""
    match = _SIZE.match(text)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _UNITS:
        raise TuneError(f"{where}: {text!r} is not a size; write it like 4GiB, 512MiB or 2GB")
    size = int(float(match.group(1)) * _UNITS[unit])
    if size <= 0:
        raise TuneError(f"{where}: {text!r} must be more than 0 bytes")
    return size


def _size_text(size: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size % scale == 0:
            return f"{size // scale}{unit}"
    return f"{size}B"


def parse_goal(text: str) -> Goal:
    name, sep, limit = text.strip().partition("=")
    if name in ("fastest", "least-memory") and not sep:
        return Goal(name)
    if name == "fastest-within-memory":
        if not limit:
            raise TuneError(f"`goal` {text!r}: give the memory limit, e.g. fastest-within-memory=4GiB")
        return Goal(name, parse_size(limit, f"`goal` {text!r}"))
    raise TuneError(f"`goal` {text!r} is not one of {', '.join(GOALS)}")
