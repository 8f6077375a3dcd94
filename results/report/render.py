"""One entry point for every report format, and where reports go by default.

The CLI and ``loadbench run`` both come through here, so "the report of a run"
means the same files whichever way it was made.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from loadbench.results.report.model import FORMATS, Report, ReportError, build_report

__all__ = ["EXTENSIONS", "RUN_REPORTS", "check_format", "default_output", "render", "write_report",
           "write_run_reports"]

EXTENSIONS: dict[str, str] = {"markdown": "md", "html": "html", "csv": "csv", "parquet": "parquet", "json": "json"}
# Written into every run directory when `loadbench run` ends.
RUN_REPORTS: tuple[str, ...] = ("markdown", "html")
# Formats that go to stdout unless --output is given: text a shell pipes on.
_STDOUT_FORMATS = ("markdown", "csv", "json")


def check_format(fmt: str, what: str | None) -> None:
    """ReportError unless ``fmt`` is a format and ``what`` (a table) goes with it: checked before any work."""
    if fmt not in FORMATS:
        raise ReportError(f"`format` {fmt!r}: choose one of {', '.join(FORMATS)}")
    if what is not None and fmt in ("markdown", "html"):
        raise ReportError(f"`what` applies to csv, parquet and json, not {fmt}")


def render(report: Report, fmt: str, what: str | None = None) -> str | bytes:
    """The report in ``fmt`` (one of FORMATS): text, or bytes for Parquet.

    ``what`` (records or summary) picks the table of csv/parquet/json; it is an
    error for markdown and html, which always show the summary.
    """
    check_format(fmt, what)
    if fmt in ("markdown", "html"):
        if fmt == "markdown":
            from loadbench.results.report.markdown import render_markdown

            return render_markdown(report)
        from loadbench.results.report.html.page import render_html

        return render_html(report)
    from loadbench.results.report.export import export

    return export(report, fmt, what)


def default_output(report: Report, fmt: str) -> Path | None:
    """Where a report goes without --output: None (stdout) for markdown, csv and json; a file for
    html and parquet: ``<run>/report.html`` for one run, ``./loadbench-report.html`` for several."""
    if fmt in _STDOUT_FORMATS:
        return None
    name = f"report.{EXTENSIONS[fmt]}"
    if len(report.runs) == 1:
        return report.runs[0].run_dir / name
    return Path(f"loadbench-{name}")


def write_report(report: Report, fmt: str, output: Path, what: str | None = None) -> Path:
    """Render and write one report file (parent directories must exist); returns the path."""
    content = render(report, fmt, what)
    if isinstance(content, bytes):
        output.write_bytes(content)
    else:
        output.write_text(content, encoding="utf-8")
    return output


def write_run_reports(runs: str | Path | Iterable[str | Path] | Report, directory: Path | None = None,
                      formats: Iterable[str] = RUN_REPORTS, cv_threshold: float | None = None) -> list[Path]:
    """Write report.md and report.html (by default) for the runs; into the run directory for one run.

    ``runs``: run directories, or the Report of them when the caller has built it already
    (a run's printed summary and its reports share one: reading and summarizing the records
    again took 0.2 s of the default suite). Returns the paths written, in ``formats`` order.
    """
    report = runs if isinstance(runs, Report) else build_report(runs, cv_threshold=cv_threshold)
    target = directory if directory is not None else report.runs[0].run_dir
    return [write_report(report, fmt, target / f"report.{EXTENSIONS[fmt]}") for fmt in formats]
