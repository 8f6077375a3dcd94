"""The messages between the parent and a sample's worker: JSON only, shape-checked.

Data crosses the process boundary as JSON bytes so a reply can never run code (no
pickle), and the parent validates every reply before it becomes a record.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["ProtocolError", "encode", "decode_reply"]

REPLY_KEYS = {"metrics": list, "failures": list, "not_applicable": list, "info": dict}


class ProtocolError(RuntimeError):
    """A worker replied with something that is not a well-formed result."""


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, allow_nan=False).encode("utf-8")


def decode_reply(data: bytes) -> dict[str, Any]:
    """Parse and check a worker's reply: metrics, failures, not-applicable metrics, info."""
    try:
        reply = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"worker reply is not JSON: {exc}") from None
    if not isinstance(reply, dict):
        raise ProtocolError("worker reply is not an object")
    for key, kind in REPLY_KEYS.items():
        if not isinstance(reply.get(key), kind):
            raise ProtocolError(f"worker reply lacks {key!r} of type {kind.__name__}")
    for item in reply["metrics"]:
        if not (isinstance(item, dict) and isinstance(item.get("metric"), str)
                and isinstance(item.get("value"), (int, float))):
            raise ProtocolError(f"malformed metric in worker reply: {item!r}")
    for item in reply["failures"]:
        if not (isinstance(item, dict) and all(isinstance(item.get(k), str)
                                               for k in ("metric", "error_type", "error"))):
            raise ProtocolError(f"malformed failure in worker reply: {item!r}")
    for item in reply["not_applicable"]:
        if not (isinstance(item, dict) and all(isinstance(item.get(k), str) for k in ("metric", "reason"))):
            raise ProtocolError(f"malformed not-applicable entry in worker reply: {item!r}")
    return reply
