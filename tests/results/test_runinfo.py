"""Flat fingerprint fields, the hardware behind a device, and what differs between runs."""

from __future__ import annotations

from loadbench.results.runinfo import (
    COMPARABILITY_KEYS,
    FINGERPRINT_COLUMNS,
    device_name,
    differences,
    fingerprint_fields,
    gpu_reason,
)

NESTED = {
    "run_id": "r1",
    "started_at": "2026-01-01T00:00:00+00:00",
    "fingerprint": {
        "hostname": "bench-01",
        "cpu_model": "AMD EPYC 7763",
        "cpu_count": 16,
        "gpus": [{"index": 0, "name": "NVIDIA H100", "memory_bytes": 80 * 1024**3},
                 {"index": 1, "name": "NVIDIA H100", "memory_bytes": 80 * 1024**3}],
        "python": "3.11.7",
        "packages": {"torch": "2.13.0", "transformers": "5.24.0", "tokenizers": "0.23.3", "safetensors": "0.8.0",
                     "loadbench": "0.1.0"},
        "git_commit": "abc",
    },
}


def test_nested_fingerprint_flattens_to_every_column() -> None:
    fields = fingerprint_fields(NESTED)
    assert list(fields) == list(FINGERPRINT_COLUMNS)
    assert fields["torch_version"] == "2.13.0" and fields["transformers_version"] == "5.24.0"
    assert fields["gpus"] == "NVIDIA H100, NVIDIA H100"
    assert (fields["cpu_model"], fields["cpu_count"], fields["hostname"]) == ("AMD EPYC 7763", "16", "bench-01")
    assert fields["started_at"] == "2026-01-01T00:00:00+00:00" and fields["git_commit"] == "abc"


def test_flat_hand_written_run_json_and_missing_fields() -> None:
    # The golden v2 run.json style: versions at the top level, no fingerprint.
    fields = fingerprint_fields({"host": "bench-01", "python": "3.11.9", "torch": "2.5.1", "transformers": "5.0.0"})
    assert (fields["hostname"], fields["python_version"], fields["torch_version"]) == ("bench-01", "3.11.9", "2.5.1")
    assert fields["cpu_model"] is None and fields["gpus"] is None and fields["git_commit"] is None


def test_no_gpu_reason_is_not_a_gpu_name() -> None:
    info = {"fingerprint": {"gpus": "NVML unavailable: no driver"}}
    assert fingerprint_fields(info)["gpus"] is None
    assert gpu_reason(info) == "NVML unavailable: no driver"
    assert gpu_reason({"fingerprint": {"gpus": []}}) == "none found"
    assert gpu_reason(NESTED) is None


def test_device_name_per_device() -> None:
    fields = {"cpu_model": "AMD EPYC", "gpus": "NVIDIA A10, NVIDIA H100"}
    assert device_name("cpu", fields) == "AMD EPYC"
    assert device_name("cuda", fields) == "NVIDIA A10"
    assert device_name("cuda:1", fields) == "NVIDIA H100"
    assert device_name("cuda:5", fields) is None
    assert device_name("cuda:3", {"gpus": "NVIDIA H100, NVIDIA H100"}) == "NVIDIA H100"  # one kind: any index
    assert device_name("cuda", {"cpu_model": "x", "gpus": None}) is None


def test_differences_put_key_fields_first() -> None:
    a = fingerprint_fields(NESTED)
    b = {**a, "hostname": "bench-02", "torch_version": "2.14.0", "started_at": "later"}
    diffs = differences([a, b])
    assert [(d.field, d.key) for d in diffs] == [("torch_version", True), ("hostname", False)]
    assert diffs[0].values == ("2.13.0", "2.14.0")
    assert diffs[0].describe(["A", "B"]) == "torch_version: 2.13.0 (A), 2.14.0 (B)"
    assert differences([a, dict(a)]) == []
    assert {"cpu_model", "gpus", "torch_version", "transformers_version"} <= set(COMPARABILITY_KEYS)
