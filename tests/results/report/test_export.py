"""CSV, Parquet and JSON: the data itself, for other tools."""

from __future__ import annotations

import importlib.util
import io
import json
from pathlib import Path

import pandas as pd
import pytest

from loadbench.results import MissingDependency, ReportError, build_report
from loadbench.results.analysis.summary import SUMMARY_COLUMNS
from loadbench.results.report.export import export


@pytest.fixture
def report(synthetic_pair: tuple[Path, Path]):
    return build_report(list(synthetic_pair))


def test_csv_defaults_to_the_tidy_records(report) -> None:
    frame = pd.read_csv(io.StringIO(export(report, "csv")))
    assert len(frame) == len(report.records) and list(frame.columns) == list(report.records.columns)
    assert set(frame["torch_version"]) == {"2.13.0+cpu", "2.14.0+cpu"}
    summary = pd.read_csv(io.StringIO(export(report, "csv", "summary")))
    assert list(summary.columns) == list(SUMMARY_COLUMNS) and len(summary) == len(report.summary)


def test_parquet_round_trip(report) -> None:
    frame = pd.read_parquet(io.BytesIO(export(report, "parquet")))
    pd.testing.assert_series_equal(frame["value"], report.records["value"].reset_index(drop=True))
    assert frame["warmup"].dtype == bool and (frame["metric"] == report.records["metric"].values).all()


def test_parquet_without_pyarrow(report, monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pyarrow" else real(name, *a))
    with pytest.raises(MissingDependency, match=r"pip install 'loadbench\[parquet\]'"):
        export(report, "parquet")


def test_json_is_summary_with_run_info(report) -> None:
    document = json.loads(export(report, "json"))
    assert document["format"] == "loadbench-report" and document["format_version"] == 1
    assert [r["letter"] for r in document["runs"]] == ["A", "B"]
    assert document["runs"][1]["info"]["fingerprint"]["packages"]["torch"] == "2.14.0+cpu"
    assert document["fingerprint_differences"][0]["field"] == "torch_version"
    rows = document["summary"]
    assert len(rows) == len(report.summary) and set(rows[0]) == set(SUMMARY_COLUMNS)
    na = next(r for r in rows if r["status"] == "not_applicable")
    assert na["median"] is None and na["cv"] is None  # NaN becomes null, never the invalid token NaN
    records = json.loads(export(report, "json", "records"))["records"]
    assert len(records) == len(report.records)


def test_unknown_format_and_what(report) -> None:
    with pytest.raises(ReportError, match="`format` 'xlsx': choose one of"):
        export(report, "xlsx")
    with pytest.raises(ReportError, match="`what` 'everything': choose one of"):
        export(report, "csv", "everything")
