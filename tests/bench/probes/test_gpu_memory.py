"""The GPU memory probe against a scripted NVML (CPU memory: test_rss.py)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any
from unittest import mock

import pytest

from loadbench.bench.probes import gpu_memory as memory
from loadbench.bench.probes import nvml

# --------------------------------------------------------------------------- fake NVML


class NVMLError(Exception):
    def __init__(self, value: int) -> None:
        super().__init__(f"NVML error {value}")
        self.value = value


class FakeNvml:
    """NVML at its boundary: devices by index and UUID, scripted memory and process readings.

    ``used[handle]`` is consumed one reading per call, then its last value repeats;
    ``processes`` is a callable returning the process list (or raising).
    """

    NVMLError = NVMLError
    NVML_ERROR_NOT_SUPPORTED = 3

    def __init__(self, uuids: list[str], used: dict[str, list[Any]], processes: Callable[[], list[Any]]) -> None:
        self.uuids = uuids
        self.used = {handle: list(readings) for handle, readings in used.items()}
        self.processes = processes
        self.memory_calls: dict[str, int] = {}
        self.init_calls = 0

    def nvmlInit(self) -> None:
        self.init_calls += 1

    def nvmlDeviceGetCount(self) -> int:
        return len(self.uuids)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> str:
        return f"handle{index}"

    def nvmlDeviceGetUUID(self, handle: str) -> str:
        return self.uuids[int(handle.removeprefix("handle"))]

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> str:
        if uuid not in self.uuids:
            raise NVMLError(6)  # NVML_ERROR_NOT_FOUND
        return f"handle{self.uuids.index(uuid)}"

    def nvmlDeviceGetMemoryInfo(self, handle: str) -> SimpleNamespace:
        self.memory_calls[handle] = self.memory_calls.get(handle, 0) + 1
        readings = self.used[handle]
        value = readings.pop(0) if len(readings) > 1 else readings[0]
        if isinstance(value, Exception):
            raise value
        return SimpleNamespace(used=value, total=80 * 2**30, free=80 * 2**30 - value)

    def nvmlDeviceGetComputeRunningProcesses(self, handle: str) -> list[Any]:
        return self.processes()

    def remaining(self, handle: str) -> int:
        return len(self.used[handle])


def proc(pid: int, used: int | None) -> SimpleNamespace:
    return SimpleNamespace(pid=pid, usedGpuMemory=used)


# NVML index 2 is the GPU that CUDA_VISIBLE_DEVICES="2,0" makes torch's cuda:0.
UUIDS = [
    "GPU-00000000-1111-2222-3333-444444444444",
    "GPU-aaaaaaaa-1111-2222-3333-444444444444",
    "GPU-cafef00d-1111-2222-3333-444444444444",
]
TORCH_UUIDS = {0: "cafef00d-1111-2222-3333-444444444444", 1: "00000000-1111-2222-3333-444444444444"}


@pytest.fixture
def fake_torch(monkeypatch: pytest.MonkeyPatch) -> Iterator[SimpleNamespace]:
    """torch.cuda as a visible 2-GPU process with CUDA_VISIBLE_DEVICES=2,0."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,0")
    props = lambda index: SimpleNamespace(uuid=TORCH_UUIDS[index])  # noqa: E731 - bare, as torch gives it
    with (
        mock.patch("torch.cuda.get_device_properties", side_effect=props),
        mock.patch("torch.cuda.is_initialized", return_value=True),
        mock.patch("torch.cuda.reset_peak_memory_stats") as reset,
        mock.patch("torch.cuda.max_memory_allocated", return_value=700) as allocated,
        mock.patch("torch.cuda.max_memory_reserved", return_value=800) as reserved,
    ):
        yield SimpleNamespace(reset=reset, allocated=allocated, reserved=reserved)


def install(monkeypatch: pytest.MonkeyPatch, fake: FakeNvml) -> FakeNvml:
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    return fake


