"""``loadbench report``: every format for one run and for two runs side by side, and its errors.

Runs are written through RunWriter (tests/results/synthetic.py), not measured: the real
runs of test_cli.py already end in the same report-writing code.
"""

from __future__ import annotations

import importlib.util
import io
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd
import pytest

from loadbench.bench.cli.main import main
from loadbench.results import load, summarize

RUN_A, RUN_B = "20260101T000000Z-aaaa", "20260102T000000Z-bbbb"


def _synthetic() -> ModuleType:
    path = Path(__file__).parents[2] / "results" / "synthetic.py"
    spec = importlib.util.spec_from_file_location("loadbench_tests_synthetic", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


synthetic = _synthetic()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("report-runs")
    # 10 repeats: enough for compare's test to reach a verdict on the runs side by side.
    a = synthetic.write_run(root / "a", RUN_A, repeats=10)
    b = synthetic.write_run(root / "b", RUN_B, slowdown=1.3, torch="2.14.0+cpu", repeats=10)
    return a, b


def test_markdown_to_stdout_for_one_run(runs: tuple[Path, Path], tmp_path: Path, cli) -> None:
    result = cli("report", str(runs[0]), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith(f"# loadbench report: run {RUN_A}\n")
    assert out.index("## Environment") < out.index("## Paths side by side")
    assert "| torch | 2.13.0+cpu |" in out
    assert "| tiny-llama | text-generation | warm | load_s | **200 ms ±1%** | 220 ms ±1% |" in out
    assert "FAILED [" in out and "RuntimeError: worker crashed: out of memory" in out
    assert synthetic.NA_REASON in out
    assert not list(tmp_path.iterdir())  # stdout only


def test_markdown_for_two_runs_says_the_environments_differ(runs: tuple[Path, Path], tmp_path: Path, cli) -> None:
    result = cli("report", *map(str, runs), "--output", str(tmp_path / "r.md"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"report: {tmp_path / 'r.md'}\n"
    text = (tmp_path / "r.md").read_text()
    assert "**These runs were measured in different environments**" in text
    assert "torch_version: 2.13.0+cpu (A), 2.14.0+cpu (B)" in text
    assert "| tiny-llama | task | warm | load_s | 220 ms ±1% | 286 ms ±1% | 1.30× **regressed** |" in text


def test_html_for_two_runs_default_output_in_cwd(runs: tuple[Path, Path], tmp_path: Path, cli) -> None:
    result = cli("report", *map(str, runs), "--format", "html", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    page = (tmp_path / "loadbench-report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and page.count("data:image/png;base64,") == 7  # 3 per run + trend
    assert 'id="fingerprint-warning"' in page


def test_html_for_one_run_goes_into_the_run_directory(tmp_path: Path, cli) -> None:
    run = synthetic.write_run(tmp_path / "run", RUN_A)
    result = cli("report", str(run), "--format", "html", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"report: {run / 'report.html'}\n"
    assert (run / "report.html").read_text().count("data:image/png;base64,") == 3


def test_csv_records_and_summary(runs: tuple[Path, Path], tmp_path: Path, cli) -> None:
    result = cli("report", *map(str, runs), "--format", "csv", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    records = pd.read_csv(io.StringIO(result.stdout))
    expected = load(list(runs))
    assert len(records) == len(expected) and list(records.columns) == list(expected.columns)
    assert set(records["torch_version"]) == {"2.13.0+cpu", "2.14.0+cpu"}
    result = cli("report", str(runs[0]), "--format", "csv", "--what", "summary", "--output",
                 str(tmp_path), cwd=tmp_path)  # a directory: report.csv inside
    assert result.returncode == 0, result.stderr
    summary = pd.read_csv(tmp_path / "report.csv")
    assert len(summary) == len(summarize(load(runs[0])))


def test_parquet_and_json(runs: tuple[Path, Path], tmp_path: Path, cli) -> None:
    result = cli("report", *map(str, runs), "--format", "parquet", "--output", str(tmp_path / "r.parquet"),
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    frame = pd.read_parquet(tmp_path / "r.parquet")
    assert len(frame) == len(load(list(runs))) and set(frame["run_id"]) == {RUN_A, RUN_B}
    result = cli("report", *map(str, runs), "--format", "json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert [r["run_id"] for r in document["runs"]] == [RUN_A, RUN_B]
    assert document["fingerprint_differences"] == [
        {"field": "torch_version", "values": ["2.13.0+cpu", "2.14.0+cpu"], "key": True}]
    assert len(document["summary"]) == len(summarize(load(list(runs))))


@pytest.mark.parametrize("case", ["missing", "not_a_run", "corrupt", "twice", "what_for_html", "bad_output"])
def test_unusable_input_is_one_line_and_exit_2(case: str, runs: tuple[Path, Path], tmp_path: Path,
                                               cli) -> None:
    args = {
        "missing": [str(tmp_path / "nope")],
        "not_a_run": [str(tmp_path)],
        "corrupt": [str(tmp_path / "corrupt")],
        "twice": [str(runs[0]), str(runs[0])],
        "what_for_html": [str(runs[0]), "--format", "html", "--what", "records"],
        "bad_output": [str(runs[0]), "--output", str(tmp_path / "no" / "such" / "r.md")],
    }[case]
    if case == "corrupt":
        (tmp_path / "corrupt").mkdir()
        (tmp_path / "corrupt" / "run.json").write_text("{not json")
    result = cli("report", *args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("loadbench: error: ") and len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""
    if case == "what_for_html":  # the API's keyword, as the flag the user typed
        assert "--what applies to csv, parquet and json, not html" in result.stderr


def test_parquet_without_pyarrow_is_exit_2(runs: tuple[Path, Path], tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pyarrow" else real(name, *a))
    assert main(["report", str(runs[0]), "--format", "parquet", "--output", str(tmp_path / "r.parquet")]) == 2
    assert "pip install 'loadbench[parquet]'" in capsys.readouterr().err
    assert not (tmp_path / "r.parquet").exists()


def test_run_ends_by_writing_its_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The end of `loadbench run` (and of --resume), here of an interrupted run: its reports are
    # written too, and say it is partial. The real runs in test_cli.py end in the same code.
    from loadbench.bench.api import _finished
    from loadbench.bench.cli.run import _finish
    from loadbench.bench.runner import RunOutcome
    from loadbench.bench.suite import default_suite

    run = synthetic.write_run(tmp_path / "run", RUN_A, status="interrupted")
    result = _finished(RunOutcome(run, samples=72, failed_samples=4, interrupted=True), default_suite(), reports=True)
    assert _finish(result) == 130
    out = capsys.readouterr().out
    assert f"report: {run / 'report.md'}  {run / 'report.html'}" in out
    markdown = (run / "report.md").read_text()
    assert markdown.startswith(f"# loadbench report: run {RUN_A}")
    assert f"run A: {RUN_A} is interrupted: its results are partial" in markdown
    assert (run / "report.html").read_text().count("data:image/png;base64,") == 3


def test_run_prints_its_summary_before_it_writes_its_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The plots take seconds: the table is on screen first, and a Ctrl-C in them keeps it there."""
    from loadbench.bench.api import _finished
    from loadbench.bench.cli.run import _finish
    from loadbench.bench.runner import RunOutcome
    from loadbench.bench.suite import default_suite

    run = synthetic.write_run(tmp_path / "run", RUN_A)
    printed_before: list[str] = []

    def interrupted_reports(*args: object, **kwargs: object) -> None:
        printed_before.append(capsys.readouterr().out)
        raise KeyboardInterrupt

    monkeypatch.setattr("loadbench.results.write_run_reports", interrupted_reports)
    result = _finished(RunOutcome(run, samples=72, failed_samples=0, interrupted=False), default_suite(),
                       reports=False)
    assert result.reports == () and _finish(result) == 0
    [summary] = printed_before
    assert "load_s" in summary
    captured = capsys.readouterr()
    assert "(reports skipped: interrupted again; `loadbench report RUN` makes them)" in captured.err
    assert "report: " not in captured.out and not (run / "report.html").exists()


def test_run_reads_its_records_once_for_the_summary_and_the_reports(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from loadbench.bench.api import _finished
    from loadbench.bench.cli.run import _finish
    from loadbench.bench.runner import RunOutcome
    from loadbench.bench.suite import default_suite
    from loadbench.results.records import frame

    read: list[object] = []

    def counted(run_dir: Path) -> list[dict[str, Any]]:
        read.append(run_dir)
        return original(run_dir)

    original = frame.read_samples
    monkeypatch.setattr(frame, "read_samples", counted)
    run = synthetic.write_run(tmp_path / "run", RUN_A)
    result = _finished(RunOutcome(run, samples=72, failed_samples=0, interrupted=False), default_suite(),
                       reports=False)
    assert _finish(result) == 0 and read == [run]
    printed = capsys.readouterr().out
    assert "load_s" in printed and f"report: {run / 'report.md'}  {run / 'report.html'}" in printed
    assert (run / "report.md").read_text().startswith(f"# loadbench report: run {RUN_A}")
