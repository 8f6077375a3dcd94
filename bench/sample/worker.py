"""The child side of a sample: one case goes in, one JSON result comes out.

Runs in a process forked from the zygote and never reused, so what one sample loads
or caches cannot make the next one faster.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loadbench.bench.probes import page_cache as pagecache
from loadbench.bench.probes.clocks import host_probe_s, peak_rss_bytes, sync
from loadbench.bench.probes.cpu_memory import CpuMemory, CpuMemoryProbe, Phase
from loadbench.bench.probes.gpu_memory import GpuMemory, GpuMemorySampler, gpu_unavailable_reason
from loadbench.bench.sample import private_pages
from loadbench.bench.sample.phases import PHASES, PhaseClock, instrument
from loadbench.bench.sample.protocol import SampleReply, SampleRequest, encode_partial
from loadbench.bench.sample.workload import (
    build_prompts,
    first_call,
    measure_forward,
    measure_generation,
    workload_metric,
)
from loadbench.vocabulary import BASE_PATH, WARM

if TYPE_CHECKING:
    from loadbench.loaders.checkpoints.inspection import CheckpointInfo
    from loadbench.loaders.tasks import Task

__all__ = ["GPU_METRICS", "child_main", "import_case", "import_key", "log_to", "measure", "silence_libraries"]

GPU_METRICS = ("gpu_before_bytes", "gpu_peak_used_bytes", "gpu_load_added_bytes", "gpu_after_bytes",
               "gpu_process_peak_bytes", "gpu_max_allocated_bytes", "gpu_max_reserved_bytes")


# Set in a case's zygote once it has imported the case's architecture (``import_case``):
# its workers, forked from it, find the import done and do not time it again.
_imported_for: str | None = None


def import_key(req: SampleRequest) -> str:
    """What a case's imports depend on; cases that share it (warm and cold, options) share one import."""
    return json.dumps([req.checkpoint_dir, req.builtin, req.path, req.task, req.trust_remote_code,
                       req.allow_bin_weights])


def import_case(payload: str) -> dict[str, Any]:
    """In a case's zygote, a fresh fork of the first: the imports a worker would time, timed the same way."""
    global _imported_for
    from loadbench.loaders import TASKS, inspect_checkpoint, path_for

    req = SampleRequest.from_dict(json.loads(payload))
    path, task = path_for(req.path), TASKS[req.task]
    info = inspect_checkpoint(req.checkpoint_dir, req.trust_remote_code, req.allow_bin_weights)
    found: dict[str, Any] = _isolation(info.model_type)
    found["import_s"] = _timed_import(path, info, task)
    _imported_for = import_key(req)
    return found


def _timed_import(path: Any, info: CheckpointInfo, task: Task) -> float:
    """Seconds to import what the path needs for this checkpoint and task: one clock for worker and case zygote."""
    started = time.perf_counter()
    path.preimport(info, task)
    return time.perf_counter() - started


def _isolation(model_type: str) -> dict[str, Any]:
    """The self-check that whoever times the import has not imported the architecture yet."""
    prefix = f"transformers.models.{model_type}.modeling_"
    return {"modules_before_import": len(sys.modules),
            "arch_module_preloaded": any(name.startswith(prefix) for name in sys.modules)}


def silence_libraries() -> None:
    from transformers.utils import logging

    if logging.get_verbosity() != logging.ERROR:  # the zygote's is; setting it again clears every logger's cache
        logging.set_verbosity_error()
    logging.disable_progress_bar()


def _prepare_cache(req: SampleRequest, result: SampleReply) -> None:
    directory = Path(req.checkpoint_dir)
    if req.cache == WARM:
        pagecache.warm(directory)
        return
    reason = pagecache.evict(directory)
    if reason is not None:
        result.fail("disk_read_bytes", reason, "cache_not_evicted")


def _report_memory(result: SampleReply, prefix: str, memory: CpuMemory) -> None:
    peaks = {f"{prefix}_peak_rss_bytes": memory.peak_rss_bytes, f"{prefix}_peak_anon_bytes": memory.peak_anon_bytes,
             f"{prefix}_peak_file_bytes": memory.peak_file_bytes}
    if prefix == "load":
        # What this loading approach costs, without the imports every path shares.
        peak = memory.peak_rss_bytes
        peaks["load_added_rss_bytes"] = None if peak is None else peak - memory.start_rss_bytes
    for metric, value in peaks.items():
        if value is not None:
            result.ok(metric, value)
        elif memory.error is not None:
            result.fail(metric, memory.error, "probe_failed")
        else:
            result.na(metric, "this OS does not split resident memory by kind")
    result.info[f"{prefix}_rss_peak"] = "kernel high-water mark" if memory.exact else "sampled"
    result.info[f"{prefix}_memory_samples"] = memory.samples


