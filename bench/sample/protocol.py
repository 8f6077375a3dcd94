"""The contract of one sample: the request a worker gets, the reply it sends, how a sample ends.

Both cross the process (or node) boundary as JSON bytes, so a reply can never run code
(no pickle), and ``SampleReply.from_dict`` checks the shape of every reply before it
becomes a record. A reply that fails the check is a ``ProtocolError``, which is a
``WorkerFailed``: whichever executor ran the sample, it becomes that sample's failure
record, and the run goes on.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from loadbench.vocabulary import DEFAULT_OPTIONS, WARM

__all__ = ["BAD_REPLY", "OLDEST_PROTOCOL", "PARTIAL", "PROTOCOL_VERSION", "ProtocolError", "SampleReply",
           "SampleRequest", "WorkerFailed", "decode_outcome", "decode_partial", "encode", "encode_outcome",
           "encode_partial", "first_line"]

BAD_REPLY = "bad_reply"
# Bumped whenever a request, a reply or an agent's messages change shape: a driver only
# talks to an environment whose loadbench speaks a version from OLDEST_PROTOCOL to this one
# (bench/executors/environments.py).
PROTOCOL_VERSION = 3  # 2: requests carry loading options; 3: record_import, warmup
# The oldest an environment may speak: a request leaves out what it does not know
# (``SampleRequest.to_dict``), so an older revision can still be measured beside this one.
OLDEST_PROTOCOL = 2
_FIELD_SINCE = {"record_import": 3, "warmup": 3}


class WorkerFailed(RuntimeError):
    """The sample ended without a usable result: crashed, killed, timed out, or a bad reply.

    ``partial`` is what the worker had measured when it ended (its load, when it died in
    the workload) and ``metric`` the metric it was measuring: the failure is recorded there.
    """

    def __init__(self, error_type: str, message: str, *, partial: SampleReply | None = None,
                 metric: str = "load_s") -> None:
        super().__init__(message)
        self.error_type = error_type
        self.partial = partial
        self.metric = metric

    def after(self, partial: SampleReply | None, metric: str) -> WorkerFailed:
        """This failure, placed after what the worker had already reported."""
        if partial is None:
            return self
        return WorkerFailed(self.error_type, str(self), partial=partial, metric=metric)


class ProtocolError(WorkerFailed):
    """A worker replied with something that is not a well-formed result."""

    def __init__(self, message: str) -> None:
        super().__init__(BAD_REPLY, message)


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, allow_nan=False).encode("utf-8")


# The key of the one message a worker may send before its reply: what the load measured,
# and the workload metric it goes on to.
PARTIAL = "loaded_so_far"


def encode_partial(reply: SampleReply, next_metric: str) -> bytes:
    return encode({PARTIAL: reply.to_dict(), "next": next_metric})


def decode_partial(data: bytes) -> tuple[SampleReply, str] | None:
    """The partial reply and its next metric, or None when ``data`` is a final reply."""
    if not data.startswith(b'{"' + PARTIAL.encode() + b'"'):
        return None
    message = json.loads(data.decode("utf-8"))
    if not isinstance(message.get("next"), str):
        raise ProtocolError("partial worker reply lacks the metric that comes next")
    return SampleReply.from_dict(message[PARTIAL]), message["next"]


def first_line(exc: BaseException | str) -> str:
    """An error's first line: a record holds a message, the worker log holds the traceback."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else repr(exc)


@dataclass(frozen=True)
class SampleRequest:
    """Everything a worker needs; plain data so it crosses the process boundary as JSON."""

    checkpoint_dir: str
    path: str
    task: str
    device: str
    dtype: str
    prompt: str
    batch_size: int
    new_tokens: int
    forward_iters: int
    check_equivalence: bool
    cache: str = WARM
    prompt_tokens: int | None = None
    threads: int | None = None
    cpus: list[int] | None = None
    trust_remote_code: bool = False
    allow_bin_weights: bool = False
    builtin: str | None = None  # the built-in checkpoint_dir holds, if any
    options: str = DEFAULT_OPTIONS  # loading options, as LoadOptions.text writes them
    # A case's architecture is imported once, in a zygote of its own, and that import's time
    # goes on one sample: the one with this set (a run's first measured one).
    record_import: bool = False
    warmup: bool = False  # its numbers are not kept: its worker may learn what the others copy in first

    def to_dict(self, protocol: int = PROTOCOL_VERSION) -> dict[str, Any]:
        """As a worker speaking ``protocol`` reads it: without the fields it does not know."""
        return {name: value for name, value in asdict(self).items() if _FIELD_SINCE.get(name, 0) <= protocol}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SampleRequest:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ProtocolError(f"sample request has unknown field(s): {', '.join(unknown)}")
        return cls(**data)


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a measurement")


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _strings(item: object, keys: tuple[str, ...]) -> bool:
    return isinstance(item, dict) and all(isinstance(item.get(k), str) for k in keys)


