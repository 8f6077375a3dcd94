"""The zygote: torch, transformers and the worker imported once; every sample's worker is a fork of it.

Importing torch and transformers costs seconds; paying it once is what makes a fresh
process per sample affordable. Only imports happen here, never a load or a forward: a
worker must start where a user's fresh process stands after its imports.

It is its own fork server, not multiprocessing's: that one re-runs the parent's main
script in every child (the ``loadbench`` entry point, a user's script: 120 ms per sample
on the 2-core VM, bench/studies/README.md#profile_run) and unpickles a process object
there. Here a request is forked and its target called, nothing else::

    python -m loadbench.bench.sample.zygote FD    # FD: a SOCK_SEQPACKET socket to the parent

Importing this module (as the self-benchmark's naive baseline does) only imports.
"""

from __future__ import annotations

import gc
import importlib
import os
import pickle
import select
import signal
import socket
import sys
import traceback
from typing import NoReturn

from loadbench.bench.sample.fork_protocol import (
    CASE_NAME,
    CASE_ZYGOTE,
    FORK_AHEAD,
    MAX_MESSAGE,
    READY,
    SPARE_NAME,
    pack_number,
    unpack_number,
)
from loadbench.bench.sample.offline import set_library_defaults

set_library_defaults()

# torch, transformers, and the generic machinery every path uses (AutoConfig's own imports
# included: 8 ms of every worker's inspection otherwise); architecture modules and pipelines
# stay out: each case's zygote imports them, timed (recorded as import_s).
import torch  # noqa: E402,F401
import transformers  # noqa: E402,F401
import transformers.generation  # noqa: E402,F401
import transformers.modeling_utils  # noqa: E402,F401
from transformers import AutoConfig, AutoTokenizer  # noqa: E402,F401

for _generic in ("transformers.video_utils", "transformers.utils.type_validators"):  # 5.x; not in every release
    try:
        importlib.import_module(_generic)
    except ImportError:
        pass

# loadbench's own side of a sample: the worker, its probes, and the loaders' generic code,
# which a worker would otherwise import afresh (~75 ms) before every sample.
import loadbench.bench.sample.worker  # noqa: E402
import loadbench.loaders  # noqa: E402,F401
from loadbench.bench.probes.cpu_memory import start_shared_watcher  # noqa: E402
from loadbench.bench.sample.private_pages import (  # noqa: E402
    PageRanges,
    privatize,
    rewritten,
    union,
    written_ranges,
)
from loadbench.bench.sample.protocol import encode, first_line  # noqa: E402

__all__ = ["serve"]

loadbench.bench.sample.worker.silence_libraries()

# Imports leave ~10^6 objects behind. Without this, a full collection in a worker walks
# them all (~0.1 s) at a moment that depends on the sample's allocations, adding noise
# of that size to some loads; frozen, they are never scanned (nor copied on write). This
# is gc.freeze's documented use: pre-fork servers.
gc.freeze()


class _Pages:
    """What a case zygote's forks copy in before they run: all it wrote, until learners say which a sample writes."""

    def __init__(self, written: PageRanges) -> None:
        self.written = written
        self.learned: PageRanges | None = None

    def to_copy(self) -> PageRanges:
        return self.written if self.learned is None else self.learned

    def learn(self, found: PageRanges) -> None:
        self.learned = union(self.learned or [], found)


_NO_PAGES = _Pages([])  # the first zygote's: its forks share what it imported as every fork of it does


