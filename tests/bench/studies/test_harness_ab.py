"""The A/B study pairs each block's base and head samples and calls a change only from its interval."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from loadbench.bench.studies.harness_ab import paired_verdicts


def _frame(ratios: list[float], metric: str = "load_s") -> pd.DataFrame:
    rows = []
    for block, ratio in enumerate(ratios):
        base = 0.1 * (1 + block / 10)  # the host drifts; each block's pair shares the drift
        for env, value in (("base", base), ("head", base * ratio)):
            rows.append({"checkpoint": "tiny-llama", "path": "task", "cache": "warm", "metric": metric,
                         "block": block, "env": env, "value": value, "status": "ok", "warmup": False})
    rows.append({**rows[0], "warmup": True, "value": 99.0})  # a warmup never pairs
    return pd.DataFrame(rows)


def test_a_steady_ratio_inside_the_bound_is_unchanged() -> None:
    verdicts = paired_verdicts(_frame([1.0, 1.01, 0.99, 1.005, 0.995, 1.0, 1.002, 0.998]))
    case, overall = verdicts
    assert case["verdict"] == overall["verdict"] == "unchanged" and case["pairs"] == 8
    assert case["change"] == pytest.approx(0.0, abs=0.005) and -0.03 <= case["low"] <= case["high"] <= 0.03
    assert overall["checkpoint"] == "all cases"


def test_a_real_slowdown_is_changed_and_a_wide_interval_is_inconclusive() -> None:
    [slower, _] = paired_verdicts(_frame([1.08, 1.09, 1.1, 1.07, 1.08, 1.09, 1.1, 1.08]))
    assert slower["verdict"] == "changed" and slower["low"] > 0
    assert slower["change"] == pytest.approx(math.expm1(sum(map(math.log, [1.08, 1.085])) / 2), abs=0.01)
    [noisy, _] = paired_verdicts(_frame([1.2, 0.8, 1.15, 0.85, 1.1, 0.9]))
    assert noisy["verdict"] == "inconclusive"
