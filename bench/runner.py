"""Run a suite: plan, measure each sample in a fresh worker, record as results arrive.

This is the Python API the CLI and tests call. Every sample's records are appended and
flushed before the next sample starts, so a crash or Ctrl-C loses nothing measured.
"""

from __future__ import annotations

import random
import secrets
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loadbench.bench.executors.base import Executor, Finished, Job
from loadbench.bench.executors.environments import check_environments_unchanged
from loadbench.bench.fingerprint import fingerprint
from loadbench.bench.identity import absolute_paths, check_unchanged, digests
from loadbench.bench.plan import Case, plan
from loadbench.bench.sample.translate import Round, failure_records, records_for, request_for
from loadbench.bench.suite import Suite
from loadbench.errors import UserError
from loadbench.results import RunWriter, Sample, TruncatedRunWarning, read_samples
from loadbench.results.records.schema import is_retryable, sample_key
from loadbench.results.records.store import CloseStatus
from loadbench.vocabulary import NODE_LOST

__all__ = ["OutputFull", "OutputNotWritable", "Progress", "RunOutcome", "WORKER_LOG", "new_run_id", "resume_run",
           "run_suite"]

WORKER_LOG = "worker.log"
Progress = Callable[[str, int, int], None]  # (current case label, done, total)


@dataclass(frozen=True)
class RunOutcome:
    run_dir: Path
    samples: int  # worker samples taken
    failed_samples: int
    interrupted: bool
    lost: int = 0  # samples lost with their node, or left unrun when no node could take them
    # With until_decided: run.json's ``sequential`` (when and why each case stopped).
    sequential: dict[str, Any] | None = None


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ-") + secrets.token_hex(2)


def _rounds(suite: Suite) -> list[Round]:
    return ([Round(i, True) for i in range(suite.warmups)]
            + [Round(i, False) for i in range(suite.repeats)])


def run_suite(
    suite: Suite,
    output: Path | None = None,
    *,
    cache_dir: Path | None = None,
    progress: Progress | None = None,
    executor: Executor,
) -> RunOutcome:
    """Measure every case of ``suite`` (warmups, then repeats) into a new run directory.

    Samples are measured in a seeded random order (see ``_order``); ``executor`` decides
    where they run (``executors.factory.make_executor`` picks one).
    """
    run_id = new_run_id()
    run_dir = Path(output) if output is not None else Path("runs") / run_id
    suite = absolute_paths(suite)
    try:
        # All input errors surface here, before any sample runs.
        cases = plan(suite, cache_dir, cuda_available=executor.cuda_available)
        seed = suite.seed if suite.seed is not None else secrets.randbelow(2**31)
        info: dict[str, Any] = {
            "run_id": run_id,
            "suite": suite.model_dump(),
            "checkpoints": digests(c.checkpoint_dir for c in cases),
            # Which weights a hub id stood for when this run measured it.
            "checkpoint_commits": {c.checkpoint: c.commit for c in cases if c.commit is not None},
            "executor": {"name": executor.name, **executor.settings},
            "seed": seed,
            "cases": len(cases),
            "samples_planned": sum(c.not_applicable is None for c in cases) * len(_rounds(suite)),
        }
        info.update(executor.run_fields())
        info["nodes"] = executor.start(run_id, str(run_dir / WORKER_LOG))
        # The run's fingerprint is a measuring machine's (the first node's when there are
        # several; each record names its own), never the machine that only coordinated.
        info["fingerprint"] = next(iter(info["nodes"].values()))
        if not executor.in_this_process:
            info["driver"] = fingerprint()
            # Remote nodes run from no checkout; the commit a run stands for is the one it was launched from.
            info["git_commit"] = info["driver"]["git_commit"]
        info["ceiling"] = _ceiling(executor, cases)
        writer = _create_writer(run_dir, info)
        return _execute(_Plan(suite, run_id, seed, cases), writer, executor, set(), progress)
    finally:
        executor.close()


