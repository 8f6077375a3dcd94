"""A sample measured in-process: exact token counts, the metrics each workload owes, failures kept."""

from __future__ import annotations

import gc
import os
from dataclasses import replace
from pathlib import Path

import pytest

from loadbench.bench.sample.protocol import SampleRequest
from loadbench.bench.sample.worker import GPU_METRICS, measure

NEW_TOKENS = 7


def _request(directory, path: str, task: str, **changes) -> SampleRequest:
    request = SampleRequest(
        checkpoint_dir=str(directory), path=path, task=task, device="cpu", dtype="auto",
        prompt="the river runs", batch_size=1, new_tokens=NEW_TOKENS, forward_iters=2,
        check_equivalence=True,
    )
    return replace(request, **changes)


def _metrics(reply) -> dict[str, float]:
    return {m["metric"]: m["value"] for m in reply.metrics}


def test_generation_sample_records_exact_token_count_and_rates(builtin) -> None:
    reply = measure(_request(builtin("tiny-llama"), "task", "text-generation"))
    metrics = _metrics(reply)
    assert reply.failures == []
    assert metrics["new_tokens"] == NEW_TOKENS
    assert metrics["ttft_s"] > 0
    assert metrics["decode_tokens_per_s"] > 0
    assert metrics["load_s"] > 0 and metrics["import_s"] >= 0
    assert metrics["peak_rss_bytes"] > 50 * 2**20
    assert metrics["max_abs_diff_vs_base"] < 1e-5
    assert reply.info["attn_implementation"] == "sdpa"
    assert reply.info["resident_dtype"] == "float32"
    assert {n["metric"] for n in reply.not_applicable} == set(GPU_METRICS)
    assert all("device is cpu" in n["reason"] for n in reply.not_applicable)
    # generation metrics beyond the decode rate
    assert metrics["prefill_tokens_per_s"] == pytest.approx(metrics["prompt_tokens"] / metrics["ttft_s"])
    assert metrics["token_latency_p50_s"] <= metrics["token_latency_p90_s"] <= metrics["token_latency_p99_s"]
    assert metrics["e2e_tokens_per_s"] > 0


def test_load_phases_account_for_the_total(builtin) -> None:
    for path in ("base", "pipeline"):
        metrics = _metrics(measure(_request(builtin("tiny-llama"), path, "text-generation")))
        phases = [metrics[p] for p in ("config_s", "tokenizer_s", "weights_s", "to_device_s")]
        assert all(p >= 0 for p in phases) and metrics["weights_s"] > 0 and metrics["tokenizer_s"] > 0
        assert sum(phases) + metrics["load_other_s"] == pytest.approx(metrics["load_s"])
        assert 0 <= metrics["load_other_s"] < metrics["load_s"]


def test_cold_cache_reads_the_weights_from_disk_and_warm_does_not(builtin, zygote) -> None:
    """In fresh workers: the kernel cannot drop pages that a live process still maps, and
    this test process has mapped these weights in other tests."""
    gc.collect()  # models from earlier in-process tests may still map the file
    directory = builtin("tiny-llama")
    weights = (directory / "model.safetensors").stat().st_size

    def sample(cache: str) -> dict[str, float]:
        reply = zygote.run(_request(directory, "base", "text-generation", cache=cache,
                                    check_equivalence=False), timeout_s=120)
        return _metrics(reply)

    cold, warm = sample("cold"), sample("warm")
    assert cold["disk_read_bytes"] >= weights
    assert warm["disk_read_bytes"] < weights / 10


def test_prompt_tokens_and_batch_size(builtin) -> None:
    reply = measure(_request(builtin("tiny-llama"), "task", "text-generation", prompt_tokens=20, batch_size=3,
                             check_equivalence=False))
    metrics = _metrics(reply)
    assert reply.failures == []
    assert metrics["prompt_tokens"] == 20
    assert metrics["new_tokens"] == NEW_TOKENS


MEMORY_METRICS = {"peak_rss_bytes", "load_added_rss_bytes",
                  *(f"{phase}_peak_{kind}_bytes" for phase in ("load", "run") for kind in ("rss", "anon", "file"))}


