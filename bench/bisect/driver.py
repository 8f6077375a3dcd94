"""Measure a bisect's steps, each a paired run of its own, and keep them where a rerun finds them.

``OUTPUT/bisect.json`` says what is bisected; ``OUTPUT/step-NN`` is each step's run
directory. Every decision is a function of the step runs' records, so a rerun of the same
command replays the finished steps without measuring, resumes an interrupted one, and
goes on: Ctrl-C loses at most the sample in flight.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from loadbench.bench.bisect.candidates import BisectError, Candidate
from loadbench.bench.bisect.search import (
    Reading,
    half_change,
    planned_steps,
    read_confirmation,
    read_ends,
    read_middle,
)
from loadbench.bench.suite import Suite

__all__ = ["BisectInterrupted", "BisectResult", "Measuring", "Step", "run_bisect"]

STATE_FILE = "bisect.json"
FORMAT = "loadbench-bisect/1"
# How each outcome ends the command: a release named and confirmed; GOOD and BAD alike; not decided.
EXIT_CODES = {"found": 0, "no_change": 1, "spread": 3, "inconclusive": 3, "unconfirmed": 3}


class BisectInterrupted(KeyboardInterrupt):
    """A step's run was interrupted; its samples are kept and a rerun continues from them."""


@dataclass(frozen=True)
class Step:
    """One measured step: which versions (the baseline first), what was read, and what it cost."""

    number: int
    kind: str  # ends, middle or confirm
    labels: tuple[str, ...]
    run_dir: str
    threshold: float  # the change that counts at this step (a fraction)
    readings: dict[str, Reading]  # each version but the baseline, against the baseline
    move: str
    blocks: int
    minutes: float
    reused: bool


@dataclass(frozen=True)
class BisectResult:
    """Where a bisect ended: the first release (or commit) that changed the metric, or why none is named."""

    outcome: str  # found, no_change, spread, inconclusive, unconfirmed
    target: str
    metric: str
    first_changed: str | None
    previous: str | None
    change: float | None
    ci_low: float | None
    ci_high: float | None
    steps: list[Step]
    environments_built: int
    output: Path
    candidates: int
    minutes: float = 0.0
    open_range: tuple[str, str] | None = None  # what is still open when none is named
    subjects: dict[str, str] = field(default_factory=dict)  # a commit's first line, by label

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.outcome]

    def to_json(self) -> dict[str, Any]:
        def number(value: float | None) -> float | None:
            return None if value is None or value != value else round(value, 6)

        return {"schema": FORMAT, "outcome": self.outcome, "target": self.target, "metric": self.metric,
                "first_changed": self.first_changed, "previous": self.previous, "change": number(self.change),
                "ci_low": number(self.ci_low), "ci_high": number(self.ci_high), "candidates": self.candidates,
                "open_range": list(self.open_range) if self.open_range else None,
                "environments_built": self.environments_built, "minutes": round(self.minutes, 2),
                "output": str(self.output), "exit_code": self.exit_code,
                "steps": [{**{k: v for k, v in asdict(s).items() if k != "readings"}, "labels": list(s.labels),
                           "readings": {k: {**asdict(r), "change": number(r.change), "ci_low": number(r.ci_low),
                                            "ci_high": number(r.ci_high)} for k, r in s.readings.items()}}
                          for s in self.steps]}


@dataclass(frozen=True)
class Measuring:
    """How a step measures and reads: the public API's run, resume, compare and history_add.

    Given by bench/api.py, which calls this module, so that this module need not import it.
    """

    run: Callable[..., Any]
    resume: Callable[..., Any]
    compare: Callable[..., Any]
    history_add: Callable[..., Any]


