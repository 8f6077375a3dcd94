"""The zygote's socket: what the parent (spawn.py) and the zygote (zygote.py) say to each other.

Kept apart from both, so that the parent can speak it without the zygote's imports.
A request is one message, ``pickle((sys_path, pickled_target, payload, log_path, learn))``,
with the write end of the worker's reply pipe attached. Two messages answer it: the
worker's pid once it is forked, and its exit code once it has ended (``-N`` for signal
N, as multiprocessing reports it). The zygote's first message is ``READY``. Once the
parent has a worker's reply, it may say ``FORK_AHEAD`` followed by that worker's pid (no
answer): the zygote then forks the next worker while this one exits, on the cores that
one does not use.

A zygote of a case's own (its architecture imported once for all its samples) is asked
for with ``CASE_ZYGOTE`` followed by ``pickle((sys_path, pickled_target, payload,
log_path))``, with one end of a new socket attached. The first zygote forks it (and
reaps it once it ends) and says nothing; the case's zygote speaks on that socket: its
pid, then ``READY`` followed by the JSON of what its target returned (or of
``{"error": ...}`` or ``{"unsupported": ...}``, after which it ends), then the protocol
above.
"""

from __future__ import annotations

import struct

__all__ = ["CASE_NAME", "CASE_ZYGOTE", "FORK_AHEAD", "MAX_MESSAGE", "READY", "SPARE_NAME", "pack_number",
           "unpack_number"]

READY = b"ready"
FORK_AHEAD = b"fork ahead"
CASE_ZYGOTE = b"case zygote:"
SPARE_NAME = b"loadbench-spare"  # a worker forked ahead, as ps shows it until its request comes
CASE_NAME = b"loadbench-case"  # a case's zygote, as ps shows it
MAX_MESSAGE = 1 << 20  # a request: the pickled target, the sample's JSON, two paths


def pack_number(value: int) -> bytes:
    return struct.pack("!q", value)


def unpack_number(message: bytes) -> int:
    value: int = struct.unpack("!q", message)[0]
    return value
