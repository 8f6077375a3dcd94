"""The parent side of a sample: fork a fresh worker from the zygote, wait, reap.

The zygote (bench/sample/zygote.py) is a process of its own with torch, transformers
and the worker pre-imported: it is exec'd fresh (never a fork of a process that touched
CUDA), and each sample is a new fork of it, so a sample costs a fork, not an interpreter
start and its imports. One zygote serves every ``Zygote`` of this process, one sample at
a time, as multiprocessing's fork server did: a second run in the same process (the
tuner's steps, a test session) does not pay its imports again.
"""

from __future__ import annotations

import json
import os
import pickle
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from loadbench.bench.sample.fork_protocol import FORK_AHEAD, MAX_MESSAGE, READY, unpack_number
from loadbench.bench.sample.protocol import SampleReply, SampleRequest, WorkerFailed, decode_partial
from loadbench.bench.sample.worker import child_main

__all__ = ["Target", "Zygote"]

ZYGOTE_MODULE = "loadbench.bench.sample.zygote"
KILL_GRACE_S = 5.0
ZYGOTE_START_TIMEOUT_S = 600.0  # its imports: seconds here, minutes on a cold network filesystem
# What a fresh fork runs: ``target(conn, payload, log_path)`` sends exactly one message on
# ``conn``. It must be importable by name (a module-level function, or a functools.partial
# of one): it is pickled, and the fork imports its module.
Target = Callable[[Any, str, str | None], None]


class _ZygoteEnded(Exception):
    """The zygote's socket closed, or it broke the exchange: it is replaced before the next sample."""


class _Server:
    """The zygote process and this process's end of its socket."""

    def __init__(self) -> None:
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with theirs:
            self.process = subprocess.Popen([sys.executable, "-m", ZYGOTE_MODULE, str(theirs.fileno())],
                                            pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL)
        self.socket = mine
        self.lock = threading.Lock()  # one exchange at a time
        self._ready = False
        self.broken = False

    def receive(self, timeout_s: float | None) -> bytes | None:
        """The zygote's next message, or None when none came within ``timeout_s``."""
        if not select.select([self.socket], [], [], timeout_s)[0]:
            return None
        message = self.socket.recv(MAX_MESSAGE)
        if not message:
            code = self.process.poll()
            raise _ZygoteEnded(f"the zygote ended (exit code {code}); its error, if any, is in the worker log "
                               "or on stderr")
        return message

    def wait_ready(self) -> None:
        with self.lock:
            if self._ready:
                return
            if self.receive(ZYGOTE_START_TIMEOUT_S) != READY:
                raise _ZygoteEnded(f"the zygote did not start within {ZYGOTE_START_TIMEOUT_S:g} s")
            self._ready = True

    def close(self) -> None:
        self.broken = True
        self.socket.close()  # end of input ends it
        try:
            self.process.wait(KILL_GRACE_S)
        except subprocess.TimeoutExpired:  # busy with a worker it cannot reap
            self.process.kill()
            self.process.wait()


_shared: _Server | None = None
_shared_lock = threading.Lock()


def _server() -> _Server:
    """This process's zygote, started (or replaced, if it ended) on first use."""
    global _shared
    with _shared_lock:
        if _shared is None or _shared.broken or _shared.process.poll() is not None:
            if _shared is not None:
                _shared.close()
            _shared = _Server()
        return _shared


class _Worker:
    """One fork of the zygote: its pid, and its exit code once the zygote has reaped it."""

    def __init__(self, server: _Server, pid: int) -> None:
        self._server, self.pid = server, pid
        self.exitcode: int | None = None

    def wait(self, timeout_s: float | None) -> int | None:
        if self.exitcode is None and (message := self._server.receive(timeout_s)) is not None:
            self.exitcode = unpack_number(message)
        return self.exitcode

    def stop(self) -> None:
        """SIGTERM, a grace period, then SIGKILL; returns once it has been reaped."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if self.exitcode is not None:
                return
            try:
                if self.pid > 0:  # never 0 or -1: those would signal a process group, or every process
                    os.kill(self.pid, sig)
            except ProcessLookupError:  # ended meanwhile: its exit code is on its way
                pass
            self.wait(KILL_GRACE_S if sig == signal.SIGTERM else None)


class Zygote:
    """Starts workers for samples; one instance per run, all of them served by one zygote process."""

    def __init__(self) -> None:
        self.log_path: str | None = None  # where workers' stdout/stderr go; None keeps them

    def warm_up(self) -> None:
        """Start the zygote (its imports take seconds) while the caller plans the run."""
        _server()

    def ready(self) -> None:
        """Wait until the zygote has started (its imports done), so that nothing else runs meanwhile.

        Raises WorkerFailed when it ended instead (its imports failed: the error is on stderr).
        """
        self._ready_server()

    @staticmethod
    def _ready_server() -> _Server:
        server = _server()  # the one running, or a new one in place of one that ended
        try:
            server.wait_ready()
        except _ZygoteEnded as exc:
            server.close()
            raise WorkerFailed("crashed", str(exc)) from None
        return server

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
        server = self._ready_server()
        log_path = os.path.abspath(self.log_path) if self.log_path else None
        message = pickle.dumps((list(sys.path), pickle.dumps(target), payload, log_path))
        with server.lock:
            worker: _Worker | None = None
            reader, writer = os.pipe()
            receiver = Connection(reader, writable=False)
            try:
                try:
                    socket.send_fds(server.socket, [message], [writer])
                except OSError as exc:
                    raise _ZygoteEnded(f"the zygote cannot be reached ({exc})") from None
                finally:
                    os.close(writer)
                started = server.receive(KILL_GRACE_S)
                if started is None:
                    raise _ZygoteEnded(f"the zygote did not fork within {KILL_GRACE_S:g} s")
                worker = _Worker(server, unpack_number(started))
                data = self._answer(worker, receiver, timeout_s, interim)
                try:
                    server.socket.sendall(FORK_AHEAD)  # the next worker is forked while this one exits
                    if worker.wait(KILL_GRACE_S) is None:
                        worker.stop()
                except (OSError, _ZygoteEnded):  # the zygote went after the reply: the sample stands
                    server.close()
                return data
            except _ZygoteEnded as exc:
                server.close()
                raise WorkerFailed("crashed", str(exc)) from None
            finally:
                receiver.close()
                if not server.broken and worker is None:
                    server.close()  # interrupted before the worker's pid came back: the exchange cannot go on
                elif not server.broken and worker is not None and worker.exitcode is None:
                    # Interrupted mid-exchange (Ctrl-C): end the worker, so the next sample starts clean.
                    try:
                        worker.stop()
                    except BaseException:  # interrupted again, or the zygote went: start afresh next time
                        server.close()

    @staticmethod
    def _answer(worker: _Worker, receiver: Connection, timeout_s: float, interim: Callable[[bytes], bool]) -> bytes:
        deadline = time.monotonic() + timeout_s
        while True:
            if not receiver.poll(max(0.0, deadline - time.monotonic())):
                worker.stop()
                raise WorkerFailed("timeout", f"no result after {timeout_s:g} s; the worker was killed")
            try:
                data = receiver.recv_bytes()
            except EOFError:
                raise WorkerFailed("crashed", _describe_exit(worker.wait(KILL_GRACE_S))) from None
            if not interim(data):
                return data


def _describe_exit(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (the kernel's OOM killer sends SIGKILL)" if name == "SIGKILL" else ""
        return f"worker killed by {name}{hint} before it replied"
    return f"worker exited with code {code} before it replied"
