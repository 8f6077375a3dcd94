"""Run a suite: plan, measure each sample in a fresh worker, record as results arrive.

This is the Python API the CLI and tests call. Every sample's records are appended and
flushed before the next sample starts, so a crash or Ctrl-C loses nothing measured.
"""

from __future__ import annotations

import os
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

from .fingerprint import fingerprint
from .plan import Case, plan
from .spawn import WorkerFailed, Zygote
from .suite import Suite
from .worker import SampleRequest

__all__ = ["OutputNotWritable", "RunOutcome", "run_suite", "resume_run", "new_run_id", "records_for"]

WORKER_LOG = "worker.log"
Progress = Callable[[str, int, int], None]  # (current case label, done, total)


@dataclass(frozen=True)
class RunOutcome:
    run_dir: Path
    samples: int  # worker samples taken
    failed_samples: int
    interrupted: bool


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


def _request(case: Case, suite: Suite, round_: Round, threads: int, cpus: list[int] | None) -> SampleRequest:
    return SampleRequest(
        checkpoint_dir=case.checkpoint_dir, path=case.path, task=case.task, device=case.device,
        dtype=case.dtype, prompt=suite.prompt, batch_size=suite.batch_size,
        new_tokens=suite.new_tokens, forward_iters=suite.forward_iters,
        check_equivalence=round_ == Round(0, False), cache=case.cache,
        prompt_tokens=suite.prompt_tokens, threads=threads, cpus=cpus,
        trust_remote_code=suite.trust_remote_code, allow_bin_weights=suite.allow_bin_weights,
    )


def records_for(case: Case, run_id: str, round_: Round, reply: dict[str, Any]) -> list[Sample]:
    """The records of one worker reply; not-applicable metrics are kept once per case."""
    key, repeat = case.key(), round_.repeat
    info = reply["info"]
    extra: dict[str, Any] = {k: info[k] for k in ("attn_implementation", "resident_dtype") if k in info}
    extra["warmup"] = round_.warmup
    records = [Sample.ok(key, run_id, repeat, m["metric"], float(m["value"]), **extra)
               for m in reply["metrics"]]
    records += [Sample.failed(key, run_id, repeat, f["metric"], f["error_type"], f["error"], **extra)
                for f in reply["failures"]]
    if round_ == Round(0, False):
        records += [Sample.not_applicable(key, run_id, repeat, n["metric"], n["reason"])
                    for n in reply["not_applicable"]]
    return records


def _cpus(suite: Suite) -> tuple[int, list[int] | None]:
    """Threads per worker and the CPUs it is pinned to.

    Default: every usable core but one, which is left to the parent and the OS. On the
    2-core machine a pinned worker showed a load_s CV of 6-7% while the host was quiet,
    an unpinned one 22%; when the host itself is noisy both see 15-22% (docs/MEASURING.md).
    """
    allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    usable = len(allowed) or os.cpu_count() or 1
    threads = suite.threads if suite.threads is not None else max(1, usable - 1)
    if not suite.pin_cpus or not allowed or threads > len(allowed):
        return threads, None
    return threads, allowed[-threads:]


def run_suite(
    suite: Suite,
    output: Path | None = None,
    *,
    cache_dir: Path | None = None,
    progress: Progress | None = None,
) -> RunOutcome:
    """Measure every case of ``suite`` (warmups, then repeats) into a new run directory.

    Each round visits the cases in a fresh seeded random order, so drift over the run
    (thermal, other tenants) spreads over all paths instead of biasing the last ones.
    """
    run_id = new_run_id()
    run_dir = Path(output) if output is not None else Path("runs") / run_id
    cases = plan(suite, cache_dir)  # all input errors surface here, before any process starts
    seed = suite.seed if suite.seed is not None else secrets.randbelow(2**31)
    threads, cpus = _cpus(suite)
    writer = _create_writer(run_dir, {
        "run_id": run_id,
        "suite": suite.model_dump(),
        "fingerprint": fingerprint(),
        "seed": seed,
        "threads": threads,
        "cpus": cpus,
        "cases": len(cases),
        "samples_planned": sum(c.not_applicable is None for c in cases) * len(_rounds(suite)),
    })
    zygote = Zygote()
    zygote.warm_up()
    return _execute(_Plan(suite, run_id, seed, threads, cpus, cases), writer, zygote, set(), progress)


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


def resume_run(run_dir: Path, *, cache_dir: Path | None = None, progress: Progress | None = None) -> RunOutcome:
    """Take only the samples an interrupted run is missing, with its own suite and seed."""
    info = read_run_info(run_dir)
    suite = Suite(**info["suite"])
    cases = plan(suite, cache_dir)
    done = {_sample_key(r, r["repeat"], r["warmup"]) for r in read_samples(run_dir)}
    zygote = Zygote()
    zygote.warm_up()
    writer = RunWriter.reopen(run_dir)
    cpus = info.get("cpus")
    plan_ = _Plan(suite, info["run_id"], info["seed"], info["threads"], cpus, cases)
    return _execute(plan_, writer, zygote, done, progress)


@dataclass(frozen=True)
class _Plan:
    suite: Suite
    run_id: str
    seed: int
    threads: int
    cpus: list[int] | None
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


def _execute(plan_: _Plan, writer: RunWriter, zygote: Zygote, done_keys: set[tuple[Any, ...]],
             progress: Progress | None) -> RunOutcome:
    suite, run_id = plan_.suite, plan_.run_id
    zygote.log_path = str(writer.run_dir / WORKER_LOG)
    runnable = [c for c in plan_.cases if c.not_applicable is None]
    rounds = _rounds(suite)
    # The full seeded order is drawn even when resuming, so a resumed run keeps it.
    rng = random.Random(plan_.seed)
    order = [(round_, case) for round_ in rounds for case in rng.sample(runnable, len(runnable))]
    todo = [(r, c) for r, c in order
            if _sample_key(c.key(), r.repeat, r.warmup) not in done_keys]
    done = failed = 0
    with _sigterm_as_interrupt():
        try:
            for case in plan_.cases:
                if case.not_applicable is not None and _sample_key(case.key(), 0, False) not in done_keys:
                    writer.append(Sample.not_applicable(case.key(), run_id, 0, "load_s", case.not_applicable))
            for round_, case in todo:
                if progress is not None:
                    progress(("warmup · " if round_.warmup else "") + case.label, done, len(todo))
                request = _request(case, suite, round_, plan_.threads, plan_.cpus)
                try:
                    records = records_for(case, run_id, round_, zygote.run(request, suite.timeout_s))
                except WorkerFailed as exc:
                    records = [Sample.failed(case.key(), run_id, round_.repeat, "load_s", exc.error_type,
                                             str(exc), warmup=round_.warmup)]
                for record in records:
                    writer.append(record)
                failed += any(r.status == "failed" for r in records)
                done += 1
        except KeyboardInterrupt:
            writer.close("interrupted")
            return RunOutcome(writer.run_dir, done, failed, interrupted=True)
    if progress is not None:
        progress("done", done, len(todo))
    writer.close("complete")
    return RunOutcome(writer.run_dir, done, failed, interrupted=False)