def test_memory_split_by_phase_and_kind(builtin, monkeypatch) -> None:
    from loadbench.bench.sample import worker

    def no_gpu_sampler(device: str) -> None:
        raise AssertionError(f"a GPU sampler was started for {device}")

    monkeypatch.setattr(worker, "GpuMemorySampler", no_gpu_sampler)
    reply = measure(_request(builtin("tiny-bert"), "base", "text-classification", check_equivalence=False))
    metrics = _metrics(reply)
    assert reply.failures == []
    assert MEMORY_METRICS <= set(metrics)
    for phase in ("load", "run"):
        assert metrics[f"{phase}_peak_anon_bytes"] + metrics[f"{phase}_peak_file_bytes"] >= \
            0.9 * metrics[f"{phase}_peak_rss_bytes"]
        assert reply.info[f"{phase}_rss_peak"] in ("kernel high-water mark", "sampled")
        assert reply.info[f"{phase}_memory_samples"] >= 2  # the watcher's, at least at begin and end
    # The reset per phase does not lose the process's own peak.
    assert metrics["peak_rss_bytes"] >= max(metrics["load_peak_rss_bytes"], metrics["run_peak_rss_bytes"])
    # The load's own memory: the weights (~0.4 MB for tiny-bert) and what building the model takes,
    # a small part of a peak that is mostly the imports.
    assert 0 < metrics["load_added_rss_bytes"] < metrics["load_peak_rss_bytes"] / 4


def test_without_memory_probes_only_the_process_peak_is_recorded(builtin) -> None:
    reply = measure(_request(builtin("tiny-bert"), "base", "text-classification", check_equivalence=False),
                    memory_probes=False)
    metrics = _metrics(reply)
    assert reply.failures == [] and metrics["load_s"] > 0
    assert MEMORY_METRICS & set(metrics) == {"peak_rss_bytes"}


def test_seq2seq_generation_counts_tokens_too(builtin) -> None:
    reply = measure(_request(builtin("tiny-t5"), "task", "text2text-generation",
                             new_tokens=3))
    assert _metrics(reply)["new_tokens"] == 3


def test_forward_sample_and_dtype_axis(builtin) -> None:
    reply = measure(_request(builtin("tiny-bert"), "custom", "text-classification", dtype="bfloat16"))
    metrics = _metrics(reply)
    assert reply.failures == []
    assert metrics["forward_tokens_per_s"] > 0
    assert "decode_tokens_per_s" not in metrics
    assert metrics["forward_latency_p50_s"] <= metrics["forward_latency_p99_s"]
    assert reply.info["resident_dtype"] == "bfloat16"


def test_base_path_is_the_reference_and_not_compared_with_itself(builtin) -> None:
    reply = measure(_request(builtin("tiny-bert"), "base", "text-classification"))
    assert "max_abs_diff_vs_base" not in _metrics(reply)


def test_loading_options_reach_the_load_and_even_base_is_checked_against_the_plain_load(builtin) -> None:
    reply = measure(_request(builtin("tiny-llama"), "base", "text-generation",
                             options="device_map=cpu, attn_implementation=eager, safetensors_read=eager"))
    assert reply.failures == []
    assert reply.info["attn_implementation"] == "eager"
    # eager attention against the plain load's sdpa: equal within tolerance, but compared.
    assert 0 <= _metrics(reply)["max_abs_diff_vs_base"] < 1e-4


def test_an_option_the_installed_transformers_lacks_is_not_applicable(builtin, monkeypatch) -> None:
    from loadbench.loaders import options

    monkeypatch.setattr(options, "_from_pretrained_takes", lambda keyword: False)
    reply = measure(_request(builtin("tiny-bert"), "task", "text-classification", options="safetensors_read=eager"))
    assert reply.metrics == [] and reply.failures == []
    assert "no switch to read safetensors into memory first" in reply.not_applicable[0]["reason"]


