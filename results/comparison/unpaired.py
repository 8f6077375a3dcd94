"""Compare a baseline with a candidate: which cases got slower, bigger or faster, and how sure we are.

A CI gate must neither cry wolf nor give false assurance, so every row gets one of three
answers, read off one interval for the change (the two-sample Hodges–Lehmann shift of the
log values, the median of all candidate/baseline ratios, with Mann–Whitney's interval at
level ``alpha / m``, Bonferroni over the ``m`` rows of its metric family, so ``alpha`` is
the chance that two runs of the same code get any false verdict in that family):

- ``regressed`` / ``improved``: the interval excludes no change and the estimate reaches
  the family's threshold (time 10%, memory 5%, throughput 10% by default);
- ``unchanged``: the whole interval lies within ± the threshold (an equivalence claim);
- ``inconclusive``: anything else; the interval is too wide to say, and more samples would.

No test of unpaired samples can tell the host's drift between two runs from a change in
the code (docs/REGRESSIONS.md); the paired compare (paired.py) is the gate. Everything here
is a pure function of two ``load()``-shaped frames; reading files lives in the callers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from loadbench.results.comparison.comparability import (
    CannotCompare,
    by_machine,
    check_comparable,
    fingerprint_differences,
)
from loadbench.results.comparison.settings import (
    DEFAULT_ALPHA,
    check_alpha,
    check_metric,
    check_thresholds,
    family_of,
    parse_threshold,
    read_compare_settings,
    threshold_for,
)
from loadbench.results.comparison.stats import Interval, repeats_needed, two_sample_interval
from loadbench.results.records.schema import CASE_KEYS

if TYPE_CHECKING:
    import pandas as pd

# Re-exported for the callers that imported them from here before the settings and the
# comparability check got modules of their own: CannotCompare, DEFAULT_ALPHA,
# fingerprint_differences, parse_threshold, read_compare_settings.
__all__ = [
    "COMPARE_COLUMNS",
    "CannotCompare",
    "DEFAULT_ALPHA",
    "EXIT_INCONCLUSIVE",
    "EXIT_REGRESSED",
    "apply_interval",
    "decide",
    "REGRESSION_VERDICTS",
    "VERDICTS",
    "compare",
    "exit_code",
    "fingerprint_differences",
    "verdict_table",
    "parse_threshold",
    "read_compare_settings",
]

# Report order: what fails CI first.
VERDICTS: tuple[str, ...] = (
    "regressed", "failed", "inconclusive", "improved", "new", "missing", "not applicable", "changed", "unchanged",
)
REGRESSION_VERDICTS: tuple[str, ...] = ("regressed", "failed")
# The exit codes of a comparison: a gated row regressed (or newly fails); else a gated row is
# inconclusive (unless told to let that pass). 2, cannot compare, is CannotCompare's.
EXIT_REGRESSED = 1
EXIT_INCONCLUSIVE = 3
COMPARE_COLUMNS: tuple[str, ...] = (
    *CASE_KEYS, "machine", "metric", "unit", "direction", "family", "n_base", "n_cand", "n_failed_base",
    "n_failed_cand", "median_base", "median_cand", "change", "ci_low", "ci_high", "p_value", "p_adjusted",
    "threshold", "verdict",
)
_NEEDED = (*CASE_KEYS, "metric", "value", "unit", "direction", "status", "warmup")


def _prepare(df: pd.DataFrame, side: str) -> pd.DataFrame:
    missing = [c for c in _NEEDED if c not in df.columns]
    if missing:
        raise CannotCompare(f"{side}: not a loadbench results frame (missing column(s): {', '.join(missing)})")
    measured = df[~df["warmup"].astype(bool)]
    if not (measured["status"] == "ok").any():
        raise CannotCompare(f"{side}: no measured samples to compare (empty or every sample failed)")
    return measured


def _groups(df: pd.DataFrame, keys: list[str]) -> dict[tuple[str, ...], dict[str, Any]]:
    import numpy as np

    frame = df[keys].astype(str)
    values = df["value"].to_numpy(dtype=float)
    ok = (df["status"] == "ok").to_numpy()
    failed = (df["status"] == "failed").to_numpy()
    units, directions = df["unit"].to_numpy(), df["direction"].to_numpy()
    out: dict[tuple[str, ...], dict[str, Any]] = {}
    for key, index in frame.groupby(keys, sort=False).indices.items():
        index = np.asarray(index)
        out[tuple(key)] = {
            "values": values[index[ok[index]]],
            "failed": int(failed[index].sum()),
            "unit": str(units[index[0]]),
            "direction": str(directions[index[0]]),
        }
    return out


def _row(key: tuple[str, ...], base: dict[str, Any] | None, cand: dict[str, Any] | None,
         overrides: Mapping[str, float]) -> dict[str, Any] | None:
    """One table row; ``key`` is the case keys, the machine when rows are per machine, and the metric."""
    import numpy as np

    info = cand if cand is not None else base
    assert info is not None
    bvals = base["values"] if base is not None else np.array([])
    cvals = cand["values"] if cand is not None else np.array([])
    bfail = base["failed"] if base is not None else 0
    cfail = cand["failed"] if cand is not None else 0
    family = family_of(info["unit"])
    row: dict[str, Any] = {
        **dict(zip(CASE_KEYS, key)), "machine": key[len(CASE_KEYS)] if len(key) > len(CASE_KEYS) + 1 else None,
        "metric": key[-1], "unit": info["unit"],
        "direction": info["direction"], "family": family, "n_base": len(bvals), "n_cand": len(cvals),
        "n_failed_base": bfail, "n_failed_cand": cfail,
        "median_base": float(np.median(bvals)) if len(bvals) else math.nan,
        "median_cand": float(np.median(cvals)) if len(cvals) else math.nan,
        "change": math.nan, "ci_low": math.nan, "ci_high": math.nan, "p_value": math.nan, "p_adjusted": math.nan,
        "threshold": threshold_for(key[-1], family, overrides), "verdict": None, "_values": (bvals, cvals),
    }
    if len(bvals) and len(cvals):
        if cfail and not bfail and info["direction"] != "none":
            row["verdict"] = "failed"
    elif len(bvals):
        row["verdict"] = "failed" if cfail and not bfail and info["direction"] != "none" else "missing"
    elif len(cvals):
        row["verdict"] = "new"
    elif cfail and not bfail and info["direction"] != "none":
        row["verdict"] = "failed"
    else:
        return None  # not applicable, or failing in both: nothing to compare
    return row


def _two_sample(row: dict[str, Any], alpha: float) -> tuple[Interval, bool]:
    """The row's interval on the log scale when every value is positive, else of differences."""
    import numpy as np

    base, cand = row["_values"]
    if (base > 0).all() and (cand > 0).all():
        return two_sample_interval(np.log(base), np.log(cand), alpha), True
    return two_sample_interval(base, cand, alpha), False


