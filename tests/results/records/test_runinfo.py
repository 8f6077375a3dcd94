"""Flat fingerprint fields, the hardware behind a device, and what differs between runs."""

from __future__ import annotations

from loadbench.results.records import baseline
from loadbench.results.records.runinfo import (
    COMPARABILITY_KEYS,
    FINGERPRINT_COLUMNS,
    MACHINE_KEYS,
    device_name,
    differences,
    fingerprint_fields,
    gpu_reason,
    machine_fields,
    machine_key,
    node_fields,
    node_fingerprint,
    run_nodes,
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


A100_NODE = {
    "hostname": "gpu-7",
    "cpu_model": "Intel Xeon Platinum 8480",
    "cpu_count": 112,
    "gpus": [{"index": 0, "name": "NVIDIA A100-SXM4-80GB", "memory_bytes": 80 * 1024**3}],
    "python": "3.11.7",
    "packages": {"torch": "2.13.0", "transformers": "5.24.0"},
}
SPREAD = {**NESTED, "nodes": {"h100-a": NESTED["fingerprint"], "a100-b": A100_NODE}}


def test_node_fingerprint_picks_the_node_else_the_run() -> None:
    assert node_fingerprint(SPREAD, "a100-b") is A100_NODE
    assert node_fingerprint(SPREAD, "h100-a") is NESTED["fingerprint"]
    # Node null, a run without nodes, and a node run.json does not list: the run's own machine.
    assert node_fingerprint(SPREAD, None) is NESTED["fingerprint"]
    assert node_fingerprint(NESTED, "a100-b") is NESTED["fingerprint"]
    assert node_fingerprint(SPREAD, "gone") is NESTED["fingerprint"]
    assert node_fingerprint({"torch": "2.5.1"}, None) == {}


def test_node_fields_flatten_the_nodes_fingerprint_and_keep_run_keys() -> None:
    fields = node_fields(SPREAD, "a100-b")
    assert list(fields) == list(FINGERPRINT_COLUMNS)
    assert (fields["hostname"], fields["cpu_model"]) == ("gpu-7", "Intel Xeon Platinum 8480")
    assert fields["cpu_count"] == "112"
    assert fields["gpus"] == "NVIDIA A100-SXM4-80GB" and fields["torch_version"] == "2.13.0"
    assert fields["started_at"] == NESTED["started_at"]  # when the run started, not the node
    assert node_fields(SPREAD, None) == fingerprint_fields(NESTED)
    assert node_fields(NESTED, None) == fingerprint_fields(NESTED)
    # A hand-made run.json with flat keys still reads through node_fields.
    assert node_fields({"host": "bench-01", "torch": "2.5.1"}, None)["torch_version"] == "2.5.1"


def test_run_nodes_ignores_what_is_not_a_fingerprint() -> None:
    assert list(run_nodes(SPREAD)) == ["h100-a", "a100-b"]
    assert run_nodes(NESTED) == {} and run_nodes({"nodes": ["a", "b"]}) == {}
    assert list(run_nodes({"nodes": {"a": A100_NODE, "b": "not a fingerprint"}})) == ["a"]


def test_machine_key_is_one_implementation_and_reads_every_shape() -> None:
    assert baseline.machine_key is machine_key and baseline.MACHINE_KEYS is MACHINE_KEYS
    key = machine_key(NESTED)
    # A run.json, its fingerprint, and its flat fields name the same machine.
    assert machine_key(NESTED["fingerprint"]) == machine_key(fingerprint_fields(NESTED)) == key
    assert key.startswith("amd-epyc-7763-16cpu-nvidia-h100-nvidia-h100-")
    assert machine_key(node_fields(SPREAD, "a100-b")) != key
    assert machine_fields(A100_NODE) == {"cpu_model": "Intel Xeon Platinum 8480", "cpu_count": "112",
                                         "gpus": "NVIDIA A100-SXM4-80GB"}


def test_differences_can_label_values_that_are_not_one_per_run() -> None:
    a, b = node_fields(SPREAD, "h100-a"), node_fields(SPREAD, "a100-b")
    labels = ["r1 @ h100", "r1 @ a100"]
    diffs = differences([a, b], labels)
    assert [d.field for d in diffs if d.key] == ["cpu_model", "cpu_count", "gpus"]
    assert diffs[0].labels == tuple(labels)
    # The labels win over the run ids a caller passes: there are fewer runs than values.
    assert diffs[0].describe(["r1"]) == "cpu_model: AMD EPYC 7763 (r1 @ h100), Intel Xeon Platinum 8480 (r1 @ a100)"
    assert differences([a, b])[0].describe(["A", "B"]) == "cpu_model: AMD EPYC 7763 (A), Intel Xeon Platinum 8480 (B)"


def test_a_frame_rows_missing_value_is_the_same_machine_as_none() -> None:
    flat = {"cpu_model": "AMD EPYC 7763", "cpu_count": "16", "gpus": None}
    assert machine_key({**flat, "gpus": float("nan")}) == machine_key(flat)
    assert machine_fields({**flat, "gpus": float("nan")})["gpus"] is None
