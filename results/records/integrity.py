"""What no measurement can produce: refused when a run is read, so no compare gates on it.

A schema-valid record can still be impossible: a load that took no time or less, a sample
written twice (counted as an extra pair), a block holding one environment twice. Such a
file was edited or appended to by hand; a compare over it would print a verdict on
numbers nobody measured (a ``load_s`` of -1 read as 867% faster). The reader asks here
about each record and each whole sample, and refuses the run naming the line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from loadbench.results.records.schema import CASE_KEYS, is_retryable, sample_key

__all__ = ["MAY_BE_ZERO", "SampleLedger", "impossible_value"]

# Exclusive parts of load_s (bench/sample/phases.py): a phase the path never entered is 0.
MAY_BE_ZERO: tuple[str, ...] = ("config_s", "tokenizer_s", "weights_s", "to_device_s", "load_other_s")
_RATES = ("s", "tok/s")  # a time or a rate measured as ok is positive
_CASE_BUT_ENV = tuple(k for k in CASE_KEYS if k != "env")


def impossible_value(record: Mapping[str, Any]) -> str | None:
    """Why an ok record's value cannot have been measured, or None.

    Times and rates are positive (the phases of a load may be 0: not entered); bytes,
    tokens and differences are never negative, except what a load *added* (memory can
    be returned). Other statuses carry no value.
    """
    value, unit, metric = record.get("value"), record.get("unit"), str(record.get("metric"))
    if record.get("status") != "ok" or not isinstance(value, (int, float)):
        return None
    if unit in _RATES and metric not in MAY_BE_ZERO:
        return None if value > 0 else f"a {'time' if unit == 's' else 'rate'} cannot be zero or negative"
    if "_added_" in metric:
        return None
    return None if value >= 0 else "it cannot be negative"


def _describe(record: Mapping[str, Any]) -> str:
    warmup = " (warmup)" if record.get("warmup") else ""
    return (f"environment {record.get('env')!r}, {record.get('checkpoint')}/{record.get('path')} "
            f"repeat {record.get('repeat')}{warmup}")


class SampleLedger:
    """The samples read so far, to refuse a sample recorded twice or a block that pairs nothing.

    ``admit`` takes each whole sample in file order with the line number of its first
    record, and returns why it cannot stand there, or None. A second sample of the same
    key is allowed only as the retry of one whose machine was lost (RETRYABLE_ERRORS),
    which is what ``--resume`` writes. In a run with environments a block holds one sample
    of a case per environment: a second one would be paired twice.
    """

    def __init__(self) -> None:
        self._metrics: dict[tuple[Any, ...], int] = {}  # (sample key, metric) -> line
        self._retryable: set[tuple[Any, ...]] = set()  # sample keys whose last attempt was lost
        # (run, block, env, case) -> the sample key and line of the one sample that may stand there
        self._block: dict[tuple[Any, ...], tuple[tuple[Any, ...], int]] = {}

    def admit(self, records: Sequence[Mapping[str, Any]], line: int) -> str | None:
        """None when the sample whose first record is at ``line`` may follow those admitted before."""
        key = sample_key(records[0])
        problem = self._repeated(key, records, line) or self._misplaced(key, records, line)
        if problem:
            return problem
        if any(is_retryable(r) for r in records):
            self._retryable.add(key)
        else:
            self._retryable.discard(key)
        return None

    def _repeated(self, key: tuple[Any, ...], records: Sequence[Mapping[str, Any]], line: int) -> str | None:
        retry = key in self._retryable
        for offset, record in enumerate(records):
            entry = (key, record["metric"])
            first = self._metrics.get(entry)
            if first is not None and not (retry and first < line):
                return (f"{record['metric']} of {_describe(record)} is recorded again (first at line {first}); "
                        "each sample is recorded once: remove the copy, or measure the run again")
            self._metrics[entry] = line + offset
        return None

    def _misplaced(self, key: tuple[Any, ...], records: Sequence[Mapping[str, Any]], line: int) -> str | None:
        blocks = {r["block"] for r in records if r.get("block") is not None}
        if len(blocks) > 1:
            return f"one sample's records name blocks {', '.join(map(str, sorted(blocks)))}; a sample is in one block"
        if not blocks:
            return None
        first, block = records[0], blocks.pop()
        where = (first["run_id"], block, first["env"], *(first[k] for k in _CASE_BUT_ENV))
        owner = self._block.setdefault(where, (key, line))
        if owner[0] != key:
            return (f"block {block} holds a second sample of environment {first['env']!r} for "
                    f"{first['checkpoint']}/{first['path']} (the first at line {owner[1]}); a block pairs one sample "
                    "of each environment: the file was edited; measure the run again")
        return None
