"""The zygote's socket: what the parent (spawn.py) and the zygote (zygote.py) say to each other.

Kept apart from both, so that the parent can speak it without the zygote's imports.
A request is one message, ``pickle((sys_path, pickled_target, payload, log_path))``,
with the write end of the worker's reply pipe attached. Two messages answer it: the
worker's pid once it is forked, and its exit code once it has ended (``-N`` for signal
N, as multiprocessing reports it). The zygote's first message is ``READY``. Once the
parent has a worker's reply, it may say ``FORK_AHEAD`` (no answer): the zygote then forks
the next worker while this one exits.
"""

from __future__ import annotations

import struct

__all__ = ["FORK_AHEAD", "MAX_MESSAGE", "READY", "SPARE_NAME", "pack_number", "unpack_number"]

READY = b"ready"
FORK_AHEAD = b"fork ahead"
SPARE_NAME = b"loadbench-spare"  # a worker forked ahead, as ps shows it until its request comes
MAX_MESSAGE = 1 << 20  # a request: the pickled target, the sample's JSON, two paths


def pack_number(value: int) -> bytes:
    return struct.pack("!q", value)


def unpack_number(message: bytes) -> int:
    value: int = struct.unpack("!q", message)[0]
    return value
