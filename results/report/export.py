"""Reports for other tools: CSV, Parquet and JSON, with no formatting applied.

CSV and Parquet default to the tidy records (one row per sample and metric, the
run's fingerprint fields attached): nothing is lost and any tool can aggregate
them its own way. ``what="summary"`` writes the summarize() rows instead. JSON
is for programs that want the verdict with its context: the summary rows plus
every run's run.json.
"""

from __future__ import annotations

import importlib.util
import io
import json
import math
from typing import TYPE_CHECKING, Any

from loadbench.errors import UserError
from loadbench.results.report.model import Report, ReportError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["EXPORT_FORMATS", "JSON_FORMAT_VERSION", "MissingDependency", "WHAT", "export", "default_what"]

EXPORT_FORMATS: tuple[str, ...] = ("csv", "parquet", "json")
WHAT: tuple[str, ...] = ("records", "summary")
# Bump when a key of the JSON document changes meaning or goes away.
JSON_FORMAT_VERSION = 1


class MissingDependency(UserError, ImportError):
    """An optional package the chosen output needs is not installed."""


def default_what(fmt: str) -> str:
    """records for CSV/Parquet (lossless tables), summary for JSON (the verdict with its context)."""
    return "summary" if fmt == "json" else "records"


def _frame(report: Report, what: str) -> pd.DataFrame:
    if what not in WHAT:
        raise ReportError(f"`what` {what!r}: choose one of {', '.join(WHAT)}")
    return report.records if what == "records" else report.summary


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item"):  # numpy scalars
        return _jsonable(value.item())
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    try:
        import pandas as pd

        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return str(value)


def _rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    columns = list(frame.columns)
    return [{c: _jsonable(v) for c, v in zip(columns, row)} for row in frame.itertuples(index=False, name=None)]


def _json(report: Report, what: str) -> str:
    document = {
        "format": "loadbench-report",
        "format_version": JSON_FORMAT_VERSION,
        "cv_threshold": report.cv_threshold,
        "runs": [{"run_id": r.run_id, "run_dir": str(r.run_dir), "letter": r.letter, "info": r.info}
                 for r in report.runs],
        "fingerprint_differences": [
            {"field": d.field, "values": list(d.values), "key": d.key} for d in report.differences
        ],
        "warnings": list(report.warnings),
        what: _rows(_frame(report, what)),
    }
    return json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def export(report: Report, fmt: str, what: str | None = None) -> str | bytes:
    """The report's data in ``fmt`` (csv, parquet or json): text, or bytes for Parquet.

    Raises MissingDependency for Parquet without pyarrow.
    """
    what = what or default_what(fmt)
    if fmt == "csv":
        return _frame(report, what).to_csv(index=False)
    if fmt == "json":
        return _json(report, what)
    if fmt == "parquet":
        if importlib.util.find_spec("pyarrow") is None:
            raise MissingDependency("parquet output needs pyarrow: pip install 'loadbench[parquet]'")
        buffer = io.BytesIO()
        _frame(report, what).to_parquet(buffer, index=False)
        return buffer.getvalue()
    raise ReportError(f"`format` {fmt!r}: choose one of {', '.join(EXPORT_FORMATS)}")