@dataclass
class _Bisect:
    candidates: list[Candidate]
    target: str
    suite: Suite
    metric: str
    alpha: float
    output: Path
    history: Path | None
    repo: Path | None
    on_step: Callable[[Step], None]
    progress: bool
    repeats: int | None
    budget: dict[str, Any]
    api: Measuring | None
    steps: list[Step] = field(default_factory=list)
    built: int = 0

    def requirement(self, candidate: Candidate) -> str:
        if candidate.requirement is not None:
            return candidate.requirement
        from loadbench.bench.bisect.wheels import requirement_for_commit

        assert self.repo is not None and candidate.commit is not None
        return requirement_for_commit(self.repo, candidate.commit)

    def measure(self, kind: str, indices: Sequence[int], threshold: float | None) -> Step:
        """One step's paired run (found on disk, resumed, or measured now) and its readings."""
        from loadbench.bench.executors.env_build import ensure_environment

        api = self.api
        assert api is not None, "run_bisect(measuring=...) measures the steps"

        number = len(self.steps) + 1
        chosen = [self.candidates[i] for i in indices]
        labels = tuple(c.label for c in chosen)
        run_dir = self.output / f"step-{number:02d}"
        alpha = self.alpha / planned_steps(len(self.candidates)) / (len(indices) - 1)
        rule: dict[str, Any] = {"gate": [self.metric], "alpha": alpha}
        if threshold is not None:
            rule["thresholds"] = {self.metric: threshold * 100}
        info = _run_info(run_dir)
        if info is not None:
            _check_same_step(run_dir, info, labels)
        reused = info is not None and info.get("status") == "complete"
        if not reused:
            environments = []
            for candidate in chosen:
                requirement = self.requirement(candidate)
                built = ensure_environment(candidate.label, [requirement], say=_on_stderr)
                self.built += not built.reused
                environments.append({"name": candidate.label, "requirements": [requirement]})
            if info is None:
                from loadbench.results.comparison.stats import sign_sequence_pairs_needed

                # The first look as soon as the step's interval can exclude 0 at all, unless told.
                repeats = self.repeats or sign_sequence_pairs_needed(alpha)
                result = api.run(self.suite.with_overrides(environments=environments, until_decided=True,
                                                           compare=rule, repeats=repeats,
                                                           **self.budget),
                                 output=run_dir, progress=self.progress)
            else:
                result = api.resume(run_dir, progress=self.progress)
            if result.interrupted:
                raise BisectInterrupted(str(run_dir))
            if self.history is not None:
                api.history_add(run_dir, self.history, labels=[f"bisect {self.target} step {number}: "
                                                               + " ".join(labels)])
            if result.interrupted_again:  # Ctrl-C while its reports were written: the run is whole; stop here
                raise BisectInterrupted(str(run_dir))
        compared = api.compare(run_dir, baseline_env=labels[0], gate=[self.metric], metrics=[self.metric],
                               thresholds={self.metric: threshold} if threshold is not None else {}, alpha=alpha,
                               fail_on_inconclusive=False)
        readings = _readings(compared.table, self.metric, labels)
        info = _run_info(run_dir) or {}
        step = Step(number, kind, labels, str(run_dir), compared.table["threshold"].iloc[0] if threshold is None
                    else threshold, readings, "", max((r.pairs for r in readings.values()), default=0),
                    _minutes(info), reused)
        return step

    def record(self, step: Step, move: str) -> Step:
        done = replace(step, move=move)
        self.steps.append(done)
        self.on_step(done)
        return done


def _on_stderr(line: str) -> None:
    """A build's progress, on stderr; finding one built is not news (the run says it again)."""
    if ": reusing " not in line:
        print(line, file=sys.stderr, flush=True)


def _run_info(run_dir: Path) -> dict[str, Any] | None:
    if not (run_dir / "run.json").exists():
        return None
    from loadbench.results import read_run_info

    return read_run_info(run_dir)


def _check_same_step(run_dir: Path, info: dict[str, Any], labels: tuple[str, ...]) -> None:
    from loadbench.results.records.runinfo import named_environments

    found = tuple(named_environments(info))
    if found != labels:
        raise BisectError(f"{run_dir} measured {', '.join(found) or 'nothing'}, where this bisect's step measures "
                          f"{', '.join(labels)}: it belongs to another bisect; give another --output")


def _minutes(info: dict[str, Any]) -> float:
    try:
        started = datetime.fromisoformat(str(info["started_at"]))
        finished = datetime.fromisoformat(str(info["finished_at"]))
    except (KeyError, ValueError):
        return float("nan")
    return (finished - started).total_seconds() / 60


def _readings(table: Any, metric: str, labels: tuple[str, ...]) -> dict[str, Reading]:
    rows = table[(table["metric"] == metric) & table["gated"].astype(bool)]
    found: dict[str, Reading] = {}
    for label in labels[1:]:
        mine = rows[rows["candidate_env"] == label] if "candidate_env" in rows.columns else rows
        if len(mine) != 1:
            raise BisectError(f"the comparison of {label} with {labels[0]} has {len(mine)} rows of {metric}; "
                              "a bisect follows one case: give one checkpoint, path, device, dtype and cache state")
        row = mine.iloc[0]
        found[label] = Reading(str(row["verdict"]), float(row["change"]), float(row["ci_low"]),
                               float(row["ci_high"]), int(row["pairs"]))
    return found


