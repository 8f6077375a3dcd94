"""Run a suite: plan, measure each sample in a fresh worker, record as results arrive.

This is the Python API the CLI and tests call. Every sample's records are appended and
flushed before the next sample starts, so a crash or Ctrl-C loses nothing measured.
"""

from __future__ import annotations

import random
import secrets
import signal
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from loadbench.results import CASE_KEYS, RunWriter, Sample, read_run_info, read_samples
from loadbench.results.schema import is_retryable

from .executor import EXECUTORS, NODE_LOST, Executor, Finished, Job, LocalExecutor, worker_cpus
from .fingerprint import fingerprint
from .plan import Case, plan
from .suite import Suite
from .worker import SampleRequest

__all__ = ["ExecutorError", "OutputNotWritable", "RunOutcome", "make_executor", "new_run_id", "records_for",
           "resume_run", "run_suite"]

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
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ-") + secrets.token_hex(2)


@dataclass(frozen=True)
class Round:
    """One pass over every case: warmup passes come first and are recorded as such."""

    repeat: int
    warmup: bool


def _rounds(suite: Suite) -> list[Round]:
    return ([Round(i, True) for i in range(suite.warmups)]
            + [Round(i, False) for i in range(suite.repeats)])


def _request(case: Case, suite: Suite, round_: Round) -> SampleRequest:
    """The sample's request; the executor fills in threads and CPUs of the node that runs it."""
    return SampleRequest(
        checkpoint_dir=case.checkpoint_dir, path=case.path, task=case.task, device=case.device,
        dtype=case.dtype, prompt=suite.prompt, batch_size=suite.batch_size,
        new_tokens=suite.new_tokens, forward_iters=suite.forward_iters,
        check_equivalence=round_ == Round(0, False), cache=case.cache,
        prompt_tokens=suite.prompt_tokens, builtin=case.builtin,
        trust_remote_code=suite.trust_remote_code, allow_bin_weights=suite.allow_bin_weights,
    )


def records_for(case: Case, run_id: str, round_: Round, reply: dict[str, Any],
                node: str | None = None) -> list[Sample]:
    """The records of one worker reply; not-applicable metrics are kept once per case."""
    key, repeat = case.key(), round_.repeat
    info = reply["info"]
    extra: dict[str, Any] = {k: info[k] for k in ("attn_implementation", "resident_dtype") if k in info}
    extra.update(warmup=round_.warmup, node=node)
    records = [Sample.ok(key, run_id, repeat, m["metric"], float(m["value"]), **extra)
               for m in reply["metrics"]]
    records += [Sample.failed(key, run_id, repeat, f["metric"], f["error_type"], f["error"], **extra)
                for f in reply["failures"]]
    if round_ == Round(0, False):
        records += [Sample.not_applicable(key, run_id, repeat, n["metric"], n["reason"], node=node)
                    for n in reply["not_applicable"]]
    return records


class ExecutorError(ValueError):
    """The executor cannot be made or reached; the message says what to change."""


def make_executor(name: str, suite: Suite, *, address: str | None = None,
                  max_parallel: int | None = None) -> Executor:
    """The executor called ``name``: ``local`` (default) or ``ray`` (needs the ray extra)."""
    if max_parallel is not None and max_parallel < 1:
        raise ExecutorError(f"--max-parallel {max_parallel}: give 1 or more samples at once")
    if name == "local":
        if max_parallel not in (None, 1):
            raise ExecutorError("--max-parallel needs --executor ray: samples run at once on one machine "
                                "would slow each other down")
        if address is not None:
            raise ExecutorError("--ray-address needs --executor ray")
        return LocalExecutor(*worker_cpus(suite.threads, suite.pin_cpus))
    if name == "ray":
        from .ray_executor import RayExecutor

        return RayExecutor(suite, address=address, max_parallel=max_parallel)
    raise ExecutorError(f"executor {name!r}: choose one of {', '.join(EXECUTORS)}")


def run_suite(
    suite: Suite,
    output: Path | None = None,
    *,
    cache_dir: Path | None = None,
    progress: Progress | None = None,
    executor: Executor | None = None,
) -> RunOutcome:
    """Measure every case of ``suite`` (warmups, then repeats) into a new run directory.

    Each round visits the cases in a fresh seeded random order, so drift over the run
    (thermal, other tenants) spreads over all paths instead of biasing the last ones.
    ``executor`` decides where samples run (default: this machine, one at a time).
    """
    run_id = new_run_id()
    run_dir = Path(output) if output is not None else Path("runs") / run_id
    executor = executor if executor is not None else make_executor("local", suite)
    try:
        # All input errors surface here, before any sample runs.
        cases = plan(suite, cache_dir, cuda_available=executor.cuda_available)
        seed = suite.seed if suite.seed is not None else secrets.randbelow(2**31)
        info: dict[str, Any] = {
            "run_id": run_id,
            "suite": suite.model_dump(),
            "executor": {"name": executor.name, **executor.settings},
            "seed": seed,
            "cases": len(cases),
            "samples_planned": sum(c.not_applicable is None for c in cases) * len(_rounds(suite)),
        }
        if isinstance(executor, LocalExecutor):
            info.update(threads=executor.threads, cpus=executor.cpus)
        info["nodes"] = executor.start(run_id, str(run_dir / WORKER_LOG))
        # The run's fingerprint is a measuring machine's (the first node's when there are
        # several; each record names its own), never the machine that only coordinated.
        info["fingerprint"] = next(iter(info["nodes"].values()))
        if not isinstance(executor, LocalExecutor):
            info["driver"] = fingerprint()
            # Remote nodes run from no checkout; the commit a run stands for is the one it was launched from.
            info["git_commit"] = info["driver"]["git_commit"]
        writer = _create_writer(run_dir, info)
        return _execute(_Plan(suite, run_id, seed, cases), writer, executor, set(), progress)
    finally:
        executor.close()


