"""The paired compare: pairing by block, the signed-rank test, the interval, the gate and its diagnostics."""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import wilcoxon

from loadbench.results import RunWriter, Sample, load
from loadbench.results.comparison.comparability import CannotCompare
from loadbench.results.comparison.paired import (
    PAIRED_COLUMNS,
    PAIRED_THRESHOLDS,
    compare_paired,
    contended_share,
    environments_of,
)
from loadbench.results.comparison.render_paired import render_paired_json, render_paired_markdown
from loadbench.results.comparison.stats import min_signed_rank_p, one_sided_signed_rank_test, walsh_interval
from loadbench.results.comparison.unpaired import exit_code

CASE = {"checkpoint": "tiny-llama", "task": "text-generation", "dtype": "auto", "device": "cpu", "cache": "warm"}


def _write(tmp_path: Path, values: Mapping[tuple[str, str, str], list[float]], *, blocks: bool = True,
           failed: Mapping[tuple[str, str, str], int] | None = None) -> Path:
    """A run whose ``(env, path, metric)`` samples are ``values``, sample i of every env in block i."""
    run_dir = tmp_path / "run"
    writer = RunWriter.create(run_dir, {"run_id": "r1", "suite": {"name": "t"}})
    for (env, path, metric), series in values.items():
        for i, value in enumerate(series):
            case = {**CASE, "path": path, "env": env}
            bad = (failed or {}).get((env, path, metric))
            record = (Sample.failed(case, "r1", i, metric, "RuntimeError", "boom", block=i if blocks else None)
                      if bad is not None and i < bad else
                      Sample.ok(case, "r1", i, metric, value, block=i if blocks else None))
            writer.append(record)
    writer.close("complete")
    return run_dir


def _noisy(n: int, scale: float, seed: int) -> list[float]:
    rng = random.Random(seed)
    # Host drift: a slow trend plus per-sample noise, as on the shared VM.
    return [0.1 * (1 + 0.3 * i / n) * (1 + rng.gauss(0, 0.02)) * scale for i in range(n)]


def test_signed_rank_matches_scipy_and_reports_the_direction() -> None:
    d = [0.05, 0.04, 0.06, -0.01, 0.03, 0.07, 0.02, 0.05, 0.045, 0.035]
    p, sign = one_sided_signed_rank_test(d)
    assert sign == 1 and p == pytest.approx(wilcoxon(d, alternative="greater").pvalue)
    p_down, sign_down = one_sided_signed_rank_test([-x for x in d])
    assert sign_down == -1 and p_down == pytest.approx(p)
    assert one_sided_signed_rank_test([0.0, 0.0, 0.0]) == (1.0, 0)


def test_the_smallest_p_of_n_pairs_is_two_to_the_minus_n() -> None:
    assert min_signed_rank_p(10) == 2.0 ** -10
    p, _ = one_sided_signed_rank_test([0.1 * (i + 1) for i in range(10)])
    assert p == pytest.approx(2.0 ** -10)


def test_walsh_interval_by_hand() -> None:
    # n = 6: P(T <= t) for t = 0, 1, 2, 3 is 1/64, 2/64, 3/64, 5/64. At 95% (0.025 a side) only t = 0
    # qualifies: k = 1, the smallest and largest Walsh averages. At 90% (0.05 a side) t = 0, 1, 2 do
    # (3/64 = 0.047): k = 3, the third smallest and third largest.
    d = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    walsh = sorted((d[i] + d[j]) / 2 for i in range(6) for j in range(i, 6))
    estimate, low, high = walsh_interval(d, 0.95)
    assert estimate == pytest.approx(float(np.median(walsh)))
    assert (low, high) == (walsh[0], walsh[-1])
    _, low90, high90 = walsh_interval(d, 0.90)
    assert (low90, high90) == (walsh[2], walsh[-3])


def test_walsh_interval_covers_the_true_shift_about_as_often_as_it_says() -> None:
    rng = np.random.default_rng(7)
    covered = sum(low <= 0.05 <= high for low, high in
                  (walsh_interval(rng.normal(0.05, 0.02, 12), 0.95)[1:] for _ in range(400)))
    assert 0.92 <= covered / 400 <= 0.99


