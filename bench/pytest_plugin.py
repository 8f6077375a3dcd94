"""pytest plugin: benchmark a loading path of a checkpoint from your own test suite, in one line.

Installed with loadbench (entry point ``pytest11: loadbench``); it builds on pytest-benchmark::

    def test_classifier_loads_fast(loadbench_load):
        result = loadbench_load("models/my-classifier", path="task", rounds=10)
        assert result.median("peak_rss_bytes") < 2 * 1024**3

Each round is one loadbench sample: a fresh worker forked from a zygote that imported
torch and transformers once, exactly as ``loadbench run`` measures. pytest-benchmark's
statistics (min, median, rounds, ``--benchmark-compare``…) hold the worker's ``load_s``,
the load alone, not the fork and imports around it: the plugin hands pytest-benchmark a
timer that reads the worker's measurement (pytest-benchmark's documented
``@pytest.mark.benchmark(timer=...)`` option). Memory, tokens/s and every other metric
go into ``benchmark.extra_info``: the median of each flat by metric name, and every
round's values under ``extra_info["loadbench"]``, which ``loadbench compare`` reads back
from a ``--benchmark-json`` file. With ``--benchmark-save``/``--benchmark-json`` the
run's fingerprint (CPU, GPUs, library versions) goes into ``machine_info["loadbench"]``.

A failed load fails the test. The fixture, like ``benchmark``, can be used once per test;
parametrize to cover several paths.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from loadbench.bench.api_checks import checked
from loadbench.vocabulary import BASE_PATH, WARM

__all__ = ["LoadBenchmark", "LoadFailed", "loadbench_load", "loadbench_zygote",
           "pytest_benchmark_update_machine_info", "pytest_collection_modifyitems"]

TIMER_NAME = "loadbench_worker_load_s"


class LoadFailed(AssertionError):
    """A benchmarked round failed: the load raised, crashed, or its workload went wrong."""


@dataclass(frozen=True)
class LoadBenchmark:
    """What the measured rounds gave: one dict of metric values per round."""

    case: dict[str, str]
    rounds: tuple[dict[str, float], ...]
    info: dict[str, Any] = field(default_factory=dict)

    def values(self, metric: str) -> list[float]:
        """The metric's value in each round that measured it."""
        return [r[metric] for r in self.rounds if metric in r]

    def median(self, metric: str) -> float:
        """The metric's median over the rounds; KeyError when no round measured it."""
        values = self.values(metric)
        if not values:
            raise KeyError(f"no round measured {metric!r}; measured: {', '.join(sorted(self.rounds[0]))}")
        return statistics.median(values)


