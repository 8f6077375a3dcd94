"""This process's end of a zygote's socket: the first zygote (a process of this one) or a case's."""

from __future__ import annotations

import select
import socket
import subprocess
import sys
import threading

from loadbench.bench.sample.fork_protocol import MAX_MESSAGE, READY

__all__ = ["KILL_GRACE_S", "Channel", "FirstZygote", "ZygoteEnded"]

ZYGOTE_MODULE = "loadbench.bench.sample.zygote"
KILL_GRACE_S = 5.0
ZYGOTE_START_TIMEOUT_S = 600.0  # its imports: seconds here, minutes on a cold network filesystem


class ZygoteEnded(Exception):
    """The zygote's socket closed, or it broke the exchange: it is replaced before the next sample."""


class Channel:
    """This process's end of a zygote's socket: the first zygote's, or a case's."""

    def __init__(self, mine: socket.socket) -> None:
        self.socket = mine
        self.lock = threading.Lock()  # one exchange at a time
        self.broken = False

    def receive(self, timeout_s: float | None) -> bytes | None:
        """The zygote's next message, or None when none came within ``timeout_s``."""
        if not select.select([self.socket], [], [], timeout_s)[0]:
            return None
        message = self.socket.recv(MAX_MESSAGE)
        if not message:
            raise ZygoteEnded(self.ended())
        return message

    def ended(self) -> str:
        return "the case's zygote ended; its error, if any, is in the worker log or on stderr"

    def close(self) -> None:
        self.broken = True
        self.socket.close()  # end of input ends it


class FirstZygote(Channel):
    """The first zygote: a process of this one, exec'd fresh."""

    def __init__(self) -> None:
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with theirs:
            self.process = subprocess.Popen([sys.executable, "-m", ZYGOTE_MODULE, str(theirs.fileno())],
                                            pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL)
        super().__init__(mine)
        self._ready = False

    def ended(self) -> str:
        return (f"the zygote ended (exit code {self.process.poll()}); its error, if any, is in the worker log "
                "or on stderr")

    def wait_ready(self) -> None:
        with self.lock:
            if self._ready:
                return
            if self.receive(ZYGOTE_START_TIMEOUT_S) != READY:
                raise ZygoteEnded(f"the zygote did not start within {ZYGOTE_START_TIMEOUT_S:g} s")
            self._ready = True

    def close(self) -> None:
        super().close()
        try:
            self.process.wait(KILL_GRACE_S)
        except subprocess.TimeoutExpired:  # busy with a worker it cannot reap
            self.process.kill()
            self.process.wait()
