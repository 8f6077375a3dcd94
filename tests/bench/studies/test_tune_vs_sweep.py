"""The brute-force check agrees only with the sweep's winner or a setting within its interval."""

from __future__ import annotations

from loadbench.bench.studies.tune_vs_sweep import _agrees
from loadbench.bench.tune.front import Estimate, Measured


def _m(name: str, median: float, low: float, high: float) -> Measured:
    return Measured(name, Estimate(median, low, high, 15), Estimate(100.0, 99.0, 101.0, 15))


def test_agreement_is_the_winner_or_a_median_inside_the_winners_interval() -> None:
    measured = {"best": _m("best", 1.0, 0.9, 1.1), "close": _m("close", 1.05, 1.0, 1.1),
                "far": _m("far", 1.3, 1.2, 1.4)}
    assert _agrees("best", "best", measured, "load_s")
    assert _agrees("close", "best", measured, "load_s")
    assert not _agrees("far", "best", measured, "load_s")
    measured["broken"] = Measured("broken", failed="load_s: boom")
    assert not _agrees("broken", "best", measured, "load_s")
