"""Probes against controlled inputs: a known allocation, known step times, no GPU here."""

from __future__ import annotations

from unittest import mock

import pytest

from loadbench.bench import probes


def test_peak_rss_sees_a_controlled_allocation() -> None:
    before = probes.peak_rss_bytes()
    block = bytearray(256 * 2**20)
    block[:: 4096] = b"x" * len(block[:: 4096])  # touch every page so it is resident
    after = probes.peak_rss_bytes()
    assert after - before >= 200 * 2**20
    del block


def test_step_clock_counts_steps_after_the_prompt_and_times_them() -> None:
    ticks = iter([10.0, 10.5, 11.0, 11.25, 11.5])
    with mock.patch("time.perf_counter", lambda: next(ticks)):
        clock = probes.StepClock()
        clock.start()  # 10.0
        clock.put("prompt")  # not a generated token, no clock read
        for _ in range(4):
            clock.put("token")  # 10.5, 11.0, 11.25, 11.5
    assert clock.new_tokens == 4
    assert clock.ttft_s == pytest.approx(0.5)
    # 3 tokens after the first, over 1.0 s, for a batch of 2
    assert clock.decode_tokens_per_s(batch_size=2) == pytest.approx(6.0)


def test_decode_rate_needs_two_tokens() -> None:
    clock = probes.StepClock()
    clock.start()
    clock.put("prompt")
    clock.put("token")
    with pytest.raises(ValueError, match="at least 2"):
        clock.decode_tokens_per_s(1)


def test_gpu_metrics_say_why_they_are_absent_on_cpu() -> None:
    assert "device is cpu" in probes.gpu_unavailable_reason("cpu")


def test_gpu_reason_when_nvml_is_missing() -> None:
    import pynvml

    with mock.patch.object(pynvml, "nvmlInit", side_effect=pynvml.NVMLError(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)):
        assert probes.gpu_unavailable_reason("cuda:0").startswith("NVML unavailable")


class _FakeNvml:
    """NVML at its boundary: a device whose used memory rises then falls."""

    def __init__(self, readings: list[int]) -> None:
        self.readings = iter(readings)
        self.last = 0

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> str:
        assert uuid.startswith("GPU-")
        return "handle"

    def nvmlDeviceGetMemoryInfo(self, handle: str):
        self.last = next(self.readings, self.last)
        return mock.Mock(used=self.last)


def test_gpu_sampler_keeps_the_peak(monkeypatch) -> None:
    import sys
    import time

    fake = _FakeNvml([100, 300, 900, 200])
    props = mock.Mock(uuid="1234-abcd")
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    with mock.patch("torch.cuda.get_device_properties", return_value=props):
        with probes.GpuMemorySampler("cuda:0", period_s=0.001) as sampler:
            time.sleep(0.05)
    assert sampler.peak_used_bytes == 900