def _ceiling(executor: Executor, cases: list[Case]) -> dict[str, Any]:
    """run.json's ``ceiling``: measured (or read from the cache) here, before any sample is timed.

    Only where the samples run on this machine: a cluster's nodes have disks and memory of their own.
    """
    if not executor.on_this_machine:
        return {"not_measured": f"samples run on {executor.name} nodes, not on the machine that started the run"}
    from loadbench.bench.ceiling.measure import run_ceiling

    return run_ceiling({c.checkpoint: c.checkpoint_dir for c in cases})


class OutputNotWritable(UserError):
    """The run directory cannot be created or written."""


def _create_writer(run_dir: Path, info: dict[str, Any]) -> RunWriter:
    if run_dir.exists() and not run_dir.is_dir():
        raise OutputNotWritable(f"{run_dir}: is a file, not a directory; choose another `output`")
    try:
        return RunWriter.create(run_dir, info)
    except (PermissionError, NotADirectoryError, FileNotFoundError, OSError) as exc:
        if isinstance(exc, FileExistsError):
            raise
        raise OutputNotWritable(
            f"{run_dir}: cannot write the run directory ({exc.strerror or exc}); choose another `output`"
        ) from None


def resume_run(run_dir: Path, info: dict[str, Any], suite: Suite, executor: Executor, *,
               cache_dir: Path | None = None, progress: Progress | None = None) -> RunOutcome:
    """Take only the samples an interrupted run is missing, with its own suite and seed.

    ``info`` is the run's run.json, ``suite`` the suite it holds and ``executor`` one
    made for it (``api.resume`` makes all three). Samples lost with their node
    (``node_lost``) count as missing: the case was not at fault, so they are measured again.
    """
    try:
        commits = info.get("checkpoint_commits")
        cases = plan(suite, cache_dir, cuda_available=executor.cuda_available,
                     commits=commits if isinstance(commits, dict) else None)
        check_unchanged(Path(run_dir), info.get("checkpoints"), (c.checkpoint_dir for c in cases))
        with warnings.catch_warnings():  # a sample cut short is expected here: it is measured again
            warnings.simplefilter("ignore", TruncatedRunWarning)
            done = _measured(read_samples(run_dir))
        nodes = executor.start(info["run_id"], str(Path(run_dir) / WORKER_LOG))
        check_environments_unchanged(Path(run_dir), info.get("nodes"), nodes)
        # Only now, with everything checked, does run.json say "running" again.
        writer = RunWriter.reopen(run_dir)
        writer.update(nodes={**(info.get("nodes") or {}), **nodes})
        return _execute(_Plan(suite, info["run_id"], info["seed"], cases), writer, executor, done, progress)
    finally:
        executor.close()


