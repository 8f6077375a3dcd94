"""Read, validate and summarize what loadbench runs recorded.

Results are plain data: this package never imports torch or transformers, and
pandas and rich are imported inside the functions that need them, so that
writing samples from inside a benchmark stays cheap.
"""

from __future__ import annotations

from .frame import load
from .metrics import METRICS, Metric, UnknownMetric, format_value, get_metric
from .schema import CASE_KEYS, SCHEMA_VERSION, InvalidRecord, Sample, UnsupportedSchema, migrate
from .store import (
    CorruptRun,
    NotARun,
    RunExists,
    RunWriter,
    TruncatedRunWarning,
    read_run_info,
    read_samples,
)
from .summary import render_summary, summarize, summary_text

__all__ = [
    "CASE_KEYS",
    "CorruptRun",
    "InvalidRecord",
    "METRICS",
    "Metric",
    "NotARun",
    "RunExists",
    "RunWriter",
    "SCHEMA_VERSION",
    "Sample",
    "TruncatedRunWarning",
    "UnknownMetric",
    "UnsupportedSchema",
    "format_value",
    "get_metric",
    "load",
    "migrate",
    "read_run_info",
    "read_samples",
    "render_summary",
    "summarize",
    "summary_text",
]
