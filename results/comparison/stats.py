"""The statistics behind ``compare``: intervals that decide, rank tests, their effect sizes.

Kept apart from the verdict logic so each piece can be checked against hand-computed values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Interval", "MIXTURE_PRIOR", "holm", "min_p_value", "min_signed_rank_p", "one_sided_signed_rank_test",
           "one_sided_u_test", "relative_shift", "repeats_needed", "sign_sequence", "sign_sequence_pairs_needed",
           "two_sample_interval", "walsh_interval"]

# The mixing prior of the sign sequence: Beta(a, a) over the chance that a pair's change exceeds
# a candidate median. a = 1 (uniform) decides at the fewest pairs when every pair agrees (13 at
# 0.05 / 16), and its intervals are within one order statistic of a = 2's up to 200 pairs.
MIXTURE_PRIOR = 1.0


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
    """The fewest samples per side (equal sizes) that bound the two-sample interval of one of ``tests`` rows."""
    from scipy.stats import norm

    z = float(norm.ppf(1 - alpha / max(1, tests) / 2))
    return next(n for n in range(1, 10_000) if n * n / 2 - z * math.sqrt(n * n * (2 * n + 1) / 12) - 0.5 >= 0)


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


@dataclass(frozen=True)
class Interval:
    """An estimate with its interval and the p-value of "no change" that goes with it.

    ``direction``: +1 when the interval lies above 0, -1 below, 0 when it holds 0.
    An interval that no amount of these data could bound is (-inf, inf).
    """

    estimate: float
    low: float
    high: float
    p_value: float
    direction: int


def _log_mixture(successes: Any, n: int, prior: float = MIXTURE_PRIOR) -> Any:
    """log of the beta-binomial mixture martingale for "each sign is a fair coin", after ``n`` signs."""
    from scipy.special import betaln

    return n * math.log(2) + betaln(prior + successes, prior + n - successes) - betaln(prior, prior)


def _sign_depth(n: int, alpha: float) -> int:
    """k: the sequence for the median at level ``alpha`` after n pairs is [d_(k), d_(n-k+1)]; 0 = unbounded."""
    import numpy as np

    counts = np.arange(n + 1)
    allowed = _log_mixture(counts, n) < math.log(1 / alpha)
    return int(counts[allowed].min()) if allowed.any() else 0


def sign_sequence(differences: Any, alpha: float) -> Interval:
    """An anytime-valid confidence sequence for the median of paired differences, and its test of 0.

    For a candidate median m, the signs of ``d_i - m`` are fair coins when m is the median
    of every block's difference, whatever each block's spread (a contended block is wider,
    not biased; and between identical environments the random order within a block makes
    every sign a fair coin by construction). The mixture over a coin's bias, Beta(a, a),
    of the likelihood ratio against a fair coin is then a nonnegative martingale with mean 1,
    and by Ville's inequality it passes ``1 / alpha`` with probability at most ``alpha`` at
    any time: the set of m where it has not is a confidence sequence, valid however often it
    is looked at and whenever the looking stops. It is the interval between the k-th
    smallest and the k-th largest difference (k from ``_sign_depth``). The estimate is the
    median; ``p_value`` is the martingale's ``1 / value`` at m = 0, capped at 1 (below
    ``alpha`` exactly when the interval excludes 0).
    """
    import numpy as np

    d = np.sort(np.asarray(differences, dtype=float))
    n = d.size
    if n == 0:
        return Interval(math.nan, -math.inf, math.inf, 1.0, 0)
    k = _sign_depth(n, alpha)
    low, high = (float(d[k - 1]), float(d[n - k])) if k else (-math.inf, math.inf)
    above, below = int((d > 0).sum()), int((d < 0).sum())
    p_value = min(1.0, math.exp(-float(_log_mixture(max(above, below), n))))
    direction = 1 if low > 0 else -1 if high < 0 else 0
    return Interval(float(np.median(d)), low, high, p_value, direction)


def sign_sequence_pairs_needed(alpha: float) -> int:
    """The fewest pairs with which the sign sequence can exclude 0 (every pair agreeing) at ``alpha``."""
    return next(n for n in range(1, 10_000) if _sign_depth(n, alpha) >= 1)


def two_sample_interval(base: Any, cand: Any, alpha: float) -> Interval:
    """The two-sample Hodges–Lehmann shift ``cand - base`` and its ``1 - alpha`` interval (Mann–Whitney's).

    The interval takes the k-th smallest and largest of all differences ``cand_i - base_j``,
    k from the U statistic's normal approximation with its continuity correction (exact
    enough from 5 samples a side; fewer give an unbounded interval when k < 1). For two
    runs measured apart, with no optional stopping: the unpaired compare's rule.
    """
    import numpy as np
    from scipy.stats import norm

    base, cand = np.asarray(base, dtype=float), np.asarray(cand, dtype=float)
    n1, n2 = base.size, cand.size
    if n1 == 0 or n2 == 0:
        return Interval(math.nan, -math.inf, math.inf, 1.0, 0)
    diffs = np.sort(np.subtract.outer(cand, base).ravel())
    estimate = float(np.median(diffs))
    spread = math.sqrt(n1 * n2 * (n1 + n2 + 1) / 12)
    k = int(math.floor(n1 * n2 / 2 - float(norm.ppf(1 - alpha / 2)) * spread - 0.5)) + 1
    low, high = (float(diffs[k - 1]), float(diffs[diffs.size - k])) if k >= 1 else (-math.inf, math.inf)
    p_value, _ = one_sided_u_test(base, cand)
    direction = 1 if low > 0 else -1 if high < 0 else 0
    return Interval(estimate, low, high, min(1.0, 2 * p_value), direction)