class _WorkerClock:
    """A pytest-benchmark timer that advances by the load time each worker measured."""

    __name__ = TIMER_NAME  # what pytest-benchmark records as the timer

    def __init__(self) -> None:
        self._now = 0.0

    def __call__(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds


@pytest.hookimpl(optionalhook=True)
def pytest_benchmark_update_machine_info(config: Any, machine_info: dict[str, Any]) -> None:
    """Record loadbench's fingerprint, so compare can refuse results from other hardware."""
    from loadbench.bench.fingerprint import fingerprint

    machine_info["loadbench"] = fingerprint()


@pytest.fixture(scope="session")
def loadbench_zygote() -> Iterator[Any]:
    """The session's zygote: torch and transformers imported once, a fork per round."""
    from loadbench.bench.sample.spawn import Zygote

    zygote = Zygote()
    zygote.warm_up()
    yield zygote


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give every test that uses ``loadbench_load`` its own worker clock as pytest-benchmark's timer.

    This is done at collection, through the documented ``benchmark(timer=...)`` marker,
    because pytest-benchmark reads the timer once, when it builds the ``benchmark``
    fixture, and a test may request ``benchmark`` before ``loadbench_load``. The user's
    own marker options (group, min_rounds...) are kept.
    """
    for item in items:
        if "loadbench_load" not in getattr(item, "fixturenames", ()):
            continue
        marker = item.get_closest_marker("benchmark")
        options = dict(marker.kwargs) if marker else {}
        item.add_marker(pytest.mark.benchmark(**{**options, "timer": _WorkerClock()}), append=False)


def _clock(node: Any) -> _WorkerClock:
    marker = node.get_closest_marker("benchmark")
    timer = marker.kwargs.get("timer") if marker else None
    if not isinstance(timer, _WorkerClock):
        raise pytest.UsageError(f"{node.nodeid}: a benchmark(timer=...) marker replaces loadbench's worker "
                                "clock; drop the timer option, loadbench_load times the load itself")
    return timer


def _entry(checkpoint: str | Path, task: str | None) -> Any:
    """The checkpoint a fixture call names: a directory, a built-in, or a hub id from the local cache."""
    from loadbench.bench.suite import CheckpointEntry
    from loadbench.errors import UserError
    from loadbench.loaders.checkpoints.builtin import BUILTIN
    from loadbench.loaders.checkpoints.hub import is_hub_id, parse_hub_id

    tasks: Any = [task] if task else "primary"
    source = Path(checkpoint).expanduser()
    if os.path.lexists(source):  # the planner says what is wrong with a file or a broken link
        return CheckpointEntry(path=str(source.absolute()), tasks=tasks)
    if str(checkpoint) in BUILTIN:
        return CheckpointEntry(builtin=str(checkpoint), tasks=tasks)
    if is_hub_id(str(checkpoint)):
        repo, revision = parse_hub_id(str(checkpoint))
        return CheckpointEntry(repo=repo, revision=revision, tasks=tasks)
    raise UserError(f"loadbench_load: checkpoint {str(checkpoint)!r}: no such directory, no built-in of that name "
                    f"({', '.join(BUILTIN)}), and not a hub id (org/name[@revision], taken from the local Hugging "
                    "Face cache)")


def _case(checkpoint: str | Path, path: str, task: str | None, **settings: Any) -> Any:
    """The one-case suite of a fixture call, and its case; ``settings`` are Suite fields."""
    from loadbench.bench.plan import plan
    from loadbench.bench.suite import suite_from_dict

    suite = suite_from_dict({"name": "pytest", "checkpoints": [_entry(checkpoint, task)], "paths": [path],
                             **settings}, "loadbench_load")
    return suite, plan(suite)[0]


def _check(reply: Any, label: str) -> dict[str, float]:
    if reply.failures:
        failure = reply.failures[0]
        raise LoadFailed(f"{label}: {failure['metric']}: {failure['error_type']}: {failure['error']}")
    metrics: dict[str, float] = reply.values()
    if "load_s" not in metrics:
        raise LoadFailed(f"{label}: the worker measured no load_s")
    return metrics


@pytest.fixture
def loadbench_load(request: pytest.FixtureRequest, loadbench_zygote: Any) -> Callable[..., LoadBenchmark]:
    """``loadbench_load(checkpoint, path="base", **options) -> LoadBenchmark``; see the module doc.

    ``checkpoint`` is a local checkpoint directory, a built-in name (``tiny-bert``) or a hub
    id (``org/name[@revision]``) already in the local Hugging Face cache (nothing is downloaded).
    A wrong name or a value of the wrong type is a ``loadbench.UserError`` naming it.
    Options: ``task`` (default: the checkpoint's own), ``dtype`` and ``device`` (``auto``),
    ``cache`` (``warm`` or ``cold``), ``rounds`` (5), ``warmup_rounds`` (1, discarded),
    ``new_tokens`` (16), ``batch_size`` (1), ``check_equivalence`` (True: the first
    measured round also checks the hidden states against ``base``), ``timeout_s`` (600).
    A path that cannot serve the task skips the test with the reason.
    """
    clock = _clock(request.node)
    benchmark = request.getfixturevalue("benchmark")

    @checked
    def loadbench_load(checkpoint: str | Path, path: str = BASE_PATH, *, task: str | None = None, dtype: str = "auto",
            device: str = "auto", cache: str = WARM, rounds: int = 5, warmup_rounds: int = 1,
            new_tokens: int = 16, batch_size: int = 1, check_equivalence: bool = True,
            timeout_s: float = 600.0) -> LoadBenchmark:
        from loadbench.bench.executors.local import worker_cpus
        from loadbench.bench.sample.protocol import WorkerFailed
        from loadbench.bench.sample.translate import request_for
        from loadbench.results.records.schema import SCHEMA_VERSION

        suite, case = _case(checkpoint, path, task, dtype=[dtype], device=[device], cache=[cache],
                            new_tokens=new_tokens, batch_size=batch_size, timeout_s=timeout_s)
        if case.not_applicable is not None:
            pytest.skip(f"{case.label}: {case.not_applicable}")
        threads, cpus = worker_cpus(suite.threads, suite.pin_cpus)
        measured: list[tuple[dict[str, float], dict[str, Any]]] = []
        calls = 0

        def one_round() -> None:
            nonlocal calls
            first_measured = calls == warmup_rounds
            calls += 1
            sample = replace(request_for(case, suite, check_equivalence=check_equivalence and first_measured,
                                         record_import=first_measured),
                             threads=threads, cpus=cpus)
            try:
                reply = loadbench_zygote.run(sample, suite.timeout_s)
            except WorkerFailed as exc:
                raise LoadFailed(f"{case.label}: {exc.error_type}: {exc}") from None
            metrics = _check(reply, case.label)
            clock.advance(metrics["load_s"])
            measured.append((metrics, reply.info))

        if benchmark.group is None:
            benchmark.group = f"loadbench {case.checkpoint}"
        benchmark.pedantic(one_round, rounds=rounds, warmup_rounds=warmup_rounds, iterations=1)
        kept = measured[-rounds:] if len(measured) > rounds else measured
        info: dict[str, Any] = {k: kept[0][1][k] for k in ("attn_implementation", "resident_dtype")
                                if k in kept[0][1]}
        result = LoadBenchmark(case=case.key(), rounds=tuple(m for m, _ in kept), info=info)
        medians = {metric: result.median(metric) for metric in dict.fromkeys(k for r in result.rounds for k in r)}
        benchmark.extra_info.update({
            "loadbench_case": case.label, **info, **medians,
            "loadbench": {"schema_version": SCHEMA_VERSION, "case": result.case,
                          "rounds": [dict(r) for r in result.rounds], **info},
        })
        return result

    return loadbench_load
