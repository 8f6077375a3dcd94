"""Run a suite: plan, measure each sample in a fresh worker, record as results arrive.

This is the Python API the CLI and tests call. Every sample's records are appended and
flushed before the next sample starts, so a crash or Ctrl-C loses nothing measured.
"""

from __future__ import annotations

import random
import secrets
import signal
import threading
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


def _execute(plan_: _Plan, writer: RunWriter, executor: Executor, done_keys: set[tuple[Any, ...]],
             progress: Progress | None) -> RunOutcome:
    suite, run_id = plan_.suite, plan_.run_id
    runnable = [c for c in plan_.cases if c.not_applicable is None]
    rounds = _rounds(suite)
    # The full seeded order is drawn even when resuming, so a resumed run keeps it.
    order = _order(runnable, rounds, plan_.seed)
    todo = [(r, c, b) for r, c, b in order if _planned_key(run_id, c, r) not in done_keys]
    jobs = [Job(i, request_for(case, suite, check_equivalence=round_.first_measured), suite.timeout_s,
                env=case.env) for i, (round_, case, _) in enumerate(todo)]
    done = failed = lost = 0

    def started(job: Job) -> None:
        if progress is not None:
            round_, case, _ = todo[job.index]
            progress(("warmup · " if round_.warmup else "") + case.label, done, len(todo))

    with _stop_signals_as_interrupt():
        try:
            for case in plan_.cases:
                if case.not_applicable is not None and _planned_key(run_id, case, Round(0, False)) not in done_keys:
                    writer.append(Sample.not_applicable(case.key(), run_id, 0, "load_s", case.not_applicable,
                                                        node=None))
            for finished in executor.run(jobs, started):
                round_, case, block = todo[finished.index]
                writer.append_sample(_records(case, run_id, round_, block, finished))
                failed += finished.failed
                lost += finished.failure is not None and finished.failure.error_type == NODE_LOST
                done += 1
        except KeyboardInterrupt:
            _close(writer, "interrupted")
            return RunOutcome(writer.run_dir, done, failed, interrupted=True, lost=lost)
        except OSError as exc:
            try:
                _close(writer, "interrupted")
            except OSError:
                pass  # run.json cannot be replaced either: it still says "running", resume works alike
            raise OutputFull(f"{writer.run_dir}: cannot write more samples ({exc.strerror or exc}) after {done} "
                             f"in this session, each kept whole; make room, then finish it with: "
                             f"loadbench run --resume {writer.run_dir}") from None
    unrun = len(todo) - done
    if progress is not None:
        progress("done", done, len(todo))
    # A run that lost samples stays open to --resume, which measures them again.
    _close(writer, "complete" if lost + unrun == 0 else "interrupted")
    return RunOutcome(writer.run_dir, done, failed, interrupted=False, lost=lost + unrun)


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
