"""Each setting's figures with intervals, and the Pareto front drawn from them."""

from __future__ import annotations

import math

import pandas as pd

from loadbench.bench.tune.front import Estimate, Measured, mark_front, measured_settings, median_interval


def test_the_median_interval_is_unbounded_until_the_samples_can_bound_it() -> None:
    few = median_interval([1.0, 2.0, 3.0])
    assert few.median == 2.0 and few.low == -math.inf and few.high == math.inf
    six = median_interval([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    assert (six.low, six.high) == (1.0, 6.0)  # at n=6 the extremes cover the median with 97% probability
    many = median_interval(list(range(15)))
    assert many.low < 7 < many.high and many.n == 15


def _measured(name: str, load: float, memory: float) -> Measured:
    return Measured(name, Estimate(load, load, load, 6), Estimate(memory, memory, memory, 6))


def test_the_front_holds_exactly_the_settings_nothing_beats_on_both_axes() -> None:
    settings = {m.name: m for m in (_measured("fast-heavy", 1.0, 800.0), _measured("slow-light", 3.0, 40.0),
                                    _measured("dominated", 3.5, 900.0), _measured("middle", 2.0, 400.0),
                                    _measured("tie-worse", 2.0, 500.0))}
    settings["failed"] = Measured("failed", failed="load_s: boom")
    assert mark_front(settings) == ["fast-heavy", "middle", "slow-light"]
    assert not settings["dominated"].on_front and not settings["tie-worse"].on_front
    assert not settings["failed"].on_front


def _rows(path: str, options: str, loads: list[float], memory: float, status: str = "ok") -> list[dict]:
    rows = []
    for repeat, load in enumerate(loads):
        for metric, value in (("load_s", load), ("load_added_rss_bytes", memory), ("max_abs_diff_vs_base", 0.0)):
            rows.append({"run_id": "r", "path": path, "options": options, "repeat": repeat, "warmup": False,
                         "metric": metric, "value": value, "status": status if metric == "load_s" else "ok",
                         "error": "it broke" if status != "ok" and metric == "load_s" else None, "reason": None})
    return rows


def test_settings_are_summarised_from_their_samples_and_a_failure_says_why() -> None:
    frame = pd.DataFrame(_rows("task", "default", [1.0, 1.2, 1.1, 0.9, 1.3, 1.0], 100.0)
                         + _rows("runai-streamer", "default", [0.5, 0.6, 0.4], 900.0, status="failed"))
    found = measured_settings(frame, {("task", "default"): "default", ("runai-streamer", "default"): "runai-streamer",
                                      ("task", "torch_threads=1"): "torch_threads=1"})
    assert found["default"].usable and found["default"].load_s.median == 1.05
    assert found["default"].added_bytes.median == 100.0 and found["default"].max_abs_diff == 0.0
    assert found["runai-streamer"].failed == "load_s: it broke" and not found["runai-streamer"].usable
    assert found["torch_threads=1"].load_s is None and found["torch_threads=1"].failed is None  # not measured