def test_a_real_ten_percent_slowdown_is_regressed_and_identical_envs_are_not(tmp_path: Path) -> None:
    base = _noisy(12, 1.0, seed=1)
    slower = [v * 1.10 * (1 + random.Random(i).gauss(0, 0.01)) for i, v in enumerate(base)]
    same = [v * (1 + random.Random(100 + i).gauss(0, 0.01)) for i, v in enumerate(base)]
    run = _write(tmp_path, {("base", "base", "load_s"): base, ("head", "base", "load_s"): slower,
                            ("same", "base", "load_s"): same})
    frame = load(run)
    assert environments_of(frame) == ["base", "head", "same"]
    table = compare_paired(frame)  # default: the first environment against the second
    assert list(table.columns) == list(PAIRED_COLUMNS)
    row = table.iloc[0]
    assert row["verdict"] == "regressed" and row["pairs"] == 12 and bool(row["gated"])
    assert row["ci_low"] < 0.10 < row["ci_high"] and row["ci_low"] > 0.03
    assert exit_code(table) == 1
    calm = compare_paired(frame, baseline_env="base", candidate_env="same")
    assert calm.iloc[0]["verdict"] == "unchanged" and exit_code(calm) == 0


def test_a_faster_candidate_is_improved_never_regressed(tmp_path: Path) -> None:
    base = _noisy(12, 1.0, seed=2)
    run = _write(tmp_path, {("base", "base", "load_s"): base, ("head", "base", "load_s"): [v * 0.8 for v in base]})
    table = compare_paired(load(run))
    assert table.iloc[0]["verdict"] == "improved" and exit_code(table) == 0


def test_drift_that_unpaired_samples_would_read_as_change_cancels_in_pairs(tmp_path: Path) -> None:
    # The candidate's samples happen late in each block and the host slows down by 30% over the run;
    # pairs see the same host state, so nothing changed.
    base = _noisy(12, 1.0, seed=3)
    head = [v * (1 + 0.002 * ((-1) ** i)) for i, v in enumerate(base)]
    table = compare_paired(load(_write(tmp_path, {("base", "base", "load_s"): base,
                                                   ("head", "base", "load_s"): head})))
    assert table.iloc[0]["verdict"] == "unchanged"
    assert abs(table.iloc[0]["change"]) < 0.01


def test_only_the_gate_fails_the_comparison_diagnostics_are_reported(tmp_path: Path) -> None:
    base = _noisy(12, 1.0, seed=4)
    run = _write(tmp_path, {("base", "base", "load_s"): base, ("head", "base", "load_s"): base,
                            ("base", "base", "config_s"): base, ("head", "base", "config_s"): [v * 2 for v in base]})
    table = compare_paired(load(run))
    diagnostic = table[table["metric"] == "config_s"].iloc[0]
    assert diagnostic["verdict"] == "regressed" and not diagnostic["gated"]
    assert exit_code(table) == 0
    gated = compare_paired(load(run), gate=["load_s", "config_s"])
    assert exit_code(gated) == 1


def test_new_failures_in_the_candidate_fail_the_gate(tmp_path: Path) -> None:
    base = _noisy(12, 1.0, seed=5)
    run = _write(tmp_path, {("base", "base", "load_s"): base, ("head", "base", "load_s"): base},
                 failed={("head", "base", "load_s"): 2})
    table = compare_paired(load(run))
    assert table.iloc[0]["verdict"] == "failed" and table.iloc[0]["pairs"] == 10 and exit_code(table) == 1


def test_too_few_pairs_says_how_many_repeats(tmp_path: Path) -> None:
    run = _write(tmp_path, {("base", "base", "load_s"): [0.1, 0.11, 0.12], ("head", "base", "load_s"): [0.2] * 3})
    with pytest.raises(CannotCompare, match="too few pairs.*run at least 8 repeats, or `--until-decided`"):
        compare_paired(load(run))


