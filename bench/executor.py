"""Where samples are measured: the executor interface, and the local executor.

The runner decides what to measure and in which order, and records what comes back;
an executor only decides where each sample runs. Whatever the executor, a sample is
measured by a fresh worker forked from a zygote on the machine that runs it, so the
isolation rules hold on a remote node as they do here. ``local`` runs one sample at a
time on this machine; ``ray`` (bench/ray_executor.py) hands samples to a Ray cluster.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from loadbench.errors import UserError

from .fingerprint import fingerprint, local_cuda_available, node_id
from .protocol import SampleReply, SampleRequest, WorkerFailed
from .spawn import Target, Zygote
from .worker import child_main

if TYPE_CHECKING:
    from .suite import Suite

__all__ = ["EXECUTORS", "Executor", "ExecutorError", "Finished", "Job", "LocalExecutor", "make_executor",
           "worker_cpus"]

EXECUTORS = ("local", "ray")


@dataclass(frozen=True)
class Job:
    """One sample to measure; ``index`` lets the runner match the answer to its case."""

    index: int
    request: SampleRequest
    timeout_s: float
    env: str | None = None  # the environment to measure it in, in a run that names several


@dataclass(frozen=True)
class Finished:
    """A job's outcome: the worker's reply, or why there is none; ``node`` measured it."""

    index: int
    node: str
    reply: SampleReply | None = None
    failure: WorkerFailed | None = None

    @property
    def failed(self) -> bool:
        """Whether any part of the sample failed: the whole worker, or some metric."""
        return self.failure is not None or bool(self.reply is not None and self.reply.failures)


class Executor(Protocol):
    """Runs jobs somewhere and reports each as it finishes, in any order."""

    name: str
    settings: dict[str, Any]  # recorded in run.json, so --resume can reach the same place

    def start(self, run_id: str, log_path: str) -> dict[str, dict[str, Any]]:
        """Get ready to measure; return the fingerprint of every node, by node id.

        ``log_path`` is where this machine's workers write; remote nodes keep their own.
        """

    def cuda_available(self) -> bool:
        """Whether ``auto`` should mean a GPU: any GPU this executor can reach."""

    def run(self, jobs: Sequence[Job], started: Callable[[Job], None]) -> Iterator[Finished]:
        """Measure ``jobs``; call ``started`` as each begins; yield each as it ends.

        Jobs no node can take (all lost) are never yielded: the caller counts them.
        """

    def close(self) -> None:
        """Release workers and connections; safe to call more than once."""


def worker_cpus(threads: int | None, pin: bool) -> tuple[int, list[int] | None]:
    """Threads per worker on this machine and the CPUs it is pinned to.

    Default: every usable core but one, which is left to the parent and the OS. On the
    2-core machine a pinned worker showed a load_s CV of 6-7% while the host was quiet,
    an unpinned one 22%; when the host itself is noisy both see 15-22% (docs/MEASURING.md).
    """
    allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    usable = len(allowed) or os.cpu_count() or 1
    count = threads if threads is not None else max(1, usable - 1)
    if not pin or not allowed or count > len(allowed):
        return count, None
    return count, allowed[-count:]


class LocalExecutor:
    """Every sample on this machine, one at a time: two at once would time each other."""

    name = "local"
    settings: dict[str, Any] = {}

    def __init__(self, threads: int, cpus: list[int] | None, *, target: Target = child_main) -> None:
        """``target`` is what each fork runs: the real worker, or (validation, tests) a wrapper of it."""
        self.threads, self.cpus = threads, cpus
        self.target = target
        self._zygote = Zygote()
        self._zygote.warm_up()  # its imports take seconds: start them while the run is planned
        self._node = ""

    @classmethod
    def for_suite(cls, suite: Suite) -> LocalExecutor:
        """This machine, with the suite's threads and CPU pinning."""
        return cls(*worker_cpus(suite.threads, suite.pin_cpus))

    def start(self, run_id: str, log_path: str) -> dict[str, dict[str, Any]]:
        self._zygote.log_path = log_path
        self._zygote.ready()  # its imports would disturb what the run measures next (the ceiling)
        machine = {**fingerprint(), "threads": self.threads, "cpus": self.cpus}
        self._node = node_id(machine)
        return {self._node: machine}

    def cuda_available(self) -> bool:
        return local_cuda_available()

    def measure(self, request: SampleRequest, timeout_s: float) -> SampleReply:
        """One sample in a fresh worker on this machine's threads and CPUs.

        Raises WorkerFailed, including ProtocolError for a malformed reply.
        """
        return self._zygote.run(replace(request, threads=self.threads, cpus=self.cpus), timeout_s, self.target)

    def run(self, jobs: Sequence[Job], started: Callable[[Job], None]) -> Iterator[Finished]:
        for job in jobs:
            started(job)
            try:
                yield Finished(job.index, self._node, reply=self.measure(job.request, job.timeout_s))
            except WorkerFailed as exc:
                yield Finished(job.index, self._node, failure=exc)

    def close(self) -> None:
        pass


class ExecutorError(UserError):
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
        if suite.environments:
            from .environments import EnvironmentsExecutor

            return EnvironmentsExecutor(suite)
        return LocalExecutor.for_suite(suite)
    if name == "ray":
        if suite.environments:
            raise ExecutorError("--env needs --executor local: a Ray cluster's nodes run their own environment")
        from .ray_executor import RayExecutor

        return RayExecutor(suite, address=address, max_parallel=max_parallel)
    raise ExecutorError(f"executor {name!r}: choose one of {', '.join(EXECUTORS)}")
