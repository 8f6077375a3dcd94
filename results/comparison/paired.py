"""Compare two environments of one run, pair by pair: the gate that holds on a noisy, drifting host.

Two runs measured minutes apart differ by whatever the host did in between, and no test
of unpaired samples can tell that from a change in the code. A run with environments
measures a case in each of them back to back, in a random order, as one block
(bench/runner.py); here each block gives one paired log-ratio ``log(candidate/baseline)``,
and the host's drift, the same for both sides of a block, cancels.

Each row gets one of three answers, read off one interval: an anytime-valid confidence
sequence for the median paired log-ratio (stats.sign_sequence), at level ``alpha / m``,
Bonferroni over the ``m`` rows of its metric family in the gate (by default the headline
metrics: ``GATE_METRICS``):

- ``regressed`` / ``improved``: the interval excludes no change and the median reaches the
  threshold (``PAIRED_THRESHOLDS``: 3% for ``load_s``; the unpaired defaults otherwise);
- ``unchanged``: the whole interval lies within ± the threshold (an equivalence claim);
- ``inconclusive``: neither; more blocks would decide it (``run --until-decided``).

The sequence holds whenever one looks and whenever one stops, so a run that adds blocks
until every gated row is decided (bench/sequential.py) keeps ``alpha`` as the chance that
two identical environments get any false verdict in a family. Every other metric gets a
verdict too, by the same rule among themselves, as a diagnostic that does not fail the
gate unless named in ``gate``.
docs/REGRESSIONS.md has the measured false-alarm and detection rates.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from loadbench.results.comparison.comparability import CannotCompare
from loadbench.results.comparison.settings import check_alpha, check_metric, check_thresholds, family_of
from loadbench.results.comparison.stats import sign_sequence, sign_sequence_pairs_needed
from loadbench.results.comparison.unpaired import apply_interval, decide, verdict_table
from loadbench.results.records.integrity import impossible_value
from loadbench.results.records.schema import CASE_KEYS

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CI_LEVEL", "CONTENDED", "DEFAULT_PAIRED_ALPHA", "GATE_METRICS", "PAIRED_COLUMNS", "PAIRED_THRESHOLDS",
           "compare_paired", "contended_share", "environments_of"]

# What a paired gate judges unless told otherwise: loading time, and the load's CPU time (which
# waiting for a busy core does not inflate: under contention it caught a 10% slower load in 30 of
# 30 replayed comparisons where wall time caught 3; docs/REGRESSIONS.md), the first call that pays
# for lazily mapped weights, peak memory and the memory the load adds (where upgrades regress),
# and throughput.
GATE_METRICS: tuple[str, ...] = ("load_s", "load_cpu_s", "first_forward_s", "peak_rss_bytes",
                                 "load_added_rss_bytes", "gpu_peak_used_bytes", "gpu_load_added_bytes",
                                 "decode_tokens_per_s", "forward_tokens_per_s")
# The minimum changes: the unpaired defaults by family, and 3% for load_s, the quantity pairing
# resolves best (its 5% changes are caught; docs/REGRESSIONS.md). With 3% for every time metric
# and 5% for throughput, identical environments false-alarmed in 3 of 30 comparisons, two of
# them on first_forward_s (a few ms) and decode tokens/s, which moved 7-8% between identical sides.
PAIRED_THRESHOLDS: dict[str, float] = {"time": 0.10, "memory": 0.05, "throughput": 0.10, "other": 0.10,
                                       "load_s": 0.03, "load_cpu_s": 0.03}
# A sample whose host probe took this much longer than the run's median ran on a contended core.
CONTENDED = 1.5
# The gate holds a few rows per path, not every sub-timing, so its families are small: with 24
# rows a family (two checkpoints' four paths, three time metrics) 14 agreeing blocks can decide.
DEFAULT_PAIRED_ALPHA = 0.05
# The intervals hold together across a family with this confidence at the default alpha (1 - alpha).
CI_LEVEL = 0.95
_KEYS = tuple(k for k in CASE_KEYS if k != "env")
PAIRED_COLUMNS: tuple[str, ...] = (
    *_KEYS, "metric", "unit", "direction", "family", "gated", "pairs", "n_base", "n_cand", "n_failed_base",
    "n_failed_cand", "median_base", "median_cand", "change", "ci_low", "ci_high", "difference", "difference_low",
    "difference_high", "p_value", "p_adjusted", "threshold", "verdict", "reason",
)


def environments_of(frame: pd.DataFrame) -> list[str]:
    """The environments of a run's frame, in the order their samples first appear."""
    if "env" not in frame.columns:
        return []
    return [str(e) for e in dict.fromkeys(frame["env"].dropna())]