@pytest.mark.parametrize("kwargs, message", [
    ({"baseline_env": "nope"}, "`baseline_env` 'nope': the run's environments are base, head"),
    ({"baseline_env": "head", "candidate_env": "head"}, "both environment 'head'"),
])
def test_environment_choice_errors_name_the_input(tmp_path: Path, kwargs: dict[str, str], message: str) -> None:
    run = _write(tmp_path, {("base", "base", "load_s"): [0.1] * 12, ("head", "base", "load_s"): [0.1] * 12})
    with pytest.raises(CannotCompare, match=message):
        compare_paired(load(run), **kwargs)


def test_one_environment_cannot_be_paired(tmp_path: Path) -> None:
    run = _write(tmp_path, {("default", "base", "load_s"): [0.1] * 12})
    with pytest.raises(CannotCompare, match="needs a run with two environments.*--env base=PATH"):
        compare_paired(load(run))


def test_samples_without_blocks_cannot_be_paired(tmp_path: Path) -> None:
    run = _write(tmp_path, {("base", "base", "load_s"): [0.1] * 12, ("head", "base", "load_s"): [0.1] * 12},
                 blocks=False)
    with pytest.raises(CannotCompare, match="no block measured in both"):
        compare_paired(load(run))


def test_markdown_and_json_carry_the_interval_and_the_design(tmp_path: Path) -> None:
    base = _noisy(12, 1.0, seed=6)
    run = _write(tmp_path, {("base", "base", "load_s"): base, ("head", "base", "load_s"): [v * 1.2 for v in base]})
    table = compare_paired(load(run))
    context = dict(alpha=0.05, run_id="r1", baseline_env="base", candidate_env="head")
    markdown = render_paired_markdown(table, **context)
    assert markdown.startswith("## loadbench compare (paired): ❌ 1 regression")
    assert "anytime-valid 95% confidence sequence" in markdown and "95% CI" in markdown and "+20.0%" in markdown
    document = json.loads(render_paired_json(table, **context, gate=["load_s"]))
    assert document["schema"] == "loadbench-compare-paired/1" and document["exit_code"] == 1
    row = document["rows"][0]
    assert row["ci_low"] <= row["change"] <= row["ci_high"] and math.isclose(row["change"], 0.2, rel_tol=1e-6)


def test_a_contended_host_is_named_with_the_share_of_blocks(tmp_path: Path) -> None:
    base = _noisy(12, 1.0, seed=8)
    # Blocks 0-2 ran while another process had the core: their probes took three times as long.
    probe = [0.006 if i < 3 else 0.002 for i in range(12)]
    run = load(_write(tmp_path, {("base", "base", "load_s"): base, ("head", "base", "load_s"): base,
                                 ("base", "base", "host_probe_s"): probe, ("head", "base", "host_probe_s"): probe}))
    share = contended_share(run, ["base", "head"])
    assert share == 0.25
    table = compare_paired(run)
    context = dict(alpha=0.05, run_id="r1", baseline_env="base", candidate_env="head")
    assert "The host was contended in 25% of the blocks" in render_paired_markdown(table, **context, contended=share)
    assert "contended" not in render_paired_markdown(table, **context, contended=0.05)
    assert json.loads(render_paired_json(table, **context, contended=share))["contended_share"] == 0.25


def test_load_s_has_its_own_small_threshold_and_yours_win(tmp_path: Path) -> None:
    assert PAIRED_THRESHOLDS["load_s"] == 0.03 and PAIRED_THRESHOLDS["time"] == 0.10
    base = _noisy(12, 1.0, seed=9)
    run = load(_write(tmp_path, {(env, "base", metric): [v * (1.05 if env == "head" else 1) for v in base]
                                 for env in ("base", "head") for metric in ("load_s", "first_forward_s")}))
    verdicts = dict(zip(*compare_paired(run)[["metric", "verdict"]].to_dict("list").values()))
    assert verdicts == {"load_s": "regressed", "first_forward_s": "unchanged"}  # 5%: past 3%, short of 10%
    strict = compare_paired(run, thresholds={"time": 0.08})
    assert set(strict["verdict"]) == {"unchanged"}  # your family threshold beats load_s's default
    loose = compare_paired(run, thresholds={"first_forward_s": 0.02})
    assert set(loose["verdict"]) == {"regressed"}