def test_mmap_is_what_a_transformers_without_the_switch_does_so_it_applies(builtin, monkeypatch) -> None:
    """4.x has no disable_mmap and always memory-maps: there "mmap" is its default, measured."""
    from loadbench.loaders import options

    monkeypatch.setattr(options, "_from_pretrained_takes", lambda keyword: False)
    reply = measure(_request(builtin("tiny-bert"), "base", "text-classification", options="safetensors_read=mmap"))
    assert reply.failures == [] and {n["metric"] for n in reply.not_applicable} == set(GPU_METRICS)
    assert _metrics(reply)["load_s"] > 0 and _metrics(reply)["max_abs_diff_vs_base"] == 0


def test_a_path_that_raises_is_a_recorded_failure(builtin) -> None:
    # transformers' feature-extraction pipeline calls T5Model without decoder inputs.
    reply = measure(_request(builtin("tiny-t5"), "pipeline", "feature-extraction"))
    assert "load_s" in _metrics(reply)
    [failure] = [f for f in reply.failures if f["metric"] == "forward_tokens_per_s"]
    assert failure["error_type"] == "ValueError"
    assert "input_ids" in failure["error"]


def test_a_samples_records_carry_the_loads_cpu_time(builtin) -> None:
    # A diagnostic for every run: the CPU the load used, which waiting for a core does not add to.
    from loadbench.bench.plan import Case
    from loadbench.bench.sample.translate import Round, records_for
    from loadbench.results.analysis.metrics import METRICS

    reply = measure(_request(builtin("tiny-llama"), "base", "text-generation"))
    case = Case(checkpoint="tiny-llama", checkpoint_dir=str(builtin("tiny-llama")), path="base",
                task="text-generation", dtype="auto", device="cpu", cache="warm")
    [record] = [r for r in records_for(case, "r1", Round(0, False), reply) if r.metric == "load_cpu_s"]
    assert record.status == "ok" and record.value is not None and record.value > 0
    assert (record.unit, record.direction) == ("s", "lower") == (METRICS["load_cpu_s"].unit,
                                                                  METRICS["load_cpu_s"].direction)
    assert not METRICS["load_cpu_s"].headline


def test_a_path_this_transformers_cannot_serve_is_not_applicable_with_its_reason(builtin) -> None:
    # Asked in the worker: in a run over environments the planner cannot know the worker's version.
    from loadbench.bench.plan import Case
    from loadbench.bench.sample.translate import Round, records_for

    reply = measure(_request(builtin("tiny-t5"), "pipeline", "text2text-generation"))
    assert reply.metrics == [] and reply.failures == []
    assert [n["metric"] for n in reply.not_applicable] == ["load_s"]
    assert "has no pipeline for text2text-generation" in reply.not_applicable[0]["reason"]
    # Every round of it stays on record (a resume would otherwise take it again), warmups as warmups.
    case = Case(checkpoint="tiny-t5", checkpoint_dir=str(builtin("tiny-t5")), path="pipeline",
                task="text2text-generation", dtype="auto", device="cpu", cache="warm", env="old")
    for round_ in (Round(0, True), Round(2, False)):
        records = records_for(case, "r1", round_, reply, node="n1", block=4)
        assert [(r.status, r.warmup, r.block) for r in records] == [("not_applicable", round_.warmup, 4)]


def _own_copy(source: Path, directory: Path) -> Path:
    """Hard links to a built-in's files: a loader that writes into its checkpoint leaves the shared one as it was."""
    directory.mkdir()
    for file in source.iterdir():
        os.link(file, directory / file.name)
    return directory


@pytest.mark.parametrize("path", ["runai-streamer", "fastsafetensors", "tensorizer"])
def test_a_fast_loader_is_timed_phased_and_checked_like_the_four(builtin, tmp_path: Path, path: str) -> None:
    reply = measure(_request(_own_copy(builtin("tiny-llama"), tmp_path / "tiny-llama"), path, "text-generation"))
    metrics = _metrics(reply)
    assert reply.failures == []
    assert metrics["weights_s"] > 0  # its own read, counted as the weights phase
    phases = [metrics[p] for p in ("config_s", "tokenizer_s", "weights_s", "to_device_s")]
    assert sum(phases) + metrics["load_other_s"] == pytest.approx(metrics["load_s"])
    assert metrics["max_abs_diff_vs_base"] == 0
    assert metrics["new_tokens"] == NEW_TOKENS


