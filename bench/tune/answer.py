"""A tune's answer: every setting with its figures, the front, the recommendation and its paired gain.

The recommendation is the contender only where the paired run shows it better than the
default (its interval excludes zero); otherwise the answer is to keep the default, and
says why: the contender was worse, or its gain was within what the pairs could tell.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadbench.bench.suite import Suite
from loadbench.bench.tune.candidates import DEFAULT_SETTING, Setting
from loadbench.bench.tune.front import Measured, as_dict
from loadbench.bench.tune.goals import Goal
from loadbench.bench.tune.search import Confirmation

__all__ = ["TuneResult", "recommended_suite_text"]


@dataclass(frozen=True)
class TuneResult:
    """What ``loadbench.tune`` found; ``to_json()`` is what ``--format json`` prints."""

    output: Path
    checkpoint: str
    checkpoint_dir: str
    task: str
    device: str
    goal: Goal
    settings: tuple[Setting, ...]
    measured: dict[str, Measured]
    confirmation: Confirmation | None
    why_unconfirmed: str | None  # why there is no paired answer, when there is none
    recommended: str
    code: str  # Python that loads the checkpoint as the recommended setting does
    minutes: float
    budget_minutes: float
    stopped: str | None  # why the halving ended early
    gpu: str  # "measured", or why GPU memory and host-to-device time are not
    files: tuple[Path, ...] = ()

    @property
    def front(self) -> list[str]:
        return [name for name, m in self.measured.items() if m.on_front]

    @property
    def explanation(self) -> str:
        c = self.confirmation
        if c is None:
            return f"keep the default: {self.why_unconfirmed}"
        change = f"{_pct(c.gain)} ({_pct(c.ci_low)} … {_pct(c.ci_high)}, {c.pairs} pairs)"
        what = "memory added" if c.metric == "memory" else "load time"
        if c.verdict == "better":
            return f"{c.contender}: {change} less {what} than the default, confirmed by the paired run"
        if c.verdict == "worse":
            return (f"keep the default, it is already best: the best contender, {c.contender}, was "
                    f"{_pct(-c.gain)} ({_pct(-c.ci_high)} … {_pct(-c.ci_low)}) worse in the paired run")
        return (f"keep the default: no gain shown. The best contender, {c.contender}, is within {_pct(-c.ci_high)} … "
                f"{_pct(-c.ci_low)} of its {what} ({c.pairs} pairs; more pairs, from --confirm-pairs or a larger "
                "--budget-minutes, resolve smaller differences)")

    def to_json(self) -> dict[str, Any]:
        c = self.confirmation
        rows = []
        for setting in self.settings:
            m = self.measured.get(setting.name)
            figures = as_dict(m) if m is not None else {}
            rows.append({"setting": setting.name, "path": setting.path, "options": setting.suite_entry["options"],
                         "not_applicable": setting.not_applicable,
                         "load_s": (figures.get("load") or {}).get("median"),
                         "load_added_bytes": (figures.get("added_bytes") or {}).get("median"),
                         "max_abs_diff": figures.get("max_abs_diff"), "on_front": bool(figures.get("on_front")),
                         **{k: v for k, v in figures.items() if k not in ("max_abs_diff", "on_front")}})
        return {"checkpoint": self.checkpoint, "checkpoint_dir": self.checkpoint_dir, "task": self.task,
                "device": self.device, "goal": self.goal.text,
                "settings": rows, "front": self.front, "recommended": self.recommended, "default": DEFAULT_SETTING,
                "gain": c.gain if c else None, "ci_low": c.ci_low if c else None, "ci_high": c.ci_high if c else None,
                "confirmation": c.as_dict() if c else None, "explanation": self.explanation, "code": self.code,
                "minutes": round(self.minutes, 2), "budget_minutes": self.budget_minutes, "stopped": self.stopped,
                "gpu": self.gpu, "output": str(self.output), "files": [str(f) for f in self.files]}


def _pct(value: float) -> str:
    return "unbounded" if not math.isfinite(value) else f"{value * 100:.1f}%"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))  # a TOML basic string: JSON's escapes are TOML's


def recommended_suite_text(suite: Suite, settings: list[Setting], repeats: int, explanation: str) -> str:
    """A suite file measuring the default and the recommended setting, to re-check the answer with ``loadbench run``."""
    keep = ("device", "dtype", "cache", "new_tokens", "forward_iters", "threads", "pin_cpus", "warmups")
    lines = [f"# {line}" for line in (f"loadbench tune: {explanation}", "Re-check it: loadbench run THIS_FILE")]
    lines += ['name = "tune-recommended"', f"repeats = {repeats}"]
    lines += [f"{key} = {_toml_value(getattr(suite, key))}" for key in keep]
    for entry in suite.checkpoints:
        lines += ["", "[[checkpoints]]"]
        lines += [f"{k} = {_toml_value(v)}" for k, v in entry.model_dump(exclude_defaults=True).items()]
    for setting in settings:
        lines += ["", "[[settings]]", f"path = {_toml_value(setting.path)}"]
        if setting.suite_entry["options"]:
            lines.append(f"options = {_toml_value(setting.suite_entry['options'])}")
    return "\n".join(lines) + "\n"
