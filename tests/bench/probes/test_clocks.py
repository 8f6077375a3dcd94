"""Probes against controlled inputs: a known allocation, known step times, no GPU here."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace
from unittest import mock

import pytest

from loadbench.bench.probes import clocks as probes


def test_peak_rss_sees_a_controlled_allocation() -> None:
    # A fresh process: this one's high-water mark may already sit above any new allocation.
    code = (
        "from loadbench.bench.probes.clocks import peak_rss_bytes\n"
        "before = peak_rss_bytes()\n"
        "block = bytearray(256 * 2**20)\n"
        "block[::4096] = b'x' * len(block[::4096])\n"  # touch every page so it is resident
        "print(peak_rss_bytes() - before)\n"
    )
    grown = int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               check=True).stdout)
    assert 200 * 2**20 <= grown <= 400 * 2**20


def test_peak_rss_reads_vmhwm_through_the_status_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(probes, "read_status_bytes", lambda keys: {"VmHWM": 12345 * 1024})
    assert probes.peak_rss_bytes() == 12345 * 1024


def test_peak_rss_falls_back_to_ru_maxrss_without_vmhwm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(probes, "read_status_bytes", lambda keys: {})
    monkeypatch.setattr(probes.resource, "getrusage", lambda who: SimpleNamespace(ru_maxrss=300))
    assert probes.peak_rss_bytes() == (300 if sys.platform == "darwin" else 300 * 1024)


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
