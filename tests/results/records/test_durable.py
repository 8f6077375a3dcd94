"""Signals held back over a short write arrive right after it, whichever thread the OS gave them to."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from loadbench.results.records.durable import signals_held


def test_a_ctrl_c_delivered_to_another_thread_waits_until_the_held_write_ends() -> None:
    # A thread that does not block SIGINT, as a library's thread pool does not: the OS may
    # deliver a signal sent to the process there, and Python then runs its handler in the
    # main thread at its next instruction, inside the write, unless the handler is held too.
    # Python's own Ctrl-C handler, whatever this session inherited (a job a script started
    # in the background runs with SIGINT ignored).
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    started, release = threading.Event(), threading.Event()
    other = threading.Thread(target=lambda: (started.set(), release.wait(10)))
    other.start()
    started.wait(10)
    steps: list[str] = []
    try:
        with pytest.raises(KeyboardInterrupt):
            with signals_held():
                os.kill(os.getpid(), signal.SIGINT)
                for _ in range(10_000):
                    steps.append("writing")
                time.sleep(0.05)
                steps.append("written")
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back after the write
    finally:
        release.set()
        other.join()
        signal.signal(signal.SIGINT, inherited)
    assert steps[-1] == "written"
