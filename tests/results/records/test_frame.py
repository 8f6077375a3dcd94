"""The tidy long frame, read from the golden v1 to v4 runs and from fresh runs."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd
import pytest

from loadbench.results import (
    SCHEMA_VERSION,
    DuplicateRun,
    NotARun,
    RunWriter,
    Sample,
    load,
    migrate,
    read_run_info,
    read_samples,
    runs,
)
from loadbench.results.records import frame
from loadbench.results.records.runinfo import machine_key

COLUMNS = [
    "schema_version", "run_id", "checkpoint", "path", "task", "dtype", "device", "cache", "options", "env", "repeat",
    "metric", "value", "unit", "direction", "status", "reason", "error_type", "error",
    "attn_implementation", "resident_dtype", "warmup", "node", "block",
]
# A v6 record's fields in the order it is written: the frame's, plus sample_records before block.
RECORD_FIELDS = [*COLUMNS[:-1], "sample_records", "block"]
FINGERPRINT = [
    "device_name", "machine", "started_at", "hostname", "cpu_model", "cpu_count", "gpus", "python_version",
    "torch_version", "transformers_version", "tokenizers_version", "safetensors_version",
    "loadbench_version", "git_commit", "checkpoint_commit", "read_ceiling_bytes_per_s", "memory_ceiling_bytes_per_s",
    "batch_size",
]
TEXT_COLUMNS = [
    c for c in COLUMNS + FINGERPRINT if c not in ("schema_version", "repeat", "value", "warmup", "block")
    and not c.endswith(("_bytes_per_s", "batch_size"))
]


def _check_shape(df: pd.DataFrame, rows: int, fingerprint: bool = True) -> None:
    assert list(df.columns) == COLUMNS + (FINGERPRINT if fingerprint else [])
    assert len(df) == rows
    assert df["value"].dtype == "float64"
    assert df["repeat"].dtype == "int64" and df["schema_version"].dtype == "int64"
    assert df["warmup"].dtype == "bool"
    assert df["block"].dtype == "Int64"  # nullable: null for unpaired samples
    # Text columns use whatever pandas itself infers for strings with gaps
    # ("str" in pandas 3, object before), so the frame behaves like any other.
    text = pd.Series(["x", None]).dtype
    for column in TEXT_COLUMNS:
        if column in df.columns:
            assert df[column].dtype == text, column


def test_text_columns_include_cache() -> None:
    # Guards the dtype loop above: cache and env must be checked as text columns.
    assert "cache" in TEXT_COLUMNS and "env" in TEXT_COLUMNS
    assert "warmup" not in TEXT_COLUMNS and "block" not in TEXT_COLUMNS


def test_golden_v1_run_loads_into_expected_shape(golden_run: Path) -> None:
    df = load(golden_run)
    _check_shape(df, 10)
    # The v1 files are migrated on the way in: current rows, cache unknown, no warmup, no node,
    # the default environment and no block.
    assert (df["schema_version"] == SCHEMA_VERSION).all() and df["node"].isna().all()
    assert (df["env"] == "default").all() and df["block"].isna().all()
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
    assert (df["schema_version"] == SCHEMA_VERSION).all() and (df["run_id"] == "20250302T141500Z-7b9e").all()
    assert df["node"].isna().all()
    assert (df["env"] == "default").all() and df["block"].isna().all()
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


def _as_v5(record: dict, **changes: object) -> dict:
    """What migrate() must make of an older record: options "default" then env "default" right after cache,
    a null block last."""
    items = list({**record, **changes}.items())
    after_cache = [k for k, _ in items].index("cache") + 1
    items[after_cache:after_cache] = [("options", "default"), ("env", "default")]
    return {**dict(items), "schema_version": SCHEMA_VERSION, "block": None}


def test_golden_v3_run_migrates_to_records_that_stand_alone(golden_run_v3: Path) -> None:
    lines = (golden_run_v3 / "samples.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    read = read_samples(golden_run_v3)
    assert read == [_as_v5(r, sample_records=None) for r in records]
    assert all(list(r) == RECORD_FIELDS for r in read)


def test_golden_v4_run_migrates_keeping_its_counts(golden_run_v4: Path) -> None:
    lines = (golden_run_v4 / "samples.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert {r["schema_version"] for r in records} == {4}  # the golden file stays as v4 wrote it
    # v4 records: migration adds only env and block; they read back as Samples unchanged.
    expected = [_as_v5(r) for r in records]
    assert [migrate(r) for r in records] == expected
    assert read_samples(golden_run_v4) == expected
    assert all(list(r) == RECORD_FIELDS for r in read_samples(golden_run_v4))
    assert [Sample.from_dict(r).to_dict() for r in expected] == expected
    assert [r["sample_records"] for r in expected] == [1, 3, 3, 3, 2, 2, 1, 1, 2, 2]
    _check_golden_nodes(golden_run_v4, 4)


def test_golden_v3_run_loads_per_node(golden_run_v3: Path) -> None:
    _check_golden_nodes(golden_run_v3, 3)


def _check_golden_nodes(golden_run_v3: Path, written_by: int) -> None:
    info = read_run_info(golden_run_v3)
    assert info["schema_version"] == written_by and list(info["nodes"]) == ["gpu-a-5f1e", "gpu-b-9c07"]
    df = load(golden_run_v3)
    # The node_lost failure of task/cold repeat 1 was measured again on the other node: it is left out.
    _check_shape(df, 9)
    assert (df["schema_version"] == SCHEMA_VERSION).all() and (df["run_id"] == "20260115T093000Z-3c5d").all()
    assert (df["env"] == "default").all() and df["block"].isna().all()
    assert df["node"].tolist() == ["gpu-a-5f1e"] * 4 + ["gpu-b-9c07"] * 3 + ["gpu-a-5f1e"] * 2
    assert not (df["error_type"] == "node_lost").any()
    assert df["status"].value_counts().to_dict() == {"ok": 7, "not_applicable": 1, "failed": 1}
    assert df["value"].tolist()[:3] == [3.1, 0.52, 1210056704.0] and df["warmup"].tolist()[0]
    assert df["value"].isna().tolist() == [s != "ok" for s in df["status"]]
    failed = df[df["status"] == "failed"].iloc[0]
    assert (failed["path"], failed["node"], failed["error_type"]) == ("pipeline", "gpu-b-9c07", "RuntimeError")
    # Fingerprint columns come from each record's node, not from the run's own (head node) fingerprint.
    h100, a100 = (info["nodes"][n] for n in ("gpu-a-5f1e", "gpu-b-9c07"))
    by_node = df.drop_duplicates("node").set_index("node")
    assert by_node.loc["gpu-a-5f1e", "hostname"] == "gpu-a" and by_node.loc["gpu-b-9c07", "hostname"] == "gpu-b"
    assert by_node.loc["gpu-b-9c07", "cpu_model"] == "Intel(R) Xeon(R) Platinum 8358 CPU @ 2.60GHz"
    assert by_node["machine"].tolist() == [machine_key(h100), machine_key(a100)]
    assert by_node["device_name"].tolist() == ["NVIDIA H100 80GB HBM3", "NVIDIA A100-SXM4-40GB"]
    assert set(df["torch_version"]) == {"2.6.0+cu124"} and set(df["started_at"]) == {"2026-01-15T09:30:00+00:00"}


def test_v1_and_v2_runs_concatenate(golden_run: Path, golden_run_v2: Path) -> None:
    df = load([golden_run, golden_run_v2])
    _check_shape(df, 19)
    assert (df["schema_version"] == SCHEMA_VERSION).all() and (df["env"] == "default").all()
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


def test_env_and_block_are_columns(make_run: Callable[[Iterable[Sample]], Path], case: dict[str, str]) -> None:
    run_dir = make_run([
        Sample.ok({**case, "env": "py313"}, "r", 0, "load_s", 1.0, block=0),
        Sample.ok(case, "r", 0, "load_s", 2.0, block=0),
        Sample.ok(case, "r", 1, "load_s", 3.0),
    ])
    df = load(run_dir)
    _check_shape(df, 3)
    assert df["env"].tolist() == ["py313", "default", "default"]
    assert df["block"].tolist()[:2] == [0, 0] and pd.isna(df.loc[2, "block"])


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


H100 = {"hostname": "gpu-1", "cpu_model": "AMD EPYC 9654", "cpu_count": 192, "python": "3.11.7",
        "gpus": [{"index": 0, "name": "NVIDIA H100 80GB HBM3"}],
        "packages": {"torch": "2.13.0", "transformers": "5.24.0"}}
A100 = {**H100, "hostname": "gpu-2", "cpu_model": "Intel Xeon 8480", "cpu_count": 112,
        "gpus": [{"index": 0, "name": "NVIDIA A100-SXM4-80GB"}]}
DRIVER = {**H100, "hostname": "head", "cpu_count": 8, "gpus": "NVML unavailable: no driver"}


def _spread_run(tmp_path: Path, samples: Iterable[Sample], run_id: str = "spread") -> Path:
    """A run whose run.json lists two nodes of unlike hardware besides its own (driver) fingerprint."""
    info = {"run_id": run_id, "fingerprint": DRIVER, "nodes": {"h100": H100, "a100": A100}}
    with RunWriter.create(tmp_path / run_id, info) as writer:
        for sample in samples:
            writer.append(sample)
    return tmp_path / run_id


def test_fingerprint_columns_come_from_each_rows_node(tmp_path: Path, case: dict[str, str]) -> None:
    gpu = {**case, "device": "cuda:0"}
    run = _spread_run(tmp_path, [
        Sample.ok(gpu, "spread", 0, "load_s", 1.0, node="h100"),
        Sample.ok(gpu, "spread", 3, "load_s", 2.0, node="a100"),
        Sample.ok(case, "spread", 1, "load_s", 3.0),  # node null: the run's own machine
        Sample.ok(gpu, "spread", 2, "load_s", 4.0, node="h100"),
    ])
    df = load(run)
    _check_shape(df, 4)
    assert df["node"].tolist()[:2] == ["h100", "a100"] and pd.isna(df.loc[2, "node"])
    assert df["hostname"].tolist() == ["gpu-1", "gpu-2", "head", "gpu-1"]
    assert df["cpu_model"].tolist() == ["AMD EPYC 9654", "Intel Xeon 8480", "AMD EPYC 9654", "AMD EPYC 9654"]
    assert df["gpus"].tolist()[:2] == ["NVIDIA H100 80GB HBM3", "NVIDIA A100-SXM4-80GB"]
    assert df["device_name"].tolist()[:2] == ["NVIDIA H100 80GB HBM3", "NVIDIA A100-SXM4-80GB"]
    machines = df["machine"].tolist()
    assert machines[0] == machines[3] == machine_key(H100) and machines[1] == machine_key(A100)
    assert machines[2] == machine_key(DRIVER) and len(set(machines)) == 3
    assert df["machine"].tolist() == [machine_key(f) for f in df[["cpu_model", "cpu_count", "gpus"]].to_dict("records")]
    assert (df["started_at"] == read_run_info(run)["started_at"]).all()


def test_a_run_without_nodes_has_one_machine(golden_run_v2: Path, synthetic_run: Path, synthetic) -> None:
    assert load(golden_run_v2)["machine"].nunique() == 1
    df = load(synthetic_run)
    assert set(df["machine"]) == {machine_key(synthetic.FINGERPRINT)}
    assert load(synthetic_run, fingerprint=False).columns[-1] == "block"


def test_fingerprints_are_read_once_per_node(tmp_path: Path, case: dict[str, str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    run = _spread_run(tmp_path, [Sample.ok(case, "spread", i, "load_s", 1.0, node=("h100", "a100")[i % 2])
                                 for i in range(20)])
    calls: list[str | None] = []
    real = frame.node_fields
    monkeypatch.setattr(frame, "node_fields", lambda info, node: calls.append(node) or real(info, node))
    df = load(run)
    assert calls == ["h100", "a100"] and df["machine"].nunique() == 2


def test_a_lost_sample_that_was_retried_is_not_a_failure(tmp_path: Path, case: dict[str, str]) -> None:
    run = _spread_run(tmp_path, [
        Sample.failed(case, "spread", 0, "load_s", "node_lost", "node a100 died", node="a100"),
        Sample.failed(case, "spread", 1, "load_s", "node_lost", "node a100 died", node="a100"),
        Sample.ok(case, "spread", 0, "load_s", 1.5, node="h100"),  # repeat 0 taken again by --resume
        Sample.ok(case, "spread", 0, "peak_rss_bytes", 1024.0, node="h100"),
    ])
    df = load(run)
    # Repeat 0's loss is superseded; repeat 1 was never retried, so it stays a failure.
    assert df[["repeat", "metric", "status"]].values.tolist() == [
        [1, "load_s", "failed"], [0, "load_s", "ok"], [0, "peak_rss_bytes", "ok"]]
    assert df.loc[0, "error_type"] == "node_lost"
    assert len(load(run, fingerprint=False)) == 3