def _judge(rows: list[dict[str, Any]], alpha: float) -> None:
    """Verdicts of the rows that have samples on both sides, Bonferroni per family."""
    import numpy as np

    groups: dict[tuple[str, bool], list[dict[str, Any]]] = {}
    for row in rows:
        if row["n_base"] and row["n_cand"]:
            groups.setdefault((row["family"], row["direction"] == "none"), []).append(row)
    for members in groups.values():
        for row in members:
            interval, logs = _two_sample(row, alpha / len(members))
            apply_interval(row, interval, logs, scale=abs(float(np.median(row["_values"][0]))), tests=len(members))
    for row in rows:
        decide(row)


def apply_interval(row: dict[str, Any], interval: Interval, logs: bool, *, scale: float, tests: int) -> None:
    """Fill a row's change, interval and p-values from ``interval`` (of log-ratios, or differences).

    A difference (a value that can be 0 or negative) is scaled by ``scale`` for ``change``
    and the threshold. Unbounded ends are NaN: nothing these samples hold bounds them.
    """
    def ratio(value: float) -> float:
        if not math.isfinite(value):
            return math.nan
        try:
            return math.expm1(value)
        except OverflowError:
            return math.inf

    def scaled(value: float) -> float:
        if not math.isfinite(value) or math.isnan(scale):
            return math.nan
        if scale == 0:  # from nothing to something: infinitely more
            return 0.0 if value == 0 else math.copysign(math.inf, value)
        return value / scale

    convert = ratio if logs else scaled
    row["change"], row["ci_low"], row["ci_high"] = (convert(v) for v in (interval.estimate, interval.low,
                                                                           interval.high))
    row["p_value"] = interval.p_value
    row["p_adjusted"] = min(1.0, tests * interval.p_value)


