"""The run directory on disk: ``run.json`` (what was run) + ``samples.jsonl`` (what it measured).

Benchmarks crash and get interrupted; the layout is chosen so that whatever was
measured before that survives: samples are appended and synced one line at a
time, and run.json is only ever replaced whole.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from loadbench.errors import UserError

from .schema import SCHEMA_VERSION, InvalidRecord, Sample, UnsupportedSchema, migrate, record_version

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


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Replace path with data so that readers see the old file or the new one, never half."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, ensure_ascii=False, allow_nan=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; not possible on every platform.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


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
        exists_msg = f"{run_dir} already holds a run; choose another --output directory"
        if info_path.exists():
            raise RunExists(exists_msg)
        try:
            # Exclusive create: two runs started at once cannot share a directory.
            samples_file = open(samples_path, "x", encoding="utf-8", newline="\n")
        except FileExistsError:
            raise RunExists(exists_msg) from None
        info = {**run_info, "schema_version": SCHEMA_VERSION, "status": "running", "started_at": _now()}
        try:
            _write_json_atomic(info_path, info)
        except BaseException:
            samples_file.close()
            samples_path.unlink(missing_ok=True)
            raise
        return cls(run_dir, info, samples_file)

    @classmethod
    def reopen(cls, run_dir: str | Path) -> RunWriter:
        """Continue an unfinished run: append to its samples, mark it running again.

        A partial last line (a power cut mid-write) is cut off first, so that appended
        records start on a line of their own.
        """
        run_dir = _require_run(run_dir)
        info = read_run_info(run_dir)
        if info.get("status") == "complete":
            raise RunExists(f"{run_dir} holds a complete run; there is nothing to resume")
        samples_path = run_dir / SAMPLES_FILE
        data = samples_path.read_bytes() if samples_path.exists() else b""
        if data and not data.endswith(b"\n"):
            with open(samples_path, "r+b") as handle:
                handle.truncate(data.rfind(b"\n") + 1)
        samples_file = open(samples_path, "a", encoding="utf-8", newline="\n")
        resumed = [*info.get("resumed_at", []), _now()]
        info = {**info, "status": "running", "resumed_at": resumed}
        info.pop("finished_at", None)
        _write_json_atomic(run_dir / RUN_INFO_FILE, info)
        return cls(run_dir, info, samples_file)

    @property
    def info(self) -> dict[str, Any]:
        """A copy of what run.json holds now."""
        return dict(self._info)

    @property
    def closed(self) -> bool:
        return self._samples.closed

    def append(self, sample: Sample) -> None:
        """Write one sample and sync it to disk before returning."""
        self._require_open()
        run_id = self._info.get("run_id")
        if run_id is not None and sample.run_id != run_id:
            raise ValueError(f"sample run_id {sample.run_id!r} does not match this run's {run_id!r}")
        line = json.dumps(sample.to_dict(), ensure_ascii=False, allow_nan=False)
        self._samples.write(line + "\n")
        self._samples.flush()
        os.fsync(self._samples.fileno())

    def update(self, **fields: Any) -> None:
        """Merge fields into run.json, replacing the file atomically."""
        self._require_open()
        reserved = [k for k in _RESERVED if k in fields]
        if reserved:
            raise ValueError(f"update() may not set {', '.join(reserved)}; use close() to end the run")
        self._info = {**self._info, **fields}
        _write_json_atomic(self.run_dir / RUN_INFO_FILE, self._info)

    def close(self, status: CloseStatus = "complete") -> None:
        """Mark the run finished with status and the finish time."""
        self._require_open()
        if status not in _CLOSE_STATUSES:
            raise ValueError(f"status must be one of {', '.join(_CLOSE_STATUSES)}, got {status!r}")
        self._samples.close()
        self._info = {**self._info, "status": status, "finished_at": _now()}
        _write_json_atomic(self.run_dir / RUN_INFO_FILE, self._info)

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


def read_run_info(run_dir: str | Path) -> dict[str, Any]:
    """The run's run.json as a dict."""
    path = _require_run(run_dir) / RUN_INFO_FILE
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CorruptRun(f"{path}: not valid JSON ({e})") from None
    if not isinstance(info, dict):
        raise CorruptRun(f"{path}: expected a JSON object, got {type(info).__name__}")
    try:
        record_version(info)
    except InvalidRecord as e:
        raise CorruptRun(f"{path}: {e}") from None
    except UnsupportedSchema as e:
        raise UnsupportedSchema(f"{path}: {e}") from None
    return info


def read_samples(run_dir: str | Path) -> list[dict[str, Any]]:
    """Every sample of the run, validated and migrated to the current schema.

    A last line that does not parse is skipped with a TruncatedRunWarning (a crash
    mid-write); anything else that does not parse raises CorruptRun.
    """
    run_dir = _require_run(run_dir)
    path = run_dir / SAMPLES_FILE
    if not path.is_file():
        raise CorruptRun(f"{path}: missing ({RUN_INFO_FILE} is there, so the run is damaged)")
    lines = path.read_bytes().split(b"\n")
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    samples: list[dict[str, Any]] = []
    for index, raw in enumerate(lines):
        if not raw.strip():
            continue
        lineno = index + 1
        try:
            record = json.loads(raw.decode("utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            if index == last:
                warnings.warn(
                    f"{path}:{lineno}: skipped a partial last line (the run was probably interrupted)",
                    TruncatedRunWarning,
                    stacklevel=2,
                )
                break
            raise CorruptRun(f"{path}:{lineno}: not valid JSON ({e})") from None
        try:
            samples.append(Sample.from_dict(migrate(record)).to_dict())
        except InvalidRecord as e:
            raise CorruptRun(f"{path}:{lineno}: {e}") from None
        except UnsupportedSchema as e:
            raise UnsupportedSchema(f"{path}:{lineno}: {e}") from None
    return samples
