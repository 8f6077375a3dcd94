"""A sample measured in-process: exact token counts, the metrics each workload owes, failures kept."""

from __future__ import annotations

from dataclasses import replace

from loadbench.bench.worker import SampleRequest, measure

NEW_TOKENS = 7


def _request(directory, path: str, task: str, **changes) -> SampleRequest:
    request = SampleRequest(
        checkpoint_dir=str(directory), path=path, task=task, device="cpu", dtype="auto",
        prompt="the river runs", batch_size=1, new_tokens=NEW_TOKENS, forward_iters=2,
        check_equivalence=True,
    )
    return replace(request, **changes)


def _metrics(reply) -> dict[str, float]:
    return {m["metric"]: m["value"] for m in reply["metrics"]}


def test_generation_sample_records_exact_token_count_and_rates(builtin) -> None:
    reply = measure(_request(builtin("tiny-llama"), "task", "text-generation"))
    metrics = _metrics(reply)
    assert reply["failures"] == []
    assert metrics["new_tokens"] == NEW_TOKENS
    assert 0 < metrics["ttft_s"] < metrics["load_s"] + 60
    assert metrics["decode_tokens_per_s"] > 0
    assert metrics["load_s"] > 0 and metrics["import_s"] >= 0
    assert metrics["peak_rss_bytes"] > 50 * 2**20
    assert metrics["max_abs_diff_vs_base"] < 1e-5
    assert reply["info"]["attn_implementation"] == "sdpa"
    assert reply["info"]["resident_dtype"] == "float32"
    assert {n["metric"] for n in reply["not_applicable"]} == {"gpu_peak_used_bytes", "gpu_max_allocated_bytes"}
    assert all("device is cpu" in n["reason"] for n in reply["not_applicable"])


def test_seq2seq_generation_counts_tokens_too(builtin) -> None:
    reply = measure(_request(builtin("tiny-t5"), "task", "text2text-generation",
                             new_tokens=3))
    assert _metrics(reply)["new_tokens"] == 3


def test_forward_sample_and_dtype_axis(builtin) -> None:
    reply = measure(_request(builtin("tiny-bert"), "custom", "text-classification", dtype="bfloat16"))
    metrics = _metrics(reply)
    assert reply["failures"] == []
    assert metrics["forward_tokens_per_s"] > 0
    assert "decode_tokens_per_s" not in metrics
    assert reply["info"]["resident_dtype"] == "bfloat16"


def test_base_path_is_the_reference_and_not_compared_with_itself(builtin) -> None:
    reply = measure(_request(builtin("tiny-bert"), "base", "text-classification"))
    assert "max_abs_diff_vs_base" not in _metrics(reply)


def test_a_path_that_raises_is_a_recorded_failure(builtin) -> None:
    # transformers' feature-extraction pipeline calls T5Model without decoder inputs.
    reply = measure(_request(builtin("tiny-t5"), "pipeline", "feature-extraction"))
    assert "load_s" in _metrics(reply)
    [failure] = [f for f in reply["failures"] if f["metric"] == "forward_tokens_per_s"]
    assert failure["error_type"] == "ValueError"
    assert "input_ids" in failure["error"]
