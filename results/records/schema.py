"""The one record type loadbench writes: a single measurement of one metric.

Records are flat so that a line of ``samples.jsonl`` is a row of the results
table; a run that measured nothing for a case still says why (``status``).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal, TypeGuard, TypeVar

from loadbench.errors import UserError
from loadbench.results.analysis.metrics import get_metric
from loadbench.vocabulary import DEFAULT_OPTIONS, RETRYABLE_ERRORS

__all__ = [
    "CASE_KEYS",
    "DEFAULT_ENV",
    "DIRECTIONS",
    "InvalidRecord",
    "SCHEMA_VERSION",
    "STATUSES",
    "Sample",
    "Status",
    "UnsupportedSchema",
    "drop_superseded",
    "is_retryable",
    "record_version",
    "sample_key",
]

# What each version changed, and how an older record is brought up to it: migrations.py.
SCHEMA_VERSION = 6
DEFAULT_ENV = "default"

Status = Literal["ok", "not_applicable", "failed"]
STATUSES: tuple[str, ...] = ("ok", "not_applicable", "failed")
DIRECTIONS: tuple[str, ...] = ("lower", "higher", "none")

CASE_KEYS: tuple[str, ...] = ("checkpoint", "path", "task", "dtype", "device", "cache", "options", "env")


class InvalidRecord(UserError):
    """A record that does not follow the schema."""


class UnsupportedSchema(UserError):
    """A record written by a newer loadbench than this one."""


_OPTIONAL_STR = ("reason", "error_type", "error", "attn_implementation", "resident_dtype", "node")
_REQUIRED_STR = ("run_id", "metric", "unit", "direction", "status") + CASE_KEYS


@dataclass(frozen=True)
class Sample:
    """One measurement (or the reason there is none) of one metric for one case.

    Constructing a Sample validates it, so every Sample in memory is a valid record.
    """

    schema_version: int
    run_id: str
    checkpoint: str
    path: str
    task: str
    dtype: str
    device: str
    cache: str
    options: str
    env: str
    repeat: int
    metric: str
    value: float | None
    unit: str
    direction: str
    status: str
    reason: str | None = None
    error_type: str | None = None
    error: str | None = None
    attn_implementation: str | None = None
    resident_dtype: str | None = None
    warmup: bool = False
    node: str | None = None
    sample_records: int | None = None
    block: int | None = None

    def __post_init__(self) -> None:
        _check_types(self)
        if isinstance(self.value, int):
            # JSON may store 3.0 as 3; the frame wants one float column.
            object.__setattr__(self, "value", float(self.value))
        _check_consistency(self)

    def to_dict(self) -> dict[str, Any]:
        """A flat, JSON-able dict with every field, in field order."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Sample:
        """Validate and build a Sample from a current-version record dict."""
        if not isinstance(record, Mapping):
            raise InvalidRecord(f"record must be a JSON object, got {type(record).__name__}")
        # The version comes first: a newer record's fields are expected to differ.
        version = record_version(record)
        if version != SCHEMA_VERSION:
            raise InvalidRecord(
                f"record has schema_version {version}; migrate() it to {SCHEMA_VERSION} first"
            )
        names = [f.name for f in fields(cls)]
        required = [n for n in names if n not in _OPTIONAL_STR]
        missing = [n for n in required if n not in record]
        if missing:
            raise InvalidRecord(f"record lacks required field(s): {', '.join(missing)}")
        unknown = sorted(str(k) for k in record if k not in names)
        if unknown:
            raise InvalidRecord(f"record has unknown field(s): {', '.join(unknown)}")
        return cls(**dict(record))

    @classmethod
    def ok(
        cls,
        case: Mapping[str, str],
        run_id: str,
        repeat: int,
        metric_name: str,
        value: float,
        **extra: Any,
    ) -> Sample:
        """A measured value; unit and direction come from the metric registry."""
        metric = get_metric(metric_name)
        return cls(
            **_base(case, run_id, repeat, metric_name),
            value=value, unit=metric.unit, direction=metric.direction, status="ok",
            **extra,
        )

    @classmethod
    def not_applicable(
        cls,
        case: Mapping[str, str],
        run_id: str,
        repeat: int,
        metric_name: str,
        reason: str,
        **extra: Any,
    ) -> Sample:
        """A metric that does not apply to this case (e.g. decoding an encoder)."""
        metric = get_metric(metric_name)
        return cls(
            **_base(case, run_id, repeat, metric_name),
            value=None, unit=metric.unit, direction=metric.direction,
            status="not_applicable", reason=reason, **extra,
        )

    @classmethod
    def failed(
        cls,
        case: Mapping[str, str],
        run_id: str,
        repeat: int,
        metric_name: str,
        error_type: str,
        error: str,
        **extra: Any,
    ) -> Sample:
        """A measurement that raised; the error is kept so the report can show it."""
        metric = get_metric(metric_name)
        return cls(
            **_base(case, run_id, repeat, metric_name),
            value=None, unit=metric.unit, direction=metric.direction,
            status="failed", error_type=error_type, error=error, **extra,
        )