def contended_share(frame: pd.DataFrame, envs: Sequence[str]) -> float:
    """The share of blocks in which a sample of ``envs`` ran on a contended core (the host probe).

    A probe more than CONTENDED times the run's median says another process had the core;
    a pair with such a sample is noisier (measured: its log-ratios spread about twice as
    wide), so a comparison with many of them is less sensitive. NaN without probes.
    """
    probes = frame[(frame["metric"] == "host_probe_s") & (frame["status"] == "ok") & ~frame["warmup"].astype(bool)
                   & frame["env"].isin(list(envs))].dropna(subset=["block"])
    if probes.empty:
        return math.nan
    contended = probes["value"] > CONTENDED * float(probes["value"].median())
    return float(contended.groupby(probes["block"]).any().mean())


def _choose(frame: pd.DataFrame, baseline: str | None, candidate: str | None) -> tuple[str, str]:
    envs = environments_of(frame)
    if len(envs) < 2:
        raise CannotCompare(f"a paired compare needs a run with two environments; this one has "
                            f"{len(envs)} ({', '.join(envs) or 'none'}); measure both with "
                            "`loadbench run --env base=PATH --env head=PATH`")
    for name, what in ((baseline, "`baseline_env`"), (candidate, "`candidate_env`")):
        if name is not None and name not in envs:
            raise CannotCompare(f"{what} {name!r}: the run's environments are {', '.join(envs)}")
    base = baseline if baseline is not None else envs[0]
    cand = candidate if candidate is not None else next((e for e in envs[1:] if e != base), envs[0])
    if base == cand:
        raise CannotCompare(f"baseline and candidate are both environment {base!r}; choose two different ones")
    return base, cand


def _ratios(base: Any, cand: Any) -> tuple[Any, bool]:
    """Log-ratios when every value is positive; else differences (to be scaled by the baseline)."""
    import numpy as np

    if (base > 0).all() and (cand > 0).all():
        return np.log(cand) - np.log(base), True
    return cand - base, False


def _ratio_minus_one(log_ratio: float) -> float:
    """exp(log_ratio) - 1, infinite past what a float holds (a time of 1e-320 s against 0.1 s)."""
    try:
        return math.expm1(log_ratio)
    except OverflowError:
        return math.inf


