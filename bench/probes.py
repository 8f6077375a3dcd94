"""Probes a worker wraps around its load and workload: clocks, memory, token steps.

Each probe is a context manager or a small object with one reading; none of them
imports torch at module level.
"""

from __future__ import annotations

import resource
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["peak_rss_bytes", "sync", "StepClock", "GpuMemorySampler", "gpu_unavailable_reason"]

SAMPLE_PERIOD_S = 0.010


def peak_rss_bytes() -> int:
    """The kernel's high-water mark of this process's resident memory: exact, no sampling."""
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(maxrss if sys.platform == "darwin" else maxrss * 1024)


def sync(device: str) -> None:
    """Wait for queued GPU work, so a clock read after it covers that work."""
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize(device)


@dataclass
class StepClock:
    """A generation streamer that timestamps each decoding step.

    ``generate`` hands the streamer the prompt first, then one tensor per new-token step;
    counting steps here counts generated tokens the same way for every path.
    """

    device: str = "cpu"
    started: float = 0.0
    steps: list[float] = field(default_factory=list)
    _prompt_seen: bool = False

    def start(self) -> None:
        self.started = time.perf_counter()
        self.steps.clear()
        self._prompt_seen = False

    def put(self, value: Any) -> None:
        if not self._prompt_seen:
            self._prompt_seen = True
            return
        sync(self.device)
        self.steps.append(time.perf_counter())

    def end(self) -> None:
        pass

    @property
    def new_tokens(self) -> int:
        return len(self.steps)

    @property
    def ttft_s(self) -> float:
        return self.steps[0] - self.started

    def decode_tokens_per_s(self, batch_size: int) -> float:
        """Tokens per second after the first, which carries the prefill."""
        if len(self.steps) < 2:
            raise ValueError("decode rate needs at least 2 generated tokens")
        return batch_size * (len(self.steps) - 1) / (self.steps[-1] - self.steps[0])


def gpu_unavailable_reason(device: str) -> str | None:
    """Why GPU memory cannot be measured for ``device``, or None when it can."""
    if not device.startswith("cuda"):
        return f"device is {device}: GPU memory is measured for CUDA devices only"
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception as exc:  # NVML raises its own error types, all meaning "not here"
        return f"NVML unavailable ({exc})"
    return None


class GpuMemorySampler:
    """Peak device memory in use, read through NVML by a background thread.

    NVML sees every allocation on the device (CUDA context, other libraries), which
    ``torch.cuda.max_memory_allocated`` does not; both are recorded.
    """

    def __init__(self, device: str, period_s: float = SAMPLE_PERIOD_S) -> None:
        import pynvml
        import torch

        self._nvml = pynvml
        index = torch.device(device).index or 0
        uuid = str(torch.cuda.get_device_properties(index).uuid)
        uuid = uuid if uuid.startswith("GPU-") else f"GPU-{uuid}"
        self._handle = pynvml.nvmlDeviceGetHandleByUUID(uuid)
        self.period_s = period_s
        self.peak_used_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _read(self) -> None:
        used = int(self._nvml.nvmlDeviceGetMemoryInfo(self._handle).used)
        self.peak_used_bytes = max(self.peak_used_bytes, used)

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            self._read()

    def __enter__(self) -> "GpuMemorySampler":
        self._read()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._read()
