"""Load rates and shares of the machine's ceiling, from known inputs: the arithmetic and where it applies."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from loadbench.results import RunWriter, Sample, load, summarize, summary_text
from loadbench.results.analysis.ceiling import CEILING_LEGEND, ceiling_rows, ceiling_summary, ceiling_text
from loadbench.results.report.markdown import render_markdown
from loadbench.results.report.model import build_report

GB = 1e9


def _rate(median: float | None, reason: str | None = None) -> dict[str, Any]:
    return {"median_bytes_per_s": median, "repeats_bytes_per_s": [] if median is None else [median * 0.9, median],
            "size_bytes": 256 << 20, "reason": reason, "note": None}


CUDA_REASON = "not measured: no CUDA device (torch sees none)"
CEILING = {
    "machine": "h1-0000", "hostname": "h1",
    "memory_read": _rate(40 * GB), "memory_copy": _rate(20 * GB),
    "h2d_pinned": _rate(None, CUDA_REASON), "h2d_pageable": _rate(None, CUDA_REASON),
    "device_memory_read": _rate(None, CUDA_REASON),
    "storage": {"org/model": {"filesystem": "/ (device 1:2)", "cold_read": _rate(1 * GB)}},
}


def _run(tmp_path: Path, case: dict[str, str], ceiling: Any = CEILING, hostname: str = "h1",
         cache: str = "cold") -> Path:
    """One case: weights read in 2 s (1 GB of files), 10 tok/s decoding a batch of 2 over 1 GB of weights."""
    info: dict[str, Any] = {"run_id": "r", "suite": {"batch_size": 2}, "fingerprint": {"hostname": hostname}}
    if ceiling is not None:
        info["ceiling"] = ceiling
    at = {**case, "cache": cache}
    run_dir = tmp_path / f"run-{hostname}-{cache}-{ceiling is None}"
    with RunWriter.create(run_dir, info) as writer:
        for repeat, weights_s in enumerate((1.5, 2.0, 2.5)):
            writer.append(Sample.ok(at, "r", repeat, "weights_s", weights_s))
            writer.append(Sample.ok(at, "r", repeat, "weights_file_bytes", 1 * GB))
            writer.append(Sample.ok(at, "r", repeat, "weights_resident_bytes", 1 * GB))
            writer.append(Sample.ok(at, "r", repeat, "decode_tokens_per_s", 10.0))
    return run_dir


def _row(summary: Any, metric: str) -> Any:
    return summary[summary["metric"] == metric].iloc[0]


def test_load_rate_and_shares_from_known_inputs(tmp_path: Path, case: dict[str, str]) -> None:
    summary = summarize(load(_run(tmp_path, case)))
    weights = _row(summary, "weights_s")
    assert weights["rate_bytes_per_s"] == pytest.approx(0.5 * GB)  # 1 GB over the median 2 s
    assert weights["of_ceiling"] == pytest.approx(0.5)  # of a 1 GB/s disk
    # bound: batch 2 x 40 GB/s / 1 GB per step = 80 tok/s; measured 10
    assert _row(summary, "decode_tokens_per_s")["of_ceiling"] == pytest.approx(10 / 80)
    assert math.isnan(_row(summary, "decode_tokens_per_s")["rate_bytes_per_s"])
    for metric in ("weights_file_bytes", "weights_resident_bytes"):
        assert math.isnan(_row(summary, metric)["of_ceiling"])


def test_a_warm_load_gets_no_rate(tmp_path: Path, case: dict[str, str]) -> None:
    summary = summarize(load(_run(tmp_path, case, cache="warm")))
    assert math.isnan(_row(summary, "weights_s")["rate_bytes_per_s"])
    assert _row(summary, "decode_tokens_per_s")["of_ceiling"] == pytest.approx(10 / 80)


def test_no_ceiling_means_a_rate_but_no_share(tmp_path: Path, case: dict[str, str]) -> None:
    for run_dir in (_run(tmp_path, case, ceiling=None), _run(tmp_path, case, hostname="other-host")):
        summary = summarize(load(run_dir))
        weights = _row(summary, "weights_s")
        assert weights["rate_bytes_per_s"] == pytest.approx(0.5 * GB)
        assert math.isnan(weights["of_ceiling"])
        assert math.isnan(_row(summary, "decode_tokens_per_s")["of_ceiling"])


def test_cells_show_the_rate_and_share_after_the_time(tmp_path: Path, case: dict[str, str]) -> None:
    text = summary_text(load(_run(tmp_path, case)), width=240)
    weights = next(line for line in text.splitlines() if "weights_s" in line)
    assert "2.00 s ±25% ! (500 MB/s, 50%)" in weights
    decode = next(line for line in text.splitlines() if "decode_tokens_per_s" in line)
    assert "10.0 tok/s ±0% (12%)" in decode
    assert CEILING_LEGEND.split(" after ")[0] in text


def test_ceiling_text_of_small_and_missing_values() -> None:
    class Row:
        rate_bytes_per_s = float("nan")
        of_ceiling = 0.001

    assert ceiling_text(Row()) == " (<1%)"
    assert ceiling_text(object()) == ""


def test_markdown_report_shows_the_ceiling_and_legend(tmp_path: Path, case: dict[str, str]) -> None:
    markdown = render_markdown(build_report(_run(tmp_path, case)))
    assert "(500 MB/s, 50%)" in markdown and CEILING_LEGEND in markdown
    ceiling = next(line for line in markdown.splitlines() if line.startswith("| ceiling"))
    assert "cold read (org/model): 1.00 GB/s (median of 2, spread 10%)" in ceiling
    assert "memory read: 40.0 GB/s" in ceiling
    # The three CUDA rates share one reason, said once.
    assert ceiling.count("no CUDA device") == 1


def test_ceiling_rows_say_why_there_is_none() -> None:
    assert ceiling_rows({}) == [("ceiling", "not recorded (a run made before loadbench measured it)")]
    assert ceiling_summary({"ceiling": {"not_measured": "samples run on ray nodes"}}) == (
        "ceiling: not measured: samples run on ray nodes")