def wait_until(condition: Callable[[], bool], timeout_s: float = 2.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "sampler thread did not consume the scripted readings"
        time.sleep(0.001)


def test_resolve_matches_torch_to_nvml_by_uuid_when_visible_devices_reorder(monkeypatch, fake_torch) -> None:
    install(monkeypatch, FakeNvml(UUIDS, {}, list))
    first = nvml.resolve_nvml_device(0)
    assert (first.nvml_index, first.uuid, first.handle) == (2, UUIDS[2], "handle2")
    assert nvml.resolve_nvml_device(1).nvml_index == 0


def test_resolve_accepts_bytes_and_upper_case_uuids_from_nvml(monkeypatch, fake_torch) -> None:
    install(monkeypatch, FakeNvml([u.encode() for u in [UUIDS[0], UUIDS[1], UUIDS[2].upper()]], {}, list))  # type: ignore[misc]
    assert nvml.resolve_nvml_device(0).nvml_index == 2


def test_resolve_says_which_uuid_is_missing(monkeypatch, fake_torch) -> None:
    install(monkeypatch, FakeNvml(UUIDS[:2], {}, list))
    with pytest.raises(LookupError, match="cafef00d.*CUDA_VISIBLE_DEVICES='2,0'"):
        nvml.resolve_nvml_device(0)


def test_gpu_sampler_reports_before_peak_after_of_the_matched_device(monkeypatch, fake_torch) -> None:
    pid = os.getpid()
    calls = iter([[proc(pid, 50)], [proc(pid, 400), proc(pid + 1, 9_000)], [proc(pid, 120)]])
    fake = install(
        monkeypatch,
        FakeNvml(
            UUIDS,
            # handle2 is torch cuda:0; reading any other device would show as 10**12
            {"handle0": [10**12], "handle1": [10**12], "handle2": [100, 300, 900, 200, 150]},
            lambda: next(calls, [proc(pid, 120)]),
        ),
    )
    with memory.GpuMemorySampler("cuda:0", period_s=0.001) as sampler:
        wait_until(lambda: fake.remaining("handle2") == 1)
    result = sampler.result
    assert (result.before_bytes, result.peak_bytes, result.after_bytes) == (100, 900, 150)
    assert result.process_peak_bytes == 400 and result.process_reason is None  # another pid's 9000 is not ours
    assert (result.torch_max_allocated_bytes, result.torch_max_reserved_bytes) == (700, 800)
    assert (result.device_uuid, result.nvml_index) == (UUIDS[2], 2)
    assert result.samples >= 5 and result.errors == 0 and result.period_s == 0.001
    assert set(fake.memory_calls) == {"handle2"}
    fake_torch.reset.assert_called_once_with("cuda:0")
    fake_torch.allocated.assert_called_once_with("cuda:0")


def test_gpu_sampler_prefers_the_v3_process_query(monkeypatch, fake_torch) -> None:
    fake = FakeNvml(UUIDS, {"handle2": [100]}, lambda: pytest.fail("plain query used although v3 exists"))
    fake.nvmlDeviceGetComputeRunningProcesses_v3 = lambda handle: [proc(os.getpid(), 64)]  # type: ignore[attr-defined]
    install(monkeypatch, fake)
    with memory.GpuMemorySampler("cuda:0", period_s=0.001) as sampler:
        pass
    assert sampler.result.process_peak_bytes == 64


def test_gpu_sampler_falls_back_from_v3_when_the_driver_lacks_it(monkeypatch, fake_torch) -> None:
    def v3(handle: str) -> list[Any]:
        raise NVMLError(13)  # NVML_ERROR_FUNCTION_NOT_FOUND

    fake = FakeNvml(UUIDS, {"handle2": [100]}, lambda: [proc(os.getpid(), 32)])
    fake.nvmlDeviceGetComputeRunningProcesses_v3 = v3  # type: ignore[attr-defined]
    install(monkeypatch, fake)
    with memory.GpuMemorySampler("cuda:0", period_s=0.001) as sampler:
        pass
    assert sampler.result.process_peak_bytes == 32 and sampler.result.errors == 0


def _not_supported() -> list[Any]:
    raise NVMLError(3)


@pytest.mark.parametrize(
    "processes",
    [list, lambda: [proc(os.getpid() + 1, 512)], lambda: [proc(os.getpid(), None)], _not_supported],
    ids=["empty-list", "other-pid-only", "used-memory-none", "not-supported"],
)
def test_gpu_sampler_says_why_process_memory_is_missing(monkeypatch, fake_torch, processes) -> None:
    install(monkeypatch, FakeNvml(UUIDS, {"handle2": [100, 500]}, processes))
    with memory.GpuMemorySampler("cuda:0", period_s=0.001) as sampler:
        time.sleep(0.01)
    result = sampler.result
    assert result.process_peak_bytes is None
    assert result.process_reason == "driver does not report per-process memory (common in containers)"
    assert result.peak_bytes == 500 and result.errors == 0


def test_an_nvml_error_while_sampling_is_counted_not_raised(monkeypatch, fake_torch) -> None:
    boom = NVMLError(15)  # NVML_ERROR_GPU_IS_LOST
    fake = install(monkeypatch, FakeNvml(UUIDS, {"handle2": [100, boom, 600, boom, boom, 300]}, list))
    with memory.GpuMemorySampler("cuda:0", period_s=0.001) as sampler:
        wait_until(lambda: fake.remaining("handle2") == 1)
    result = sampler.result
    assert (result.before_bytes, result.peak_bytes, result.after_bytes) == (100, 600, 300)
    assert result.errors == 3


def test_a_failed_exit_reading_and_torch_error_leave_none(monkeypatch, fake_torch) -> None:
    fake = install(monkeypatch, FakeNvml(UUIDS, {"handle2": [100, 400]}, list))
    with memory.GpuMemorySampler("cuda:0", period_s=0.001) as sampler:
        wait_until(lambda: fake.memory_calls.get("handle2", 0) >= 2)
        fake.used["handle2"] = [NVMLError(15)]
        fake_torch.allocated.side_effect = RuntimeError("CUDA error")
    result = sampler.result
    assert result.after_bytes is None and result.peak_bytes == 400
    assert result.torch_max_allocated_bytes is None and result.torch_max_reserved_bytes is None
    assert result.errors >= 2


def test_a_failed_first_reading_raises_before_the_work(monkeypatch, fake_torch) -> None:
    install(monkeypatch, FakeNvml(UUIDS, {"handle2": [NVMLError(15)]}, list))
    sampler = memory.GpuMemorySampler("cuda:0")
    with pytest.raises(NVMLError):
        sampler.__enter__()


def test_gpu_reason_for_cpu_and_for_missing_nvml(monkeypatch) -> None:
    assert memory.gpu_unavailable_reason("cpu") == "device is cpu: GPU memory is measured for CUDA devices only"
    fake = FakeNvml(UUIDS, {}, list)
    install(monkeypatch, fake)
    assert memory.gpu_unavailable_reason("cuda:0") is None
    fake.nvmlInit = mock.Mock(side_effect=NVMLError(12))  # type: ignore[method-assign]  # LIBRARY_NOT_FOUND
    assert memory.gpu_unavailable_reason("cuda:0") == "NVML unavailable (NVML error 12)"


def test_gpu_memory_the_load_added_is_the_peak_so_far_over_the_first_reading(monkeypatch, fake_torch) -> None:
    pid = os.getpid()
    install(monkeypatch, FakeNvml(UUIDS, {"handle2": [100, 700, 300, 250]}, lambda: [proc(pid, 10)]))
    with memory.GpuMemorySampler("cuda:0", period_s=3600) as sampler:  # no periodic reading in between
        added = sampler.added_so_far()  # the end of the load: one more reading, 700
        later = sampler.added_so_far()  # the workload's lower use does not lower the load's peak
    assert (added, later) == (600, 600)
    assert (sampler.result.before_bytes, sampler.result.peak_bytes, sampler.result.after_bytes) == (100, 700, 250)