def _base(case: Mapping[str, str], run_id: str, repeat: int, metric: str) -> dict[str, Any]:
    # Extra keys in case are ignored so callers can pass their richer case objects; a
    # case without an environment was measured in the only one there was, with no options.
    case = {"env": DEFAULT_ENV, "options": DEFAULT_OPTIONS, **case}
    missing = [k for k in CASE_KEYS if k not in case]
    if missing:
        raise InvalidRecord(f"case lacks key(s): {', '.join(missing)}")
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        **{k: case[k] for k in CASE_KEYS},
        "repeat": repeat,
        "metric": metric,
    }


def _is_int(value: object) -> TypeGuard[int]:
    # bool is an int subclass, but True is not a repeat number.
    return isinstance(value, int) and not isinstance(value, bool)


# The frame keeps ints in int64 columns and values in float64 ones: larger ones cannot be read.
_INT_MAX = 2**63 - 1
_FLOAT_MAX = int(sys.float_info.max)


def _check_types(s: Sample) -> None:
    if not _is_int(s.schema_version):
        raise InvalidRecord(f"schema_version must be an int, got {s.schema_version!r}")
    for name in _REQUIRED_STR:
        value = getattr(s, name)
        if not isinstance(value, str) or not value:
            raise InvalidRecord(f"{name} must be a non-empty string, got {_short(value)}")
    for name in _OPTIONAL_STR:
        value = getattr(s, name)
        if value is not None and not isinstance(value, str):
            raise InvalidRecord(f"{name} must be a string or null, got {_short(value)}")
    if not isinstance(s.warmup, bool):
        raise InvalidRecord(f"warmup must be true or false, got {s.warmup!r}")
    if not _is_int(s.repeat) or not 0 <= s.repeat <= _INT_MAX:
        raise InvalidRecord(f"repeat must be an int >= 0, got {_short(s.repeat)}")
    if s.sample_records is not None and (not _is_int(s.sample_records) or not 1 <= s.sample_records <= _INT_MAX):
        raise InvalidRecord(f"sample_records must be an int >= 1 or null, got {_short(s.sample_records)}")
    if s.block is not None and (not _is_int(s.block) or not 0 <= s.block <= _INT_MAX):
        raise InvalidRecord(f"block must be an int >= 0 or null, got {_short(s.block)}")
    if s.value is not None and (not isinstance(s.value, (int, float)) or isinstance(s.value, bool)):
        raise InvalidRecord(f"value must be a number or null, got {_short(s.value)}")
    if _is_int(s.value) and abs(s.value) > _FLOAT_MAX:
        raise InvalidRecord(f"value {_short(s.value)} is too large for any measurement: the file was edited")


