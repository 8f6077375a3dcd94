"""Measure a tune: its rungs and its confirmation as runs in one directory, kept so a rerun continues.

``OUTPUT/tune.json`` holds what was asked and what each step measured; each step is an
ordinary run directory (``rung-0``, ``rung-1`` ..., ``confirm``), appended and flushed
sample by sample as every run is. Ctrl-C leaves them as they are: the same command
again finishes the interrupted run and goes on from there, with the time already spent
counted against the budget.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadbench.bench.suite import Suite
from loadbench.bench.tune.candidates import DEFAULT_SETTING, Setting
from loadbench.bench.tune.front import Measured, mark_front, measured_settings
from loadbench.bench.tune.goals import Goal, TuneError
from loadbench.bench.tune.search import Confirmation, confirm, ranked, rung_repeats, survivors
from loadbench.results.records.durable import write_text_atomic

__all__ = ["MIN_PAIRS", "BudgetSpent", "Plan", "Steps", "TuneState", "measure_tune"]

STATE = "tune.json"
MIN_PAIRS = 6  # the fewest pairs whose 95% interval can exclude zero
MAX_PAIRS = 40  # where none are asked for: past this the interval narrows slowly (as 1/sqrt(pairs))


@dataclass(frozen=True)
class Plan:
    """A tune as asked: what ``tune.json`` must match for a rerun to continue it."""

    request: dict[str, Any]  # checkpoint, device, dtype, cache, goal, settings asked for
    suite: Suite  # the one-checkpoint suite every step runs, less its settings and repeats
    settings: list[Setting]  # every candidate, the not applicable included
    goal: Goal
    budget_s: float
    confirm_pairs: int | None  # None: as many as the budget leaves, MIN_PAIRS to MAX_PAIRS


@dataclass(frozen=True)
class Steps:
    """How a step is measured: ``run(suite, output)`` and ``resume(run_dir)`` of the API, and progress."""

    run: Callable[..., Any]
    resume: Callable[..., Any]
    on_step: Callable[[str], None]
    progress: bool = False  # a progress bar on a terminal


class BudgetSpent(KeyboardInterrupt):
    """The budget ends before the next sample would: the run stops as at a Ctrl-C, the tune goes on to its answer."""


class _Guard:
    """A run's progress callback that stops it before a sample the budget cannot pay for."""

    def __init__(self, clock: _Clock, show: Callable[[str, int, int], None] | None) -> None:
        self.clock, self.show, self.started, self.tripped = clock, show, time.monotonic(), False

    def __call__(self, label: str, done: int, total: int) -> None:
        if label != "done" and done > 0 and self.clock.left() < (time.monotonic() - self.started) / done:
            self.tripped = True
            raise BudgetSpent
        if self.show is not None:
            self.show(label, done, total)


@dataclass
class TuneState:
    """``tune.json``: the request, each step's run, and the seconds spent so far."""

    request: dict[str, Any]
    steps: list[dict[str, Any]] = field(default_factory=list)
    spent_s: float = 0.0
    stopped: str | None = None  # why the halving ended before one contender was left

    def save(self, output: Path) -> None:
        write_text_atomic(output / STATE, json.dumps(vars(self), indent=2) + "\n")


def _load_state(output: Path, request: dict[str, Any]) -> TuneState:
    if output.exists() and not output.is_dir():
        raise TuneError(f"`output` {output}: is a file; give a directory for the tune")
    path = output / STATE
    if not path.exists():
        if output.exists() and any(output.iterdir()):
            raise TuneError(f"--output {output}: holds files but no {STATE}; give an empty or new directory")
        return TuneState(request)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        state = TuneState(data["request"], list(data["steps"]), float(data["spent_s"]), data.get("stopped"))
        for step in state.steps:
            if not (isinstance(step["dir"], str) and isinstance(step["settings"], list)
                    and isinstance(step["repeats"], int)):
                raise TypeError(f"a step is malformed: {step!r:.80}")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise TuneError(f"{path}: not a tune's state ({exc}); give another --output") from None
    if state.request != request:
        raise TuneError(f"--output {output}: holds a tune of something else ({_differs(state.request, request)}); "
                        "give another --output, or the same arguments to continue it")
    return state