def _report_gpu(result: SampleReply, gpu: GpuMemory | None, reason: str | None) -> None:
    if gpu is None:
        for metric in GPU_METRICS:
            result.na(metric, reason or "GPU memory not measured")
        return
    values = {"gpu_before_bytes": gpu.before_bytes, "gpu_peak_used_bytes": gpu.peak_bytes,
              "gpu_after_bytes": gpu.after_bytes, "gpu_process_peak_bytes": gpu.process_peak_bytes,
              "gpu_max_allocated_bytes": gpu.torch_max_allocated_bytes,
              "gpu_max_reserved_bytes": gpu.torch_max_reserved_bytes}
    for metric, value in values.items():
        if value is None:
            result.na(metric, gpu.process_reason if metric == "gpu_process_peak_bytes" and gpu.process_reason
                      else "not reported by the driver")
        else:
            result.ok(metric, value)
    result.info["gpu_sample_period_s"] = gpu.period_s


def _check_output(loaded: Any, request: Any, req: SampleRequest, result: SampleReply, *, reference: bool) -> None:
    """Outputs must be finite on every path; every path but the reference must also match it.

    Both are recorded under ``max_abs_diff_vs_base``, the one metric that says whether a
    path computes the right thing; the timings stay, as they measure the load that happened.
    """
    from loadbench.loaders.equivalence import NonFiniteOutput, check_finite, compare_with_base

    try:
        if reference:
            check_finite(loaded.backbone, loaded.tokenizer, [req.prompt])
            return
        eq = compare_with_base(request, loaded.backbone, loaded.tokenizer, [req.prompt])
    except NonFiniteOutput as exc:
        result.fail("max_abs_diff_vs_base", exc, "non_finite_output")
        return
    if eq.ok:
        result.ok("max_abs_diff_vs_base", eq.max_abs_diff)
    else:
        result.fail("max_abs_diff_vs_base", f"hidden states differ from the base path: max |diff| "
                    f"{eq.max_abs_diff:.3g} > {eq.tolerance:g} x scale {eq.scale:.3g}", "not_equivalent")


def _load(path: Any, request: Any, info: Any, task: Any, req: SampleRequest, result: SampleReply,
          clock: PhaseClock) -> Any:
    """The timed load, split into phases; the unattributed rest is reported, not hidden.

    ``load_cpu_s``, the worker's CPU time over the load (user + system, all its threads),
    tells time spent working from time spent waiting for a core on a busy host.
    """
    cpu_started = time.process_time()
    started = time.perf_counter()
    with clock.record():
        loaded = path.load(request, info, task)
        sync(req.device)
    load_s = time.perf_counter() - started
    load_cpu_s = time.process_time() - cpu_started
    result.ok("load_s", load_s)
    result.ok("load_cpu_s", load_cpu_s)
    for phase in PHASES:
        result.ok(phase, clock.totals[phase])
    result.ok("load_other_s", load_s - sum(clock.totals.values()))
    return loaded


def _run(loaded: Any, req: SampleRequest, task: Any, result: SampleReply, read_before: int | None) -> None:
    from loadbench.loaders.common import encode

    prompts = build_prompts(loaded.tokenizer, req.prompt, req.prompt_tokens, req.batch_size)
    prompt_tokens = int(encode(loaded.tokenizer, prompts[:1], "cpu")["attention_mask"].sum())
    result.ok("prompt_tokens", prompt_tokens)
    result.ok("first_forward_s", first_call(loaded, prompts, req.device))
    read_after = pagecache.disk_read_bytes()
    if read_before is not None and read_after is not None:
        # Lazily mapped weights are read at first use, so this spans load + first call.
        result.ok("disk_read_bytes", read_after - read_before)
    if loaded.generate is not None:
        error = measure_generation(loaded, prompts, req.new_tokens, prompt_tokens, req.device, result.ok)
        if error:
            result.fail("decode_tokens_per_s", error, "wrong_token_count")
    else:
        measure_forward(loaded, prompts, req.forward_iters, prompt_tokens * len(prompts), req.device, result.ok)


