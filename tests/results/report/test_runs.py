"""Runs side by side carry compare's verdicts: the report and `loadbench compare` never disagree."""

from __future__ import annotations

import os
from pathlib import Path
from unittest import mock

import pytest

from loadbench.results import RunWriter, Sample, build_report, load, render
from loadbench.results.comparison.unpaired import compare
from loadbench.results.records.runinfo import machine_key
from loadbench.results.report.runs import COMPARE_METRICS, NO_VERDICT
from loadbench.results.report.runs_table import run_comparison, verdict_notes

CASE = {"checkpoint": "org/model", "path": "base", "task": "feature-extraction", "dtype": "float32",
        "device": "cpu", "cache": "warm"}
FINGERPRINT = {"hostname": "ci-1", "cpu_model": "AMD EPYC", "cpu_count": 2, "gpus": "NVML unavailable",
               "python": "3.11.7", "packages": {"torch": "2.13.0+cpu", "transformers": "5.24.0"}}
OTHER = {**FINGERPRINT, "hostname": "ci-2", "cpu_model": "Intel Xeon"}
BASE = [1.00 + 0.01 * i for i in range(10)]  # 10 distinct values around 1.045


def _write(run_dir: Path, run_id: str, values: dict[tuple[str, str], list[float]],
           failed: tuple[str, ...] = (), nodes: dict[str, dict] | None = None) -> Path:
    """A run of ``{(path, metric): samples}``; ``failed`` paths fail every sample; with ``nodes``,
    samples alternate between them by repeat."""
    info = {"run_id": run_id, "suite": {"name": "t", "repeats": 10}, "fingerprint": FINGERPRINT}
    ids = list(nodes or {})
    with mock.patch.object(os, "fsync", lambda fd: None), \
            RunWriter.create(run_dir, {**info, **({"nodes": nodes} if nodes else {})}) as writer:
        for (path, metric), samples in values.items():
            for repeat, value in enumerate(samples):
                node = {"node": ids[repeat % len(ids)]} if ids else {}
                writer.append(Sample.ok({**CASE, "path": path}, run_id, repeat, metric, value, **node))
        for path in failed:
            for repeat in range(10):
                writer.append(Sample.failed({**CASE, "path": path}, run_id, repeat, "load_s", "OSError", "disk full"))
    return run_dir


def _changes(rows: list[dict], later: int = 0) -> dict[tuple[str, str], tuple[float, str]]:
    return {(r["path"], r["metric"]): (r["changes"][later].ratio, r["changes"][later].verdict) for r in rows}


def test_clear_differences_get_compares_verdicts(tmp_path: Path) -> None:
    a = _write(tmp_path / "a", "run-a", {("base", "load_s"): BASE, ("base", "peak_rss_bytes"): BASE,
                                         ("base", "forward_tokens_per_s"): BASE, ("task", "load_s"): BASE,
                                         ("custom", "load_s"): BASE})
    b = _write(tmp_path / "b", "run-b", {("base", "load_s"): [v * 2 for v in BASE],  # 2x slower
                                         ("base", "peak_rss_bytes"): BASE,  # identical
                                         ("base", "forward_tokens_per_s"): [v * 2 for v in BASE],  # 2x faster
                                         ("task", "load_s"): BASE, ("pipeline", "load_s"): BASE},
               failed=("custom",))
    report = build_report([a, b])
    changes = _changes(run_comparison(report))
    assert changes[("base", "load_s")] == (pytest.approx(2.0), "regressed")
    assert changes[("base", "peak_rss_bytes")] == (pytest.approx(1.0), "unchanged")
    assert changes[("base", "forward_tokens_per_s")] == (pytest.approx(2.0), "improved")
    assert changes[("task", "load_s")][1] == "unchanged"
    assert changes[("pipeline", "load_s")][1] == "new"
    assert changes[("custom", "load_s")][1] == "failed"
    assert verdict_notes(report) == []
    # The very verdicts of compare() on the same records.
    table = compare(load(a), load(b), metrics=COMPARE_METRICS, allow_mismatch=True)
    assert {(r.path, r.metric): r.verdict for r in table.itertuples()} == {k: v for k, (_, v) in changes.items()}


def test_every_later_run_is_judged_against_the_first(tmp_path: Path) -> None:
    a = _write(tmp_path / "a", "run-a", {("base", "load_s"): BASE})
    b = _write(tmp_path / "b", "run-b", {("base", "load_s"): [v * 2 for v in BASE]})
    c = _write(tmp_path / "c", "run-c", {("base", "load_s"): BASE})
    [row] = run_comparison(build_report([a, b, c]))
    assert [ch.verdict for ch in row["changes"]] == ["regressed", "unchanged"]


def test_too_few_samples_leave_cells_empty_and_say_why(tmp_path: Path) -> None:
    a = _write(tmp_path / "a", "run-a", {("base", "load_s"): BASE[:3]})
    b = _write(tmp_path / "b", "run-b", {("base", "load_s"): [v * 2 for v in BASE[:3]]})
    report = build_report([a, b])
    [row] = run_comparison(report)
    assert row["changes"] == [NO_VERDICT] and NO_VERDICT.text() == "—"
    [note] = verdict_notes(report)
    assert note == ("Run B: run-b has no verdicts: too few samples to bound any change at alpha 0.01: 3 per side; "
                    "run at least 6 repeats")
    assert note in render(report, "markdown") and note in render(report, "html")


def test_a_verdict_lands_on_the_row_of_its_machine(tmp_path: Path) -> None:
    a = _write(tmp_path / "a", "run-a", {("base", "load_s"): BASE})
    # Run B alternates between A's machine (2x slower there) and another one.
    b = _write(tmp_path / "b", "run-b", {("base", "load_s"): [v * 2 for v in BASE for _ in (0, 1)]},
               nodes={"n1": FINGERPRINT, "n2": OTHER})
    rows = run_comparison(build_report([a, b]))
    by_machine = {r["machine"]: r["changes"][0].verdict for r in rows}
    assert by_machine == {machine_key(FINGERPRINT): "regressed", machine_key(OTHER): "new"}


def test_html_marks_the_verdict(tmp_path: Path) -> None:
    a = _write(tmp_path / "a", "run-a", {("base", "load_s"): BASE})
    b = _write(tmp_path / "b", "run-b", {("base", "load_s"): [v * 2 for v in BASE]})
    page = render(build_report([a, b]), "html")
    assert '<td class="num regressed" data-verdict="regressed">2.00× regressed</td>' in page


def test_an_inconclusive_verdict_is_marked_and_said_in_both_reports(tmp_path: Path) -> None:
    a = _write(tmp_path / "a", "run-a", {("base", "load_s"): BASE})
    # Half the samples 40% slower, half 20% faster: a spread no threshold can be read off.
    b = _write(tmp_path / "b", "run-b", {("base", "load_s"): [v * (1.4 if i % 2 else 0.8) for i, v in enumerate(BASE)]})
    [row] = run_comparison(build_report([a, b]))
    assert row["changes"][0].verdict == "inconclusive"
    page = render(build_report([a, b]), "html")
    assert '<td class="num inconclusive" data-verdict="inconclusive">' in page and ".inconclusive{" in page
    assert "otherwise inconclusive" in page
    assert "× **inconclusive**" in render(build_report([a, b]), "markdown")