@dataclass
class SampleReply:
    """A worker's one message: metrics measured, metrics failed, metrics that do not apply, info.

    The worker fills it with ``ok``/``fail``/``na`` as it measures; the parent rebuilds it
    with ``from_bytes``/``from_dict``, which refuse any other shape.
    """

    metrics: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)
    not_applicable: list[dict[str, str]] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    def ok(self, metric: str, value: float) -> None:
        self.metrics.append({"metric": metric, "value": value})

    def fail(self, metric: str, exc: BaseException | str, error_type: str | None = None) -> None:
        self.failures.append({"metric": metric, "error_type": error_type or type(exc).__name__,
                              "error": first_line(exc)})

    def na(self, metric: str, reason: str) -> None:
        self.not_applicable.append({"metric": metric, "reason": reason})

    def values(self) -> dict[str, float]:
        """Measured values by metric name."""
        return {m["metric"]: float(m["value"]) for m in self.metrics}

    def to_dict(self) -> dict[str, Any]:
        return {"metrics": self.metrics, "failures": self.failures,
                "not_applicable": self.not_applicable, "info": self.info}

    def to_bytes(self) -> bytes:
        return encode(self.to_dict())

    @classmethod
    def from_dict(cls, reply: object) -> SampleReply:
        """Check a decoded reply's shape; ProtocolError names what is wrong."""
        if not isinstance(reply, dict):
            raise ProtocolError("worker reply is not an object")
        for key, kind in (("metrics", list), ("failures", list), ("not_applicable", list), ("info", dict)):
            if not isinstance(reply.get(key), kind):
                raise ProtocolError(f"worker reply lacks {key!r} of type {kind.__name__}")
        for item in reply["metrics"]:
            if not (_strings(item, ("metric",)) and _is_number(item.get("value"))):
                raise ProtocolError(f"malformed metric in worker reply: {item!r}")
        for item in reply["failures"]:
            if not _strings(item, ("metric", "error_type", "error")):
                raise ProtocolError(f"malformed failure in worker reply: {item!r}")
        for item in reply["not_applicable"]:
            if not _strings(item, ("metric", "reason")):
                raise ProtocolError(f"malformed not-applicable entry in worker reply: {item!r}")
        return cls(reply["metrics"], reply["failures"], reply["not_applicable"], reply["info"])

    @classmethod
    def from_bytes(cls, data: bytes) -> SampleReply:
        try:
            reply = json.loads(data.decode("utf-8"), parse_constant=_refuse_constant)
        except (UnicodeDecodeError, ValueError) as exc:
            raise ProtocolError(f"worker reply is not JSON: {exc}") from None
        return cls.from_dict(reply)


def encode_outcome(measure: Any) -> dict[str, Any]:
    """``measure()``'s reply, or its WorkerFailed, as plain data for an agent to send on.

    ``{"reply": ...}`` or ``{"error_type", "error", "metric", "partial"}``; never raises
    WorkerFailed. The Ray agent and the environment agent answer in this shape.
    """
    try:
        return {"reply": measure().to_dict()}
    except WorkerFailed as exc:
        return {"error_type": exc.error_type, "error": str(exc), "metric": exc.metric,
                "partial": exc.partial.to_dict() if exc.partial is not None else None}


def decode_outcome(answer: object) -> SampleReply:
    """An agent's answer as the local zygote gives it: a checked reply, or the WorkerFailed it stands for."""
    if not isinstance(answer, dict):
        raise ProtocolError("agent answer is not an object")
    if "reply" in answer:
        return SampleReply.from_dict(answer["reply"])
    if not (isinstance(answer.get("error_type"), str) and isinstance(answer.get("error"), str)):
        raise ProtocolError(f"agent answer has neither a reply nor a failure: {sorted(answer)}")
    partial = SampleReply.from_dict(answer["partial"]) if answer.get("partial") is not None else None
    metric = answer.get("metric")
    raise WorkerFailed(answer["error_type"], answer["error"], partial=partial,
                       metric=metric if isinstance(metric, str) else "load_s")
