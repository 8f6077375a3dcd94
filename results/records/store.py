"""The run directory on disk: ``run.json`` (what was run) + ``samples.jsonl`` (what it measured).

Benchmarks crash and get interrupted; the layout is chosen so that whatever was
measured before that survives: samples are appended and synced one line at a
time, and run.json is only ever replaced whole.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from loadbench.errors import UserError
from loadbench.results.records.durable import signals_held, write_json_atomic
from loadbench.results.records.integrity import SampleLedger, impossible_value
from loadbench.results.records.migrations import migrate
from loadbench.results.records.schema import (
    SCHEMA_VERSION,
    InvalidRecord,
    Sample,
    UnsupportedSchema,
    record_version,
    sample_key,
)

__all__ = [
    "CloseStatus",
    "CorruptRun",
    "NotARun",
    "RUN_INFO_FILE",
    "RunExists",
    "RunWriter",
    "SAMPLES_FILE",
    "TruncatedRunWarning",
    "read_run_info",
    "read_samples",
]

RUN_INFO_FILE = "run.json"
SAMPLES_FILE = "samples.jsonl"

CloseStatus = Literal["complete", "interrupted", "failed"]
_CLOSE_STATUSES: tuple[str, ...] = ("complete", "interrupted", "failed")
# Owned by the writer's lifecycle, so callers may not set them directly.
_RESERVED = ("schema_version", "status", "started_at", "finished_at", "resumed_at")


class RunExists(UserError, FileExistsError):
    """The output directory already holds a run; loadbench never overwrites results."""


class NotARun(UserError, FileNotFoundError):
    """The directory is missing or is not a loadbench run directory."""


class CorruptRun(UserError):
    """A run file that cannot be read back (beyond a crash-truncated last line)."""


class TruncatedRunWarning(UserWarning):
    """The last line of samples.jsonl was cut off, most likely by a crash; it was skipped."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class RunWriter:
    """Writes one run directory; use ``RunWriter.create`` and, ideally, ``with``.

    Leaving the ``with`` block closes the run as complete, interrupted
    (KeyboardInterrupt) or failed (any other exception).
    """

    def __init__(self, run_dir: Path, info: dict[str, Any], samples_file: Any) -> None:
        self.run_dir = run_dir
        self._info = info
        self._samples = samples_file

    @classmethod
    def create(cls, run_dir: str | Path, run_info: dict[str, Any]) -> RunWriter:
        """Start a new run in run_dir (created if needed); refuse to reuse one."""
        run_dir = Path(run_dir)
        reserved = [k for k in _RESERVED if k in run_info]
        if reserved:
            raise ValueError(f"run_info may not set {', '.join(reserved)}: RunWriter manages them")
        run_dir.mkdir(parents=True, exist_ok=True)
        info_path = run_dir / RUN_INFO_FILE
        samples_path = run_dir / SAMPLES_FILE
        exists_msg = f"{run_dir} already holds a run; choose another `output` directory"
        if info_path.exists():
            raise RunExists(exists_msg)
        try:
            # Exclusive create: two runs started at once cannot share a directory.
            samples_file = open(samples_path, "xb", buffering=0)
        except FileExistsError:
            raise RunExists(exists_msg) from None
        info = {**run_info, "schema_version": SCHEMA_VERSION, "status": "running", "started_at": _now()}
        try:
            write_json_atomic(info_path, info)
        except BaseException:
            samples_file.close()
            samples_path.unlink(missing_ok=True)
            raise
        return cls(run_dir, info, samples_file)

    @classmethod
    def reopen(cls, run_dir: str | Path) -> RunWriter:
        """Continue an unfinished run: append to its samples, mark it running again.

        What a crash left at the end of samples.jsonl (a torn or unreadable last line, a
        sample with only some of its records) is cut off first, so that appended samples
        start on a line of their own and the cut sample is measured again. Anything that
        refuses (a damaged line before the end) refuses before run.json changes.
        """
        run_dir = _require_run(run_dir)
        info = read_run_info(run_dir)
        if info.get("status") == "complete":
            raise RunExists(f"{run_dir} holds a complete run; there is nothing to resume")
        samples_path = run_dir / SAMPLES_FILE
        if not samples_path.is_file():
            raise CorruptRun(f"{samples_path}: missing ({RUN_INFO_FILE} is there, so the run is damaged)")
        whole = _read(samples_path).whole_bytes
        samples_file = open(samples_path, "r+b", buffering=0)
        try:
            samples_file.truncate(whole)
            samples_file.seek(0, os.SEEK_END)
            resumed = [*info.get("resumed_at", []), _now()]
            info = {**info, "status": "running", "resumed_at": resumed}
            info.pop("finished_at", None)
            write_json_atomic(run_dir / RUN_INFO_FILE, info)
        except BaseException:
            samples_file.close()
            raise
        return cls(run_dir, info, samples_file)

    @property
    def info(self) -> dict[str, Any]:
        """A copy of what run.json holds now."""
        return dict(self._info)

    @property
    def closed(self) -> bool:
        return self._samples.closed

    def append(self, sample: Sample) -> None:
        """Write one record as a sample of its own (see append_sample)."""
        self.append_sample([sample])

    def append_sample(self, records: Sequence[Sample]) -> None:
        """Write one sample's records whole, or not at all, and sync them before returning.

        Each record is stamped with the sample's record count, and all of them go out in
        one write with Ctrl-C, SIGTERM and SIGHUP held back until it has ended, so an
        interruption falls between samples. A write that fails (a full disk) is cut back
        off before the error goes on; a reader drops a sample a power cut left short.
        """
        self._require_open()
        run_id = self._info.get("run_id")
        for sample in records:
            if run_id is not None and sample.run_id != run_id:
                raise ValueError(f"sample run_id {sample.run_id!r} does not match this run's {run_id!r}")
        if not records:
            return
        stamped = [replace(sample, sample_records=len(records)) for sample in records]
        data = "".join(json.dumps(r.to_dict(), ensure_ascii=False, allow_nan=False) + "\n"
                       for r in stamped).encode("utf-8")
        with signals_held():
            start = self._samples.seek(0, os.SEEK_END)
            try:
                view = memoryview(data)
                while view:
                    view = view[self._samples.write(view) or 0:]
                os.fsync(self._samples.fileno())
            except BaseException:
                self._samples.truncate(start)
                self._samples.seek(start)
                raise

    def update(self, **fields: Any) -> None:
        """Merge fields into run.json, replacing the file atomically."""
        self._require_open()
        reserved = [k for k in _RESERVED if k in fields]
        if reserved:
            raise ValueError(f"update() may not set {', '.join(reserved)}; use close() to end the run")
        self._info = {**self._info, **fields}
        write_json_atomic(self.run_dir / RUN_INFO_FILE, self._info)

    def close(self, status: CloseStatus = "complete") -> None:
        """Mark the run finished with status and the finish time."""
        self._require_open()
        if status not in _CLOSE_STATUSES:
            raise ValueError(f"status must be one of {', '.join(_CLOSE_STATUSES)}, got {status!r}")
        # The status first, the file after: a second Ctrl-C that still gets through (another
        # thread may take the signal) leaves the writer open, so closing again finishes the job.
        with signals_held():
            info = {**self._info, "status": status, "finished_at": _now()}
            write_json_atomic(self.run_dir / RUN_INFO_FILE, info)
            self._info = info
            self._samples.close()

    def _require_open(self) -> None:
        if self.closed:
            raise ValueError(f"run {self.run_dir} is already closed")

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.closed:
            return
        if exc_type is None:
            self.close("complete")
        elif issubclass(exc_type, KeyboardInterrupt):
            self.close("interrupted")
        else:
            self.close("failed")


