"""Read, validate, summarize and report what loadbench runs recorded.

Results are plain data: this package never imports torch or transformers, and
pandas, rich and matplotlib are imported inside the functions that need them,
so that writing samples from inside a benchmark stays cheap.

In a notebook::

    import loadbench.results as lr
    df = lr.load(["runs/a", "runs/b"])      # tidy records + run_id and fingerprint columns
    stats = lr.summarize(df)                # one row per run × case × metric
    lr.by_path(stats); lr.by_run(stats)     # paths side by side; run B vs run A with ratios
    table = lr.compare(lr.read_results(["runs/a"]), lr.read_results(["runs/b"]))  # verdicts
"""

from __future__ import annotations

from .benchjson import read_benchmark_json, read_results
from .comparability import CannotCompare
from .compare import compare, exit_code
from .export import MissingDependency
from .frame import DuplicateRun, load, runs
from .metrics import METRICS, Metric, UnknownMetric, format_value, get_metric
from .pivot import by_path, by_run
from .render import render, write_report, write_run_reports
from .report import FORMATS, Report, build_report
from .runinfo import COMPARABILITY_KEYS, FINGERPRINT_COLUMNS
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
    "COMPARABILITY_KEYS",
    "CorruptRun",
    "DuplicateRun",
    "FINGERPRINT_COLUMNS",
    "FORMATS",
    "InvalidRecord",
    "METRICS",
    "Metric",
    "MissingDependency",
    "NotARun",
    "Report",
    "RunExists",
    "RunWriter",
    "SCHEMA_VERSION",
    "Sample",
    "TruncatedRunWarning",
    "UnknownMetric",
    "UnsupportedSchema",
    "build_report",
    "by_path",
    "by_run",
    "CannotCompare",
    "compare",
    "exit_code",
    "read_benchmark_json",
    "read_results",
    "format_value",
    "get_metric",
    "load",
    "migrate",
    "read_run_info",
    "read_samples",
    "render",
    "render_summary",
    "runs",
    "summarize",
    "summary_text",
    "write_report",
    "write_run_reports",
]
