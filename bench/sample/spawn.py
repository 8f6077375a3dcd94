"""The parent side of a sample: fork a fresh worker from the zygote, wait, reap.

The zygote (bench/sample/zygote.py) is a process of its own with torch, transformers
and the worker pre-imported: it is exec'd fresh (never a fork of a process that touched
CUDA), and each sample is a new fork of it, so a sample costs a fork, not an interpreter
start and its imports. One zygote serves every ``Zygote`` of this process, one sample at
a time, as multiprocessing's fork server did: a second run in the same process (the
tuner's steps, a test session) does not pay its imports again.

A case's architecture is imported once too, in a zygote of the case's own that forks
the case's workers (bench/sample/case_zygotes.py).
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from loadbench.bench.sample.case_zygotes import MAX_CASE_ZYGOTES, CaseZygote, CaseZygotes, with_import
from loadbench.bench.sample.fork_protocol import FORK_AHEAD, pack_number, unpack_number
from loadbench.bench.sample.protocol import SampleReply, SampleRequest, WorkerFailed, decode_partial
from loadbench.bench.sample.worker import child_main, import_key
from loadbench.bench.sample.zygote_channel import KILL_GRACE_S, Channel, FirstZygote, ZygoteEnded

__all__ = ["MAX_CASE_ZYGOTES", "Target", "Zygote"]

# What a fresh fork runs: ``target(conn, payload, log_path)`` sends exactly one message on
# ``conn``, and may return whether its sample was whole (True lets a warmup's fork teach
# its case zygote which pages to copy). It must be importable by name (a module-level
# function, or a functools.partial of one): it is pickled, and the fork imports its module.
Target = Callable[[Any, str, str | None], bool | None]


_cases = CaseZygotes()
_shared: FirstZygote | None = None
_shared_lock = threading.Lock()


def _server() -> FirstZygote:
    """This process's zygote, started (or replaced, if it ended) on first use."""
    global _shared
    with _shared_lock:
        if _shared is None or _shared.broken or _shared.process.poll() is not None:
            if _shared is not None:
                _shared.close()
                _cases.close_all()  # forked from the one that ended: the new one forks its own
            _shared = FirstZygote()
        return _shared


