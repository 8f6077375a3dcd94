"""Runs as one tidy pandas table: a row per record, a column per Sample field.

The long shape keeps every repeat and every non-ok record, so any summary or plot
can be derived from it without going back to the files.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .schema import Sample
from .store import read_samples

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["COLUMNS", "load"]

COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(Sample))
_INT_COLUMNS = ("schema_version", "repeat")
_FLOAT_COLUMNS = ("value",)
_BOOL_COLUMNS = ("warmup",)


def _string_dtype() -> Any:
    import pandas as pd

    # pandas 3 has a real string dtype with NaN for missing; pandas 2 uses object,
    # where casting to "str" would turn None into the text "None".
    return "str" if int(pd.__version__.split(".")[0]) >= 3 else object


def _frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    import pandas as pd

    text = _string_dtype()
    columns = {}
    for name in COLUMNS:
        values = [r[name] for r in records]
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
    return pd.DataFrame(columns, columns=list(COLUMNS))


def load(run_dirs: str | Path | Iterable[str | Path]) -> pd.DataFrame:
    """Read one run directory, or several (concatenated in order), into a long frame.

    Records of older schema versions are migrated first, so every row has the
    current fields. Missing values are NaN (value is float64); ``warmup`` is a
    bool column and the other text fields (``cache`` included) are string
    columns. An empty run gives an empty frame with the same columns and dtypes.
    """
    if isinstance(run_dirs, (str, Path)):
        run_dirs = [run_dirs]
    records: list[dict[str, Any]] = []
    for run_dir in run_dirs:
        records.extend(read_samples(run_dir))
    return _frame(records)
