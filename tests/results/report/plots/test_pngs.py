"""Figures drawn on two cores come back as the same PNGs, in order, whatever happens to the child."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from matplotlib.figure import Figure

from loadbench.results.report.plots import pngs
from loadbench.results.report.plots.panels import png_bytes


def _figure(height: int) -> Figure:
    figure = Figure(figsize=(2, 1.5), dpi=50)
    figure.subplots().plot([0, 1, 2], [0, height, 1])
    return figure


def _children() -> list[int]:
    """This process's child processes, zombies included."""
    mine = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == os.getpid():
                mine.append(int(entry.name))
    return mine


def _in_the_child(action: Callable[[], None], parent: int = os.getpid()) -> Callable[[], Figure]:
    def build() -> Figure:
        if os.getpid() != parent:
            action()
        return _figure(3)
    return build


BUILDERS = [lambda: _figure(1), lambda: _figure(2), lambda: None, lambda: _figure(4), lambda: _figure(5)]
EXPECTED = [png_bytes(_figure(1)), png_bytes(_figure(2)), None, png_bytes(_figure(4)), png_bytes(_figure(5))]

REAL_FORK_HELPS = pngs._fork_helps
needs_fork = pytest.mark.skipif(not (hasattr(os, "fork") and Path("/proc/self").is_dir()),
                                reason="no os.fork here (figures drawn in one process), or no /proc to check children")


@pytest.fixture(autouse=True)
def two_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fork is what is tested, even where this test runs on one core (a pytest-xdist worker)."""
    monkeypatch.setattr(pngs, "_fork_helps", lambda: hasattr(os, "fork"))


@needs_fork
def test_figures_drawn_in_a_fork_are_the_ones_drawn_here_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    forks = []
    real_fork = os.fork
    monkeypatch.setattr(os, "fork", lambda: forks.append(1) or real_fork())
    before = _children()
    assert pngs.draw_pngs(BUILDERS) == EXPECTED
    assert forks == [1] and _children() == before


@needs_fork
def test_a_child_that_fails_or_hangs_has_its_figures_drawn_here(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail() -> None:
        raise RuntimeError("broken in the child")

    before = _children()
    assert pngs.draw_pngs([lambda: _figure(1), _in_the_child(fail)]) == [png_bytes(_figure(1)), png_bytes(_figure(3))]
    monkeypatch.setattr(pngs, "GRACE_S", 0.5)
    started = time.monotonic()
    hung = pngs.draw_pngs([lambda: _figure(1), _in_the_child(lambda: time.sleep(60))])
    assert hung == [png_bytes(_figure(1)), png_bytes(_figure(3))] and time.monotonic() - started < 30
    assert _children() == before


@needs_fork
def test_an_interrupt_here_takes_the_child_with_it() -> None:
    def interrupted() -> Figure:
        raise KeyboardInterrupt

    before = _children()
    with pytest.raises(KeyboardInterrupt):
        pngs.draw_pngs([interrupted, _in_the_child(lambda: time.sleep(60))])
    assert _children() == before


@needs_fork
def test_a_process_that_ignores_sigchld_gets_its_figures_too() -> None:
    # Its children are reaped by the kernel: there is no exit status to wait for.
    before = signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    try:
        assert pngs.draw_pngs(BUILDERS) == EXPECTED
        assert pngs.draw_pngs([lambda: _figure(1), _in_the_child(lambda: os._exit(3))]) == [
            png_bytes(_figure(1)), png_bytes(_figure(3))]
    finally:
        signal.signal(signal.SIGCHLD, before)


@needs_fork
def test_a_fork_the_system_refuses_leaves_the_figures_to_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused() -> int:
        raise BlockingIOError(11, "Resource temporarily unavailable")  # what a process limit gives

    open_before = len(os.listdir("/proc/self/fd"))
    monkeypatch.setattr(os, "fork", refused)
    assert pngs.draw_pngs(BUILDERS) == EXPECTED
    assert len(os.listdir("/proc/self/fd")) == open_before  # the pipe closed again


def test_on_one_core_nothing_is_forked(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse() -> int:
        raise AssertionError("forked on one core")

    monkeypatch.setattr(pngs, "_fork_helps", REAL_FORK_HELPS)  # the real check, on a machine of one core
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    monkeypatch.setattr(os, "fork", refuse)
    assert pngs.draw_pngs(BUILDERS) == EXPECTED