def decide(row: dict[str, Any]) -> None:
    """The row's verdict from its interval alone, unless one is set already (``failed``, ``missing``...).

    Regressed/improved/changed: the interval excludes 0 and the estimate reaches the
    threshold; unchanged: the interval lies within ± the threshold; else inconclusive.
    A row whose interval lies wholly past its threshold is therefore never unchanged.
    """
    if row["verdict"] is not None:
        return
    low, high, change, threshold = row["ci_low"], row["ci_high"], row["change"], row["threshold"]
    if math.isnan(low) or math.isnan(high) or math.isnan(change):
        row["verdict"] = "inconclusive"
        return
    sign = 1 if low > 0 else -1 if high < 0 else 0
    if sign and sign * change >= threshold:
        if row["direction"] == "none":
            row["verdict"] = "changed"
        else:
            row["verdict"] = "regressed" if (sign > 0) == (row["direction"] == "lower") else "improved"
    elif -threshold <= low and high <= threshold:
        row["verdict"] = "unchanged"
    else:
        row["verdict"] = "inconclusive"


def compare(
    baseline: pd.DataFrame,
    candidate: pd.DataFrame,
    *,
    thresholds: Mapping[str, float] | None = None,
    alpha: float = DEFAULT_ALPHA,
    metrics: Sequence[str] | None = None,
    allow_mismatch: bool = False,
) -> pd.DataFrame:
    """One row per case × metric (COMPARE_COLUMNS), regressions first; per machine as well where needed.

    Parameters
    ----------
    baseline, candidate
        ``load()``-shaped frames (several runs each are pooled). Warmup samples are
        ignored; ok samples are compared, failed ones counted.
    thresholds
        Minimum relative change, as fractions, keyed by metric name (``load_s``) or
        family (``time``, ``memory``, ``throughput``, ``other``); the rest keep
        DEFAULT_THRESHOLDS.
    alpha
        Per metric family, the chance of any false regressed/improved verdict in a
        comparison of two runs of the same code (Bonferroni over the family's rows).
    metrics
        Compare only these metrics. Fewer rows per family make each interval narrower,
        so a gate on the metrics that matter decides more.
    allow_mismatch
        Compare even when the runs' comparability keys differ (CPU, GPUs, torch,
        transformers); ``fingerprint_differences`` tells what differs.

    Samples of different hardware are never pooled: when either side was measured on
    several machines (a ``machine`` column with several values), or both on the same
    one, rows are per case × machine × metric and ``machine`` names it; a machine only
    one side has gives ``new`` / ``missing`` rows. A single-machine baseline and a
    single-machine candidate on different hardware (``allow_mismatch``) are compared
    with each other, and ``machine`` is empty.

    Verdicts (``decide``): ``regressed`` / ``improved`` (the interval excludes no change
    and the estimate reaches the threshold, in the metric's worse / better direction),
    ``unchanged`` (the interval lies within ± the threshold), ``inconclusive`` (neither),
    ``changed`` (a metric with no better direction), ``failed`` (the candidate has failed
    samples where the baseline had none), ``missing`` (only the baseline has samples),
    ``new`` (only the candidate has). ``change`` is the Hodges–Lehmann estimate of
    ``candidate / baseline - 1`` (the median of all sample ratios), ``ci_low``/``ci_high``
    its interval (NaN where unbounded); ``p_value`` the two-sided Mann–Whitney p,
    ``p_adjusted`` Bonferroni's.

    Raises CannotCompare for empty input, no common case, every row too small to bound,
    or (unless allowed) a fingerprint mismatch.
    """

    alpha = check_alpha(alpha)
    overrides = check_thresholds(thresholds)
    base, cand = _prepare(baseline, "baseline"), _prepare(candidate, "candidate")
    if metrics is not None:
        wanted = [check_metric(m) for m in metrics]
        base, cand = base[base["metric"].isin(wanted)], cand[cand["metric"].isin(wanted)]
    check_comparable(base, cand, allow_mismatch)
    keys = [*CASE_KEYS, "metric"]
    if by_machine(base, cand):
        keys.insert(len(CASE_KEYS), "machine")
        # A missing key would drop its rows from the groups, not form a group of its own.
        base, cand = (df.assign(machine=df["machine"].fillna("unknown")) for df in (base, cand))
    bgroups, cgroups = _groups(base, keys), _groups(cand, keys)
    common = {k[:-1] for k in bgroups if bgroups[k]["values"].size} & {
        k[:-1] for k in cgroups if cgroups[k]["values"].size}
    if not common:
        raise CannotCompare("baseline and candidate have no measured case in common "
                            f"(case keys: {', '.join(keys[:-1])})")
    rows = [r for k in dict.fromkeys([*bgroups, *cgroups])
            if (r := _row(k, bgroups.get(k), cgroups.get(k), overrides)) is not None]
    _judge(rows, alpha)
    gating = [r for r in rows if r["direction"] != "none" and r["n_base"] and r["n_cand"]]
    if gating and all(math.isnan(r["ci_low"]) for r in gating):
        n = min(min(r["n_base"], r["n_cand"]) for r in gating)
        raise CannotCompare(f"too few samples to bound any change at alpha {alpha:g}: {n} per side; "
                            f"run at least {repeats_needed(alpha, len(gating))} repeats")
    return verdict_table(rows, COMPARE_COLUMNS)


