"""Wide views: paths side by side, runs side by side."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from loadbench.results import by_path, by_run, load, summarize
from loadbench.results.analysis.summary import WrongFrame

# A case's options and environment when it sets neither.
PLAIN = ("default", "default")


def test_by_path_puts_paths_in_columns_and_names_the_best(synthetic_run: Path, synthetic) -> None:
    wide = by_path(load(synthetic_run))
    assert list(wide.columns) == ["base", "task", "custom", "pipeline", "unit", "direction", "best"]
    assert wide.index.names == ["checkpoint", "task", "dtype", "device", "cache", "options", "env", "metric"]
    row = wide.loc[("tiny-llama", "text-generation", "auto", "cpu", "warm", "default", "default", "load_s")]
    expected = {p: synthetic.load_seconds("tiny-llama", p, "warm")[1] for p in synthetic.PATHS}
    for path, value in expected.items():
        assert row[path] == pytest.approx(value)
    assert (row["unit"], row["direction"], row["best"]) == ("s", "lower", "base")
    tps = wide.loc[("tiny-llama", "text-generation", "auto", "cpu", "warm", *PLAIN, "decode_tokens_per_s")]
    assert tps["best"] == "task" and math.isnan(tps["base"])  # higher is better; base does not decode


def test_by_path_failed_and_na_are_nan_without_a_best(synthetic_run: Path) -> None:
    wide = by_path(summarize(load(synthetic_run)))
    failed = wide.loc[("tiny-bert", "text-classification", "auto", "cpu", "cold", "default", "default", "load_s")]
    assert math.isnan(failed["pipeline"]) and failed["best"] == "base"
    na = wide.loc[("tiny-t5", "text2text-generation", "auto", "cpu", "warm", "default", "default", "load_s")]
    assert math.isnan(na["pipeline"])
    gpu = wide.loc[("tiny-t5", "text2text-generation", "auto", "cpu", "warm", *PLAIN, "gpu_peak_used_bytes")]
    assert pd.isna(gpu["best"])  # nothing measured, nothing best


def test_by_path_with_several_runs_leads_with_run_id(synthetic_pair: tuple[Path, Path]) -> None:
    wide = by_path(load(list(synthetic_pair)))
    assert wide.index.names[0] == "run_id"
    assert wide.index.get_level_values("run_id").unique().tolist() == ["20260101T000000Z-aaaa",
                                                                         "20260102T000000Z-bbbb"]


def test_by_run_gives_ratio_against_the_first_run(synthetic_pair: tuple[Path, Path], synthetic) -> None:
    wide = by_run(load(list(synthetic_pair)))
    a, b = "20260101T000000Z-aaaa", "20260102T000000Z-bbbb"
    assert list(wide.columns) == ["unit", "direction", a, b, f"{b} / {a}"]
    task = wide.loc[("tiny-llama", "task", "text-generation", "auto", "cpu", "warm", "default", "default", "load_s")]
    assert task[f"{b} / {a}"] == pytest.approx(1.3)  # the synthetic slowdown of the task path
    base = wide.loc[("tiny-llama", "base", "text-generation", "auto", "cpu", "warm", "default", "default", "load_s")]
    assert base[f"{b} / {a}"] == pytest.approx(1.0)
    flipped = by_run(load(list(synthetic_pair)), baseline=b)
    assert flipped.loc[("tiny-llama", "task", "text-generation", "auto", "cpu", "warm", "default", "default", "load_s"),
                       f"{a} / {b}"] == pytest.approx(1 / 1.3)


def test_by_run_refuses_one_run_and_unknown_baseline(synthetic_run: Path, synthetic_pair) -> None:
    with pytest.raises(WrongFrame, match="two or more runs"):
        by_run(load(synthetic_run))
    with pytest.raises(WrongFrame, match="baseline 'nope'"):
        by_run(load(list(synthetic_pair)), baseline="nope")
    with pytest.raises(WrongFrame, match="stat must be one of"):
        by_path(load(synthetic_run), stat="mean")


def test_by_path_other_stat(synthetic_run: Path, synthetic) -> None:
    wide = by_path(load(synthetic_run), stat="max")
    loads = synthetic.load_seconds("tiny-llama", "custom", "warm")
    assert wide.loc[("tiny-llama", "text-generation", "auto", "cpu", "warm", *PLAIN, "load_s"), "custom"] == \
        pytest.approx(max(loads))


def test_a_spread_run_keeps_its_machines_apart(tmp_path: Path, synthetic) -> None:
    from loadbench.results.records.runinfo import machine_key

    single = synthetic.write_run(tmp_path / "single", "run-a")
    spread = synthetic.write_spread_run(tmp_path / "spread", "run-b")
    amd, intel = (machine_key(fp) for fp in synthetic.NODES.values())
    wide = by_path(load(spread))
    assert wide.index.names == ["checkpoint", "task", "dtype", "device", "cache", "options", "env", "machine",
                                "metric"]
    key = ("tiny-llama", "text-generation", "auto", "cpu", "warm", "default", "default")
    custom = synthetic.load_seconds("tiny-llama", "custom", "warm")
    assert wide.loc[(*key, amd, "load_s"), "custom"] == pytest.approx(custom[1])  # repeat 2 only
    assert wide.loc[(*key, intel, "load_s"), "custom"] == pytest.approx((custom[0] + custom[2]) / 2)
    runs = by_run(load([single, spread]))
    assert runs.index.names == ["checkpoint", "path", "task", "dtype", "device", "cache", "options", "env", "machine",
                                "metric"]
    other = runs.loc[("tiny-llama", "custom", "text-generation", "auto", "cpu", "warm", *PLAIN, intel, "load_s")]
    assert math.isnan(other["run-a"]) and other["run-b"] == pytest.approx((custom[0] + custom[2]) / 2)
