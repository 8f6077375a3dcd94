"""The metrics loadbench records, and how to show their values to a person.

Every record names its metric; the registry gives each name one unit and one
direction, so reports can compare paths and say which is better without guessing.
Metric names are snake_case and end with their unit (``_s``, ``_bytes``,
``_tokens_per_s``, ``_tokens``), except ``max_abs_diff_vs_base``, whose unit
(an absolute difference) has no natural suffix.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from loadbench.errors import UserError

__all__ = [
    "HEADLINE",
    "Direction",
    "METRICS",
    "Metric",
    "UnknownMetric",
    "axis_scale",
    "format_value",
    "get_metric",
]

Direction = Literal["lower", "higher", "none"]

MISSING = "—"


@dataclass(frozen=True)
class Metric:
    """One measured quantity: its unit, and which way is better."""

    name: str
    unit: str
    direction: Direction
    description: str
    headline: bool = False  # shown in the summary printed after a run


class UnknownMetric(UserError, KeyError):
    """A metric name that is not in the registry."""

    def __str__(self) -> str:
        # KeyError.__str__ quotes its argument; a sentence reads better.
        return str(self.args[0]) if self.args else "unknown metric"


def _registry(*metrics: Metric) -> dict[str, Metric]:
    return {m.name: m for m in metrics}


def _latency(prefix: str, what: str) -> tuple[Metric, ...]:
    return tuple(Metric(f"{prefix}_p{q}_s", "s", "lower", f"{q}th percentile of {what}.") for q in (50, 90, 99))


# Registry order is reading order in tables: load, then workload, memory, equivalence.
METRICS: dict[str, Metric] = _registry(
    Metric("load_s", "s", "lower",
           "Wall time of the loading path as a user calls it, tokenizer included, imports excluded.", headline=True),
    Metric("load_cpu_s", "s", "lower",
           "CPU time (user + system, all threads) of the worker over load_s: a diagnostic that waiting "
           "for a core on a busy host does not inflate."),
    Metric("config_s", "s", "lower", "Part of load_s spent loading the config (exclusive time)."),
    Metric("tokenizer_s", "s", "lower", "Part of load_s spent loading the tokenizer (exclusive time)."),
    Metric("weights_s", "s", "lower",
           "Part of load_s in model from_pretrained: construction plus reading and placing weights.", headline=True),
    Metric("to_device_s", "s", "lower", "Part of load_s in Module.to (moving to the device or dtype)."),
    Metric("load_other_s", "s", "lower",
           "The rest of load_s that no phase accounts for (e.g. pipeline construction)."),
    Metric("first_forward_s", "s", "lower",
           "The first call after loading: lazily mapped weights are read here.", headline=True),
    Metric("import_s", "s", "lower",
           "Time to import what the case's path needs (its architecture's code), once per case, before any load."),
    Metric("host_probe_s", "s", "none",
           "A fixed loop timed just before the load, outside it: the host's speed at that moment."),
    Metric("disk_read_bytes", "bytes", "none",
           "Bytes read from storage during load and first call: near 0 warm, the weights cold.", headline=True),
    Metric("weights_file_bytes", "bytes", "none",
           "Size of the checkpoint's weight files: what a cold load must read from storage."),
    Metric("weights_resident_bytes", "bytes", "none",
           "Bytes of the loaded model's parameters: what each decoding step reads from memory."),
    Metric("prompt_tokens", "tokens", "none", "Tokens in one prompt of the batch."),
    Metric("ttft_s", "s", "lower", "Time to the first generated token (carries the prefill).", headline=True),
    Metric("prefill_tokens_per_s", "tok/s", "higher", "Prompt tokens (whole batch) over ttft_s."),
    Metric("decode_tokens_per_s", "tok/s", "higher",
           "New tokens (whole batch) per second after the first one.", headline=True),
    Metric("e2e_tokens_per_s", "tok/s", "higher",
           "New tokens (whole batch) over the whole generate call."),
    *_latency("token_latency", "the time between consecutive generated tokens"),
    Metric("new_tokens", "tokens", "none", "Tokens generated in the timed call; must equal the request."),
    Metric("forward_tokens_per_s", "tok/s", "higher",
           "Input tokens per second over the timed forward calls (tokenizing included).", headline=True),
    *_latency("forward_latency", "one forward call"),
    Metric("peak_rss_bytes", "bytes", "lower",
           "Kernel high-water mark of the worker's resident memory over the whole sample.", headline=True),
    Metric("load_peak_rss_bytes", "bytes", "lower",
           "Peak resident memory during the load: the kernel's high-water mark, reset for it "
           "(sampled where it cannot be)."),
    Metric("load_added_rss_bytes", "bytes", "lower",
           "Resident memory the load added: its peak during the load minus the worker's just before it "
           "(the imports, which dominate peak_rss_bytes, are already in).", headline=True),
    Metric("load_peak_anon_bytes", "bytes", "lower", "Peak anonymous resident memory during the load."),
    Metric("load_peak_file_bytes", "bytes", "lower",
           "Peak file-backed resident memory during the load (memory-mapped safetensors)."),
    Metric("run_peak_rss_bytes", "bytes", "lower",
           "Peak resident memory during the workload: the kernel's high-water mark, reset for it "
           "(sampled where it cannot be)."),
    Metric("run_peak_anon_bytes", "bytes", "lower", "Peak anonymous resident memory during the workload."),
    Metric("run_peak_file_bytes", "bytes", "lower", "Peak file-backed resident memory during the workload."),
    Metric("gpu_before_bytes", "bytes", "none", "Device memory in use (NVML) before the load."),
    Metric("gpu_peak_used_bytes", "bytes", "lower",
           "Peak device memory in use as the driver reports it (all allocators), sampled.", headline=True),
    Metric("gpu_load_added_bytes", "bytes", "lower",
           "Device memory the load added: its peak in use during the load (NVML) minus just before it.",
           headline=True),
    Metric("gpu_after_bytes", "bytes", "none", "Device memory in use (NVML) after the workload."),
    Metric("gpu_process_peak_bytes", "bytes", "lower", "Peak device memory of the worker process (NVML)."),
    Metric("gpu_max_allocated_bytes", "bytes", "lower", "Peak memory allocated by torch's caching allocator."),
    Metric("gpu_max_reserved_bytes", "bytes", "lower", "Peak memory reserved by torch's caching allocator."),
    Metric("max_abs_diff_vs_base", "abs", "lower",
           "Largest absolute difference of backbone hidden states against the base path.", headline=True),
)


HEADLINE: tuple[str, ...] = tuple(name for name, m in METRICS.items() if m.headline)


def get_metric(name: str) -> Metric:
    """Look a metric up by name; unknown names fail with the list of known ones."""
    try:
        return METRICS[name]
    except KeyError:
        known = ", ".join(sorted(METRICS))
        raise UnknownMetric(f"unknown metric {name!r}; known metrics: {known}") from None


# Scales ascend; a value is shown in the largest scale it reaches.
_TIME_SCALES: tuple[tuple[float, str], ...] = (
    (1e-9, "ns"), (1e-6, "µs"), (1e-3, "ms"), (1.0, "s"),
)
_BYTE_SCALES: tuple[tuple[float, str], ...] = (
    (1.0, "B"), (1024.0, "KiB"), (1024.0**2, "MiB"), (1024.0**3, "GiB"), (1024.0**4, "TiB"),
)
_RATE_SCALES: tuple[tuple[float, str], ...] = (
    (1.0, ""), (1e3, "k"), (1e6, "M"), (1e9, "G"),
)


def _sig3(value: float) -> str:
    """Three significant digits, never in scientific notation for |value| >= 1e-4."""
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:.0f}"
    text = f"{value:#.3g}"
    if "e" in text:
        return text
    return text.rstrip(".")


def _scale(value: float, scales: Sequence[tuple[float, str]]) -> tuple[float, str]:
    if value == 0:
        # Zero has no magnitude; show it in the base unit ("0 s", not "0 ns").
        return 0.0, next(label for factor, label in scales if factor == 1.0)
    index = 0
    for i, (factor, _) in enumerate(scales):
        if abs(value) >= factor:
            index = i
    # 999.6 ms must read "1.00 s", not "1000 ms": decide on the rounded value.
    while index + 1 < len(scales) and abs(float(f"{value / scales[index][0]:.3g}")) >= 1000:
        index += 1
    factor, label = scales[index]
    return value / factor, label


def axis_scale(unit: str, largest: float) -> tuple[float, str]:
    """(divisor, label) for an axis whose largest value is ``largest``: ("ms", 1e-3) and so on.

    One scale for a whole axis, picked like format_value picks one for a value, so
    an axis reads "ms" or "MiB" instead of raw seconds or bytes.
    """
    value = largest if math.isfinite(largest) else 0.0
    if unit == "s":
        _, label = _scale(value, _TIME_SCALES)
        return dict((lbl, f) for f, lbl in _TIME_SCALES)[label], label
    if unit == "bytes":
        _, label = _scale(value, _BYTE_SCALES)
        return dict((lbl, f) for f, lbl in _BYTE_SCALES)[label], label
    if unit == "tok/s":
        _, prefix = _scale(value, _RATE_SCALES)
        return dict((lbl, f) for f, lbl in _RATE_SCALES)[prefix], f"{prefix} tok/s".strip()
    return 1.0, unit


def format_value(value: float | None, unit: str) -> str:
    """Render a value for people: 3 significant digits in a readable scale.

    ``None`` and NaN (no measurement) render as an em dash.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    value = float(value)
    if math.isinf(value):
        return f"{value} {unit}"
    if unit == "s":
        scaled, label = _scale(value, _TIME_SCALES)
        return f"{_sig3(scaled)} {label}"
    if unit == "bytes":
        scaled, label = _scale(value, _BYTE_SCALES)
        # Whole bytes only: a fractional byte count means nothing.
        number = f"{round(scaled):d}" if label == "B" else _sig3(scaled)
        return f"{number} {label}"
    if unit == "tok/s":
        scaled, label = _scale(value, _RATE_SCALES)
        return f"{_sig3(scaled)}{label} tok/s"
    if unit == "B/s":
        scaled, label = _scale(value, _RATE_SCALES)
        return f"{_sig3(scaled)} {label}B/s"
    if unit == "abs":
        return "0" if value == 0 else f"{value:.1e}"
    if unit == "tokens":
        return f"{round(value):d}"
    if unit == "ratio":  # one environment's value over another's (a history's anchored series)
        return f"×{value:.3f}"
    return f"{_sig3(value)} {unit}".rstrip()
