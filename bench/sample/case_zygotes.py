"""Zygotes of one case's own: the case's architecture imported once, its workers forked from there.

The first zygote forks one per ``import_key`` (bench/sample/zygote.py); it imports what
the case adds, timed as a worker would time it (``import_s``), and lists the pages that
import wrote, which each of its workers copies in before its timers start
(bench/sample/private_pages.py). Warm and cold cases of one checkpoint, path and task
share one; ``import_s`` goes on the sample whose request has ``record_import`` (a run's
first measured one), and the case's other samples say it was imported once.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import socket
import sys
import threading
from collections import OrderedDict
from typing import Any

from loadbench.bench.sample.fork_protocol import CASE_ZYGOTE, READY, unpack_number
from loadbench.bench.sample.protocol import SampleReply, SampleRequest
from loadbench.bench.sample.worker import import_case, import_key
from loadbench.bench.sample.zygote_channel import KILL_GRACE_S, Channel, FirstZygote, ZygoteEnded

__all__ = ["IMPORTED_ONCE", "MAX_CASE_ZYGOTES", "CaseZygote", "CaseZygotes", "with_import"]

# A case's zygote holds what its import wrote (20-40 MB for a tiny checkpoint's path); past
# this many, the least recently used one ends, and a run with more keys imports per sample.
MAX_CASE_ZYGOTES = 32
IMPORTED_ONCE = ("imported once for the case's samples, in a zygote of its own; the time is on the case's first "
                 "measured sample")


class CaseZygote(Channel):
    """A zygote of one case's own, forked from the first; ``found``: what its import measured."""

    def __init__(self, mine: socket.socket) -> None:
        super().__init__(mine)
        self.pid = 0
        self.found: dict[str, Any] = {}


class CaseZygotes:
    """This process's case zygotes, by ``import_key``, the most recently used last."""

    def __init__(self) -> None:
        self._live: OrderedDict[str, CaseZygote] = OrderedDict()
        self._lock = threading.Lock()
        self.unsupported: str | None = None  # why none can work here, once one said so
        self.failed: set[str] = set()  # keys whose import failed: their workers import, and record why

    def close_all(self) -> None:
        with self._lock:
            for case in self._live.values():
                case.close()
            self._live.clear()

    def get(self, key: str) -> CaseZygote | None:
        with self._lock:
            case = self._live.get(key)
            if case is None or case.broken:
                return None
            self._live.move_to_end(key)
            return case

    def start(self, server: FirstZygote, request: SampleRequest, log_path: str | None,
              timeout_s: float) -> CaseZygote | None:
        """A new zygote for ``request``'s case, its import done; None when its workers must import themselves."""
        key = import_key(request)
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        message = CASE_ZYGOTE + pickle.dumps((list(sys.path), pickle.dumps(import_case),
                                              json.dumps(request.to_dict()), log_path))
        case = CaseZygote(mine)
        try:
            with server.lock, theirs:
                socket.send_fds(server.socket, [message], [theirs.fileno()])
            pid = case.receive(KILL_GRACE_S)
            case.pid = unpack_number(pid) if pid is not None else 0
            answer = case.receive(timeout_s) if pid is not None else None
            if case.pid > 0 and answer is None:
                os.kill(case.pid, signal.SIGKILL)  # a hung import; the first zygote reaps it
        except (OSError, ZygoteEnded):
            answer = None
        except BaseException:
            case.close()
            raise
        found = json.loads(answer[len(READY):]) if answer is not None and answer.startswith(READY) else {}
        if "import_s" not in found:
            case.close()
            if "unsupported" in found:
                self.unsupported = found["unsupported"]
            else:
                self.failed.add(key)  # the sample's own worker meets the failure and records it
            return None
        case.found = found
        with self._lock:
            self._live[key] = case
            while len(self._live) > MAX_CASE_ZYGOTES:
                self._live.popitem(last=False)[1].close()
        return case


def with_import(reply: SampleReply, case: CaseZygote, request: SampleRequest) -> SampleReply:
    """A reply from a case zygote's worker, with the import its zygote timed (once per case)."""
    if request.record_import:
        reply.ok("import_s", case.found["import_s"])
        reply.info.update({k: case.found[k] for k in ("modules_before_import", "arch_module_preloaded")})
    else:
        reply.na("import_s", IMPORTED_ONCE)
    reply.info["import_written_bytes"] = case.found["written_bytes"]
    return reply
