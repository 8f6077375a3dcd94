"""The harness self-benchmark: structure of its result and its CLI, never a timing threshold.

Timing claims live in the benchmark's own output; this machine is too noisy for them.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from loadbench.bench.studies.selfbench import SelfBenchResult, run_selfbench


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """The CLI with 2 samples, started first so its ~20 s overlap the in-process run's."""
    output = tmp_path_factory.mktemp("selfbench") / "selfbench.jsonl"
    process = subprocess.Popen([sys.executable, "-m", "loadbench.bench.studies.selfbench", "--samples", "2",
                                "--output", str(output)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    yield process, output
    if process.poll() is None:
        process.kill()
        process.communicate()


def test_run_selfbench_returns_interleaved_samples_and_their_ratio(cli_run) -> None:
    result = run_selfbench(samples=2)
    assert isinstance(result, SelfBenchResult)
    assert len(result.zygote_s) == len(result.naive_s) == 2
    assert all(value > 0 for value in (*result.zygote_s, *result.naive_s, result.zygote_start_s))
    assert result.median_zygote_s == statistics.median(result.zygote_s)
    assert result.median_naive_s == statistics.median(result.naive_s)
    assert result.ratio == pytest.approx(statistics.median(result.zygote_s) / statistics.median(result.naive_s))
    assert result.passed == (result.ratio <= 0.25)


def test_run_selfbench_rejects_zero_samples() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        run_selfbench(samples=0)


def test_cli_prints_the_ratio_and_writes_one_line_per_sample_then_a_summary(cli_run) -> None:
    process, output = cli_run
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    assert "ratio of medians" in stdout
    assert "PASS" in stdout or "FAIL" in stdout
    records = [json.loads(line) for line in output.read_text().splitlines()]
    assert len(records) == 5
    samples, summary = records[:4], records[4]
    assert [(r["variant"], r["sample"]) for r in samples] == [
        ("zygote", 0), ("naive_process", 0), ("zygote", 1), ("naive_process", 1)]
    assert all(r["benchmark"] == "harness_overhead" and r["unit"] == "s" and r["value"] > 0 for r in samples)
    values = {v: [r["value"] for r in samples if r["variant"] == v] for v in ("zygote", "naive_process")}
    stats = summary["summary"]
    assert summary["benchmark"] == "harness_overhead" and stats["samples"] == 2
    expected = statistics.median(values["zygote"]) / statistics.median(values["naive_process"])
    assert stats["ratio"] == pytest.approx(expected)
    assert stats["machine"]["cpu_count"] >= 1