def _differs(old: dict[str, Any], new: dict[str, Any]) -> str:
    key = next(k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k))
    return f"{key} was {old.get(key)!r}, now {new.get(key)!r}"


def _keys(settings: list[Setting]) -> dict[tuple[str, str], str]:
    return {(s.path, s.options.text): s.name for s in settings}


class _Clock:
    """The budget: seconds spent in earlier sessions plus this one's."""

    def __init__(self, state: TuneState, budget_s: float) -> None:
        self.before, self.start, self.budget_s = state.spent_s, time.monotonic(), budget_s

    @property
    def spent(self) -> float:
        return self.before + time.monotonic() - self.start

    def left(self) -> float:
        return self.budget_s - self.spent


def _cost(steps: list[dict[str, Any]]) -> tuple[float, float]:
    """(fixed seconds per run, seconds per sample): the runs' mean fixed cost, the latest run's rate.

    The latest, because each rung keeps the faster settings: the first rung's rate, slow
    settings included, would overstate what the next one costs.
    """
    timed = [s for s in steps if s.get("wall_s") and s.get("samples")]
    if not timed:
        return 0.0, 0.0
    per = timed[-1]["sampling_s"] / timed[-1]["samples"]
    fixed = max(0.0, sum(s["wall_s"] - s["sampling_s"] for s in timed) / len(timed))
    return fixed, per


def _sampling_seconds(run_dir: Path) -> float:
    from datetime import datetime

    from loadbench.results import read_run_info

    info = read_run_info(run_dir)
    try:
        started, finished = (datetime.fromisoformat(info[k]) for k in ("started_at", "finished_at"))
    except (KeyError, TypeError, ValueError):
        return 0.0
    return max(0.0, (finished - started).total_seconds())


def _measure_step(plan: Plan, state: TuneState, output: Path, step: dict[str, Any], steps: Steps,
                  clock: _Clock) -> None:
    """Run (or finish) one step's run and note its cost; an interrupt propagates with the run kept."""
    run_dir = output / step["dir"]
    steps.on_step(f"{step['dir']}: {len(step['settings'])} settings x {step['repeats']} samples")
    from loadbench.bench.progress import progress_display

    by_name = {s.name: s for s in plan.settings}
    started = time.monotonic()
    with progress_display(steps.progress) as show:
        guard = _Guard(clock, show)
        if (run_dir / "run.json").exists():
            result = steps.resume(run_dir, reports=False, progress=guard)
        else:
            suite = plan.suite.with_overrides(settings=[by_name[n].suite_entry for n in step["settings"]],
                                              repeats=step["repeats"])
            result = steps.run(suite, output=run_dir, reports=False, progress=guard)
    wall = time.monotonic() - started
    state.spent_s = clock.spent
    if result.interrupted and not guard.tripped:
        state.save(output)
        raise KeyboardInterrupt
    if guard.tripped:  # what it measured stands; a rerun does not take the rest
        state.stopped = state.stopped or f"the budget ended {step['dir']} after {result.samples} of its samples"
        step["cut_by_budget"] = True
    samples = max(1, result.samples) if guard.tripped else len(step["settings"]) * step["repeats"]
    step.update(done=True, wall_s=round(wall, 3), samples=samples, sampling_s=_sampling_seconds(run_dir) or wall)
    state.save(output)


def _frame(output: Path, dirs: list[str]) -> Any:
    """The records of these steps' runs, as one frame."""
    import pandas as pd

    from loadbench.results import load

    frames = [load(output / d) for d in dirs if (output / d / "run.json").exists()]
    return pd.concat(frames, ignore_index=True) if frames else None


def _affordable(state: TuneState, clock: _Clock, samples: int, reserve: float) -> bool:
    fixed, per = _cost(state.steps)
    return fixed + per * samples + reserve <= clock.left()


def _confirm_pairs(plan: Plan, state: TuneState, clock: _Clock) -> int:
    """The pairs asked for (or MAX_PAIRS) as far as the budget allows; fewer than MIN_PAIRS means none.

    Fixed before the paired run starts, never from what it shows: its interval keeps its level.
    """
    wanted = plan.confirm_pairs or MAX_PAIRS
    fixed, per = _cost(state.steps)
    if per <= 0:
        return wanted
    fits = int((clock.left() - fixed) / (2 * per))
    return min(wanted, fits) if fits >= MIN_PAIRS else 0


