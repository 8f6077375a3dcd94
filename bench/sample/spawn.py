"""The parent side of a sample: fork a fresh worker from the zygote, wait, reap.

The zygote is multiprocessing's fork server with torch and transformers pre-imported:
it is exec'd fresh (never a fork of a process that touched CUDA), and each sample is a
new fork of it, so a sample costs a fork, not an interpreter start and its imports.
"""

from __future__ import annotations

import json
import multiprocessing
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from loadbench.bench.sample.protocol import SampleReply, SampleRequest, WorkerFailed, decode_partial
from loadbench.bench.sample.worker import child_main

__all__ = ["Target", "Zygote"]

ZYGOTE_MODULE = "loadbench.bench.sample.zygote"
KILL_GRACE_S = 5.0
# What a fresh fork runs: ``target(conn, payload, log_path)`` sends exactly one message on
# ``conn``. It must be importable by name in the fork server (a module-level function, or
# a functools.partial of one).
Target = Callable[[Any, str, str | None], None]


def _noop() -> None:
    pass


class Zygote:
    """Starts workers for samples; one instance per run."""

    def __init__(self) -> None:
        self._ctx = multiprocessing.get_context("forkserver")
        self._ctx.set_forkserver_preload([ZYGOTE_MODULE])
        self.log_path: str | None = None  # where workers' stdout/stderr go; None keeps them
        self._warm: threading.Thread | None = None

    def warm_up(self) -> None:
        """Start the fork server (its imports take seconds) while the caller plans the run."""
        def start() -> None:
            process = self._ctx.Process(target=_noop, daemon=True)
            process.start()
            process.join()

        self._warm = threading.Thread(target=start, daemon=True)
        self._warm.start()

    def ready(self) -> None:
        """Wait until the fork server has started (its imports done), so that nothing else runs meanwhile."""
        if self._warm is not None:
            self._warm.join()

    def run(self, request: SampleRequest, timeout_s: float, target: Target = child_main) -> SampleReply:
        """Measure one sample in a new worker and return its validated reply.

        Raises WorkerFailed (ProtocolError when the reply is malformed); when the worker
        ended after its load, the failure carries what the load measured.
        """
        partial: tuple[SampleReply, str] | None = None

        def keep(data: bytes) -> bool:
            nonlocal partial
            found = decode_partial(data)
            partial = found or partial
            return found is not None

        try:
            return SampleReply.from_bytes(self.call(target, json.dumps(request.to_dict()), timeout_s, keep))
        except WorkerFailed as exc:
            raise (exc.after(*partial) if partial is not None else exc) from None

    def call(self, target: Target, payload: str, timeout_s: float,
             interim: Callable[[bytes], bool] = lambda data: False) -> bytes:
        """Run ``target(conn, payload, log_path)`` in a fresh fork; return the last bytes it sends.

        ``interim(data)`` says whether a message is an interim one (kept by the caller)
        rather than the answer; ``timeout_s`` covers them all. Used with ``child_main``
        for samples, and by the harness self-benchmark with a target that does nothing.
        """
        self.ready()
        receiver, sender = self._ctx.Pipe(duplex=False)
        process = self._ctx.Process(target=target, args=(sender, payload, self.log_path), daemon=True)
        process.start()
        sender.close()
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                if not receiver.poll(max(0.0, deadline - time.monotonic())):
                    _stop(process)
                    raise WorkerFailed("timeout", f"no result after {timeout_s:g} s; the worker was killed")
                try:
                    data = receiver.recv_bytes()
                except EOFError:
                    process.join(KILL_GRACE_S)
                    raise WorkerFailed("crashed", _describe_exit(process.exitcode)) from None
                if not interim(data):
                    break
            process.join(KILL_GRACE_S)
            if process.is_alive():
                _stop(process)
            return data
        finally:
            receiver.close()
            if process.is_alive():
                _stop(process)


def _stop(process: Any) -> None:
    process.terminate()
    process.join(KILL_GRACE_S)
    if process.is_alive():
        process.kill()
        process.join()


def _describe_exit(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (the kernel's OOM killer sends SIGKILL)" if name == "SIGKILL" else ""
        return f"worker killed by {name}{hint} before it replied"
    return f"worker exited with code {code} before it replied"
