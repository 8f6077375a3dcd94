"""Compare a baseline with a candidate: which cases got slower, bigger or faster, and how sure we are.

A CI gate that cries wolf gets switched off, so a row is only called regressed or
improved when two things hold at once:

- **significance**: a Mann–Whitney U test of the raw samples (no normality assumed;
  load times are skewed and often bimodal), corrected for the number of rows tested with
  Holm's step-down procedure within each metric family, so ``alpha`` is the chance that
  a comparison of two runs of the *same* code reports any false verdict in that family,
  however many cases and metrics the suite has;
- **effect size**: the candidate differs by at least the family's threshold (time 10%,
  memory 5%, throughput 10% by default), measured by the Hodges–Lehmann estimate (the
  median of all candidate/baseline sample ratios), which, unlike a ratio of medians,
  does not jump between the modes of a bimodal sample.

A row whose sample sizes cannot reach significance at all (``1 / C(n1 + n2, n1)``, the
smallest one-sided p-value the test can give, is above ``alpha / m``) gets the verdict
``too few samples`` instead of a guess. Everything here is a pure function of two
``load()``-shaped frames; reading files lives in the callers. docs/REGRESSIONS.md has
the measured false-alarm and detection rates.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
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
from loadbench.results.comparison.stats import holm, min_p_value, one_sided_u_test, relative_shift, repeats_needed
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
    "REGRESSION_VERDICTS",
    "VERDICTS",
    "compare",
    "exit_code",
    "fingerprint_differences",
    "judge_family",
    "verdict_table",
    "parse_threshold",
    "read_compare_settings",
]

# Report order: what fails CI first.
VERDICTS: tuple[str, ...] = (
    "regressed", "failed", "improved", "new", "missing", "not applicable", "too few samples", "changed",
    "unchanged",
)
REGRESSION_VERDICTS: tuple[str, ...] = ("regressed", "failed")
COMPARE_COLUMNS: tuple[str, ...] = (
    *CASE_KEYS, "machine", "metric", "unit", "direction", "family", "n_base", "n_cand", "n_failed_base",
    "n_failed_cand", "median_base", "median_cand", "change", "p_value", "p_adjusted", "threshold", "verdict",
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
        "change": math.nan, "p_value": math.nan, "p_adjusted": math.nan,
        "threshold": threshold_for(key[-1], family, overrides), "verdict": None, "_sign": 0,
    }
    if len(bvals) and len(cvals):
        row["change"] = relative_shift(bvals, cvals)
        row["p_value"], row["_sign"] = one_sided_u_test(bvals, cvals)
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


def _judge(rows: list[dict[str, Any]], alpha: float) -> None:
    """Verdicts of the rows that have samples on both sides, Holm-corrected per family."""
    groups: dict[tuple[str, bool], list[dict[str, Any]]] = {}
    for row in rows:
        if row["n_base"] and row["n_cand"]:
            groups.setdefault((row["family"], row["direction"] == "none"), []).append(row)
    for members in groups.values():
        judge_family(members, alpha, lambda row: min_p_value(row["n_base"], row["n_cand"]))


def judge_family(members: list[dict[str, Any]], alpha: float, smallest_p: Callable[[dict[str, Any]], float]) -> None:
    """Verdicts of one Holm family of rows (``p_value``, ``_sign``, ``change``, ``threshold``, ``direction``).

    A row whose sample sizes cannot give a p below ``alpha / m`` (``smallest_p``) is
    ``too few samples``; the rest are Holm-adjusted together. A verdict already set
    (``failed``) stays. Shared by the unpaired and the paired compare.
    """
    level = alpha / len(members)
    testable = []
    for row in members:
        if smallest_p(row) > level:
            row["verdict"] = row["verdict"] or "too few samples"
        else:
            testable.append(row)
    for row, adjusted in zip(testable, holm([r["p_value"] for r in testable])):
        row["p_adjusted"] = adjusted
        if row["verdict"] is not None:
            continue
        # The change must reach the threshold in the direction the test found.
        effect = row["change"] if row["_sign"] > 0 else -row["change"]
        if not (adjusted <= alpha and effect >= row["threshold"]):
            row["verdict"] = "unchanged"
        elif row["direction"] == "none":
            row["verdict"] = "changed"
        else:
            worse = (row["_sign"] > 0) == (row["direction"] == "lower")
            row["verdict"] = "regressed" if worse else "improved"


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
        comparison of two runs of the same code (Holm's correction over the family's rows).
    metrics
        Compare only these metrics. Fewer rows per family make Holm's correction
        milder, so a gate on the metrics that matter catches smaller changes.
    allow_mismatch
        Compare even when the runs' comparability keys differ (CPU, GPUs, torch,
        transformers); ``fingerprint_differences`` tells what differs.

    Samples of different hardware are never pooled: when either side was measured on
    several machines (a ``machine`` column with several values), or both on the same
    one, rows are per case × machine × metric and ``machine`` names it; a machine only
    one side has gives ``new`` / ``missing`` rows. A single-machine baseline and a
    single-machine candidate on different hardware (``allow_mismatch``) are compared
    with each other, and ``machine`` is empty.

    Verdicts: ``regressed`` / ``improved`` (significant and beyond the threshold, in
    the metric's worse / better direction), ``unchanged``, ``changed`` (a metric with
    no better direction), ``failed`` (the candidate has failed samples where the
    baseline had none), ``missing`` (only the baseline has samples), ``new`` (only the
    candidate has), ``too few samples`` (the test cannot reach significance).
    ``change`` is the Hodges–Lehmann estimate of ``candidate / baseline - 1`` (the
    median of all sample ratios); ``p_value`` the one-sided Mann–Whitney p in the
    direction observed; ``p_adjusted`` Holm's.

    Raises CannotCompare for empty input, no common case, every row too small to test,
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
    if gating and all(r["verdict"] == "too few samples" for r in gating):
        n = min(min(r["n_base"], r["n_cand"]) for r in gating)
        raise CannotCompare(f"too few samples to test anything at alpha {alpha:g}: {n} per side; "
                            f"run at least {repeats_needed(alpha, len(gating))} repeats")
    return verdict_table(rows, COMPARE_COLUMNS)


def verdict_table(rows: list[dict[str, Any]], columns: Sequence[str], first: str | None = None) -> pd.DataFrame:
    """The rows as a table in report order: what fails CI first, then by the size of the change.

    ``first``: a boolean column whose true rows go before the rest (the paired gate).
    """
    import pandas as pd

    table = pd.DataFrame(rows).drop(columns="_sign")
    table["_order"] = table["verdict"].map({v: i for i, v in enumerate(VERDICTS)})
    table["_size"] = -table["change"].abs().fillna(0)
    keys, ascending = ["_order", "_size"], [True, True]
    if first is not None:
        keys, ascending = [first, *keys], [False, *ascending]
    table = table.sort_values(keys, ascending=ascending, kind="stable").drop(columns=["_order", "_size"])
    return table[list(columns)].reset_index(drop=True)


def exit_code(table: pd.DataFrame) -> int:
    """1 when any gated row regressed or newly failed, else 0 (2, cannot compare, is CannotCompare).

    Every row of an unpaired table is gated; a paired one (compare_paired) says which are.
    """
    rows = table[table["gated"].astype(bool)] if "gated" in table.columns else table
    return int(rows["verdict"].isin(REGRESSION_VERDICTS).any())
