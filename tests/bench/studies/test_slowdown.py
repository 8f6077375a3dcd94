"""The controlled regressions the gate is validated with: real extra time, real extra memory."""

from __future__ import annotations

import time

import pytest
import torch

from loadbench.bench.studies import slowdown


def test_a_bloated_load_keeps_that_share_of_the_memory_it_added(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(slowdown, "_kept", [])
    held: list[torch.Tensor] = []

    def load() -> str:
        held.append(torch.ones(64 * 2**20, dtype=torch.uint8))  # 64 MiB, resident
        return "model"

    assert slowdown._bloated(load, 0.25)() == "model"
    (kept,) = slowdown._kept
    assert kept.numel() == pytest.approx(16 * 2**20, rel=0.25)  # a quarter of what the call added
    assert int(kept[::4096].sum()) == kept[::4096].numel()  # written, so resident, not a lazy zero page


def test_only_the_outermost_call_is_bloated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(slowdown, "_kept", [])
    held: list[torch.Tensor] = []

    # Above glibc's largest mmap threshold (32 MiB), so each is fresh memory, never reused heap pages.
    def inner() -> None:  # as from_pretrained inside pipeline(): it adds memory that stays
        held.append(torch.ones(40 * 2**20, dtype=torch.uint8))

    def outer() -> None:
        bloated_inner()
        held.append(torch.ones(40 * 2**20, dtype=torch.uint8))

    bloated_inner = slowdown._bloated(inner, 0.5)
    slowdown._bloated(outer, 0.5)()
    (kept,) = slowdown._kept  # one buffer, for the outer call: half of both allocations
    assert kept.numel() == pytest.approx(40 * 2**20, rel=0.25)


def test_a_slowed_call_takes_that_much_longer() -> None:
    def work() -> None:
        time.sleep(0.05)

    started = time.perf_counter()
    slowdown._slower(work, 1.0)()
    assert time.perf_counter() - started >= 0.1  # its own 50 ms, then as much again spinning


def test_pth_lines_name_the_kind() -> None:
    assert slowdown.pth_line(0.1) == "import loadbench.bench.studies.slowdown as _s; _s.install_here(0.1, 'time')\n"
    assert slowdown.pth_line(0.1, "memory") == ("import loadbench.bench.studies.slowdown as _s; "
                                                "_s.install_here(0.1, 'memory')\n")
    with pytest.raises(KeyError):
        slowdown.pth_line(0.1, "disk")


WATCHER = ["python", "-m", "loadbench.bench.probes.rss_watcher", "1", "0.01"]


@pytest.mark.parametrize("argv, installed", [(WATCHER, False), (["python", "-c", "pass"], True)])
def test_the_memory_watcher_is_left_alone(monkeypatch: pytest.MonkeyPatch, argv: list[str], installed: bool) -> None:
    calls: list[float] = []
    monkeypatch.setattr(slowdown, "install", calls.append)
    monkeypatch.setattr("sys.orig_argv", argv)
    slowdown.install_here(0.25)
    assert calls == ([0.25] if installed else [])
