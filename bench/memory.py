"""Memory probes, one sampler per phase: this process's RAM split by kind, and one GPU via NVML.

A load and a generation need separate numbers, and the kernel's and torch's high-water
marks cover the whole process; a sampler around each phase gives that phase's peak.
RAM is split into anonymous and file-backed pages because a memory-mapped safetensors
file shows up as file-backed RSS (reclaimable page cache) while a copied state dict is
anonymous (real cost). On the GPU, NVML sees everything on the device (CUDA context,
other libraries, other processes); torch's allocator counters are recorded next to it.

Neither torch nor pynvml is imported at module level.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "CpuMemory",
    "CpuMemorySampler",
    "GpuMemory",
    "GpuMemorySampler",
    "NvmlDevice",
    "PROCESS_MEMORY_UNREPORTED",
    "gpu_unavailable_reason",
    "resolve_nvml_device",
]

SAMPLE_PERIOD_S = 0.010
PROCESS_MEMORY_UNREPORTED = "driver does not report per-process memory (common in containers)"
_STATUS_PATH = Path("/proc/self/status")
_NVML_ERROR_NOT_SUPPORTED = 3
_NVML_ERROR_FUNCTION_NOT_FOUND = 13


@dataclass(frozen=True)
class CpuMemory:
    """Resident memory of this process over one phase.

    Each peak is the maximum of its own series (they need not come from the same
    sample). ``*_file_bytes`` count RssFile + RssShmem (a mapping on tmpfs or /dev/shm
    is shmem), so anon + file = RSS. Anon/file are None where the OS does not split RSS
    (not Linux, or a kernel older than 4.5). ``hwm_bytes`` is the kernel's VmHWM at
    exit: a process-lifetime peak (updated lazily), not this phase's.
    """

    peak_rss_bytes: int
    peak_anon_bytes: int | None
    peak_file_bytes: int | None
    start_rss_bytes: int
    start_anon_bytes: int | None
    start_file_bytes: int | None
    hwm_bytes: int | None
    samples: int
    period_s: float
    errors: int = 0


@dataclass(frozen=True)
class _RamReading:
    rss: int
    anon: int | None
    file: int | None
    hwm: int | None


def _read_ram(status_path: Path = _STATUS_PATH) -> _RamReading:
    """One reading from /proc/self/status (one read, no process scan); psutil elsewhere."""
    try:
        text = status_path.read_text()
    except OSError:
        text = ""
    kb: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem"):
            kb[key] = int(rest.split()[0]) * 1024
    if "VmRSS" not in kb:  # not Linux, or /proc hidden
        import psutil

        return _RamReading(rss=int(psutil.Process().memory_info().rss), anon=None, file=None, hwm=None)
    anon = kb.get("RssAnon")
    file = kb["RssFile"] + kb.get("RssShmem", 0) if "RssFile" in kb else None
    return _RamReading(rss=kb["VmRSS"], anon=anon, file=file, hwm=kb.get("VmHWM"))


def _max(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else max(a, b)


class CpuMemorySampler:
    """Samples this process's resident memory every ``period_s`` on a background thread.

    Readings are taken at enter, every period, and at exit. ``__exit__`` does not
    swallow exceptions; the result is ``sampler.result`` once the block has ended.
    """

    def __init__(self, period_s: float = SAMPLE_PERIOD_S, *, status_path: Path = _STATUS_PATH) -> None:
        self.period_s = period_s
        self._status_path = status_path
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-memory-sampler", daemon=True)
        self._start: _RamReading | None = None
        self._peak_rss = 0
        self._peak_anon: int | None = None
        self._peak_file: int | None = None
        self._samples = 0
        self._errors = 0
        self._result: CpuMemory | None = None

    def _sample(self) -> _RamReading | None:
        try:
            reading = _read_ram(self._status_path)
        except Exception:  # a sampler must never take the measured work down with it
            self._errors += 1
            return None
        self._peak_rss = max(self._peak_rss, reading.rss)
        self._peak_anon = _max(self._peak_anon, reading.anon)
        self._peak_file = _max(self._peak_file, reading.file)
        self._samples += 1
        return reading

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            self._sample()

    def __enter__(self) -> CpuMemorySampler:
        self._start = _read_ram(self._status_path)  # fails loudly, before any work is measured
        self._peak_rss, self._peak_anon, self._peak_file = self._start.rss, self._start.anon, self._start.file
        self._samples = 1
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        last = self._sample()
        start = self._start
        assert start is not None, "CpuMemorySampler exited without entering"
        self._result = CpuMemory(
            peak_rss_bytes=self._peak_rss,
            peak_anon_bytes=self._peak_anon,
            peak_file_bytes=self._peak_file,
            start_rss_bytes=start.rss,
            start_anon_bytes=start.anon,
            start_file_bytes=start.file,
            hwm_bytes=last.hwm if last is not None else None,
            samples=self._samples,
            period_s=self.period_s,
            errors=self._errors,
        )

    @property
    def result(self) -> CpuMemory:
        if self._result is None:
            raise RuntimeError("CpuMemorySampler.result is available after the with-block ends")
        return self._result


@dataclass(frozen=True)
class NvmlDevice:
    """The NVML device behind one torch CUDA index (they differ under CUDA_VISIBLE_DEVICES)."""

    torch_index: int
    nvml_index: int | None  # None when found only by UUID lookup (e.g. a MIG instance)
    uuid: str
    handle: Any


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


def _bare_uuid(uuid: object) -> str:
    """UUID without its "GPU-"/"MIG-" prefix, lower case: torch gives it bare, NVML prefixed."""
    text = uuid.decode() if isinstance(uuid, bytes) else str(uuid)
    text = text.strip().lower()
    for prefix in ("gpu-", "mig-"):
        if text.startswith(prefix):
            return text[len(prefix) :]
    return text


def _torch_index(device: str) -> int:
    import torch

    index = torch.device(device).index
    if index is not None:
        return index
    return torch.cuda.current_device() if torch.cuda.is_initialized() else 0


def resolve_nvml_device(torch_index: int) -> NvmlDevice:
    """The NVML device for torch's ``cuda:<torch_index>``, matched by UUID.

    NVML enumerates every GPU on the host while torch's indices follow
    CUDA_VISIBLE_DEVICES (indices or UUIDs), so torch 0 may be NVML 3; the UUID is the
    one name both agree on. Initialises NVML (reference-counted) and leaves it so.
    """
    import pynvml
    import torch

    pynvml.nvmlInit()
    wanted = _bare_uuid(torch.cuda.get_device_properties(torch_index).uuid)
    seen: list[str] = []
    for nvml_index in range(int(pynvml.nvmlDeviceGetCount())):
        handle = pynvml.nvmlDeviceGetHandleByIndex(nvml_index)
        uuid = pynvml.nvmlDeviceGetUUID(handle)
        uuid = uuid.decode() if isinstance(uuid, bytes) else str(uuid)
        if _bare_uuid(uuid) == wanted:
            return NvmlDevice(torch_index=torch_index, nvml_index=nvml_index, uuid=uuid, handle=handle)
        seen.append(uuid)
    for prefix in ("GPU-", "MIG-"):  # MIG instances are not enumerated by index
        try:
            handle = pynvml.nvmlDeviceGetHandleByUUID(prefix + wanted)
        except pynvml.NVMLError:
            continue
        return NvmlDevice(torch_index=torch_index, nvml_index=None, uuid=prefix + wanted, handle=handle)
    raise LookupError(
        f"no NVML device has the UUID of torch cuda:{torch_index} ({wanted}); "
        f"NVML sees {seen or 'no devices'} (CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r})"
    )


class GpuMemorySampler:
    """Samples one CUDA device's memory through NVML every ``period_s`` on a background thread.

    Resolving the device happens in ``__init__`` and the first reading in ``__enter__``:
    both raise, before any work is measured. After that nothing raises; NVML or torch
    errors are counted in ``GpuMemory.errors``. The result is ``sampler.result`` once
    the block has ended (``__exit__`` must return None, or it would swallow exceptions).
    """

    def __init__(self, device: str, period_s: float = SAMPLE_PERIOD_S) -> None:
        import pynvml

        self._nvml = pynvml
        self.device = device
        self.period_s = period_s
        self.nvml_device = resolve_nvml_device(_torch_index(device))
        self._pid = os.getpid()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gpu-memory-sampler", daemon=True)
        self._before = 0
        self._peak = 0
        self._samples = 0
        self._errors = 0
        self._process_peak: int | None = None
        self._process_supported = True
        self._processes_fn: Any = None
        self._result: GpuMemory | None = None

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

    def _sample(self) -> int | None:
        """One reading of device and process memory; errors are counted, never raised."""
        try:
            used = self._used()
        except Exception:
            self._errors += 1
            used = None
        else:
            self._peak = max(self._peak, used)
            self._samples += 1
        try:
            self._sample_process()
        except Exception:
            self._errors += 1
        return used

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            self._sample()

    def __enter__(self) -> GpuMemorySampler:
        import torch

        self._before = self._peak = self._used()
        self._samples = 1
        try:
            self._sample_process()
        except Exception:
            self._errors += 1
        if torch.cuda.is_initialized():  # before that there is nothing to reset, and resetting would initialise
            try:
                torch.cuda.reset_peak_memory_stats(self.device)
            except Exception:
                self._errors += 1
        self._thread.start()
        return self

    def _torch_peaks(self) -> tuple[int | None, int | None]:
        import torch

        try:
            cuda = torch.cuda
            return int(cuda.max_memory_allocated(self.device)), int(cuda.max_memory_reserved(self.device))
        except Exception:
            self._errors += 1
            return None, None

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        after = self._sample()
        allocated, reserved = self._torch_peaks()
        self._result = GpuMemory(
            before_bytes=self._before,
            peak_bytes=self._peak,
            after_bytes=after,
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

    @property
    def result(self) -> GpuMemory:
        if self._result is None:
            raise RuntimeError("GpuMemorySampler.result is available after the with-block ends")
        return self._result