def verdict_table(rows: list[dict[str, Any]], columns: Sequence[str], first: str | None = None) -> pd.DataFrame:
    """The rows as a table in report order: what fails CI first, then by the size of the change.

    ``first``: a boolean column whose true rows go before the rest (the paired gate).
    """
    import pandas as pd

    table = pd.DataFrame(rows).drop(columns=[c for c in ("_values", "_d") if c in rows[0]])
    table["_order"] = table["verdict"].map({v: i for i, v in enumerate(VERDICTS)})
    table["_size"] = -table["change"].abs().fillna(0)
    keys, ascending = ["_order", "_size"], [True, True]
    if first is not None:
        keys, ascending = [first, *keys], [False, *ascending]
    table = table.sort_values(keys, ascending=ascending, kind="stable").drop(columns=["_order", "_size"])
    return table[list(columns)].reset_index(drop=True)


def exit_code(table: pd.DataFrame, *, fail_on_inconclusive: bool = True) -> int:
    """EXIT_REGRESSED when a gated row regressed or newly failed; else EXIT_INCONCLUSIVE when one is inconclusive.

    0 otherwise, and when inconclusive rows are let pass (``fail_on_inconclusive=False``);
    2, cannot compare, is CannotCompare. Every row of an unpaired table is gated; a paired
    one (compare_paired) says which are.
    """
    rows = table[table["gated"].astype(bool)] if "gated" in table.columns else table
    if rows["verdict"].isin(REGRESSION_VERDICTS).any():
        return EXIT_REGRESSED
    if fail_on_inconclusive and (rows["verdict"] == "inconclusive").any():
        return EXIT_INCONCLUSIVE
    return 0