def _measured(records: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
    """The samples a run holds, leaving out those whose only records say their node was lost."""
    return {sample_key(record) for record in records if not is_retryable(record)}


@dataclass(frozen=True)
class _Plan:
    suite: Suite
    run_id: str
    seed: int
    cases: list[Case]


def _planned_key(run_id: str, case: Case, round_: Round) -> tuple[Any, ...]:
    """The identity a planned sample's records will have (results.schema.sample_key)."""
    return sample_key({"run_id": run_id, **case.key(), "repeat": round_.repeat, "warmup": round_.warmup})


# A scheduler stopping the job (SIGTERM) and a closed terminal or SSH session (SIGHUP)
# end the run like Ctrl-C: cleanly, every whole sample kept, the run open to --resume.
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


@contextmanager
def _stop_signals_as_interrupt() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in _STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _close(writer: RunWriter, status: CloseStatus) -> None:
    """Close the run with ``status``, however many more Ctrl-Cs arrive meanwhile."""
    while not writer.closed:
        try:
            writer.close(status)
        except KeyboardInterrupt:
            continue


class OutputFull(UserError):
    """samples.jsonl cannot grow (a full disk, a file size limit): the run stops, resumable."""


@dataclass
class _Tally:
    """What this session measured so far, across the fixed rounds and the sequential ones."""

    done: int = 0
    failed: int = 0
    lost: int = 0
    planned: int = 0


def _execute(plan_: _Plan, writer: RunWriter, executor: Executor, done_keys: set[tuple[Any, ...]],
             progress: Progress | None) -> RunOutcome:
    suite, run_id = plan_.suite, plan_.run_id
    runnable = [c for c in plan_.cases if c.not_applicable is None]
    rounds = _rounds(suite)
    # The full seeded order is drawn even when resuming, so a resumed run keeps it.
    order = _order(runnable, rounds, plan_.seed)
    todo = [(r, c, b) for r, c, b in order if _planned_key(run_id, c, r) not in done_keys]
    tally = _Tally(planned=len(todo))
    sequential: dict[str, Any] | None = None
    measuring_since = time.monotonic()

    with _stop_signals_as_interrupt():
        try:
            for case in plan_.cases:
                if case.not_applicable is not None and _planned_key(run_id, case, Round(0, False)) not in done_keys:
                    writer.append(Sample.not_applicable(case.key(), run_id, 0, "load_s", case.not_applicable,
                                                        node=None))
            _measure(todo, plan_, writer, executor, tally, progress)
            if suite.until_decided:
                sequential = _until_decided(plan_, writer, executor, done_keys, runnable, tally, progress,
                                            measuring_since)
        except KeyboardInterrupt:
            _close(writer, "interrupted")
            return RunOutcome(writer.run_dir, tally.done, tally.failed, interrupted=True, lost=tally.lost,
                              sequential=writer.info.get("sequential"))
        except OSError as exc:
            try:
                _close(writer, "interrupted")
            except OSError:
                pass  # run.json cannot be replaced either: it still says "running", resume works alike
            raise OutputFull(f"{writer.run_dir}: cannot write more samples ({exc.strerror or exc}) after "
                             f"{tally.done} in this session, each kept whole; make room, then finish it with: "
                             f"loadbench run --resume {writer.run_dir}") from None
    unrun = tally.planned - tally.done
    if progress is not None:
        progress("done", tally.done, tally.planned)
    # A run that lost samples stays open to --resume, which measures them again.
    _close(writer, "complete" if tally.lost + unrun == 0 else "interrupted")
    return RunOutcome(writer.run_dir, tally.done, tally.failed, interrupted=False, lost=tally.lost + unrun,
                      sequential=sequential)


def _measure(todo: list[tuple[Round, Case, int | None]], plan_: _Plan, writer: RunWriter, executor: Executor,
             tally: _Tally, progress: Progress | None) -> None:
    """Measure ``todo`` in order, appending each sample's records as it finishes."""
    jobs = [Job(i, request_for(case, plan_.suite, check_equivalence=round_.first_measured,
                               record_import=round_.first_measured, warmup=round_.warmup), plan_.suite.timeout_s,
                env=case.env) for i, (round_, case, _) in enumerate(todo)]

    def started(job: Job) -> None:
        if progress is not None:
            round_, case, _ = todo[job.index]
            progress(("warmup · " if round_.warmup else "") + case.label, tally.done, tally.planned)

    for finished in executor.run(jobs, started):
        round_, case, block = todo[finished.index]
        writer.append_sample(_records(case, plan_.run_id, round_, block, finished))
        tally.failed += finished.failed
        tally.lost += finished.failure is not None and finished.failure.error_type == NODE_LOST
        tally.done += 1


def _until_decided(plan_: _Plan, writer: RunWriter, executor: Executor, done_keys: set[tuple[Any, ...]],
                   runnable: list[Case], tally: _Tally, progress: Progress | None,
                   session_start: float) -> dict[str, Any]:
    """After the fixed rounds, one more round at a time for the cases a look leaves undecided.

    Each look sees only the rounds before it, so a resumed run replays the same looks
    (and skips the samples it holds) before it measures anything new. The minutes count
    from the first sample (``session_start``, fixed rounds included) and carry over to a
    resume in run.json's ``sequential``, as the last look recorded them.
    """
    from loadbench.bench.sequential import DEFAULT_MAX_REPEATS, STOP_REASONS, block_keys, look_at_run

    suite = plan_.suite
    budget = suite.max_repeats or DEFAULT_MAX_REPEATS
    earlier = writer.info.get("sequential") if isinstance(writer.info.get("sequential"), dict) else {}
    spent_before = float(earlier.get("minutes") or 0.0)
    # The minutes each earlier look saw: a replayed look judges the budget as the original did.
    timeline: list[float] = [float(m) for m in earlier.get("timeline") or []]
    keys = block_keys(runnable)
    cases_of = {key: [c for c in runnable if tuple(str(v) for v in c.block_key) == key] for key in keys}
    live, stopped = list(keys), {}
    repeat = suite.repeats

    def minutes() -> float:
        look = repeat - suite.repeats
        return timeline[look] if look < len(timeline) else spent_before + (time.monotonic() - session_start) / 60

    def stop(chosen: list[tuple[str, ...]], why: str, undecided: dict[tuple[str, ...], list[str]]) -> None:
        for key in chosen:
            stopped[" · ".join(key)] = {"blocks": repeat, "why": why, "explanation": STOP_REASONS[why],
                                        "inconclusive": undecided.get(key, [])}
        live[:] = [k for k in live if k not in chosen]

    while live:
        now = minutes()
        if repeat - suite.repeats == len(timeline):
            timeline.append(now)
        found = look_at_run(writer.run_dir, suite, repeat)
        stop([k for k in live if k not in found.undecided], "decided", found.undecided)
        if found.regressed:
            stop(list(live), "regression", found.undecided)
        elif repeat >= budget:
            stop(list(live), "max_repeats", found.undecided)
        elif suite.max_minutes is not None and now >= suite.max_minutes:
            stop(list(live), "max_minutes", found.undecided)
        state = {"max_repeats": budget, "max_minutes": suite.max_minutes, "looks": len(timeline),
                 "minutes": round(max(now, spent_before), 3), "timeline": [round(m, 4) for m in timeline],
                 "regressed": found.regressed, "cases": stopped}
        writer.update(sequential=state)
        if not live:
            return state
        round_ = Round(repeat, False)
        todo = [item for item in _extra_round(live, cases_of, round_, plan_.seed, suite.warmups, len(keys))
                if _planned_key(plan_.run_id, item[1], round_) not in done_keys]
        tally.planned += len(todo)
        _measure(todo, plan_, writer, executor, tally, progress)
        repeat += 1
    return writer.info.get("sequential") or {}


def _extra_round(live: list[tuple[str, ...]], cases_of: dict[tuple[str, ...], list[Case]], round_: Round,
                 seed: int, warmups: int, all_blocks: int) -> list[tuple[Round, Case, int | None]]:
    """One sequential round: the live cases' blocks in an order drawn from the seed and the round.

    Block numbers continue the fixed rounds' numbering (a round of ``all_blocks`` each),
    so they stay unique whichever cases a round holds.
    """
    rng = random.Random(f"{seed}:{round_.repeat}")
    order: list[tuple[Round, Case, int | None]] = []
    first = (warmups + round_.repeat) * all_blocks
    for position, key in enumerate(rng.sample(live, len(live))):
        block = cases_of[key]
        order += [(round_, case, first + position) for case in rng.sample(block, len(block))]
    return order


def _records(case: Case, run_id: str, round_: Round, block: int | None, finished: Finished) -> list[Sample]:
    if finished.reply is None:
        assert finished.failure is not None
        return failure_records(case, run_id, round_, finished.failure, node=finished.node, block=block)
    return records_for(case, run_id, round_, finished.reply, node=finished.node, block=block)


def _order(cases: list[Case], rounds: list[Round], seed: int) -> list[tuple[Round, Case, int | None]]:
    """Every sample of the run in the order it is measured, each with its block.

    Each round visits the cases in a fresh seeded random order, so drift over the run
    (thermal, other tenants) spreads over all paths instead of biasing the last ones.
    With several environments, a case's samples in each of them run back to back, in a
    random order, as one numbered block: a paired compare pairs within blocks, where the
    host's drift is the same for both sides. The whole order is drawn from the seed even
    when resuming, so a resumed run keeps it.
    """
    rng = random.Random(seed)
    blocks = list({case.block_key: [c for c in cases if c.block_key == case.block_key] for case in cases}.values())
    paired = any(len(block) > 1 for block in blocks)
    order: list[tuple[Round, Case, int | None]] = []
    number = 0
    for round_ in rounds:
        for block in rng.sample(blocks, len(blocks)):
            # One environment draws nothing more: the order is the one runs had before environments.
            inner = rng.sample(block, len(block)) if len(block) > 1 else block
            order += [(round_, case, number if paired else None) for case in inner]
            number += 1
    return order
