"""Successive halving keeps the default and the better half; the paired confirmation reads real pairs."""

from __future__ import annotations

import numpy as np
import pandas as pd

from loadbench.bench.tune.front import Estimate, Measured
from loadbench.bench.tune.goals import parse_goal
from loadbench.bench.tune.search import confirm, ranked, rung_repeats, survivors


def _m(name: str, load: float, memory: float = 100.0) -> Measured:
    return Measured(name, Estimate(load, load, load, 3), Estimate(memory, memory, memory, 3))


def test_each_rung_keeps_the_better_half_and_always_the_default() -> None:
    measured = {m.name: m for m in (_m("default", 5.0), _m("a", 1.0), _m("b", 2.0), _m("c", 3.0), _m("d", 4.0),
                                    _m("e", 6.0))}
    measured["broken"] = Measured("broken", failed="load_s: boom")
    live = list(measured)
    assert survivors(measured, live, parse_goal("fastest")) == ["default", "a", "b", "c"]
    assert survivors(measured, ["default", "a", "b"], parse_goal("fastest")) == ["default", "a"]
    assert survivors(measured, ["default", "a"], parse_goal("fastest")) == ["default", "a"]  # the last contender
    assert rung_repeats(0) == 3 and rung_repeats(1) == 3 and rung_repeats(2) == 6


def test_a_memory_limit_drops_the_settings_over_it() -> None:
    measured = {"default": _m("default", 5.0, 100.0), "heavy": _m("heavy", 1.0, 2**31), "light": _m("light", 4.0)}
    assert ranked(measured, list(measured), parse_goal("fastest-within-memory=1GiB")) == ["light", "default"]
    assert ranked(measured, list(measured), parse_goal("least-memory"))[0] in ("default", "light")


def _pairs(base: np.ndarray, cand: np.ndarray, metric: str = "load_s") -> pd.DataFrame:
    rows = []
    for options, values in (("default", base), ("torch_threads=1", cand)):
        for repeat, value in enumerate(values):
            rows.append({"path": "task", "options": options, "repeat": repeat, "metric": metric, "value": value,
                         "status": "ok", "warmup": False})
    return pd.DataFrame(rows)


def test_a_real_gain_is_confirmed_and_no_change_is_inconclusive() -> None:
    rng = np.random.default_rng(7)
    drift = rng.lognormal(0, 0.3, 12)  # round-to-round noise both sides share: the pairing cancels it
    base = 1.0 * drift * rng.lognormal(0, 0.02, 12)
    faster = confirm(_pairs(base, 0.8 * drift * rng.lognormal(0, 0.02, 12)), ("task", "default"),
                     ("task", "torch_threads=1"), "torch_threads=1", "load_s")
    assert faster is not None and faster.verdict == "better" and faster.ci_low < 0.2 < faster.ci_high
    same = confirm(_pairs(base, drift * rng.lognormal(0, 0.02, 12)), ("task", "default"),
                   ("task", "torch_threads=1"), "torch_threads=1", "load_s")
    assert same is not None and same.verdict == "inconclusive" and same.ci_low < 0 < same.ci_high
    slower = confirm(_pairs(base, 1.3 * drift), ("task", "default"), ("task", "torch_threads=1"), "x", "load_s")
    assert slower is not None and slower.verdict == "worse"


def test_memory_that_can_be_zero_is_compared_as_a_difference_and_five_pairs_are_too_few() -> None:
    base = np.array([100.0, 110.0, 90.0, 105.0, 95.0, 100.0, 102.0])
    frame = _pairs(base, np.zeros(7), "load_added_rss_bytes")
    saved = confirm(frame, ("task", "default"), ("task", "torch_threads=1"), "x", "memory")
    assert saved is not None and saved.verdict == "better" and 0.9 < saved.gain <= 1.1
    assert confirm(_pairs(base[:5], base[:5]), ("task", "default"), ("task", "torch_threads=1"), "x",
                   "load_s") is None
