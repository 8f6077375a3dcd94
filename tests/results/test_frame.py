"""The tidy long frame, read from the golden v1 and v2 runs and from fresh runs."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd
import pytest

from loadbench.results import DuplicateRun, NotARun, Sample, load, runs

COLUMNS = [
    "schema_version", "run_id", "checkpoint", "path", "task", "dtype", "device", "cache", "repeat",
    "metric", "value", "unit", "direction", "status", "reason", "error_type", "error",
    "attn_implementation", "resident_dtype", "warmup",
]
FINGERPRINT = [
    "device_name", "started_at", "hostname", "cpu_model", "cpu_count", "gpus", "python_version",
    "torch_version", "transformers_version", "tokenizers_version", "safetensors_version",
    "loadbench_version", "git_commit",
]
TEXT_COLUMNS = [c for c in COLUMNS + FINGERPRINT if c not in ("schema_version", "repeat", "value", "warmup")]


def _check_shape(df: pd.DataFrame, rows: int, fingerprint: bool = True) -> None:
    assert list(df.columns) == COLUMNS + (FINGERPRINT if fingerprint else [])
    assert len(df) == rows
    assert df["value"].dtype == "float64"
    assert df["repeat"].dtype == "int64" and df["schema_version"].dtype == "int64"
    assert df["warmup"].dtype == "bool"
    # Text columns use whatever pandas itself infers for strings with gaps
    # ("str" in pandas 3, object before), so the frame behaves like any other.
    text = pd.Series(["x", None]).dtype
    for column in TEXT_COLUMNS:
        if column in df.columns:
            assert df[column].dtype == text, column


def test_text_columns_include_cache() -> None:
    # Guards the dtype loop above: cache must be checked as a text column.
    assert "cache" in TEXT_COLUMNS and "warmup" not in TEXT_COLUMNS


def test_golden_v1_run_loads_into_expected_shape(golden_run: Path) -> None:
    df = load(golden_run)
    _check_shape(df, 10)
    # The v1 files are migrated on the way in: v2 rows, cache unknown, no warmup.
    assert (df["schema_version"] == 2).all()
    assert df["cache"].tolist() == ["unspecified"] * 10
    assert df["warmup"].tolist() == [False] * 10
    assert df["status"].value_counts().to_dict() == {"ok": 8, "not_applicable": 1, "failed": 1}
    assert sorted(df["checkpoint"].unique()) == [
        "hf-internal-testing/tiny-random-gpt2", "sentence-transformers/all-MiniLM-L6-v2",
    ]
    load_s = df[df["metric"] == "load_s"]
    assert len(load_s) == 8 and set(load_s["path"]) == {"base", "pipeline"}
    assert sorted(load_s["repeat"].unique()) == [0, 1]
    assert df.loc[0, "value"] == 0.412 and df.loc[0, "attn_implementation"] == "sdpa"
    assert df["value"].isna().tolist() == [s != "ok" for s in df["status"]]
    failed = df[df["status"] == "failed"].iloc[0]
    assert (failed["error_type"], failed["metric"]) == ("RuntimeError", "first_forward_s")
    assert pd.isna(failed["reason"])
    na = df[df["status"] == "not_applicable"].iloc[0]
    assert na["reason"] == "encoder-only model: nothing to decode"


def test_golden_v2_run_loads_into_expected_shape(golden_run_v2: Path) -> None:
    df = load(golden_run_v2)
    _check_shape(df, 9)
    assert (df["schema_version"] == 2).all() and (df["run_id"] == "20250302T141500Z-7b9e").all()
    assert df["status"].value_counts().to_dict() == {"ok": 7, "not_applicable": 1, "failed": 1}
    assert df["cache"].value_counts().to_dict() == {"warm": 7, "cold": 2}
    # Exactly one warmup sample, kept in the long frame with its (wild) value.
    warmup = df[df["warmup"]]
    assert len(warmup) == 1
    assert warmup.iloc[0][["path", "cache", "metric", "repeat", "value"]].tolist() == [
        "base", "warm", "load_s", 0, 2.75,
    ]
    cold = df[df["cache"] == "cold"]
    assert cold["value"].tolist() == [1.84, 1.92] and not cold["warmup"].any()
    assert df["value"].isna().tolist() == [s != "ok" for s in df["status"]]
    failed = df[df["status"] == "failed"].iloc[0]
    assert (failed["path"], failed["cache"], failed["metric"]) == ("pipeline", "warm", "first_forward_s")
    assert (failed["error_type"], failed["error"]) == ("RuntimeError", "pipeline returned no logits to time")
    assert pd.isna(failed["reason"])
    na = df[df["status"] == "not_applicable"].iloc[0]
    assert (na["metric"], na["reason"]) == ("decode_tokens_per_s", "encoder-only model: nothing to decode")
    assert pd.isna(na["attn_implementation"])


def test_v1_and_v2_runs_concatenate(golden_run: Path, golden_run_v2: Path) -> None:
    df = load([golden_run, golden_run_v2])
    _check_shape(df, 19)
    assert (df["schema_version"] == 2).all()
    assert df["cache"].tolist()[:10] == ["unspecified"] * 10
    assert set(df["cache"].tolist()[10:]) == {"warm", "cold"}
    assert df["warmup"].sum() == 1


def test_list_of_runs_is_concatenated(
    golden_run: Path, make_run: Callable[[Iterable[Sample]], Path], case: dict[str, str]
) -> None:
    other = make_run([Sample.ok(case, "r2", 0, "peak_rss_bytes", 1024)])
    df = load([golden_run, other])
    _check_shape(df, 11)
    assert list(df.index) == list(range(11))
    assert df.iloc[-1]["run_id"] == "r2" and df.iloc[-1]["value"] == 1024.0
    assert df.iloc[-1]["cache"] == "warm" and not df.iloc[-1]["warmup"]


def test_empty_run_gives_empty_frame_with_columns(make_run: Callable[[Iterable[Sample]], Path]) -> None:
    _check_shape(load(make_run([])), 0)
    _check_shape(load([]), 0)


def test_str_path_accepted(make_run: Callable[[Iterable[Sample]], Path], case: dict[str, str]) -> None:
    run_dir = make_run([Sample.not_applicable(case, "r", 0, "ttft_s", "no decoder")])
    df = load(str(run_dir))
    _check_shape(df, 1)
    assert math.isnan(df.loc[0, "value"])


def test_not_a_run_propagates(tmp_path: Path) -> None:
    with pytest.raises(NotARun):
        load(tmp_path / "missing")


def test_fingerprint_columns_carry_each_runs_environment(synthetic_pair: tuple[Path, Path]) -> None:
    a, b = synthetic_pair
    df = load([a, b])
    _check_shape(df, len(df))
    by_run = df.groupby("run_id", sort=False)[["torch_version", "cpu_model", "device_name", "hostname"]].first()
    assert by_run.index.tolist() == ["20260101T000000Z-aaaa", "20260102T000000Z-bbbb"]
    assert by_run["torch_version"].tolist() == ["2.13.0+cpu", "2.14.0+cpu"]
    assert by_run["device_name"].tolist() == ["AMD EPYC 7763"] * 2  # device cpu: the CPU model
    assert df["gpus"].isna().all()  # no GPU: missing, not a made-up name
    # A notebook user groups by version in one line.
    assert df.groupby("torch_version")["run_id"].nunique().to_dict() == {"2.13.0+cpu": 1, "2.14.0+cpu": 1}


def test_fingerprint_false_gives_record_fields_only(golden_run_v2: Path) -> None:
    _check_shape(load(golden_run_v2, fingerprint=False), 9, fingerprint=False)
    df = load(golden_run_v2)
    assert (df["torch_version"] == "2.5.1").all() and (df["hostname"] == "bench-01").all()


def test_same_run_twice_is_refused(golden_run_v2: Path) -> None:
    with pytest.raises(DuplicateRun, match="20250302T141500Z-7b9e"):
        load([golden_run_v2, golden_run_v2])


def test_runs_table_one_row_per_run(synthetic_pair: tuple[Path, Path]) -> None:
    table = runs(list(synthetic_pair))
    assert table.index.tolist() == ["20260101T000000Z-aaaa", "20260102T000000Z-bbbb"]
    assert table["torch_version"].tolist() == ["2.13.0+cpu", "2.14.0+cpu"]
    assert table["status"].tolist() == ["complete", "complete"] and table["suite"].tolist() == ["default"] * 2