def _row(key: tuple[Any, ...], metric: str, group: pd.DataFrame, base_env: str, cand_env: str,
         gated: bool, overrides: Mapping[str, float], unservable: Mapping[tuple[Any, ...], str]) -> dict[str, Any]:
    import numpy as np

    envs, status = group["env"].to_numpy(dtype=object), group["status"].to_numpy(dtype=object)
    values, blocks = group["value"].to_numpy(dtype=float), group["block"].to_numpy(dtype=float)
    side = {env: envs == env for env in (base_env, cand_env)}
    ok = {env: values[mask & (status == "ok")] for env, mask in side.items()}
    failed = {env: int((mask & (status == "failed")).sum()) for env, mask in side.items()}
    unit, direction = str(group["unit"].iloc[0]), str(group["direction"].iloc[0])
    family = family_of(unit)
    # Pair by block (integrity.py guarantees one sample of each environment in a block).
    by_block = [{b: v for b, v, m in zip(blocks, values, mask & (status == "ok") & ~np.isnan(blocks)) if m}
                for mask in side.values()]
    common = sorted(by_block[0].keys() & by_block[1].keys())
    base = np.array([by_block[0][b] for b in common], dtype=float)
    cand = np.array([by_block[1][b] for b in common], dtype=float)
    # Yours by metric, then yours by family, then the default by metric, then by family.
    threshold = overrides.get(metric, overrides.get(family, PAIRED_THRESHOLDS.get(metric, PAIRED_THRESHOLDS[family])))
    row: dict[str, Any] = {
        **dict(zip(_KEYS, key)), "metric": metric, "unit": unit, "direction": direction, "family": family,
        "gated": gated, "pairs": len(common), "n_base": len(ok[base_env]), "n_cand": len(ok[cand_env]),
        "n_failed_base": failed[base_env], "n_failed_cand": failed[cand_env],
        "median_base": float(np.median(ok[base_env])) if len(ok[base_env]) else math.nan,
        "median_cand": float(np.median(ok[cand_env])) if len(ok[cand_env]) else math.nan,
        "change": math.nan, "ci_low": math.nan, "ci_high": math.nan, "difference": math.nan,
        "difference_low": math.nan, "difference_high": math.nan, "p_value": math.nan,
        "p_adjusted": math.nan, "threshold": threshold, "verdict": None, "reason": None, "_d": None,
    }
    for env, other in ((cand_env, base_env), (base_env, cand_env)):
        if (*key, env) in unservable and not len(ok[env]) and len(ok[other]):
            # A path one version cannot serve (a pipeline it removed): said so, not "missing".
            row["verdict"] = "not applicable"
            row["reason"] = f"in {env}: {unservable[(*key, env)]}"
            return row
    newly_failing = row["n_failed_cand"] and not row["n_failed_base"] and direction != "none"
    if len(common):
        d, logs = _ratios(base, cand)
        row["_d"] = (d, logs, abs(float(np.median(base))) or math.nan)
    elif len(ok[base_env]):
        row["verdict"] = "missing"
    elif len(ok[cand_env]):
        row["verdict"] = "new"
    if newly_failing:
        row["verdict"] = "failed"
    return row


def _check_measurable(measured: pd.DataFrame) -> None:
    """Refuse what no measurement gives: the reader does for a run, this for a frame built by hand.

    An impossible value (a load of -1 s) would be read as a change of hundreds of percent,
    and a block with two samples of one environment as an extra pair.
    """
    ok = measured[measured["status"] == "ok"]
    for record in ok[["metric", "unit", "status", "value"]].to_dict("records"):
        why = impossible_value(record)
        if why:
            raise CannotCompare(f"{record['metric']} = {record['value']:g} with status ok: {why}; "
                                "no run records that: read the run with load()")
    blocks = ok.dropna(subset=["block"])
    twice = blocks[blocks.duplicated([*_KEYS, "env", "metric", "block"], keep=False)]
    if len(twice):
        first = twice.iloc[0]
        raise CannotCompare(f"block {first['block']} holds {first['metric']} of environment {first['env']!r} "
                            f"({first['checkpoint']}/{first['path']}) twice; a block pairs one sample of each "
                            "environment: read the run with load()")


def _families(rows: list[dict[str, Any]]) -> dict[tuple[bool, str], list[dict[str, Any]]]:
    """The Holm families: each metric family of the gate, and each of the diagnostics, apart."""
    families: dict[tuple[bool, str], list[dict[str, Any]]] = {}
    for row in rows:
        if row["pairs"]:
            families.setdefault((row["gated"], row["family"]), []).append(row)
    return families