class OutputNotWritable(ValueError):
    """The run directory cannot be created or written."""


def _create_writer(run_dir: Path, info: dict[str, Any]) -> RunWriter:
    try:
        return RunWriter.create(run_dir, info)
    except (PermissionError, NotADirectoryError, FileNotFoundError, OSError) as exc:
        if isinstance(exc, FileExistsError):
            raise
        raise OutputNotWritable(
            f"{run_dir}: cannot write the run directory ({exc.strerror or exc}); choose another --output"
        ) from None


def resume_run(run_dir: Path, *, cache_dir: Path | None = None, progress: Progress | None = None,
               executor: Executor | None = None) -> RunOutcome:
    """Take only the samples an interrupted run is missing, with its own suite and seed.

    Samples lost with their node (``node_lost``) count as missing: the case was not at
    fault, so they are measured again. Without ``executor``, a local run resumes locally
    with its own threads and CPUs; a Ray run needs one made by ``make_executor``.
    """
    info = read_run_info(run_dir)
    suite = Suite(**info["suite"])
    recorded = (info.get("executor") or {}).get("name", "local")
    if executor is None:
        if recorded != "local":
            raise ExecutorError(f"{run_dir}: the run used --executor {recorded}; resume it with the same executor")
        executor = LocalExecutor(info["threads"], info.get("cpus"))
    try:
        cases = plan(suite, cache_dir, cuda_available=executor.cuda_available)
        nodes = executor.start(info["run_id"], str(Path(run_dir) / WORKER_LOG))
        writer = RunWriter.reopen(run_dir)
        writer.update(nodes={**(info.get("nodes") or {}), **nodes})
        return _execute(_Plan(suite, info["run_id"], info["seed"], cases), writer, executor,
                        _measured(read_samples(run_dir)), progress)
    finally:
        executor.close()


def _measured(records: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
    """The samples a run holds, leaving out those whose only records say their node was lost."""
    kept: set[tuple[Any, ...]] = set()
    for record in records:
        if not is_retryable(record):
            kept.add(_sample_key(record, record["repeat"], record["warmup"]))
    return kept


@dataclass(frozen=True)
class _Plan:
    suite: Suite
    run_id: str
    seed: int
    cases: list[Case]


def _sample_key(case_key: dict[str, Any], repeat: int, warmup: bool) -> tuple[Any, ...]:
    """A sample's identity, the same whether read from a record or planned from a case."""
    return (*(case_key[k] for k in CASE_KEYS), repeat, warmup)


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (a scheduler stopping the job) ends the run like Ctrl-C: cleanly, data kept."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _execute(plan_: _Plan, writer: RunWriter, executor: Executor, done_keys: set[tuple[Any, ...]],
             progress: Progress | None) -> RunOutcome:
    suite, run_id = plan_.suite, plan_.run_id
    runnable = [c for c in plan_.cases if c.not_applicable is None]
    rounds = _rounds(suite)
    # The full seeded order is drawn even when resuming, so a resumed run keeps it.
    rng = random.Random(plan_.seed)
    order = [(round_, case) for round_ in rounds for case in rng.sample(runnable, len(runnable))]
    todo = [(r, c) for r, c in order
            if _sample_key(c.key(), r.repeat, r.warmup) not in done_keys]
    jobs = [Job(i, _request(case, suite, round_), suite.timeout_s) for i, (round_, case) in enumerate(todo)]
    done = failed = lost = 0

    def started(job: Job) -> None:
        if progress is not None:
            round_, case = todo[job.index]
            progress(("warmup · " if round_.warmup else "") + case.label, done, len(todo))

    with _sigterm_as_interrupt():
        try:
            for case in plan_.cases:
                if case.not_applicable is not None and _sample_key(case.key(), 0, False) not in done_keys:
                    writer.append(Sample.not_applicable(case.key(), run_id, 0, "load_s", case.not_applicable,
                                                        node=None))
            for finished in executor.run(jobs, started):
                round_, case = todo[finished.index]
                for record in _records(case, run_id, round_, finished):
                    writer.append(record)
                failed += finished.failure is not None or bool(finished.reply and finished.reply["failures"])
                lost += finished.failure is not None and finished.failure.error_type == NODE_LOST
                done += 1
        except KeyboardInterrupt:
            writer.close("interrupted")
            return RunOutcome(writer.run_dir, done, failed, interrupted=True, lost=lost)
    unrun = len(todo) - done
    if progress is not None:
        progress("done", done, len(todo))
    # A run that lost samples stays open to --resume, which measures them again.
    writer.close("complete" if lost + unrun == 0 else "interrupted")
    return RunOutcome(writer.run_dir, done, failed, interrupted=False, lost=lost + unrun)


def _records(case: Case, run_id: str, round_: Round, finished: Finished) -> list[Sample]:
    if finished.failure is not None:
        exc = finished.failure
        return [Sample.failed(case.key(), run_id, round_.repeat, "load_s", exc.error_type, str(exc),
                              warmup=round_.warmup, node=finished.node)]
    assert finished.reply is not None
    return records_for(case, run_id, round_, finished.reply, node=finished.node)