def _require_run(run_dir: str | Path) -> Path:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise NotARun(f"{run_dir}: no such run directory")
    if not (run_dir / RUN_INFO_FILE).is_file():
        raise NotARun(f"{run_dir}: not a loadbench run directory (no {RUN_INFO_FILE})")
    return run_dir


# What loadbench writes into run.json, by shape: a report reads into them (null: not recorded).
_RUN_INFO_SHAPES: dict[str, tuple[type, ...]] = {
    "fingerprint": (dict,), "nodes": (dict,), "suite": (dict, str), "checkpoint_commits": (dict,),
    "ceiling": (dict,), "resumed_at": (list,), "status": (str,), "started_at": (str,), "finished_at": (str,),
    "run_id": (str,),
}


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def read_run_info(run_dir: str | Path) -> dict[str, Any]:
    """The run's run.json as a dict."""
    path = _require_run(run_dir) / RUN_INFO_FILE
    try:
        # loadbench writes it without NaN or Infinity (allow_nan=False): one there was put there by hand.
        info = json.loads(path.read_text(encoding="utf-8"), parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise CorruptRun(f"{path}: not valid JSON ({e})") from None
    if not isinstance(info, dict):
        raise CorruptRun(f"{path}: expected a JSON object, got {type(info).__name__}")
    try:
        record_version(info)
    except InvalidRecord as e:
        raise CorruptRun(f"{path}: {e}") from None
    except UnsupportedSchema as e:
        raise UnsupportedSchema(f"{path}: {e}") from None
    for name, kinds in _RUN_INFO_SHAPES.items():
        value = info.get(name)
        if value is not None and not isinstance(value, kinds):
            want = " or ".join("an object" if k is dict else "a list" if k is list else "a string" for k in kinds)
            raise CorruptRun(f"{path}: {name} must be {want}, got {type(value).__name__}; the file was edited or "
                             "damaged (loadbench writes it whole)")
    return info


@dataclass(frozen=True)
class _Parsed:
    records: list[dict[str, Any]]  # the whole samples, validated and migrated
    whole_bytes: int  # where the whole samples end: an appender starts here
    dropped: int  # records of a torn last line or of a sample cut short, left out
    samples: int  # whole samples read


def _read(path: Path) -> _Parsed:
    """Parse samples.jsonl; what a crash can leave at its end is left out, anything else refused.

    A sample's records stand on consecutive lines (``sample_records`` of them). At the
    end of the file, an unreadable last line or a sample with fewer records is what an
    interruption leaves: it is dropped and counted. The same anywhere else is damage:
    CorruptRun, naming the line.
    """
    data = path.read_bytes()
    lines = data.split(b"\n")
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    kept: list[dict[str, Any]] = []
    group: list[dict[str, Any]] = []  # records of the sample being read
    ledger = SampleLedger()
    whole, offset, dropped, samples = 0, 0, 0, 0
    for index, raw in enumerate(lines):
        offset += len(raw) + 1
        if not raw.strip():
            whole = whole if group else min(offset, len(data))
            continue
        try:
            if index == len(lines) - 1:  # every write ends its lines: this one was cut
                raise InvalidRecord("the line has no end")
            record = Sample.from_dict(migrate(json.loads(raw.decode("utf-8")))).to_dict()
        except UnsupportedSchema as e:
            raise UnsupportedSchema(f"{path}:{index + 1}: {e}") from None
        except (ValueError, UnicodeDecodeError, RecursionError) as e:  # JSON, encoding or schema
            if index == last:
                dropped += 1 + len(group)
                group = []
                break
            what = str(e) if isinstance(e, InvalidRecord) else f"not valid JSON ({e})"
            raise _corrupt(path, index + 1, what) from None
        impossible = impossible_value(record)
        if impossible:
            raise _corrupt(path, index + 1, f"{record['metric']} = {record['value']:g} with status ok: {impossible}; "
                                            "the file was edited or damaged: measure the run again")
        if group and (sample_key(record) != sample_key(group[0])
                      or record["sample_records"] != group[0]["sample_records"]):
            raise _corrupt(path, index + 1, f"a sample with {len(group)} of its "
                                            f"{group[0]['sample_records']} records is followed by another sample")
        group.append(record)
        if len(group) >= (record["sample_records"] or 1):
            problem = ledger.admit(group, index + 2 - len(group))
            if problem:
                raise _corrupt(path, index + 2 - len(group), problem)
            kept += group
            group = []
            whole, samples = offset, samples + 1
    dropped += len(group)
    return _Parsed(kept, whole, dropped, samples)


def _corrupt(path: Path, line: int, what: str) -> CorruptRun:
    """The one-line refusal of a damaged line: a value quoted from the file cannot break the line."""
    return CorruptRun(f"{path}:{line}: {' '.join(what.split())}")


def read_samples(run_dir: str | Path) -> list[dict[str, Any]]:
    """Every whole sample of the run, validated and migrated to the current schema.

    What an interruption can leave at the end of samples.jsonl (a torn last line, a
    sample with only some of its records) is left out with a TruncatedRunWarning, so a
    sample counts all or nothing; anything else that does not parse raises CorruptRun.
    """
    run_dir = _require_run(run_dir)
    path = run_dir / SAMPLES_FILE
    if not path.is_file():
        raise CorruptRun(f"{path}: missing ({RUN_INFO_FILE} is there, so the run is damaged)")
    parsed = _read(path)
    if parsed.dropped:
        warnings.warn(f"{path}: its last sample was cut short (an interrupted write): {parsed.samples} whole "
                      f"sample(s) read; left out {parsed.dropped} record(s) of the cut one; `loadbench run --resume` "
                      "of an unfinished run measures it again", TruncatedRunWarning, stacklevel=2)
    return parsed.records
