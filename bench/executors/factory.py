"""The one place that picks an executor: by name for a run, from run.json for a resume."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from loadbench.bench.executors.base import EXECUTORS, Executor, ExecutorError
from loadbench.bench.executors.local import LocalExecutor

if TYPE_CHECKING:
    from loadbench.bench.suite import Suite

__all__ = ["DEFAULT_EXECUTOR", "EXECUTORS", "executor_for_resume", "make_executor"]

DEFAULT_EXECUTOR = "local"


def make_executor(name: str | None, suite: Suite, *, address: str | None = None,
                  max_parallel: int | None = None) -> Executor:
    """The executor called ``name`` (None: the default, ``local``); ``ray`` needs the ray extra.

    ``local`` with environments in the suite is one agent per environment, on this machine.
    """
    name = name or DEFAULT_EXECUTOR
    if max_parallel is not None and max_parallel < 1:
        raise ExecutorError(f"`max_parallel` {max_parallel}: give 1 or more samples at once")
    if name == "local":
        if max_parallel not in (None, 1):
            raise ExecutorError("`max_parallel` needs the ray executor: samples run at once on one machine "
                                "would slow each other down")
        if address is not None:
            raise ExecutorError("`ray_address` needs the ray executor")
        if suite.environments:
            from loadbench.bench.executors.environments import EnvironmentsExecutor

            return EnvironmentsExecutor(suite)
        return LocalExecutor.for_suite(suite)
    if name == "ray":
        if suite.environments:
            raise ExecutorError("a run over `environments` needs the local executor: a Ray cluster's nodes run "
                                "their own environment")
        from loadbench.bench.executors.ray_executor import RayExecutor

        return RayExecutor(suite, address=address, max_parallel=max_parallel)
    raise ExecutorError(f"`executor` {name!r}: choose one of {', '.join(EXECUTORS)}")


def executor_for_resume(run_dir: Path, info: dict[str, Any], name: str | None, address: str | None,
                        max_parallel: int | None, suite: Suite) -> Executor:
    """The run's own executor and settings (run.json), unless the caller names others (a new head address)."""
    found = info.get("executor")
    recorded: dict[str, Any] = found if isinstance(found, dict) else {"name": DEFAULT_EXECUTOR}
    recorded_name = str(recorded.get("name", DEFAULT_EXECUTOR))
    chosen = name or recorded_name
    if recorded_name not in EXECUTORS:
        raise ExecutorError(f"{run_dir}: the run used the executor {recorded_name!r}, which loadbench cannot "
                            "make; resume it with the same executor, given as `executor`")
    if chosen != recorded_name:
        raise ExecutorError(f"{run_dir}: the run used the {recorded_name} executor; resume it with the same executor "
                            "(`executor`)")
    if chosen == "local":
        if address is not None or max_parallel is not None:
            raise ExecutorError(f"{run_dir}: a local run resumes locally; drop `ray_address` and `max_parallel`")
        if suite.environments or "threads" not in info:
            return make_executor("local", suite)
        return LocalExecutor(info["threads"], info.get("cpus"))
    return make_executor(chosen, suite, address=address or recorded.get("address"),
                         max_parallel=max_parallel or recorded.get("max_parallel"))
