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

from loadbench.results.analysis.metrics import METRICS, Metric, UnknownMetric, format_value, get_metric
from loadbench.results.analysis.pivot import by_path, by_run
from loadbench.results.analysis.summary import render_summary, summarize, summary_text
from loadbench.results.comparison.comparability import CannotCompare
from loadbench.results.comparison.unpaired import compare, exit_code
from loadbench.results.records.benchjson import read_benchmark_json, read_results
from loadbench.results.records.frame import DuplicateRun, load, runs
from loadbench.results.records.migrations import migrate
from loadbench.results.records.runinfo import COMPARABILITY_KEYS, FINGERPRINT_COLUMNS
from loadbench.results.records.schema import (
    CASE_KEYS,
    SCHEMA_VERSION,
    InvalidRecord,
    Sample,
    UnsupportedSchema,
)
from loadbench.results.records.store import (
    CorruptRun,
    NotARun,
    RunExists,
    RunWriter,
    TruncatedRunWarning,
    read_run_info,
    read_samples,
)
from loadbench.results.report.export import MissingDependency
from loadbench.results.report.model import FORMATS, Report, ReportError, build_report
from loadbench.results.report.render import render, write_report, write_run_reports

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
    "ReportError",
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
