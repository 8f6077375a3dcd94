"""GPU memory probe: one CUDA device sampled through NVML over the load and the workload.

NVML sees everything on the device (CUDA context, other libraries, other processes);
torch's allocator counters are recorded next to it. The sampler is a thread in the
worker (torch's counters can only be read there), started for a CUDA device only; what it
costs a load has not been measured, for want of a GPU. CPU memory is measured without a
thread in the worker (``bench/probes/cpu_memory.py``).

Neither torch nor pynvml is imported at module level.
"""

from __future__ import annotations

import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from loadbench.bench.probes.nvml import NvmlDevice, cuda_index, resolve_nvml_device

__all__ = ["GpuMemory", "GpuMemorySampler", "PROCESS_MEMORY_UNREPORTED", "PeriodicSampler", "gpu_unavailable_reason"]

SAMPLE_PERIOD_S = 0.010
PROCESS_MEMORY_UNREPORTED = "driver does not report per-process memory (common in containers)"
_NVML_ERROR_NOT_SUPPORTED = 3
_NVML_ERROR_FUNCTION_NOT_FOUND = 13

R = TypeVar("R")
S = TypeVar("S", bound="PeriodicSampler[Any]")
T = TypeVar("T")


class PeriodicSampler(ABC, Generic[R]):
    """Calls ``_sample()`` every ``period_s`` on a daemon thread, from enter to exit.

    Subclasses take the first reading in ``_begin`` (it may raise: nothing has been
    measured yet), one reading per period in ``_sample`` (which must never raise: a
    sampler must not take the measured work down with it, so it counts errors through
    ``_guarded``), and build the result in ``_finish`` from one last reading taken after
    the thread has stopped. ``__exit__`` returns None, so exceptions of the block pass.
    """

    def __init__(self, period_s: float, name: str) -> None:
        self.period_s = period_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._samples = 0
        self._errors = 0
        self._result: R | None = None

    @abstractmethod
    def _begin(self) -> None:
        """The first reading; raising here stops the block before any work."""

    @abstractmethod
    def _sample(self) -> Any:
        """One reading, folded into the peaks; never raises."""

    @abstractmethod
    def _finish(self, last: Any) -> R:
        """The result, from the peaks and the last reading (None if it failed)."""

    def _guarded(self, read: Callable[[], T]) -> T | None:
        """``read()``, or None with the error counted."""
        try:
            return read()
        except Exception:  # NVML, torch and the OS raise their own types, all "no reading this time"
            self._errors += 1
            return None

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            self._sample()

    def __enter__(self: S) -> S:
        self._begin()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._result = self._finish(self._sample())

    @property
    def result(self) -> R:
        """The phase's reading; raises RuntimeError until the with-block has ended."""
        if self._result is None:
            raise RuntimeError(f"{type(self).__name__}.result is available after the with-block ends")
        return self._result