def _judge(rows: list[dict[str, Any]], alpha: float) -> None:
    """Intervals and verdicts, Bonferroni within each metric family of the gate and of the diagnostics."""
    for members in _families(rows).values():
        for row in members:
            d, logs, scale = row["_d"]
            interval = sign_sequence(d, alpha / len(members))
            apply_interval(row, interval, logs, scale=scale, tests=len(members))
            if not logs:
                # A value that can be zero or negative (memory a load adds) has no ratio: its change
                # is shown as a difference in its unit, scaled by the baseline only for the threshold.
                row["difference"], row["difference_low"], row["difference_high"] = (
                    v if math.isfinite(v) else math.nan for v in (interval.estimate, interval.low, interval.high))
    for row in rows:
        decide(row)


def compare_paired(
    frame: pd.DataFrame,
    *,
    baseline_env: str | None = None,
    candidate_env: str | None = None,
    thresholds: Mapping[str, float] | None = None,
    alpha: float = DEFAULT_PAIRED_ALPHA,
    metrics: Sequence[str] | None = None,
    gate: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One row per case × metric (PAIRED_COLUMNS): the candidate environment against the baseline one.

    ``frame`` is a ``load()`` frame of one run with two or more environments; by default
    the first environment to appear in it is the baseline and the next the candidate
    (``api.compare`` passes the order the run named them in). ``metrics``
    limits the rows; ``gate`` names the metrics whose verdicts fail the gate (default
    GATE_METRICS), the rest are diagnostics. ``change`` is the median paired ratio minus
    1, ``ci_low`` and ``ci_high`` its confidence sequence at ``alpha / m`` (NaN where
    unbounded); ``pairs`` counts the blocks with an ok sample on both sides. Raises CannotCompare when the run has fewer
    than two environments, a named one is not in it, or nothing can be paired.
    """

    alpha = check_alpha(alpha)
    overrides = check_thresholds(thresholds)
    gate_metrics = set(GATE_METRICS if gate is None else (check_metric(m) for m in gate))
    base_env, cand_env = _choose(frame, baseline_env, candidate_env)
    measured = frame[~frame["warmup"].astype(bool) & frame["env"].isin([base_env, cand_env])]
    # Only the columns a row reads: a run's frame has dozens, and every pairing merge copies them all.
    measured = measured[[c for c in (*_KEYS, "env", "metric", "value", "unit", "direction", "status", "block",
                                      "reason") if c in measured.columns]]
    _check_measurable(measured)
    if metrics is not None:
        measured = measured[measured["metric"].isin([check_metric(m) for m in metrics])]
    # Cases an environment cannot serve at all (the load itself is not applicable there), and why.
    loads = measured[(measured["metric"] == "load_s") & (measured["status"] == "not_applicable")]
    unservable = {(*(getattr(r, k) for k in _KEYS), r.env): str(r.reason) for r in loads.itertuples(index=False)}
    rows = [_row(tuple(key[:-1]), str(key[-1]), group, base_env, cand_env, key[-1] in gate_metrics, overrides,
                 unservable)
            for key, group in measured.groupby([*_KEYS, "metric"], sort=False, dropna=False)
            # Not applicable on both sides (GPU memory on a CPU): nothing to say.
            if not group["status"].eq("not_applicable").all()]
    if not any(r["pairs"] for r in rows):
        raise CannotCompare(f"environments {base_env!r} and {cand_env!r} have no block measured in both: "
                            "nothing to pair")
    _judge(rows, alpha)
    gated_rows = [r for r in rows if r["gated"] and r["pairs"]]
    if gated_rows and all(math.isnan(r["ci_low"]) and math.isnan(r["ci_high"]) for r in gated_rows):
        largest = max(len(members) for (gated, _), members in _families(rows).items() if gated)
        raise CannotCompare(f"too few pairs to bound any change in the gate at alpha {alpha:g}: "
                            f"{min(r['pairs'] for r in gated_rows)} per case; run at least "
                            f"{sign_sequence_pairs_needed(alpha / largest)} repeats, or `--until-decided`")
    return verdict_table(rows, PAIRED_COLUMNS, first="gated")