def measure(req: SampleRequest, loaded_so_far: Callable[[SampleReply, str], None] | None = None, *,
            memory_probes: bool = True) -> SampleReply:
    """Load one path once and measure it; every failure becomes part of the result.

    ``loaded_so_far(reply, metric)`` hears what the load measured and which workload
    metric comes next, so that a worker killed during the workload (a timeout, the
    kernel's OOM killer) still leaves its load on record and the failure where it was.
    ``memory_probes=False`` leaves the CPU memory probes out of the load and the workload
    (their metrics are then absent): the baseline ``bench/studies/probecost.py`` times them against.
    """
    allowed = set(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else set()
    if req.cpus:
        os.sched_setaffinity(0, req.cpus)
    if not memory_probes:
        return _measure(req, loaded_so_far, None)
    # Started now, its own imports overlap the worker's; it reads from the cores the worker leaves.
    with CpuMemoryProbe(watcher_cpus=sorted(allowed - set(req.cpus or ())) or None) as cpu:
        return _measure(req, loaded_so_far, cpu)


def _measure(req: SampleRequest, loaded_so_far: Callable[[SampleReply, str], None] | None,
             cpu: CpuMemoryProbe | None) -> SampleReply:
    import torch

    from loadbench.loaders import TASKS, LoadRequest, inspect_checkpoint, path_for, path_not_applicable
    from loadbench.loaders.common import attn_implementation, resident_dtype, resident_weight_bytes
    from loadbench.loaders.options import LoadOptions

    silence_libraries()
    if req.threads is not None:
        torch.set_num_threads(req.threads)
    result = SampleReply(info={"torch_threads": torch.get_num_threads(), "pid": os.getpid(),
                           "cpus": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None})
    path, task = path_for(req.path), TASKS[req.task]
    info = inspect_checkpoint(req.checkpoint_dir, req.trust_remote_code, req.allow_bin_weights)
    options = LoadOptions.parse(req.options)
    request = LoadRequest(info.path, req.task, req.device, req.dtype, req.trust_remote_code, options)

    imported = _imported_for == import_key(req)
    if not imported:
        result.info.update(_isolation(info.model_type))
    elif private_pages.copied_bytes is not None:  # what this fork copied in of its case zygote's import
        result.info["import_copied_bytes"] = private_pages.copied_bytes
    if (reason := path_not_applicable(req.path, info, task, options, req.device)) is not None:
        # Asked here, in the environment that would load (a run over environments plans without it).
        result.na("load_s", reason)
        return result
    clock = PhaseClock()
    instrument(clock)
    if not imported:  # otherwise its zygote timed it, and the parent adds it (bench/sample/spawn.py)
        result.ok("import_s", _timed_import(path, info, task))

    _prepare_cache(req, result)
    gpu_reason = gpu_unavailable_reason(req.device)
    # As in the zygote: what the imports left is collected once and frozen, so a full
    # collection during the timed load does not walk it at a random moment.
    gc.collect()
    gc.freeze()
    result.ok("host_probe_s", host_probe_s())
    read_before = pagecache.disk_read_bytes()
    loaded = None
    with ExitStack() as stack:
        gpu = stack.enter_context(GpuMemorySampler(req.device)) if gpu_reason is None else None
        try:
            with _phase(cpu) as load_memory, options.applied():
                loaded = _load(path, request, info, task, req, result, clock)
            if load_memory is not None:
                _report_memory(result, "load", load_memory.result)
            if gpu is not None:
                result.ok("gpu_load_added_bytes", gpu.added_so_far())
            result.info.update(attn_implementation=attn_implementation(loaded.model),
                               resident_dtype=resident_dtype(loaded.model))
            # After the clock: what the load read and what decoding reads, for the ceiling's ratios.
            result.ok("weights_file_bytes", info.weight_file_bytes())
            result.ok("weights_resident_bytes", resident_weight_bytes(loaded.model))
        except Exception as exc:
            result.fail("load_s", exc)
        if loaded is not None:
            workload = workload_metric(loaded)
            if loaded_so_far is not None:
                loaded_so_far(result, workload)
            try:
                with _phase(cpu) as run_memory:
                    _run(loaded, req, task, result, read_before)
                if run_memory is not None:
                    _report_memory(result, "run", run_memory.result)
            except Exception as exc:
                result.fail(workload, exc)
    _report_gpu(result, gpu.result if gpu is not None else None, gpu_reason)
    result.ok("peak_rss_bytes", cpu.lifetime_peak_rss_bytes() if cpu is not None else peak_rss_bytes())
    # The base path with no options is the reference itself: only checked for finite output.
    # With options it is compared with the plain load, as every other path is.
    if loaded is not None and req.check_equivalence:
        try:
            _check_output(loaded, request, req, result,
                          reference=req.path == BASE_PATH and options == LoadOptions())
        except Exception as exc:
            result.fail("max_abs_diff_vs_base", exc)
    return result


def _phase(cpu: CpuMemoryProbe | None) -> AbstractContextManager[Phase | None]:
    return cpu.phase() if cpu is not None else nullcontext()


def log_to(path: str | None) -> None:
    """Send this process's stdout and stderr to the run's worker log, if there is one.

    Library warnings and tracebacks then land there, not across the progress display.
    """
    if path:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)


def child_main(conn: Any, payload: str, log_path: str | None, *, memory_probes: bool = True) -> bool:
    """Entry point in the forked worker: measure, reply once; whether the sample ended with no failure.

    (A warmup's worker learns what the samples after it copy in only from a whole sample:
    bench/sample/private_pages.py.)
    """
    log_to(log_path)

    def loaded_so_far(reply: SampleReply, next_metric: str) -> None:
        conn.send_bytes(encode_partial(reply, next_metric))

    try:
        reply = measure(SampleRequest.from_dict(json.loads(payload)), loaded_so_far, memory_probes=memory_probes)
        data = reply.to_bytes()  # fails on a non-finite value: that is the sample's failure too
    except BaseException as exc:  # the parent must hear of every way a sample ends
        traceback.print_exc()
        reply = SampleReply()
        reply.fail("load_s", exc)
        data = reply.to_bytes()
    conn.send_bytes(data)
    conn.close()
    return not reply.failures
