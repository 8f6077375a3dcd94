"""One entry point for all formats, and where reports go by default."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadbench.results import ReportError, build_report, render, write_run_reports
from loadbench.results.report.render import default_output


def test_default_outputs(synthetic_pair: tuple[Path, Path]) -> None:
    one, two = build_report(synthetic_pair[0]), build_report(list(synthetic_pair))
    assert default_output(one, "markdown") is None and default_output(one, "json") is None
    assert default_output(one, "html") == synthetic_pair[0] / "report.html"
    assert default_output(two, "parquet") == Path("loadbench-report.parquet")


def test_what_is_only_for_data_formats(synthetic_run: Path) -> None:
    report = build_report(synthetic_run)
    with pytest.raises(ReportError, match="`what` applies to csv, parquet and json"):
        render(report, "markdown", "records")
    with pytest.raises(ReportError, match="`format` 'pdf': choose one of"):
        render(report, "pdf")
    assert render(report, "markdown").startswith("# loadbench report")


def test_write_run_reports_markdown_only(synthetic_run: Path) -> None:
    # HTML is covered by the CLI and HTML tests; markdown alone keeps this fast.
    assert write_run_reports(synthetic_run, formats=["markdown"]) == [synthetic_run / "report.md"]
    assert (synthetic_run / "report.md").read_text().startswith("# loadbench report: run ")
