"""Samples on this machine, one at a time, each in a worker forked from this process's zygote."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from loadbench.bench.executors.base import ExecutorError, Finished, Job
from loadbench.bench.fingerprint import fingerprint, local_cuda_available, node_id
from loadbench.bench.sample.protocol import SampleReply, SampleRequest, WorkerFailed
from loadbench.bench.sample.spawn import MAX_CASE_ZYGOTES, Target, Zygote
from loadbench.bench.sample.worker import child_main, import_key

if TYPE_CHECKING:
    from loadbench.bench.suite import Suite

__all__ = ["LocalExecutor", "worker_cpus"]


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
    on_this_machine = True
    in_this_process = True

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
        try:
            self._zygote.ready()  # its imports would disturb what the run measures next (the ceiling)
        except WorkerFailed as exc:
            raise ExecutorError(f"the zygote (torch and transformers imported once for every sample) could not "
                                f"start: {exc}; check that `python -c 'import torch, transformers'` works in "
                                f"{sys.executable}") from None
        machine = {**fingerprint(), "threads": self.threads, "cpus": self.cpus}
        self._node = node_id(machine)
        return {self._node: machine}

    def cuda_available(self) -> bool:
        return local_cuda_available()

    def run_fields(self) -> dict[str, Any]:
        return {"threads": self.threads, "cpus": self.cpus}

    def measure(self, request: SampleRequest, timeout_s: float, then: SampleRequest | None = None) -> SampleReply:
        """One sample in a fresh worker on this machine's threads and CPUs; ``then``, the next one, if known.

        Raises WorkerFailed, including ProtocolError for a malformed reply.
        """
        return self._zygote.run(replace(request, threads=self.threads, cpus=self.cpus), timeout_s, self.target,
                                then=then)

    def run(self, jobs: Sequence[Job], started: Callable[[Job], None]) -> Iterator[Finished]:
        # More cases than zygotes would start a zygote per sample: then each worker imports.
        self._zygote.case_zygotes = len({import_key(job.request) for job in jobs}) <= MAX_CASE_ZYGOTES
        for index, job in enumerate(jobs):
            started(job)
            then = jobs[index + 1].request if index + 1 < len(jobs) else None
            try:
                reply = self.measure(job.request, job.timeout_s, then)
                yield Finished(job.index, self._node, reply=reply)
            except WorkerFailed as exc:
                yield Finished(job.index, self._node, failure=exc)

    def close(self) -> None:
        pass