def _short(value: object) -> str:
    """A value for a one-line message: a 400-digit number or a long string cut to a readable length."""
    text = repr(value)
    what = "digits" if isinstance(value, int) else "characters"
    return text if len(text) <= 40 else f"{text[:30]}… ({len(text)} {what})"


def _check_consistency(s: Sample) -> None:
    where = f"{s.metric} of {s.checkpoint}/{s.path} repeat {s.repeat}"
    if s.status not in STATUSES:
        raise InvalidRecord(f"status must be one of {', '.join(STATUSES)}, got {s.status!r} ({where})")
    if s.direction not in DIRECTIONS:
        raise InvalidRecord(
            f"direction must be one of {', '.join(DIRECTIONS)}, got {s.direction!r} ({where})"
        )
    if s.status == "ok":
        if s.value is None or not math.isfinite(s.value):
            raise InvalidRecord(f"status 'ok' needs a finite value, got {_short(s.value)} ({where})")
        return
    if s.value is not None:
        raise InvalidRecord(f"status {s.status!r} must have value null, got {_short(s.value)} ({where})")
    if s.status == "not_applicable" and not s.reason:
        raise InvalidRecord(f"status 'not_applicable' needs a reason ({where})")
    if s.status == "failed" and not (s.error_type and s.error):
        raise InvalidRecord(f"status 'failed' needs error_type and error ({where})")


def record_version(record: Mapping[str, Any]) -> int:
    """The record's schema_version, refusing versions this loadbench cannot read."""
    version = record.get("schema_version")
    if not _is_int(version) or version < 1:
        raise InvalidRecord(f"schema_version must be an int >= 1, got {version!r}")
    if version > SCHEMA_VERSION:
        raise UnsupportedSchema(
            f"record has schema_version {version}, but this loadbench reads up to "
            f"{SCHEMA_VERSION}; upgrade loadbench to read it"
        )
    return version


def sample_key(record: Mapping[str, Any]) -> tuple[Any, ...]:
    """Which sample a record belongs to: its run, case, repeat and warmup flag (not its metric).

    One sample gives a record per metric; a retried sample gives the same key again.
    """
    return (record["run_id"], *(record[k] for k in CASE_KEYS), record["repeat"], record["warmup"])


def is_retryable(record: Mapping[str, Any]) -> bool:
    """A failure of the machine, not of the case (RETRYABLE_ERRORS): --resume measures it again."""
    return record["status"] == "failed" and record.get("error_type") in RETRYABLE_ERRORS


_Record = TypeVar("_Record", bound=Mapping[str, Any])


def drop_superseded(records: Iterable[_Record]) -> list[_Record]:
    """The records without the samples lost to a RETRYABLE_ERRORS failure that a retry replaced.

    A sample lost with its machine and then measured again would otherwise count as a
    failure of the case, and the load it reported before the loss as a second load; the
    lost attempt goes whole (its records are consecutive: ``sample_records`` of them),
    the retry stays. One that was never retried keeps its failure, so the loss stays
    visible. Order is kept.
    """
    records = list(records)
    attempts = _attempts(records)
    last = {sample_key(records[start]): n for n, (start, _) in enumerate(attempts)}
    kept: list[_Record] = []
    for n, (start, end) in enumerate(attempts):
        chunk = records[start:end]
        if last[sample_key(chunk[0])] != n and any(is_retryable(r) for r in chunk):
            continue
        kept += chunk
    return kept


def _attempts(records: list[_Record]) -> list[tuple[int, int]]:
    """Where each sample's records start and end: consecutive records of one key, ``sample_records`` of them."""
    spans: list[tuple[int, int]] = []
    start = 0
    while start < len(records):
        size, key, end = records[start].get("sample_records") or 1, sample_key(records[start]), start + 1
        while end < len(records) and end - start < size and sample_key(records[end]) == key:
            end += 1
        spans.append((start, end))
        start = end
    return spans
