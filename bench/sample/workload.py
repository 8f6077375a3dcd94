"""Run what a loaded path is for, and turn its timings into metrics.

Generation: one timed call of ``new_tokens`` greedy tokens whose steps a streamer
timestamps. Forward: ``forward_iters`` timed calls. Both start after one untimed-for-
throughput first call, which is recorded as ``first_forward_s``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from loadbench.bench.probes.clocks import StepClock, sync

__all__ = ["build_prompts", "first_call", "measure_generation", "measure_forward", "workload_metric", "PERCENTILES"]

PERCENTILES = (50, 90, 99)
Report = Callable[[str, float], None]


def workload_metric(loaded: Any) -> str:
    """The metric a sample's workload is recorded under, and so its failure too.

    It follows what the loaded path does, not the task: ``base`` and ``custom`` only run
    forward passes even for a generation task, so they never have a decode rate.
    """
    return "decode_tokens_per_s" if loaded.generate is not None else "forward_tokens_per_s"


def build_prompts(tokenizer: Any, prompt: str, prompt_tokens: int | None, batch_size: int) -> list[str]:
    """The batch of prompts; with ``prompt_tokens``, the prompt repeated or cut to that length.

    Paths take text, so the cut text is decoded and re-tokenized: the shortest cut whose
    text encodes (special tokens included) to at least ``prompt_tokens`` tokens wins,
    which is exact for most tokenizers; the recorded ``prompt_tokens`` metric says.
    """
    if prompt_tokens is not None:
        piece = tokenizer(prompt + " ", add_special_tokens=False)["input_ids"]
        ids = piece * (2 * prompt_tokens // max(1, len(piece)) + 2)
        for cut in range(1, len(ids) + 1):
            text = tokenizer.decode(ids[:cut])
            if len(tokenizer(text)["input_ids"]) >= prompt_tokens:
                prompt = text
                break
    return [prompt] * batch_size


def first_call(loaded: Any, prompts: list[str], device: str) -> float:
    """The first call after loading (lazy initialisation, first kernel launches)."""
    started = time.perf_counter()
    if loaded.generate is not None:
        loaded.generate(prompts, 1, StepClock(device))
    else:
        loaded.forward(prompts)
    sync(device)
    return time.perf_counter() - started


def _percentiles(report: Report, prefix: str, latencies: list[float]) -> None:
    for q, value in zip(PERCENTILES, np.percentile(latencies, PERCENTILES)):
        report(f"{prefix}_p{q}_s", float(value))


def measure_generation(loaded: Any, prompts: list[str], new_tokens: int, prompt_tokens: int,
                       device: str, report: Report) -> str | None:
    """Timed fixed-length generation; returns an error when the token count is wrong."""
    clock = StepClock(device)
    clock.start()
    loaded.generate(prompts, new_tokens, clock)
    sync(device)
    finished = time.perf_counter()
    report("new_tokens", clock.new_tokens)
    if clock.new_tokens != new_tokens:
        return f"generated {clock.new_tokens} tokens, asked for {new_tokens}"
    batch = len(prompts)
    report("ttft_s", clock.ttft_s)
    report("prefill_tokens_per_s", batch * prompt_tokens / clock.ttft_s)
    report("decode_tokens_per_s", clock.decode_tokens_per_s(batch))
    report("e2e_tokens_per_s", batch * new_tokens / (finished - clock.started))
    _percentiles(report, "token_latency", list(np.diff(clock.steps)))
    return None


def measure_forward(loaded: Any, prompts: list[str], iters: int, tokens: int, device: str,
                    report: Report) -> None:
    """Timed forward calls: throughput over all, and per-call latency percentiles."""
    latencies = []
    for _ in range(iters):
        started = time.perf_counter()
        loaded.forward(prompts)
        sync(device)
        latencies.append(time.perf_counter() - started)
    report("forward_tokens_per_s", tokens * iters / sum(latencies))
    _percentiles(report, "forward_latency", latencies)