def _halve(plan: Plan, state: TuneState, output: Path, steps: Steps, clock: _Clock) -> tuple[dict[str, Measured],
                                                                                         list[str]]:
    """The rungs, recorded ones replayed: each decision sees only the rungs before it, as it did first time."""
    keys = _keys(plan.settings)
    live = [s.name for s in plan.settings if s.not_applicable is None]
    measured: dict[str, Measured] = {}
    rung = 0
    while True:
        recorded = next((s for s in state.steps if s["dir"] == f"rung-{rung}"), None)
        if recorded is None:
            if rung > 0 and len(live) <= 2:
                break
            samples = len(live) * rung_repeats(rung)
            reserve = _cost(state.steps)[1] * 2 * MIN_PAIRS
            if rung > 0 and not _affordable(state, clock, samples, reserve):
                state.stopped = state.stopped or f"the budget left no time for rung {rung} ({samples} samples)"
                break
            recorded = {"dir": f"rung-{rung}", "settings": live, "repeats": rung_repeats(rung)}
            state.steps.append(recorded)
        if not recorded.get("done"):
            _measure_step(plan, state, output, recorded, steps, clock)
        measured = measured_settings(_frame(output, [f"rung-{i}" for i in range(rung + 1)]), keys)
        live = survivors(measured, recorded["settings"], plan.goal)
        rung += 1
    return measured, live


def _no_contest(measured: dict[str, Measured], contenders: list[str], state: TuneState) -> str | None:
    """Why there is nothing to confirm, or None."""
    base = measured.get(DEFAULT_SETTING)
    if base is not None and base.failed is not None:
        return f"the default load failed ({base.failed}): nothing to confirm against"
    if base is None or not base.usable:
        return f"the default was not measured ({state.stopped or 'no sample of it finished'})"
    if not contenders:
        return "no other setting has a result that meets the goal" + (f" ({state.stopped})" if state.stopped else "")
    return None


def measure_tune(plan: Plan, output: Path, steps: Steps) -> tuple[dict[str, Measured], TuneState,
                                                                     Confirmation | None, str | None]:
    """Halve to one contender within the budget, confirm it against the default; what was measured."""
    state = _load_state(output, plan.request)
    try:
        output.mkdir(parents=True, exist_ok=True)
        state.save(output)
    except OSError as exc:
        raise TuneError(f"`output` {output}: cannot write there ({exc.strerror or exc}); give a writable "
                        "directory") from None
    clock = _Clock(state, plan.budget_s)
    measured, live = _halve(plan, state, output, steps, clock)
    contenders = [n for n in ranked(measured, live, plan.goal) if n != DEFAULT_SETTING]
    confirmation, why = None, _no_contest(measured, contenders, state)
    recorded = next((s for s in state.steps if s["dir"] == "confirm"), None)
    if why is None and recorded is None and (pairs := _confirm_pairs(plan, state, clock)):
        recorded = {"dir": "confirm", "settings": [DEFAULT_SETTING, contenders[0]], "repeats": pairs}
        state.steps.append(recorded)
    if why is None and recorded is None:
        why = f"the budget left no time for {MIN_PAIRS} paired rounds"
    elif recorded is not None:
        if not recorded.get("done"):
            _measure_step(plan, state, output, recorded, steps, clock)
        # The contender it was started with: a rerun must not pick another from the samples since.
        default, contender = ({s.name: s for s in plan.settings}[n] for n in recorded["settings"])
        confirmation = confirm(_frame(output, ["confirm"]), (default.path, default.options.text),
                               (contender.path, contender.options.text), contender.name, plan.goal.metric)
        why = None if confirmation is not None else "the paired run has fewer than 6 rounds with both loads measured"
    measured = measured_settings(_frame(output, [s["dir"] for s in state.steps]), _keys(plan.settings))
    mark_front(measured)
    state.spent_s = clock.spent
    state.save(output)
    return measured, state, confirmation, why
