"""The statistics behind ``compare``: a rank test, its effect size, Holm's correction, sample sizes.

Kept apart from the verdict logic so each piece can be checked against hand-computed values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

__all__ = ["holm", "min_p_value", "min_signed_rank_p", "one_sided_signed_rank_test", "one_sided_u_test",
           "relative_shift", "repeats_needed", "walsh_interval"]


def one_sided_u_test(base: Any, cand: Any) -> tuple[float, int]:
    """Mann–Whitney U: the one-sided p-value in the direction observed, and that direction.

    Direction +1: candidate values tend to be larger; -1: smaller; 0: no tendency (p = 1).
    scipy's two-sided p-value is twice the smaller one-sided one (exact and normal
    approximation alike), so halving it gives the one-sided p without a second test.
    """
    import numpy as np
    from scipy.stats import mannwhitneyu

    base, cand = np.asarray(base, dtype=float), np.asarray(cand, dtype=float)
    if np.all(base == base[0]) and np.all(cand == base[0]):
        return 1.0, 0
    result = mannwhitneyu(cand, base, alternative="two-sided")
    half = len(base) * len(cand) / 2
    u = float(result.statistic)
    if u == half:
        return 1.0, 0
    return min(1.0, float(result.pvalue) / 2), 1 if u > half else -1


def relative_shift(base: Any, cand: Any) -> float:
    """How much larger the candidate is, as a fraction: the Hodges–Lehmann estimate.

    For positive values, the median of all ratios ``cand_i / base_j``, minus 1 (the
    shift estimate that goes with the U test, on a log scale). Unlike the ratio of the
    two medians it does not jump when a sample's median falls between the modes of a
    bimodal distribution (a busy neighbour slows some samples by half). Otherwise, the
    median of all differences over the baseline median's magnitude (±inf when that is 0).
    """
    import numpy as np

    base, cand = np.asarray(base, dtype=float), np.asarray(cand, dtype=float)
    if base.size == 0 or cand.size == 0:
        return math.nan
    if (base > 0).all() and (cand > 0).all():
        return float(np.exp(np.median(np.subtract.outer(np.log(cand), np.log(base))))) - 1
    shift = float(np.median(np.subtract.outer(cand, base)))
    scale = abs(float(np.median(base)))
    if scale == 0:
        return 0.0 if shift == 0 else math.copysign(math.inf, shift)
    return shift / scale


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values (step-down, monotone, capped at 1), in the input order."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def min_p_value(n1: int, n2: int) -> float:
    """The smallest one-sided p-value a U test of n1 vs n2 samples can give: ``1 / C(n1 + n2, n1)``."""
    if n1 < 1 or n2 < 1:
        return 1.0
    return 1.0 / math.comb(n1 + n2, n1)


def repeats_needed(alpha: float, tests: int = 1) -> int:
    """The fewest samples per side (equal sizes) with which one of ``tests`` rows can be significant."""
    n = 1
    while min_p_value(n, n) > alpha / max(1, tests):
        n += 1
    return n


def one_sided_signed_rank_test(differences: Any) -> tuple[float, int]:
    """Wilcoxon signed-rank test of paired differences: the one-sided p in the direction observed, and it.

    Direction +1: the candidate tends to be larger within a pair; -1: smaller; 0: no
    tendency (p = 1). Zero differences are dropped (Wilcoxon's own treatment). The null
    distribution is exact, ties included (midranks): what scipy's ``wilcoxon`` gives, without
    the permutation test it falls back to on ties, which took a second a row (memory is
    quantized to pages, so its differences tie often).
    """
    import numpy as np
    from scipy.stats import rankdata

    d = np.asarray(differences, dtype=float)
    d = d[d != 0]
    if d.size == 0:
        return 1.0, 0
    doubled = np.rint(2 * rankdata(np.abs(d))).astype(int)  # midranks are halves: doubled, integers
    observed = int(doubled[d > 0].sum())
    # P(T+ = t) under the null (each sign + or - with probability 1/2), by convolution.
    null = np.zeros(int(doubled.sum()) + 1)
    null[0] = 1.0
    for rank in doubled:  # every rank is at least 1, so doubled at least 2
        shifted = np.concatenate([np.zeros(rank), null[:-rank]])
        null = 0.5 * null + 0.5 * shifted
    greater = min(1.0, float(null[observed:].sum()))
    less = min(1.0, float(null[:observed + 1].sum()))
    if greater == less:
        return 1.0, 0
    return (greater, 1) if greater < less else (less, -1)


def min_signed_rank_p(pairs: int) -> float:
    """The smallest one-sided p-value a signed-rank test of ``pairs`` pairs can give: ``2**-pairs``."""
    return 1.0 if pairs < 1 else 2.0 ** -pairs


def _signed_rank_lower_tail(n: int) -> list[float]:
    """P(T <= t) for t = 0..n(n+1)/2 under the null: the exact signed-rank distribution."""
    counts = [1]
    for k in range(1, n + 1):
        grown = counts + [0] * k
        for total, count in enumerate(counts):
            grown[total + k] += count
        counts = grown
    cumulative, tail = 0, []
    for count in counts:
        cumulative += count
        tail.append(cumulative / 2.0 ** n)
    return tail


def walsh_interval(differences: Any, confidence: float = 0.95) -> tuple[float, float, float]:
    """The Hodges–Lehmann estimate of the paired differences' centre and its confidence interval.

    The estimate is the median of the Walsh averages (every ``(d_i + d_j) / 2``, i <= j);
    the interval takes the k-th smallest and k-th largest of them, k from the exact
    signed-rank distribution (normal approximation past 60 pairs), so it is the
    interval that goes with the signed-rank test. With too few pairs for the level, it
    is the whole range of the Walsh averages.
    """
    import numpy as np
    from scipy.stats import norm

    d = np.asarray(differences, dtype=float)
    n = d.size
    if n == 0:
        return math.nan, math.nan, math.nan
    i, j = np.triu_indices(n)
    walsh = np.sort((d[i] + d[j]) / 2)
    estimate = float(np.median(walsh))
    half = (1 - confidence) / 2
    if n <= 60:
        tail = _signed_rank_lower_tail(n)
        k = sum(1 for p in tail if p <= half)  # T <= k-1 has probability <= half
    else:
        mean, sd = n * (n + 1) / 4, math.sqrt(n * (n + 1) * (2 * n + 1) / 24)
        k = max(0, int(math.floor(mean - float(norm.ppf(1 - half)) * sd)))
    if k < 1:
        return estimate, float(walsh[0]), float(walsh[-1])
    return estimate, float(walsh[k - 1]), float(walsh[walsh.size - k])