class _Spare:
    """The next worker, forked ahead of its request while the last one exits; it waits for the request."""

    def __init__(self, control: socket.socket, pages: _Pages, exiting: int, *inherited: int) -> None:
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.pid = os.fork()
        if self.pid == 0:
            try:
                control.close()
                mine.close()
                for fd in inherited:
                    os.close(fd)
                _rename(SPARE_NAME)
                _privatize_beside(pages.to_copy(), exiting)
                message, fds, _, _ = socket.recv_fds(theirs, MAX_MESSAGE, 1)
                theirs.close()
                if message:
                    _rename(_WORKER_NAME)
                    _worker(message, fds[0])
            finally:
                os._exit(0)  # no request came: the zygote ended
        theirs.close()
        self._socket = mine

    def close(self) -> None:
        self._socket.close()

    def start(self, message: bytes, reply_fd: int) -> int | None:
        """Hand it the request; its pid, or None when it is gone (killed while it waited)."""
        try:
            socket.send_fds(self._socket, [message], [reply_fd])
        except OSError:
            os.waitpid(self.pid, 0)
            return None
        finally:
            self._socket.close()
        return self.pid


def _privatize_beside(written: PageRanges, exiting: int) -> None:
    """Copy ``written`` in on the cores the ``exiting`` worker leaves free, so its teardown and this overlap."""
    try:
        allowed, busy = os.sched_getaffinity(0), os.sched_getaffinity(exiting)
    except (AttributeError, OSError):  # not Linux, or it has gone already
        privatize(written)
        return
    if allowed - busy:
        os.sched_setaffinity(0, allowed - busy)
    privatize(written)
    os.sched_setaffinity(0, allowed)  # the worker pins itself, choosing from these


def _rename(name: bytes) -> None:
    """Set this process's name in /proc (what ps and psutil show)."""
    try:
        with open("/proc/self/comm", "wb", buffering=0) as comm:
            comm.write(name)
    except OSError:  # not Linux: the name only helps whoever lists processes
        pass


def _own_name() -> bytes:
    try:
        with open("/proc/self/comm", "rb") as comm:
            return comm.read().rstrip(b"\n")
    except OSError:
        return b""


_WORKER_NAME = _own_name()  # the interpreter's, as the first zygote has it: every worker's


def serve(control: socket.socket, pages: _Pages = _NO_PAGES, ready: bytes = READY) -> None:
    """Fork one worker per request (bench/sample/fork_protocol.py), one at a time, until the parent closes its end.

    After a worker's reply the parent says ``FORK_AHEAD``: the next worker is forked then,
    on another core while the last one's address space is torn down on its own, where
    nothing is being timed; a request without a spare forks at once. ``pages``: what a
    case's zygote wrote, copied into each of its forks before it runs
    (bench/sample/private_pages.py); a request that may learn (a warmup's) is forked
    without the copy and reports which of them it wrote.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to act on; each worker gets it back
    if pages is _NO_PAGES:
        start_shared_watcher()  # a case's zygote shares the first one's
    control.sendall(ready)
    spare: _Spare | None = None
    cases: set[int] = set()  # the case zygotes forked here, reaped once they end
    while True:
        message, fds, _, _ = socket.recv_fds(control, MAX_MESSAGE, 1)
        cases = {pid for pid in cases if os.waitpid(pid, os.WNOHANG)[0] == 0}
        if not message:
            return
        if message.startswith(FORK_AHEAD):
            spare = spare or _Spare(control, pages, unpack_number(message[len(FORK_AHEAD):]))
            continue
        if message.startswith(CASE_ZYGOTE):
            cases.add(_fork_case_zygote(control, spare, message[len(CASE_ZYGOTE):], fds[0]))
            continue
        [reply_fd] = fds
        learner = os.memfd_create("loadbench-learned") if pages.written and pickle.loads(message)[-1] else None
        pid = None
        if spare is not None and learner is None:  # a learner must not have copied anything in
            pid, spare = spare.start(message, reply_fd), None
        if pid is None:
            pid = os.fork()
            if pid == 0:
                control.close()
                _rename(_WORKER_NAME)
                if learner is None:
                    privatize(pages.to_copy())
                _worker(message, reply_fd, (learner, pages.written) if learner is not None else None)
        os.close(reply_fd)
        control.sendall(pack_number(pid))
        code, spare = _wait(pid, control, pages, spare, learner)
        control.sendall(pack_number(code))


def _read_all(fd: int) -> bytes:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def _fork_case_zygote(control: socket.socket, spare: _Spare | None, message: bytes, channel: int) -> int:
    """Fork a zygote for one case, talking on ``channel``; its pid."""
    pid = os.fork()
    if pid == 0:
        try:
            control.close()
            if spare is not None:
                spare.close()  # else the spare would not see this zygote's end
            _rename(CASE_NAME)  # its workers take back the first zygote's name
            _case_zygote(message, socket.socket(fileno=channel))
        finally:
            os._exit(0)
    os.close(channel)
    return pid


def _case_zygote(message: bytes, channel: socket.socket) -> None:
    """Import the case's architecture (the target times it), note the pages that wrote, then serve its samples."""
    sys_path, pickled_target, payload, log_path = pickle.loads(message)
    try:
        channel.sendall(pack_number(os.getpid()))
        loadbench.bench.sample.worker.log_to(log_path)
        sys.path[:] = sys_path
        found = pickle.loads(pickled_target)(payload)
        gc.collect()
        gc.freeze()  # as in this zygote: what the import left is not walked in a worker's timed load
        written = written_ranges()
    except BaseException as exc:
        traceback.print_exc()
        channel.sendall(READY + encode({"error": first_line(exc)}))
        return
    if isinstance(written, str):
        channel.sendall(READY + encode({"unsupported": written}))
        return
    found["written_bytes"] = sum(length for _, length in written)
    serve(channel, _Pages(written), READY + encode(found))


