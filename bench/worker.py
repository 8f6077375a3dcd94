"""The child side of a sample: one case goes in, one JSON result comes out.

Runs in a process forked from the zygote and never reused, so what one sample loads
or caches cannot make the next one faster.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from . import protocol
from .probes import GpuMemorySampler, StepClock, gpu_unavailable_reason, peak_rss_bytes, sync

__all__ = ["SampleRequest", "measure", "child_main"]


@dataclass(frozen=True)
class SampleRequest:
    """Everything a worker needs; plain data so it crosses the process boundary as JSON."""

    checkpoint_dir: str
    path: str
    task: str
    device: str
    dtype: str
    prompt: str
    batch_size: int
    new_tokens: int
    forward_iters: int
    check_equivalence: bool
    trust_remote_code: bool = False

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SampleRequest":
        return cls(**data)


@dataclass
class _Result:
    metrics: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)
    not_applicable: list[dict[str, str]] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    def ok(self, metric: str, value: float) -> None:
        self.metrics.append({"metric": metric, "value": value})

    def fail(self, metric: str, exc: BaseException | str, error_type: str | None = None) -> None:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
        self.failures.append({
            "metric": metric,
            "error_type": error_type or type(exc).__name__,
            "error": message,
        })

    def as_dict(self) -> dict[str, Any]:
        return {"metrics": self.metrics, "failures": self.failures,
                "not_applicable": self.not_applicable, "info": self.info}


def _silence_libraries() -> None:
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()


def _run_workload(loaded: Any, req: SampleRequest, result: _Result) -> None:
    prompts = [req.prompt] * req.batch_size
    from loadbench.loaders.common import encode

    if loaded.generate is not None:
        clock = StepClock(req.device)
        loaded.generate(prompts, 1, StepClock(req.device))  # warm-up, untimed
        clock.start()
        loaded.generate(prompts, req.new_tokens, clock)
        result.ok("new_tokens", clock.new_tokens)
        if clock.new_tokens != req.new_tokens:
            result.fail("decode_tokens_per_s", f"generated {clock.new_tokens} tokens, asked for "
                        f"{req.new_tokens}", "wrong_token_count")
            return
        result.ok("ttft_s", clock.ttft_s)
        result.ok("decode_tokens_per_s", clock.decode_tokens_per_s(req.batch_size))
        return
    tokens = int(encode(loaded.tokenizer, prompts, "cpu")["attention_mask"].sum())
    loaded.forward(prompts)  # warm-up, untimed
    sync(req.device)
    started = time.perf_counter()
    for _ in range(req.forward_iters):
        loaded.forward(prompts)
    sync(req.device)
    result.ok("forward_tokens_per_s", tokens * req.forward_iters / (time.perf_counter() - started))


def _equivalence(loaded: Any, request: Any, req: SampleRequest, result: _Result) -> None:
    from loadbench.loaders.equivalence import compare_with_base

    eq = compare_with_base(request, loaded.backbone, loaded.tokenizer, [req.prompt])
    if eq.ok:
        result.ok("max_abs_diff_vs_base", eq.max_abs_diff)
    else:
        result.fail("max_abs_diff_vs_base", f"hidden states differ from the base path: max |diff| "
                    f"{eq.max_abs_diff:.3g} > {eq.tolerance:g} x scale {eq.scale:.3g}", "not_equivalent")


def measure(req: SampleRequest) -> dict[str, Any]:
    """Load one path once and measure it; every failure becomes part of the result."""
    import torch

    from loadbench.loaders import PATHS, TASKS, LoadRequest, inspect_checkpoint
    from loadbench.loaders.common import attn_implementation, resident_dtype

    _silence_libraries()
    result = _Result(info={"torch_threads": torch.get_num_threads(), "pid": os.getpid()})
    path, task = PATHS[req.path], TASKS[req.task]
    info = inspect_checkpoint(req.checkpoint_dir, req.trust_remote_code)
    request = LoadRequest(info.path, req.task, req.device, req.dtype, req.trust_remote_code)
    gpu_reason = gpu_unavailable_reason(req.device)

    # Isolation self-check: a fresh worker has not imported the architecture yet.
    result.info["modules_before_import"] = len(sys.modules)
    result.info["arch_module_preloaded"] = any(
        name.startswith(f"transformers.models.{info.model_type}.modeling_") for name in sys.modules)
    started = time.perf_counter()
    path.preimport(info, task)
    result.ok("import_s", time.perf_counter() - started)

    sampler = GpuMemorySampler(req.device) if gpu_reason is None else None
    try:
        if sampler is not None:
            sampler.__enter__()
        started = time.perf_counter()
        try:
            loaded = path.load(request, info, task)
            sync(req.device)
        except Exception as exc:
            result.fail("load_s", exc)
            return result.as_dict()
        result.ok("load_s", time.perf_counter() - started)
        result.info.update(attn_implementation=attn_implementation(loaded.model),
                           resident_dtype=resident_dtype(loaded.model))
        try:
            _run_workload(loaded, req, result)
        except Exception as exc:
            result.fail("decode_tokens_per_s" if task.generates else "forward_tokens_per_s", exc)
    finally:
        if sampler is not None:
            sampler.__exit__(None, None, None)
    result.ok("peak_rss_bytes", peak_rss_bytes())
    if sampler is not None:
        result.ok("gpu_peak_used_bytes", sampler.peak_used_bytes)
        result.ok("gpu_max_allocated_bytes", torch.cuda.max_memory_allocated(req.device))
    else:
        for metric in ("gpu_peak_used_bytes", "gpu_max_allocated_bytes"):
            result.not_applicable.append({"metric": metric, "reason": gpu_reason or ""})
    if req.check_equivalence and req.path != "base":
        try:
            _equivalence(loaded, request, req, result)
        except Exception as exc:
            result.fail("max_abs_diff_vs_base", exc)
    return result.as_dict()


def child_main(conn: Any, payload: str, log_path: str | None) -> None:
    """Entry point in the forked worker: measure, reply once, exit."""
    if log_path:
        # Library warnings go to the run's worker log, not across the progress display.
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
    try:
        reply = measure(SampleRequest.from_dict(json.loads(payload)))
    except BaseException as exc:  # the parent must hear of every way a sample ends
        traceback.print_exc()
        reply = {"metrics": [], "not_applicable": [], "info": {},
                 "failures": [{"metric": "load_s", "error_type": type(exc).__name__,
                               "error": (str(exc).strip().splitlines() or [repr(exc)])[0]}]}
    conn.send_bytes(protocol.encode(reply))
    conn.close()
