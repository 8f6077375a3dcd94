"""The notebook-style example runs through the Python API alone and does what it says."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from loadbench.results import load, read_run_info

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "api_tour.py"


def test_the_api_tour_runs_reports_and_compares(builtin_cache: Path, tmp_path: Path) -> None:
    out = tmp_path / "tour"
    result = subprocess.run([sys.executable, str(EXAMPLE), "--repeats", "7", "--output", str(out)],
                            capture_output=True, text=True, timeout=900,
                            env={**os.environ, "LOADBENCH_CACHE_DIR": str(builtin_cache)})
    assert result.returncode == 0, result.stdout + result.stderr
    for run in ("first", "second"):
        info = read_run_info(out / run)
        assert info["status"] == "complete" and info["suite"]["name"] == "api-tour"
        df = load(out / run)
        measured = df[(df.metric == "load_s") & ~df.warmup]
        assert sorted(measured.groupby("path").size().items()) == [("base", 7), ("task", 7)]
        assert (out / run / "report.html").is_file() and (out / run / "report.md").is_file()
    html = (out / "first.html").read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") or html.lstrip().lower().startswith("<!doctype html>")
    assert "tiny-bert" in result.stdout
    # The comparison table names both paths and both metrics, each with a verdict.
    table = result.stdout.split("exit code a CI gate would use:")[0]
    for word in ("base", "task", "load_s", "peak_rss_bytes"):
        assert word in table
    # 7 samples a side (the fewest that bound an interval of 2 rows at 0.01): decided or inconclusive.
    assert result.stdout.strip().splitlines()[-1] in ("exit code a CI gate would use: 0",
                                                      "exit code a CI gate would use: 1",
                                                      "exit code a CI gate would use: 3")
