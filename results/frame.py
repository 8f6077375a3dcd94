"""Runs as one tidy pandas table: a row per record, a column per Sample field.

The long shape keeps every repeat and every non-ok record, so any summary or plot
can be derived from it without going back to the files. Each row also carries
its run's fingerprint fields, so several runs can be grouped by torch version or
device without a join.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .runinfo import FINGERPRINT_COLUMNS, device_name, fingerprint_fields
from .schema import Sample
from .store import read_run_info, read_samples

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["COLUMNS", "DuplicateRun", "FRAME_COLUMNS", "load", "runs"]

COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(Sample))
# Added by load() after the record fields: the same value on every row of a run,
# except device_name, which names the hardware behind each row's device.
FRAME_COLUMNS: tuple[str, ...] = (*COLUMNS, "device_name", *FINGERPRINT_COLUMNS)
_INT_COLUMNS = ("schema_version", "repeat")
_FLOAT_COLUMNS = ("value",)
_BOOL_COLUMNS = ("warmup",)


class DuplicateRun(ValueError):
    """The same run was given twice (or two directories hold copies of one run)."""


def _string_dtype() -> Any:
    import pandas as pd

    # pandas 3 has a real string dtype with NaN for missing; pandas 2 uses object,
    # where casting to "str" would turn None into the text "None".
    return "str" if int(pd.__version__.split(".")[0]) >= 3 else object


def _frame(records: list[dict[str, Any]], names: tuple[str, ...]) -> pd.DataFrame:
    import pandas as pd

    text = _string_dtype()
    columns = {}
    for name in names:
        values = [r.get(name) for r in records]
        if name in _INT_COLUMNS:
            dtype: Any = "int64"
        elif name in _FLOAT_COLUMNS:
            dtype = "float64"
        elif name in _BOOL_COLUMNS:
            # Never missing: read_samples() migrates older records to warmup=False.
            dtype = "bool"
        else:
            dtype = text
        columns[name] = pd.Series(values, dtype=dtype)
    return pd.DataFrame(columns, columns=list(names))


def _as_list(run_dirs: str | Path | Iterable[str | Path]) -> list[Path]:
    if isinstance(run_dirs, (str, Path)):
        return [Path(run_dirs)]
    return [Path(d) for d in run_dirs]


def load(run_dirs: str | Path | Iterable[str | Path], *, fingerprint: bool = True) -> pd.DataFrame:
    """Read one run directory, or several (concatenated in order), into a long frame.

    Records of older schema versions are migrated first, so every row has the
    current fields. Missing values are NaN (value is float64); ``warmup`` is a
    bool column and the other text fields (``cache`` included) are string
    columns. With ``fingerprint`` (the default) the columns of FINGERPRINT_COLUMNS
    (``torch_version``, ``cpu_model``, ``gpus``…) and ``device_name`` follow the
    record fields; ``fingerprint=False`` gives the record fields only. An empty
    run gives an empty frame with the same columns and dtypes. Raises
    DuplicateRun when one run id turns up in two of the directories.
    """
    records: list[dict[str, Any]] = []
    seen: dict[str, Path] = {}
    for run_dir in _as_list(run_dirs):
        samples = read_samples(run_dir)
        extra = fingerprint_fields(read_run_info(run_dir)) if fingerprint else {}
        for run_id in dict.fromkeys(s["run_id"] for s in samples):
            if run_id in seen:
                raise DuplicateRun(f"run {run_id} is in both {seen[run_id]} and {run_dir}; give each run once")
            seen[run_id] = run_dir
        for sample in samples:
            if fingerprint:
                sample = {**sample, **extra, "device_name": device_name(sample["device"], extra)}
            records.append(sample)
    return _frame(records, FRAME_COLUMNS if fingerprint else COLUMNS)


def runs(run_dirs: str | Path | Iterable[str | Path]) -> pd.DataFrame:
    """One row per run, indexed by run id: status, suite name, directory and fingerprint fields.

    For the environment table of a report, or for joining onto a ``summarize()`` frame.
    """
    import pandas as pd

    rows = []
    for run_dir in _as_list(run_dirs):
        info = read_run_info(run_dir)
        suite = info.get("suite")
        rows.append({
            "run_id": str(info.get("run_id") or run_dir.name),
            "run_dir": str(run_dir),
            "status": info.get("status"),
            "suite": suite.get("name") if isinstance(suite, dict) else suite,
            **fingerprint_fields(info),
        })
    frame = pd.DataFrame(rows, columns=["run_id", "run_dir", "status", "suite", *FINGERPRINT_COLUMNS])
    return frame.set_index("run_id")