def test_tied_differences_get_scipys_exact_permutation_p() -> None:
    # Memory is quantized to pages: its differences tie, where scipy falls back to a slow permutation test.
    d = [0.1, 0.1, 0.1, -0.05, 0.2, 0.2, 0.1, 0.3, -0.1, 0.1, 0.1, 0.1]
    p, sign = one_sided_signed_rank_test(d)
    assert sign == 1 and p == pytest.approx(wilcoxon(d, alternative="greater").pvalue)
    assert one_sided_signed_rank_test([-0.15] * 12) == (pytest.approx(2.0 ** -12), -1)


def test_a_case_one_environment_cannot_serve_is_not_applicable_with_its_reason(tmp_path: Path) -> None:
    # transformers 5 removed the text2text pipeline: the candidate records the load as not applicable.
    run_dir = tmp_path / "run"
    reason = "transformers 5.24.0 has no pipeline for text2text-generation"
    writer = RunWriter.create(run_dir, {"run_id": "r1", "suite": {"name": "t"}})
    for i in range(12):
        # Each case has blocks of its own, as the runner numbers them.
        block = {"task": 2 * i, "pipeline": 2 * i + 1}
        for path in ("task", "pipeline"):
            writer.append(Sample.ok({**CASE, "path": path, "env": "old"}, "r1", i, "load_s", 0.03, block=block[path]))
            writer.append(Sample.ok({**CASE, "path": path, "env": "old"}, "r1", i, "first_forward_s", 0.01,
                                    block=block[path]))
        writer.append(Sample.ok({**CASE, "path": "task", "env": "new"}, "r1", i, "load_s", 0.03, block=block["task"]))
        writer.append(Sample.ok({**CASE, "path": "task", "env": "new"}, "r1", i, "first_forward_s", 0.01,
                                block=block["task"]))
        writer.append(Sample.not_applicable({**CASE, "path": "pipeline", "env": "new"}, "r1", i, "load_s", reason,
                                            block=block["pipeline"]))
        # Both sides not applicable (GPU memory on a CPU): no row at all.
        for env in ("old", "new"):
            writer.append(Sample.not_applicable({**CASE, "path": "task", "env": env}, "r1", i, "gpu_peak_used_bytes",
                                                "device is cpu", block=block["task"]))
    writer.close("complete")
    table = compare_paired(load(run_dir))
    pipeline = table[table["path"] == "pipeline"]
    assert set(pipeline["verdict"]) == {"not applicable"} and set(pipeline["metric"]) == {"load_s", "first_forward_s"}
    assert set(pipeline["reason"]) == {f"in new: {reason}"}
    assert "gpu_peak_used_bytes" not in set(table["metric"]) and exit_code(table) == 0
    text = render_paired_markdown(table, alpha=0.05, run_id="r1", baseline_env="old", candidate_env="new")
    assert (f"- pipeline (`load_s`, `first_forward_s`): in new: {reason}" in text
            or f"- pipeline (`first_forward_s`, `load_s`): in new: {reason}" in text)


def test_memory_a_load_adds_changes_by_a_difference_in_bytes_never_a_percent_below_minus_100(tmp_path: Path) -> None:
    # A few KiB added, then a few KiB given back: no ratio exists; "-300%" would read as an impossible one.
    added = {"base": [4096.0 + 512 * (i % 3) for i in range(12)], "head": [-8192.0 - 512 * (i % 2) for i in range(12)]}
    run = load(_write(tmp_path, {(env, "base", "load_added_rss_bytes"): values for env, values in added.items()}))
    table = compare_paired(run)
    row = table.iloc[0]
    assert row["difference"] < 0 and row["difference_low"] <= row["difference"] <= row["difference_high"]
    markdown = render_paired_markdown(table, alpha=0.05, run_id="r1", baseline_env="base", candidate_env="head")
    line = next(line for line in markdown.splitlines() if "`load_added_rss_bytes`" in line)
    assert "KiB" in line.split("|")[5] and "%" not in line.split("|")[5]  # the change column, in bytes
    assert not any(float(p) < -100 for p in re.findall(r"(-\d+(?:\.\d+)?)%", line))
    document = json.loads(render_paired_json(table, alpha=0.05, run_id="r1", baseline_env="base", candidate_env="head"))
    assert document["rows"][0]["difference"] == pytest.approx(row["difference"])