def test_a_fast_loader_that_cannot_serve_the_device_is_not_applicable_in_the_worker(builtin) -> None:
    reply = measure(_request(builtin("tiny-llama"), "instanttensor", "text-generation"))
    assert reply.failures == []
    assert [(n["metric"], n["reason"]) for n in reply.not_applicable] == [
        ("load_s", "instanttensor loads onto cuda devices only, not 'cpu'")]


def _records(run: Path) -> dict[tuple[str, str], dict]:
    from loadbench.results.records.store import read_samples

    return {(r["path"], r["metric"]): r for r in read_samples(run)}


def test_a_workload_failure_is_filed_under_what_the_path_measures(builtin, cli, tmp_path: Path) -> None:
    """base and custom only run forward passes, even for a generation task: a prompt longer
    than GPT-2's 128 positions fails their workload under forward_tokens_per_s, and the
    task path's generation under decode_tokens_per_s."""
    builtin("tiny-gpt2")
    run = tmp_path / "run"
    result = cli("run", "--checkpoint", "tiny-gpt2", "--paths", "base", "custom", "task", "--prompt-tokens", "600",
                 "--repeats", "1", "--warmups", "0", "--cache", "warm", "--no-progress", "--output", str(run))
    assert result.returncode == 0, result.stderr
    records = _records(run)
    for path, metric in (("base", "forward_tokens_per_s"), ("custom", "forward_tokens_per_s"),
                         ("task", "decode_tokens_per_s")):
        assert records[(path, "load_s")]["status"] == "ok"
        failure = records[(path, metric)]
        assert (failure["status"], failure["error_type"]) == ("failed", "IndexError"), failure
    assert ("base", "decode_tokens_per_s") not in records and ("custom", "decode_tokens_per_s") not in records
    assert "forward_tokens_per_s   FAILED [1]" in result.stdout


def test_a_killed_workload_is_announced_under_what_the_path_measures(builtin) -> None:
    """The metric a worker names before its workload is where a kill (timeout, OOM killer) is recorded."""
    heard: list[tuple[str, str]] = []
    for path in ("base", "task"):
        measure(_request(builtin("tiny-llama"), path, "text-generation", check_equivalence=False),
                lambda reply, metric, path=path: heard.append((path, metric)))
    assert heard == [("base", "forward_tokens_per_s"), ("task", "decode_tokens_per_s")]


@pytest.fixture(scope="module")
def nan_llama(builtin, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tiny-llama with one weight matrix set to NaN: it loads and runs, and computes nothing usable."""
    import shutil

    from safetensors.torch import load_file, save_file

    directory = tmp_path_factory.mktemp("nan") / "nan-llama"
    shutil.copytree(builtin("tiny-llama"), directory)
    (directory / "loadbench_builtin.json").unlink()  # a checkpoint of the user's, not a built-in
    weights = load_file(directory / "model.safetensors")
    weights["model.layers.0.mlp.down_proj.weight"].fill_(float("nan"))
    save_file(weights, directory / "model.safetensors", metadata={"format": "pt"})
    return directory


def test_nan_output_is_every_paths_failure_the_reference_included(nan_llama: Path, cli, tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = cli("run", "--checkpoint", str(nan_llama), "--paths", "base", "task", "--repeats", "1", "--warmups", "0",
                 "--cache", "warm", "--no-progress", "--output", str(run))
    assert result.returncode == 0, result.stderr
    records = _records(run)
    for path in ("base", "task"):
        assert records[(path, "load_s")]["status"] == "ok"  # the load happened and was measured
        check = records[(path, "max_abs_diff_vs_base")]
        assert (check["status"], check["error_type"]) == ("failed", "non_finite_output"), check
        assert check["error"].startswith("this path's hidden states are not finite (NaN in ")
    assert "[1] non_finite_output: this path's hidden states are not finite" in result.stdout
    assert "max |diff| nan" not in result.stdout