def _wait(pid: int, control: socket.socket, pages: _Pages, spare: _Spare | None,
          learner: int | None) -> tuple[int, _Spare | None]:
    """The worker's exit code, and the spare: ``spare``, or the one a ``FORK_AHEAD`` that came meanwhile made.

    After a ``learner`` (a file the worker writes the pages it wrote into), the spare is
    forked once that is read, so that it copies in only those.
    """
    asked = False
    try:
        pidfd: int | None = os.pidfd_open(pid)
    except (AttributeError, OSError):  # before Linux 5.3: the spare waits for the next request
        pidfd = None
    if pidfd is not None:
        try:
            parent = control.fileno()
            watching = [pidfd, parent]
            while True:
                ready = select.select(watching, [], [])[0]
                if parent in ready:  # first: a worker that exits at once still has its successor forked here
                    message = control.recv(MAX_MESSAGE)
                    if message.startswith(FORK_AHEAD) and spare is None and learner is None:
                        spare = _Spare(control, pages, pid, pidfd)
                    elif message.startswith(FORK_AHEAD):
                        asked = True
                    elif not message:
                        watching.remove(parent)  # the parent is gone: the loop ends after this worker
                elif pidfd in ready:
                    break
        finally:
            os.close(pidfd)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if learner is not None:
        if code == 0 and (found := _read_all(learner)):
            pages.learn(pickle.loads(found))
        os.close(learner)
        if asked and spare is None:
            spare = _Spare(control, pages, pid)
    return code, spare


def _worker(message: bytes, reply_fd: int, learn: tuple[int, PageRanges] | None = None) -> NoReturn:
    """In the fork: run the request's target, then exit; it never returns into the server's loop.

    ``learn``: a file and its zygote's written pages; once the target is done, and if it
    says its sample was whole, the ones this fork wrote go into the file.
    """
    code = 1
    try:
        from multiprocessing.connection import Connection

        signal.signal(signal.SIGINT, signal.default_int_handler)
        sys_path, pickled_target, payload, log_path, _ = pickle.loads(message)
        sys.path[:] = sys_path  # so that a target from the caller's own modules is found by name
        target = pickle.loads(pickled_target)
        whole = target(Connection(reply_fd, readable=False), payload, log_path)
        if learn is not None and whole is True:  # a failed sample may not have written what the others will
            os.write(learn[0], pickle.dumps(rewritten(learn[1])))
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # a closed or broken stream: nothing left to say on it
                pass
        os._exit(code)


if __name__ == "__main__":
    serve(socket.socket(fileno=int(sys.argv[1])))