class _Worker:
    """One fork of a zygote: its pid, and its exit code once that zygote has reaped it."""

    def __init__(self, server: Channel, pid: int) -> None:
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
        self.case_zygotes = True  # False: every worker imports its architecture itself

    def warm_up(self) -> None:
        """Start the zygote (its imports take seconds) while the caller plans the run."""
        _server()

    def ready(self) -> None:
        """Wait until the zygote has started (its imports done), so that nothing else runs meanwhile.

        Raises WorkerFailed when it ended instead (its imports failed: the error is on stderr).
        """
        self._ready_server()

    @staticmethod
    def _ready_server() -> FirstZygote:
        server = _server()  # the one running, or a new one in place of one that ended
        try:
            server.wait_ready()
        except ZygoteEnded as exc:
            server.close()
            raise WorkerFailed("crashed", str(exc)) from None
        return server

    def run(self, request: SampleRequest, timeout_s: float, target: Target = child_main,
            then: SampleRequest | None = None) -> SampleReply:
        """Measure one sample in a new worker and return its validated reply.

        ``then``, the sample that comes next, if known: its worker is forked (from its
        case's zygote) while this one exits. Raises WorkerFailed (ProtocolError when the
        reply is malformed); when the worker ended after its load, the failure carries
        what the load measured.
        """
        case = self._case_zygote(request, timeout_s)
        partial: tuple[SampleReply, str] | None = None

        def keep(data: bytes) -> bool:
            nonlocal partial
            found = decode_partial(data)
            partial = found or partial
            return found is not None

        try:
            reply = SampleReply.from_bytes(self.call(target, json.dumps(request.to_dict()), timeout_s, keep,
                                                     channel=case, ahead=self._ahead(then), learn=request.warmup))
        except WorkerFailed as exc:
            if partial is not None and case is not None:
                with_import(partial[0], case, request)
            raise (exc.after(*partial) if partial is not None else exc) from None
        return with_import(reply, case, request) if case is not None else reply

    def _case_zygote(self, request: SampleRequest, timeout_s: float) -> CaseZygote | None:
        """The zygote ``request``'s workers fork from, started if need be; None: the first zygote."""
        if not self.case_zygotes or _cases.unsupported is not None:
            return None
        key = import_key(request)
        if key in _cases.failed:
            return None
        return _cases.get(key) or _cases.start(self._ready_server(), request, self._log_file(), timeout_s)

    def _log_file(self) -> str | None:
        """The worker log as an absolute path: the zygote's working directory need not be this one's."""
        return os.path.abspath(self.log_path) if self.log_path else None

    def _ahead(self, then: SampleRequest | None) -> Channel | None:
        """Where ``then``'s worker is forked ahead: its case's zygote if it has one, else the first.

        None when the next sample is not known: the zygote that forked this one forks again.
        """
        if then is None:
            return None
        case = _cases.get(import_key(then)) if self.case_zygotes else None
        return case or self._ready_server()

    def call(self, target: Target, payload: str, timeout_s: float,
             interim: Callable[[bytes], bool] = lambda data: False, *, channel: Channel | None = None,
             ahead: Channel | None = None, learn: bool = False) -> bytes:
        """Run ``target(conn, payload, log_path)`` in a fresh fork; return the last bytes it sends.

        ``interim(data)`` says whether a message is an interim one (kept by the caller)
        rather than the answer; ``timeout_s`` covers them all. Used with ``child_main``
        for samples, and by the harness self-benchmark with a target that does nothing.
        ``channel``: the zygote to fork from (the first one by default); ``ahead``: the
        one to fork the next worker while this one exits (by default ``channel``'s);
        ``learn``: a case zygote's fork whose numbers are not kept (a warmup) learns which
        of its zygote's pages a sample writes (bench/sample/private_pages.py).
        """
        server = channel or self._ready_server()
        ahead = ahead or server
        message = pickle.dumps((list(sys.path), pickle.dumps(target), payload, self._log_file(), learn))
        with server.lock:
            worker: _Worker | None = None
            reader, writer = os.pipe()
            receiver = Connection(reader, writable=False)
            try:
                try:
                    socket.send_fds(server.socket, [message], [writer])
                except OSError as exc:
                    raise ZygoteEnded(f"the zygote cannot be reached ({exc})") from None
                finally:
                    os.close(writer)
                started = server.receive(KILL_GRACE_S)
                if started is None:
                    raise ZygoteEnded(f"the zygote did not fork within {KILL_GRACE_S:g} s")
                worker = _Worker(server, unpack_number(started))
                data = self._answer(worker, receiver, timeout_s, interim)
                _fork_ahead(ahead, server, worker.pid)  # the next worker is forked while this one exits
                try:
                    if worker.wait(KILL_GRACE_S) is None:
                        worker.stop()
                except (OSError, ZygoteEnded):  # the zygote went after the reply: the sample stands
                    server.close()
                return data
            except ZygoteEnded as exc:
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


def _fork_ahead(ahead: Channel, server: Channel, exiting: int) -> None:
    """Ask ``ahead`` to fork the next worker beside the ``exiting`` one; ``server`` (its zygote) is already held."""
    if ahead is not server and not ahead.lock.acquire(blocking=False):
        return  # in another thread's exchange: its own request will fork
    try:
        ahead.socket.sendall(FORK_AHEAD + pack_number(exiting))
    except OSError:  # it went: replaced (or started afresh) before its next sample
        ahead.close()
    finally:
        if ahead is not server:
            ahead.lock.release()


def _describe_exit(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (the kernel's OOM killer sends SIGKILL)" if name == "SIGKILL" else ""
        return f"worker killed by {name}{hint} before it replied"
    return f"worker exited with code {code} before it replied"
