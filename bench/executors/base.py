"""Where samples are measured: what every executor is, and what it hands back.

The runner decides what to measure and in which order, and records what comes back;
an executor only decides where each sample runs. Whatever the executor, a sample is
measured by a fresh worker forked from a zygote on the machine that runs it, so the
isolation rules hold on a remote node as they do here. ``local`` runs one sample at a
time on this machine (local.py), ``environments.py`` one agent per Python environment, and
``ray_executor.py`` hands samples to a Ray cluster; ``factory.py`` picks one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from loadbench.bench.sample.protocol import SampleReply, SampleRequest, WorkerFailed
from loadbench.errors import UserError

__all__ = ["EXECUTORS", "Executor", "ExecutorError", "Finished", "Job"]

# The executors a run can name (executors/factory.py makes them).
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
    settings: dict[str, Any]  # recorded in run.json, so a resume can reach the same place
    # Samples run on the machine that started the run, so its ceiling (disk, memory) applies.
    on_this_machine: bool
    # Workers fork from this process's own zygote: its fingerprint is the node's. When not
    # (other environments, other nodes), run.json records this process's as the driver's.
    in_this_process: bool

    def run_fields(self) -> dict[str, Any]:
        """What else run.json records of this executor, so a resume can make it again."""

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


class ExecutorError(UserError):
    """The executor cannot be made or reached; the message says what to change."""