def _state(candidates: list[Candidate], target: str, metric: str, suite: Suite) -> dict[str, Any]:
    return {"schema": FORMAT, "target": target, "metric": metric, "candidates": [c.label for c in candidates],
            "case": {k: suite.model_dump(mode="json")[k] for k in ("checkpoints", "paths", "device", "dtype",
                                                                    "cache", "options")}}


def _claim(output: Path, state: dict[str, Any]) -> None:
    """Write what this bisect is into OUTPUT, or check that OUTPUT holds this same bisect."""
    from loadbench.results.records.durable import write_json_atomic

    path = output / STATE_FILE
    if path.exists():
        try:
            found = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise BisectError(f"{path}: unreadable ({exc}); give another --output") from None
        if not isinstance(found, dict):
            raise BisectError(f"{path}: not a bisect's record; give another --output")
        if found != state and any(output.glob("step-*")):
            raise BisectError(f"{output} holds another bisect ({found.get('target')}, {found.get('metric')}); "
                              "give another --output, or the same arguments to continue it")
        if found == state:
            return
    try:
        if output.exists() and not path.exists() and any(output.iterdir()):
            raise BisectError(f"--output {output}: not empty and not a bisect's; give a new directory")
        output.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, state)
    except OSError as exc:
        raise BisectError(f"--output {output}: cannot be written ({exc.strerror or exc}); give a directory "
                          "you can write") from None


def run_bisect(candidates: list[Candidate], *, target: str, suite: Suite, metric: str, alpha: float,
               output: Path, history: Path | None, repo: Path | None = None,
               on_step: Callable[[Step], None] = lambda step: None, progress: bool = False,
               repeats: int | None = None, budget: dict[str, Any] | None = None,
               measuring: Measuring | None = None) -> BisectResult:
    """Bisect ``candidates`` (oldest first) for the first that changed ``metric`` (bench/bisect/search.py)."""
    if len(candidates) < 2:
        raise BisectError(f"{target}: fewer than two versions to bisect")
    _claim(output, _state(candidates, target, metric, suite))
    started = time.monotonic()
    job = _Bisect(candidates, target, suite, metric, alpha, output, history, repo, on_step, progress, repeats,
                  budget or {}, measuring)
    lo, hi = 0, len(candidates) - 1

    def ended(outcome: str, reading: Reading | None = None) -> BisectResult:
        named = outcome in ("found", "unconfirmed")
        return BisectResult(outcome, target, metric, candidates[hi].label if named else None,
                            candidates[lo].label if named else None,
                            reading.change if reading else None, reading.ci_low if reading else None,
                            reading.ci_high if reading else None, job.steps, job.built, output, len(candidates),
                            (time.monotonic() - started) / 60,
                            None if named else (candidates[lo].label, candidates[hi].label),
                            {c.label: c.subject for c in candidates if c.subject})

    step = job.measure("ends", [lo, hi], None)
    overall = step.readings[candidates[hi].label]
    move = read_ends(overall)
    job.record(step, move)
    if move != "changed":
        return ended("no_change" if move == "unchanged" else "inconclusive", overall)
    direction = 1 if overall.change > 0 else -1
    if hi - lo == 1:
        return ended("found", overall)
    change = overall.change  # of the range still open
    while hi - lo > 1:
        middle = (lo + hi) // 2
        step = job.measure("middle", [middle, lo, hi], half_change(change))
        earlier, later = step.readings[candidates[lo].label], step.readings[candidates[hi].label]
        move = read_middle(earlier, later, direction)
        job.record(step, move)
        if move == "left":
            hi, change = middle, 1 / (1 + earlier.change) - 1
        elif move == "right":
            lo, change = middle, later.change
        else:
            return ended(move)
    step = job.measure("confirm", [lo, hi], None)
    reading = step.readings[candidates[hi].label]
    move = read_confirmation(reading, direction)
    job.record(step, move)
    return ended("found" if move == "changed" else "unconfirmed", reading)
