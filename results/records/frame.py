"""Runs as one tidy pandas table: a row per record, a column per Sample field.

The long shape keeps every repeat and every non-ok record, so any summary or plot
can be derived from it without going back to the files. Each row also carries
the fingerprint fields of the machine that measured it (its run's, or its node's
when the run was spread over several), so runs can be grouped by torch version
or hardware without a join.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loadbench.errors import UserError
from loadbench.results.analysis.ceiling import FRAME_CEILING_COLUMNS, frame_values
from loadbench.results.records.runinfo import (
    FINGERPRINT_COLUMNS,
    device_name,
    fingerprint_fields,
    machine_key,
    node_fields,
)
from loadbench.results.records.schema import Sample, drop_superseded
from loadbench.results.records.store import read_run_info, read_samples

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["COLUMNS", "DuplicateRun", "FRAME_COLUMNS", "load", "runs"]

# The record fields, less how the file keeps a sample whole (sample_records): storage, not data.
COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(Sample) if f.name != "sample_records")
# Added by load() after the record fields, from the fingerprint of the row's node
# (the run's own for node null): device_name names the hardware behind the row's
# device, machine is the stable key of that node's hardware (runinfo.machine_key); then the
# commit a hub checkpoint resolved to, and the machine's ceiling that applies to the row (results.ceiling).
FRAME_COLUMNS: tuple[str, ...] = (*COLUMNS, "device_name", "machine", *FINGERPRINT_COLUMNS, "checkpoint_commit",
                                 *FRAME_CEILING_COLUMNS)
_INT_COLUMNS = ("schema_version", "repeat")
_NULLABLE_INT_COLUMNS = ("block",)
_FLOAT_COLUMNS = ("value", *FRAME_CEILING_COLUMNS)
_BOOL_COLUMNS = ("warmup",)


class DuplicateRun(UserError):
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
        elif name in _NULLABLE_INT_COLUMNS:
            dtype = "Int64"
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
    bool column and the other text fields (``cache`` and ``node`` included) are
    string columns. With ``fingerprint`` (the default) ``device_name``,
    ``machine`` and the columns of FINGERPRINT_COLUMNS (``torch_version``,
    ``cpu_model``, ``gpus``…) follow the record fields, each from the fingerprint
    of the node that measured the row, then ``checkpoint_commit`` (the commit a hub
    checkpoint resolved to); ``fingerprint=False`` gives the record fields only. A
    failure that a retry of the same sample superseded (a lost node, RETRYABLE_ERRORS)
    is left out: see ``schema.drop_superseded``. An empty run gives an empty frame
    with the same columns and dtypes. Raises DuplicateRun when one run id turns up in
    two of the directories.
    """
    records: list[dict[str, Any]] = []
    seen: dict[str, Path] = {}
    for run_dir in _as_list(run_dirs):
        samples = drop_superseded(read_samples(run_dir))
        for run_id in dict.fromkeys(s["run_id"] for s in samples):
            if run_id in seen:
                raise DuplicateRun(f"run {run_id} is in both {seen[run_id]} and {run_dir}; give each run once")
            seen[run_id] = run_dir
        if not fingerprint:
            records += samples
            continue
        info = read_run_info(run_dir)
        found = info.get("checkpoint_commits")
        commits: dict[str, Any] = found if isinstance(found, dict) else {}
        per_node: dict[str | None, dict[str, str | None]] = {}
        ceilings: dict[tuple[str | None, str, str], dict[str, Any]] = {}
        for sample in samples:
            node = sample["node"]
            if node not in per_node:
                per_node[node] = _node_columns(info, node)
            extra = per_node[node]
            where = (node, sample["checkpoint"], sample["device"])
            if where not in ceilings:
                ceilings[where] = frame_values(info, sample["checkpoint"], sample["device"], extra["hostname"])
            records.append({**sample, **extra, "device_name": device_name(sample["device"], extra),
                            "checkpoint_commit": commits.get(sample["checkpoint"]), **ceilings[where]})
    return _frame(records, FRAME_COLUMNS if fingerprint else COLUMNS)


def _node_columns(info: dict[str, Any], node: str | None) -> dict[str, str | None]:
    # Once per (run, node): hashing the machine key for every row would slow load() down.
    fields = node_fields(info, node)
    return {**fields, "machine": machine_key(fields)}


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
