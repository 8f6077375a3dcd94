"""The anytime-valid sign sequence: its order statistics by hand, and its error rate under optional stopping."""

from __future__ import annotations

import math

import numpy as np
import pytest

from loadbench.results.comparison.stats import _sign_depth, sign_sequence, sign_sequence_pairs_needed


def test_the_sequence_is_the_kth_smallest_and_largest_difference() -> None:
    # Uniform mixture: after n signs, s of one kind, it is 2**n * B(s + 1, n - s + 1). At 0.05
    # (1 / alpha = 20), n = 20: s = 3 gives 43.8, s = 4 gives 10.3, the first count it allows: k = 4.
    assert _sign_depth(20, 0.05) == 4
    d = np.arange(1.0, 21.0) - 3.5
    interval = sign_sequence(d, 0.05)
    assert (interval.low, interval.high) == (d[3], d[16])
    assert interval.estimate == pytest.approx(float(np.median(d)))


def test_it_excludes_zero_exactly_when_its_p_value_is_below_alpha() -> None:
    n = sign_sequence_pairs_needed(0.05 / 16)
    assert n == 13  # 2**13 / 14 = 585 >= 320 > 2**12 / 13 = 315
    agreeing = sign_sequence(np.linspace(0.01, 0.2, n), 0.05 / 16)
    assert agreeing.direction == 1 and agreeing.low > 0 and agreeing.p_value <= 0.05 / 16
    one_fewer = sign_sequence(np.linspace(0.01, 0.2, n - 1), 0.05 / 16)
    assert one_fewer.direction == 0 and math.isinf(one_fewer.low) and one_fewer.p_value > 0.05 / 16
    mixed = sign_sequence([0.1, -0.1] * 20, 0.05)
    assert mixed.direction == 0 and mixed.low < 0 < mixed.high and mixed.p_value == 1.0


def test_no_pairs_bound_nothing() -> None:
    empty = sign_sequence([], 0.05)
    assert math.isnan(empty.estimate) and math.isinf(empty.low) and math.isinf(empty.high)


def test_looking_after_every_pair_keeps_the_error_rate() -> None:
    # 2,000 A/A sequences of 300 pairs of heavy-tailed noise (a t with 2 degrees of freedom, as a
    # contended block spreads), each looked at after every pair and stopped at the first that
    # excludes 0: the share ever excluding it must stay at alpha or below. A fixed-n test looked
    # at this often would pass 0.05 in about a third of them.
    rng = np.random.default_rng(26)
    alpha, n = 0.05, 300
    depth = np.array([_sign_depth(i, alpha) for i in range(1, n + 1)])
    positives = np.cumsum(rng.standard_t(2, size=(2000, n)) > 0, axis=1)
    looks = np.arange(1, n + 1)
    excluded = (depth >= 1) & ((positives >= looks - depth + 1) | (positives <= depth - 1))
    assert excluded.any(axis=1).mean() <= alpha


def test_a_real_shift_is_excluded_from_zero_and_covered() -> None:
    rng = np.random.default_rng(3)
    d = 0.10 + rng.standard_t(3, size=60) * 0.05
    interval = sign_sequence(d, 0.05 / 16)
    assert interval.direction == 1 and interval.low <= 0.10 <= interval.high
