"""compare(): verdicts per direction, thresholds, the sample-size guard, fingerprints, rendering."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import pandas as pd
import pytest

from loadbench.results import RunWriter, Sample, load
from loadbench.results.comparison.comparability import CannotCompare, fingerprint_differences
from loadbench.results.comparison.render import JSON_SCHEMA, render_json, render_markdown
from loadbench.results.comparison.stats import (
    holm,
    min_p_value,
    one_sided_u_test,
    relative_shift,
    repeats_needed,
    two_sample_interval,
)
from loadbench.results.comparison.unpaired import COMPARE_COLUMNS, compare, exit_code
from loadbench.results.records.schema import CASE_KEYS

CASE = {"checkpoint": "tiny-bert", "path": "task", "task": "text-classification", "dtype": "auto",
        "device": "cpu", "cache": "warm"}
FINGERPRINT = {"hostname": "ci-1", "cpu_model": "AMD EPYC", "cpu_count": 2, "gpus": "NVML unavailable",
               "python": "3.11.7", "packages": {"torch": "2.13.0+cpu", "transformers": "5.24.0"}}
BASE = [1.00 + 0.01 * i for i in range(10)]  # 10 distinct values around 1.045

Runs = Callable[..., pd.DataFrame]


@pytest.fixture
def run(tmp_path: Path) -> Runs:
    """``run({"load_s": [...]}, case=..., fingerprint=...) -> load() frame`` of a real run directory."""
    counter = iter(range(1000))

    def make(values: Mapping[str, Iterable[float]], *, case: Mapping[str, str] = CASE,
             fingerprint: Mapping[str, object] = FINGERPRINT, extra: Iterable[Sample] = ()) -> pd.DataFrame:
        run_id = f"run{next(counter)}"
        with RunWriter.create(tmp_path / run_id, {"run_id": run_id, "fingerprint": dict(fingerprint)}) as writer:
            for metric, series in values.items():
                for i, value in enumerate(series):
                    writer.append(Sample.ok(case, run_id, i, metric, value))
            for sample in extra:
                writer.append(Sample(**{**sample.to_dict(), "run_id": run_id}))
        return load(tmp_path / run_id)

    return make


def _row(table: pd.DataFrame, metric: str) -> pd.Series:
    rows = table[table["metric"] == metric]
    assert len(rows) == 1, table
    return rows.iloc[0]


@pytest.mark.parametrize(("metric", "factor", "verdict"), [
    ("load_s", 1.3, "regressed"),                 # lower is better: slower is worse
    ("load_s", 1 / 1.3, "improved"),
    ("forward_tokens_per_s", 1 / 1.3, "regressed"),  # higher is better: fewer tokens/s is worse
    ("forward_tokens_per_s", 1.3, "improved"),
    ("peak_rss_bytes", 1.3, "regressed"),
    ("disk_read_bytes", 1.3, "changed"),          # no better direction: never a regression
])
def test_verdict_follows_the_metrics_direction(run: Runs, metric: str, factor: float, verdict: str) -> None:
    table = compare(run({metric: BASE}), run({metric: [v * factor for v in BASE]}))
    row = _row(table, metric)
    assert row["verdict"] == verdict
    assert row["change"] == pytest.approx(factor - 1)
    assert row["median_base"] == pytest.approx(1.045)
    assert (row["n_base"], row["n_cand"]) == (10, 10)
    assert 0 < row["p_value"] < 1e-3
    assert exit_code(table) == (1 if verdict == "regressed" else 0)
    assert list(table.columns) == list(COMPARE_COLUMNS)


def test_a_significant_change_below_the_threshold_is_unchanged(run: Runs) -> None:
    narrow = [1.0 + 0.001 * i for i in range(10)]
    base, cand = run({"load_s": narrow, "peak_rss_bytes": narrow}), run(
        {"load_s": [v * 1.08 for v in narrow], "peak_rss_bytes": [v * 1.06 for v in narrow]})
    table = compare(base, cand)
    # Each candidate sample is above every baseline one (p ~ 1e-4), but +8% < time's 10%...
    assert _row(table, "load_s")["p_adjusted"] < 0.01
    assert _row(table, "load_s")["verdict"] == "unchanged"
    # ...while +6% is above memory's 5%.
    assert _row(table, "peak_rss_bytes")["verdict"] == "regressed"
    assert _row(compare(base, cand, thresholds={"load_s": 0.05}), "load_s")["verdict"] == "regressed"
    assert _row(compare(base, cand, thresholds={"time": 0.05}), "load_s")["verdict"] == "regressed"
    lenient = compare(base, cand, thresholds={"memory": 0.5})
    assert _row(lenient, "peak_rss_bytes")["verdict"] == "unchanged"
    assert _row(lenient, "peak_rss_bytes")["threshold"] == 0.5


def test_a_large_change_of_medians_that_noise_explains_is_no_regression_but_inconclusive(run: Runs) -> None:
    # Bimodal noise, as on a shared machine: one more sample in the slow mode moves the
    # median from between the modes onto the slow one (+19%); the samples hardly moved.
    base = [0.14, 0.14, 0.15, 0.15, 0.15, 0.22, 0.22, 0.23, 0.23, 0.24]
    cand = [0.14, 0.15, 0.15, 0.21, 0.22, 0.22, 0.23, 0.23, 0.24, 0.24]
    row = _row(compare(run({"load_s": base}), run({"load_s": cand})), "load_s")
    assert row["median_cand"] / row["median_base"] - 1 == pytest.approx(0.189, abs=1e-3)
    assert row["change"] == pytest.approx(0.0435, abs=1e-3)  # Hodges-Lehmann: median of all ratios
    assert row["p_value"] == pytest.approx(0.465, abs=1e-3)  # two-sided
    # Ten bimodal samples a side cannot bound the change within ±10%: inconclusive, not "unchanged".
    assert row["ci_low"] < -0.10 and row["ci_high"] > 0.10
    assert row["verdict"] == "inconclusive"


def test_warmup_samples_are_ignored(run: Runs) -> None:
    wild = [Sample.ok(CASE, "x", 99 + i, "load_s", 50.0, warmup=True) for i in range(5)]
    table = compare(run({"load_s": BASE}), run({"load_s": BASE}, extra=wild))
    assert _row(table, "load_s")["n_cand"] == 10
    assert _row(table, "load_s")["verdict"] == "unchanged"


def test_statistics_against_hand_computed_values() -> None:
    # Holm: sorted 0.01, 0.03, 0.04, 0.5 -> x4, x3, x2 (raised to the running max), x1.
    assert holm([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    # Every candidate above every baseline sample: U = 9, exact one-sided p = 1/C(6, 3).
    assert one_sided_u_test([1, 2, 3], [4, 5, 6]) == (pytest.approx(1 / 20), 1)
    assert one_sided_u_test([4, 5, 6], [1, 2, 3]) == (pytest.approx(1 / 20), -1)
    assert one_sided_u_test([1, 1], [1, 1, 1]) == (1.0, 0)
    assert relative_shift([1.0, 2.0, 4.0], [2.0, 4.0, 8.0]) == pytest.approx(1.0)
    assert relative_shift([0.0, 0.0], [1.0, 2.0]) == math.inf
    assert relative_shift([-1.0, -2.0], [-2.0, -3.0]) == pytest.approx(-2 / 3)  # differences over |median|


def test_min_p_value_and_repeats_needed() -> None:
    assert min_p_value(3, 3) == pytest.approx(1 / 20)
    assert min_p_value(10, 10) == pytest.approx(1 / 184756)
    assert min_p_value(0, 5) == 1.0
    for alpha, tests in ((0.05, 1), (0.05, 250), (0.002, 1)):
        n = repeats_needed(alpha, tests)
        bounded = two_sample_interval([1.0 + i for i in range(n)], [2.0 + i for i in range(n)], alpha / tests)
        too_few = two_sample_interval([1.0 + i for i in range(n - 1)], [2.0 + i for i in range(n - 1)], alpha / tests)
        assert math.isfinite(bounded.low) and math.isinf(too_few.low), (alpha, tests, n)
    assert repeats_needed(0.05, 1) == 4


def test_the_two_sample_interval_by_hand() -> None:
    # 5 a side, every candidate 10 above its baseline: the 25 differences are 6..14; at 0.05
    # k = floor(12.5 - 1.96 * sqrt(25 * 11 / 12) - 0.5) + 1 = 3, so the 3rd smallest and largest.
    interval = two_sample_interval([1, 2, 3, 4, 5], [11, 12, 13, 14, 15], 0.05)
    diffs = sorted(c - b for c in (11, 12, 13, 14, 15) for b in (1, 2, 3, 4, 5))
    assert (interval.estimate, interval.low, interval.high) == (10.0, diffs[2], diffs[-3])
    assert interval.direction == 1


def test_rows_that_cannot_reach_significance_say_so(run: Runs) -> None:
    base = run({"load_s": BASE, "weights_s": [1.0, 1.1]})
    cand = run({"load_s": BASE, "weights_s": [9.0, 9.1, 9.2]})
    row = _row(compare(base, cand), "weights_s")
    assert row["verdict"] == "inconclusive" and math.isnan(row["ci_low"])  # 2 and 3 samples bound nothing
    assert row["change"] > 7
    assert exit_code(compare(base, cand)) == 3
    assert exit_code(compare(base, cand), fail_on_inconclusive=False) == 0


def test_nothing_testable_cannot_compare(run: Runs) -> None:
    with pytest.raises(CannotCompare, match=r"too few samples to bound any change .* run at least 6 repeats"):
        compare(run({"load_s": [1.0, 1.1]}), run({"load_s": [2.0, 2.1]}))


def test_comparing_only_some_metrics_makes_the_correction_milder(run: Runs) -> None:
    noise = {m: [1.0, 1.5] * 4 for m in ("config_s", "tokenizer_s", "weights_s")}
    base = run({"load_s": BASE[:8], **noise})
    cand = run({"load_s": [v * 1.3 for v in BASE[:8]], **noise})
    both = compare(base, cand)
    narrow = compare(base, cand, metrics=["load_s"])
    assert list(narrow["metric"]) == ["load_s"]
    # Holm multiplies the smallest p by the number of rows in the family: 4, then 1.
    assert _row(both, "load_s")["p_adjusted"] == pytest.approx(4 * _row(narrow, "load_s")["p_adjusted"])
    assert _row(narrow, "load_s")["verdict"] == _row(both, "load_s")["verdict"] == "regressed"
    with pytest.raises(ValueError, match="lod_s"):
        compare(base, cand, metrics=["lod_s"])


def test_missing_new_and_failed(run: Runs) -> None:
    other = {**CASE, "path": "custom"}
    failed = Sample.failed(other, "x", 0, "load_s", "OSError", "no such file")
    base = run({"load_s": BASE, "config_s": BASE}, extra=[Sample.ok(other, "x", i, "load_s", v)
                                                         for i, v in enumerate(BASE)])
    cand = run({"load_s": BASE, "weights_s": BASE}, extra=[failed])
    table = compare(base, cand)
    verdicts = {(r.path, r.metric): r.verdict for r in table.itertuples()}
    assert verdicts == {("task", "load_s"): "unchanged", ("task", "config_s"): "missing",
                        ("task", "weights_s"): "new", ("custom", "load_s"): "failed"}
    assert table["verdict"].iloc[0] == "failed"  # what fails CI comes first
    assert exit_code(table) == 1


def test_a_pure_aa_comparison_of_many_rows_stays_quiet(run: Runs) -> None:
    rng = random.Random(7)
    metrics = ["load_s", "weights_s", "config_s", "tokenizer_s", "first_forward_s", "ttft_s"]
    cases = [{**CASE, "path": p, "cache": c} for p in ("base", "task", "custom", "pipeline") for c in ("warm", "cold")]

    def noisy() -> list[Sample]:
        # Same bimodal distribution on both sides: any verdict would be false.
        return [Sample.ok(case, "x", i, m, rng.choice([0.14, 0.22]) * rng.uniform(0.95, 1.05))
                for case in cases for m in metrics for i in range(10)]

    tables = [compare(run({}, extra=noisy()), run({}, extra=noisy())) for _ in range(5)]
    for table in tables:
        assert len(table) == len(cases) * len(metrics)
        # Nothing false; and ten bimodal samples a side claim no equivalence either.
        assert set(table["verdict"]) <= {"unchanged", "inconclusive"}
        assert (table["p_adjusted"] >= table["p_value"]).all()


def test_different_hardware_is_refused_unless_allowed(run: Runs) -> None:
    other = {**FINGERPRINT, "cpu_model": "Intel Xeon", "packages": {"torch": "2.14.0", "transformers": "5.24.0"}}
    base, cand = run({"load_s": BASE}), run({"load_s": BASE}, fingerprint=other)
    with pytest.raises(CannotCompare, match=r"cpu_model: AMD EPYC vs Intel Xeon.*`allow_mismatch`") as info:
        compare(base, cand)
    assert "\n" not in str(info.value)
    assert {d.field for d in info.value.differences} == {"cpu_model", "torch_version"}
    table = compare(base, cand, allow_mismatch=True)
    assert _row(table, "load_s")["verdict"] == "unchanged"
    run_ids, diffs = fingerprint_differences(base, cand)
    assert len(run_ids) == 2 and [d.field for d in diffs] == ["cpu_model", "torch_version"]


def test_another_hostname_is_the_same_machine(run: Runs) -> None:
    table = compare(run({"load_s": BASE}), run({"load_s": BASE}, fingerprint={**FINGERPRINT, "hostname": "ci-2"}))
    assert fingerprint_differences(*[run({"load_s": BASE})] * 2)[1] == []
    assert len(table) == 1


def test_inputs_that_cannot_be_compared(run: Runs) -> None:
    base = run({"load_s": BASE})
    with pytest.raises(CannotCompare, match="no measured case in common"):
        compare(base, run({"load_s": BASE}, case={**CASE, "checkpoint": "other"}))
    with pytest.raises(CannotCompare, match="candidate: no measured samples"):
        compare(base, base.iloc[0:0])
    with pytest.raises(CannotCompare, match="missing column"):
        compare(base, base.drop(columns="direction"))


def test_markdown_puts_regressions_first_and_folds_the_rest(run: Runs) -> None:
    base = run({"load_s": BASE, "peak_rss_bytes": BASE, "weights_s": BASE})
    cand = run({"load_s": [v * 1.3 for v in BASE], "peak_rss_bytes": BASE, "weights_s": [v / 1.3 for v in BASE]})
    table = compare(base, cand)
    text = render_markdown(table, alpha=0.05, thresholds={"load_s": 0.15}, baseline_runs=["run0"],
                           candidate_runs=["run1"])
    assert text.startswith("## loadbench compare: ❌ 1 regression\n")
    assert text.index("### Regressed (1)") < text.index("### Improved (1)") < text.index("Unchanged (1)")
    assert "<details><summary>Unchanged (1)</summary>" in text
    assert "| `load_s` | 1.04 s | 1.36 s | +30.0% |" in text
    assert "load_s 15%" in text and "α = 0.05" in text and "`run0`" in text
    quiet = render_markdown(compare(base, base), alpha=0.05)
    assert quiet.startswith("## loadbench compare: ✅ no regression")


def test_markdown_lists_fingerprint_differences(run: Runs) -> None:
    base = run({"load_s": BASE})
    cand = run({"load_s": BASE}, fingerprint={**FINGERPRINT, "packages": {"torch": "2.14.0", "transformers": "5.24.0"}})
    run_ids, diffs = fingerprint_differences(base, cand)
    text = render_markdown(compare(base, cand, allow_mismatch=True), alpha=0.05, baseline_runs=run_ids[:1],
                           candidate_runs=run_ids[1:], differences=diffs)
    assert "fingerprints differ" in text
    assert f"torch_version: 2.13.0+cpu ({run_ids[0]}), 2.14.0 ({run_ids[1]})" in text


def test_json_report_parses_and_has_no_nan(run: Runs) -> None:
    base = run({"load_s": BASE, "config_s": BASE})
    table = compare(base, run({"load_s": [v * 1.3 for v in BASE]}))
    document = json.loads(render_json(table, alpha=0.05, baseline_runs=["a"], candidate_runs=["b"]))
    assert document["schema"] == JSON_SCHEMA and document["exit_code"] == 1
    assert document["counts"]["regressed"] == 1 and document["counts"]["missing"] == 1
    assert document["thresholds"]["time"] == 0.1
    missing = next(r for r in document["rows"] if r["verdict"] == "missing")
    assert missing["median_cand"] is None and missing["p_value"] is None
    assert set(document["rows"][0]) == set(COMPARE_COLUMNS)


def test_infinite_change_when_the_baseline_is_zero(run: Runs) -> None:
    row = _row(compare(run({"disk_read_bytes": [0.0] * 10}), run({"disk_read_bytes": [5.0] * 10})),
               "disk_read_bytes")
    assert math.isinf(row["change"]) and row["verdict"] == "changed"


INTEL = {**FINGERPRINT, "hostname": "ci-9", "cpu_model": "Intel Xeon"}


def _spread(tmp_path: Path, run_id: str, per_node: Mapping[str, Iterable[float]],
            nodes: Mapping[str, Mapping[str, object]]) -> pd.DataFrame:
    """A run whose load_s samples were taken on the nodes named in per_node."""
    info = {"run_id": run_id, "fingerprint": dict(FINGERPRINT), "nodes": {k: dict(v) for k, v in nodes.items()}}
    with RunWriter.create(tmp_path / run_id, info) as writer:
        repeat = iter(range(1000))
        for node, series in per_node.items():
            for value in series:
                writer.append(Sample.ok(CASE, run_id, next(repeat), "load_s", value, node=node))
    return load(tmp_path / run_id)


def test_a_candidate_on_mixed_hardware_is_refused(run: Runs, tmp_path: Path) -> None:
    base = run({"load_s": BASE})
    cand = _spread(tmp_path, "mixed", {"amd": BASE, "intel": [v * 2 for v in BASE]},
                   {"amd": FINGERPRINT, "intel": INTEL})
    with pytest.raises(CannotCompare, match=r"cpu_model: AMD EPYC vs Intel Xeon") as info:
        compare(base, cand)
    assert [d.field for d in info.value.differences] == ["cpu_model"]
    labels, diffs = fingerprint_differences(base, cand)
    amd, intel = sorted(set(cand["machine"]))
    # Every (run, machine) pair is looked at, not the first row of each run.
    assert labels == ["run0", f"mixed @ {amd}", f"mixed @ {intel}"]
    assert diffs[0].values == ("AMD EPYC", "AMD EPYC", "Intel Xeon")
    assert diffs[0].describe(["run0", "mixed"]).endswith(f"Intel Xeon (mixed @ {intel})")


def test_allowed_mixed_hardware_keeps_rows_per_machine(run: Runs, tmp_path: Path) -> None:
    base = run({"load_s": BASE})
    cand = _spread(tmp_path, "mixed", {"amd": BASE, "intel": [v * 2 for v in BASE]},
                   {"amd": FINGERPRINT, "intel": INTEL})
    table = compare(base, cand, allow_mismatch=True)
    by_machine = {r.machine: r for r in table.itertuples()}
    amd = base["machine"].iloc[0]
    intel = next(m for m in cand["machine"] if m != amd)
    assert set(by_machine) == {amd, intel} and len(table) == 2
    # Pooled, the Intel samples would have doubled the candidate's median and called it a regression.
    assert (by_machine[amd].verdict, by_machine[amd].n_base, by_machine[amd].n_cand) == ("unchanged", 10, 10)
    assert by_machine[amd].median_cand == pytest.approx(1.045)
    assert (by_machine[intel].verdict, by_machine[intel].n_base, by_machine[intel].n_cand) == ("new", 0, 10)
    assert exit_code(table) == 0
    assert "machine" in render_markdown(table, alpha=0.01).split("### ")[1]  # a column, since it varies


def test_one_machine_each_side_compares_as_before(run: Runs) -> None:
    same = compare(run({"load_s": BASE}), run({"load_s": BASE}))
    assert list(same.columns) == list(COMPARE_COLUMNS)
    assert COMPARE_COLUMNS.index("machine") == len(CASE_KEYS) == 8  # right after the case keys
    assert same["machine"].tolist() == [run({"load_s": BASE})["machine"].iloc[0]]
    # Different single machines (allowed): compared with each other, not split into new/missing.
    other = compare(run({"load_s": BASE}), run({"load_s": BASE}, fingerprint=INTEL), allow_mismatch=True)
    assert other["verdict"].tolist() == ["unchanged"] and other["machine"].isna().all()
    # Frames without the column (older callers) compare as they always did.
    plain = compare(run({"load_s": BASE}).drop(columns="machine"), run({"load_s": BASE}))
    assert plain["verdict"].tolist() == ["unchanged"]


def test_no_machine_in_common_cannot_compare(run: Runs, tmp_path: Path) -> None:
    base = run({"load_s": BASE}, fingerprint={**FINGERPRINT, "cpu_model": "Ampere Altra"})
    cand = _spread(tmp_path, "mixed", {"amd": BASE, "intel": BASE}, {"amd": FINGERPRINT, "intel": INTEL})
    with pytest.raises(CannotCompare, match=r"no measured case in common \(case keys: .*cache, options, env, "
                                            r"machine\)"):
        compare(base, cand, allow_mismatch=True)


def test_nodes_of_one_machine_with_other_libraries_are_a_difference(run: Runs, tmp_path: Path) -> None:
    newer = {**FINGERPRINT, "hostname": "ci-2", "packages": {"torch": "2.14.0", "transformers": "5.24.0"}}
    cand = _spread(tmp_path, "libs", {"a": BASE, "b": BASE}, {"a": FINGERPRINT, "b": newer})
    assert cand["machine"].nunique() == 1
    _, diffs = fingerprint_differences(run({"load_s": BASE}), cand)
    assert [(d.field, d.values) for d in diffs] == [("torch_version", ("2.13.0+cpu", "2.13.0+cpu", "2.14.0"))]