def _max(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else max(a, b)


@dataclass(frozen=True)
class GpuMemory:
    """Device memory over one phase.

    ``before/peak/after_bytes`` are NVML's device-wide "used" (every process and
    context on the GPU). ``process_peak_bytes`` is this pid's share, None with
    ``process_reason`` when the driver does not list it (in a container the pid NVML
    reports is the host's). The torch counters are the caching allocator's peaks since
    enter (reset there when CUDA is already initialised), None if they could not be read.
    ``after_bytes`` is None if the exit reading failed; ``errors`` counts NVML/torch
    errors swallowed during the phase.
    """

    before_bytes: int
    peak_bytes: int
    after_bytes: int | None
    process_peak_bytes: int | None
    process_reason: str | None
    torch_max_allocated_bytes: int | None
    torch_max_reserved_bytes: int | None
    period_s: float
    device_uuid: str
    samples: int
    nvml_index: int | None = None
    errors: int = 0


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


class GpuMemorySampler(PeriodicSampler[GpuMemory]):
    """Samples one CUDA device's memory through NVML every ``period_s`` on a background thread.

    Resolving the device happens in ``__init__`` and the first reading in ``__enter__``:
    both raise, before any work is measured. After that nothing raises; NVML or torch
    errors are counted in ``GpuMemory.errors``. The result is ``sampler.result`` once
    the block has ended.
    """

    def __init__(self, device: str, period_s: float = SAMPLE_PERIOD_S) -> None:
        import pynvml

        super().__init__(period_s, "gpu-memory-sampler")
        self._nvml = pynvml
        self.device = device
        self.nvml_device: NvmlDevice = resolve_nvml_device(cuda_index(device))
        self._pid = os.getpid()
        self._before = 0
        self._peak = 0
        self._process_peak: int | None = None
        self._process_supported = True
        self._processes_fn: Any = None

    def _used(self) -> int:
        return int(self._nvml.nvmlDeviceGetMemoryInfo(self.nvml_device.handle).used)

    def _processes(self) -> list[Any]:
        """Compute processes on the device: the v3 call if the driver has it, else the plain one."""
        nvml, handle = self._nvml, self.nvml_device.handle
        if self._processes_fn is None:
            v3 = getattr(nvml, "nvmlDeviceGetComputeRunningProcesses_v3", None)
            if v3 is not None:
                try:
                    procs = v3(handle)
                except nvml.NVMLError as exc:
                    if getattr(exc, "value", None) != _NVML_ERROR_FUNCTION_NOT_FOUND:
                        raise
                else:
                    self._processes_fn = v3
                    return list(procs)
            self._processes_fn = nvml.nvmlDeviceGetComputeRunningProcesses
        return list(self._processes_fn(handle))

    def _sample_process(self) -> None:
        if not self._process_supported:
            return
        try:
            procs = self._processes()
        except self._nvml.NVMLError as exc:
            if getattr(exc, "value", None) == _NVML_ERROR_NOT_SUPPORTED:
                self._process_supported = False  # will not change during the phase: stop asking
            else:
                self._errors += 1
            return
        for proc in procs:
            used = getattr(proc, "usedGpuMemory", None)
            if getattr(proc, "pid", None) == self._pid and used is not None:
                self._process_peak = _max(self._process_peak, int(used))

    def _begin(self) -> None:
        import torch

        self._before = self._peak = self._used()
        self._samples = 1
        self._guarded(self._sample_process)
        if torch.cuda.is_initialized():  # before that there is nothing to reset, and resetting would initialise
            self._guarded(lambda: torch.cuda.reset_peak_memory_stats(self.device))

    def _sample(self) -> int | None:
        """One reading of device and process memory; errors are counted, never raised."""
        used = self._guarded(self._used)
        if used is not None:
            self._peak = max(self._peak, used)
            self._samples += 1
        self._guarded(self._sample_process)
        return used

    def added_so_far(self) -> int:
        """Device memory added since enter: the peak until now (one more reading) minus the first reading."""
        self._sample()
        return self._peak - self._before

    def _torch_peaks(self) -> tuple[int, int] | None:
        import torch

        return int(torch.cuda.max_memory_allocated(self.device)), int(torch.cuda.max_memory_reserved(self.device))

    def _finish(self, last: int | None) -> GpuMemory:
        allocated, reserved = self._guarded(self._torch_peaks) or (None, None)
        return GpuMemory(
            before_bytes=self._before,
            peak_bytes=self._peak,
            after_bytes=last,
            process_peak_bytes=self._process_peak,
            process_reason=None if self._process_peak is not None else PROCESS_MEMORY_UNREPORTED,
            torch_max_allocated_bytes=allocated,
            torch_max_reserved_bytes=reserved,
            period_s=self.period_s,
            device_uuid=self.nvml_device.uuid,
            samples=self._samples,
            nvml_index=self.nvml_device.nvml_index,
            errors=self._errors,
        )
