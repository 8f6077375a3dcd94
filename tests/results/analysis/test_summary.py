"""Per-case statistics and the side-by-side report."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd
import pytest

from loadbench.results import RunWriter, Sample, load, render_summary, summarize, summary_text
from loadbench.results.analysis.summary import WrongFrame
from loadbench.results.records.runinfo import machine_key

MakeRun = Callable[[Iterable[Sample]], Path]
SUMMARY_COLUMNS = [
    "run_id", "checkpoint", "path", "task", "dtype", "device", "cache", "options", "env", "machine", "metric", "n",
    "n_failed", "median", "q1", "q3", "min", "max", "iqr", "cv", "unstable", "unit", "direction", "status", "reason",
    "rate_bytes_per_s", "of_ceiling",
]


def _at(case: dict[str, str], **changes: str) -> dict[str, str]:
    return {**case, **changes}


def test_statistics_against_hand_computed_values(make_run: MakeRun, case: dict[str, str]) -> None:
    values = [10.0, 2.0, 1.0, 3.0]  # unsorted on purpose
    df = load(make_run(Sample.ok(case, "r", i, "load_s", v) for i, v in enumerate(values)))
    row = summarize(df).iloc[0]
    # Sorted: 1, 2, 3, 10. Linear quantile at q sits at position q*(n-1):
    #   q25 -> 0.75: 1 + 0.75*(2-1) = 1.75;  q75 -> 2.25: 3 + 0.25*(10-3) = 4.75.
    # mean 4; squared deviations 9+4+1+36 = 50; sample std = sqrt(50/3).
    assert row["n"] == 4 and row["n_failed"] == 0
    assert row["median"] == pytest.approx(2.5)
    assert (row["min"], row["max"]) == (1.0, 10.0)
    assert (row["q1"], row["q3"]) == (pytest.approx(1.75), pytest.approx(4.75))
    assert row["iqr"] == pytest.approx(3.0)
    assert row["cv"] == pytest.approx(math.sqrt(50 / 3) / 4)
    assert (row["unit"], row["direction"], row["status"]) == ("s", "lower", "ok")
    assert pd.isna(row["reason"])


def test_columns_and_one_row_per_case_and_metric(golden_run: Path) -> None:
    summary = summarize(load(golden_run))
    assert list(summary.columns) == SUMMARY_COLUMNS
    assert len(summary) == 6
    assert not summary.duplicated(["checkpoint", "path", "task", "dtype", "device", "cache", "env", "metric"]).any()
    assert summary["n"].tolist() == [2, 2, 0, 2, 2, 0]
    assert summary["cache"].tolist() == ["unspecified"] * 6
    assert summary["env"].tolist() == ["default"] * 6
    base = summary.iloc[0]
    assert base["median"] == pytest.approx((0.412 + 0.398) / 2)
    assert base["iqr"] == pytest.approx(0.5 * (0.412 - 0.398))


def test_warmup_samples_are_ignored(make_run: MakeRun, case: dict[str, str]) -> None:
    df = load(make_run([
        Sample.ok(case, "r", 0, "load_s", 1000.0, warmup=True),  # wild: would drag every stat
        Sample.ok(case, "r", 1, "load_s", 1.0),
        Sample.ok(case, "r", 2, "load_s", 2.0),
        Sample.ok(case, "r", 3, "load_s", 3.0),
        Sample.failed(case, "r", 0, "ttft_s", "RuntimeError", "warmup blew up", warmup=True),
        Sample.ok(case, "r", 1, "ttft_s", 0.25),
        Sample.ok(case, "r", 0, "peak_rss_bytes", 1024.0, warmup=True),  # only a warmup
    ]))
    assert df["warmup"].sum() == 3  # load() keeps them; summarize() drops them
    summary = summarize(df).set_index("metric")
    assert sorted(summary.index) == ["load_s", "ttft_s"]
    load_s = summary.loc["load_s"]
    assert (load_s["n"], load_s["n_failed"]) == (3, 0)
    assert (load_s["median"], load_s["min"], load_s["max"]) == (2.0, 1.0, 3.0)
    assert load_s["cv"] == pytest.approx(0.5)  # std 1 / mean 2
    ttft = summary.loc["ttft_s"]
    assert (ttft["n"], ttft["n_failed"], ttft["status"]) == (1, 0, "ok")
    assert pd.isna(ttft["reason"])


def test_cache_is_a_grouping_key(make_run: MakeRun, case: dict[str, str]) -> None:
    df = load(make_run([
        Sample.ok(case, "r", 0, "load_s", 1.0),
        Sample.ok(_at(case, cache="cold"), "r", 0, "load_s", 5.0),
        Sample.ok(case, "r", 1, "load_s", 3.0),
    ]))
    summary = summarize(df)
    assert summary[["cache", "n", "median"]].values.tolist() == [["warm", 2, 2.0], ["cold", 1, 5.0]]


def test_env_is_a_grouping_key(make_run: MakeRun, case: dict[str, str]) -> None:
    df = load(make_run([
        Sample.ok(case, "r", 0, "load_s", 1.0),
        Sample.ok(_at(case, env="py313"), "r", 0, "load_s", 5.0),
        Sample.ok(case, "r", 1, "load_s", 3.0),
    ]))
    summary = summarize(df)
    assert summary[["env", "n", "median"]].values.tolist() == [["default", 2, 2.0], ["py313", 1, 5.0]]


def test_golden_v2_summary(golden_run_v2: Path) -> None:
    summary = summarize(load(golden_run_v2))
    assert list(summary.columns) == SUMMARY_COLUMNS
    got = summary[["path", "cache", "metric", "n", "n_failed", "status"]].values.tolist()
    assert got == [
        ["base", "warm", "load_s", 2, 0, "ok"],
        ["base", "cold", "load_s", 2, 0, "ok"],
        ["pipeline", "warm", "load_s", 2, 0, "ok"],
        ["pipeline", "warm", "first_forward_s", 0, 1, "failed"],
        ["base", "warm", "decode_tokens_per_s", 0, 0, "not_applicable"],
    ]
    # The 2.75 s warmup load is discarded: it moves neither the median nor the max.
    warm = summary.iloc[0]
    assert warm["median"] == pytest.approx((0.401 + 0.395) / 2) and warm["max"] == 0.401
    assert summary.iloc[1]["median"] == pytest.approx((1.84 + 1.92) / 2)
    assert summary.iloc[3]["reason"] == "RuntimeError: pipeline returned no logits to time"
    assert summary.iloc[4]["reason"] == "encoder-only model: nothing to decode"


def test_single_sample_has_nan_cv(make_run: MakeRun, case: dict[str, str]) -> None:
    row = summarize(load(make_run([Sample.ok(case, "r", 0, "load_s", 1.5)]))).iloc[0]
    assert row["n"] == 1 and row["median"] == 1.5 and row["iqr"] == 0.0
    assert math.isnan(row["cv"])


def test_failed_repeat_counted_apart_from_ok(make_run: MakeRun, case: dict[str, str]) -> None:
    df = load(make_run([
        Sample.ok(case, "r", 0, "load_s", 1.0),
        Sample.failed(case, "r", 1, "load_s", "MemoryError", "out of memory"),
        Sample.ok(case, "r", 2, "load_s", 3.0),
    ]))
    row = summarize(df).iloc[0]
    assert (row["n"], row["n_failed"], row["median"], row["status"]) == (2, 1, 2.0, "ok")
    assert row["reason"] == "MemoryError: out of memory"


def test_status_without_ok_samples(make_run: MakeRun, case: dict[str, str]) -> None:
    df = load(make_run([
        Sample.not_applicable(case, "r", 0, "ttft_s", "encoder-only"),
        Sample.not_applicable(case, "r", 1, "ttft_s", "encoder-only"),
        Sample.not_applicable(case, "r", 0, "decode_tokens_per_s", "encoder-only"),
        Sample.failed(case, "r", 1, "decode_tokens_per_s", "RuntimeError", "boom"),
    ]))
    summary = summarize(df).set_index("metric")
    assert summary.loc["ttft_s", "status"] == "not_applicable"
    assert summary.loc["ttft_s", "reason"] == "encoder-only"
    assert summary.loc["decode_tokens_per_s", "status"] == "failed"
    assert summary.loc["decode_tokens_per_s", "reason"] == "RuntimeError: boom"
    assert (summary["n"] == 0).all() and summary["median"].isna().all()


def test_empty_frame_and_wrong_frame(make_run: MakeRun) -> None:
    empty = summarize(load(make_run([])))
    assert list(empty.columns) == SUMMARY_COLUMNS and empty.empty
    with pytest.raises(WrongFrame, match="load\\(\\) frame"):
        summarize(pd.DataFrame({"value": [1.0]}))


def _cells(text: str) -> list[list[str]]:
    """Table lines split into cells (columns are separated by 2+ spaces)."""
    return [re.split(r"\s{2,}", line.strip()) for line in text.splitlines() if line.strip()]


def _row(text: str, *start: str) -> list[str]:
    matches = [c for c in _cells(text) if c[: len(start)] == list(start)]
    assert len(matches) == 1, f"{start} in\n{text}"
    return matches[0]


@pytest.fixture
def mixed_run(make_run: MakeRun, case: dict[str, str]) -> Path:
    samples = []
    for path, seconds in [("pipeline", 1.25), ("zeta", 2.0), ("custom", 0.9), ("task", 0.5), ("base", 0.4)]:
        where = _at(case, path=path)
        samples += [Sample.ok(where, "r", i, "load_s", seconds) for i in range(2)]
    samples += [
        Sample.ok(case, "r", 0, "peak_rss_bytes", 1.5 * 1024**3),
        Sample.not_applicable(case, "r", 0, "ttft_s", "encoder-only model"),
        Sample.not_applicable(_at(case, path="task"), "r", 0, "ttft_s", "encoder-only model"),
        Sample.failed(_at(case, path="pipeline"), "r", 0, "ttft_s", "RuntimeError", "no generate()"),
    ]
    return make_run(samples)


def test_paths_side_by_side_in_reading_order(mixed_run: Path) -> None:
    text = summary_text(load(mixed_run), spread=False)
    header = _row(text, "checkpoint")
    assert header == ["checkpoint", "task", "metric", "base", "task", "custom", "pipeline", "zeta"]
    assert _row(text, "org/model", "feature-extraction", "load_s")[3:] == [
        "400 ms", "500 ms", "900 ms", "1.25 s", "2.00 s",
    ]
    assert "dtype float32 · device cpu · cache warm" in text
    # Identical repeats: the spread hint says so instead of hiding.
    assert _row(summary_text(load(mixed_run)), "org/model", "feature-extraction", "load_s")[3] == "400 ms ±0%"


def test_na_failed_and_missing_cells_with_footnotes(mixed_run: Path) -> None:
    text = summary_text(load(mixed_run))
    assert _row(text, "org/model", "feature-extraction", "ttft_s")[3:] == [
        "n/a [1]", "n/a [1]", "—", "FAILED [2]", "—",
    ]
    assert _row(text, "org/model", "feature-extraction", "peak_rss_bytes")[3:] == [
        "1.50 GiB", "—", "—", "—", "—",
    ]
    footnotes = [line for line in text.splitlines() if re.match(r"\[\d+\] ", line)]
    assert footnotes == ["[1] encoder-only model", "[2] RuntimeError: no generate()"]


def test_spread_hint_and_partial_failure(make_run: MakeRun, case: dict[str, str]) -> None:
    df = load(make_run([
        Sample.ok(case, "r", 0, "load_s", 0.9),
        Sample.ok(case, "r", 1, "load_s", 1.1),
        Sample.failed(case, "r", 2, "load_s", "OSError", "disk full"),
    ]))
    # cv = std/mean = sqrt(0.02)/1.0 = 14.1%: above the default 10%, so flagged unstable
    assert _row(summary_text(df), "org/model")[-1] == "1.00 s ±14% ! (1 FAILED [1])"
    assert "! unstable: the samples' CV is above 10%" in summary_text(df)
    assert _row(summary_text(df, cv_threshold=0.2), "org/model")[-1] == "1.00 s ±14% (1 FAILED [1])"
    assert _row(summary_text(df, spread=False), "org/model")[-1] == "1.00 s (1 FAILED [1])"


def test_unstable_flag_against_threshold(make_run: MakeRun, case: dict[str, str]) -> None:
    df = load(make_run([Sample.ok(case, "r", i, "load_s", v) for i, v in enumerate([0.9, 1.1])]
                       + [Sample.ok(case, "r", 0, "peak_rss_bytes", 100.0)]))
    flags = summarize(df).set_index("metric")["unstable"]
    assert flags["load_s"] and not flags["peak_rss_bytes"]  # one sample: no CV, not unstable
    assert not summarize(df, cv_threshold=0.15).set_index("metric")["unstable"]["load_s"]


def test_metrics_filter_keeps_only_named_metrics(make_run: MakeRun, case: dict[str, str]) -> None:
    df = load(make_run([Sample.ok(case, "r", 0, "load_s", 1.0), Sample.ok(case, "r", 0, "import_s", 2.0)]))
    text = summary_text(df, metrics=["load_s"])
    assert "load_s" in text and "import_s" not in text


def test_varying_dtype_gets_a_column(make_run: MakeRun, case: dict[str, str]) -> None:
    df = load(make_run([
        Sample.ok(case, "r", 0, "load_s", 1.0),
        Sample.ok(_at(case, dtype="bfloat16"), "r", 0, "load_s", 0.5),
    ]))
    text = summary_text(df)
    assert _row(text, "checkpoint") == ["checkpoint", "task", "dtype", "metric", "base"]
    assert _row(text, "org/model", "feature-extraction", "bfloat16")[-1] == "500 ms"
    assert "device cpu · cache warm" in text and "dtype float32 ·" not in text


def test_varying_cache_gets_a_column(golden_run_v2: Path) -> None:
    text = summary_text(load(golden_run_v2))
    assert _row(text, "checkpoint") == ["checkpoint", "task", "cache", "metric", "base", "pipeline"]
    ck = "sentence-transformers/all-MiniLM-L6-v2"
    assert _row(text, ck, "feature-extraction", "warm", "load_s")[4:] == ["398 ms ±1%", "1.19 s ±2%"]
    assert _row(text, ck, "feature-extraction", "cold", "load_s")[4:] == ["1.88 s ±3%", "—"]
    assert _row(text, ck, "feature-extraction", "warm", "first_forward_s")[4:] == ["—", "FAILED [1]"]
    assert "dtype float32 · device cpu" in text and "cache warm" not in text and "· cache" not in text
    assert "not measured in any case: decode_tokens_per_s: encoder-only model: nothing to decode" in text


def test_fixed_cache_goes_in_the_title(golden_run: Path) -> None:
    text = summary_text(load(golden_run))
    assert "dtype float32 · device cpu · cache unspecified" in text
    assert "cache" not in _row(text, "checkpoint")


def test_render_accepts_summary_frame_and_plain_text_has_no_escapes(golden_run: Path) -> None:
    df = load(golden_run)
    text = summary_text(df)
    assert summary_text(summarize(df)) == text
    assert "\x1b[" not in text
    # n/a everywhere for one reason: a line under the table, not a row of n/a cells.
    assert "not measured in any case: decode_tokens_per_s: encoder-only model: nothing to decode" in text
    assert "decode_tokens_per_s  " not in text
    assert "[1] RuntimeError: pipeline returned no logits to time" in text
    assert _row(text, "hf-internal-testing/tiny-random-gpt2", "text-generation", "load_s")[3:] == [
        "84.7 ms ±4%", "335 ms ±3%",
    ]


def test_empty_report(make_run: MakeRun) -> None:
    assert summary_text(load(make_run([]))).strip() == "no results"
    assert render_summary(load(make_run([]))) is not None


def test_runs_are_never_pooled(make_run: MakeRun, case: dict[str, str]) -> None:
    a = make_run([Sample.ok(case, "run-a", i, "load_s", v) for i, v in enumerate([1.0, 2.0, 3.0])])
    b = make_run([Sample.ok(case, "run-b", i, "load_s", v) for i, v in enumerate([10.0, 20.0])])
    summary = summarize(load([a, b]))
    assert summary[["run_id", "n", "median", "q1", "q3"]].values.tolist() == [
        ["run-a", 3, 2.0, 1.5, 2.5],    # q at 0.25*(3-1)=0.5: 1 + 0.5*(2-1)
        ["run-b", 2, 15.0, 12.5, 17.5],  # q at 0.25: 10 + 0.25*(20-10)
    ]
    # The terminal table shows one table per run, not a merged one.
    text = summary_text(summary)
    assert "run run-a" in text and "run run-b" in text


def test_iqr_and_cv_of_an_odd_sample(make_run: MakeRun, case: dict[str, str]) -> None:
    values = [0.30, 0.10, 0.20, 0.50, 0.40]
    row = summarize(load(make_run(Sample.ok(case, "r", i, "load_s", v) for i, v in enumerate(values)))).iloc[0]
    # Sorted .1 .2 .3 .4 .5: q1 at position 1 (0.2), q3 at position 3 (0.4); mean .3, sample std sqrt(.025).
    assert (row["median"], row["q1"], row["q3"]) == (pytest.approx(0.3), pytest.approx(0.2), pytest.approx(0.4))
    assert row["iqr"] == pytest.approx(0.2)
    assert row["cv"] == pytest.approx(math.sqrt(0.025) / 0.3)
    assert row["unstable"]


H100 = {"hostname": "gpu-1", "cpu_model": "AMD EPYC 9654", "cpu_count": 192,
        "gpus": [{"name": "NVIDIA H100 80GB HBM3"}], "packages": {"torch": "2.13.0"}}
A100 = {**H100, "hostname": "gpu-2", "cpu_model": "Intel Xeon 8480", "gpus": [{"name": "NVIDIA A100-SXM4-80GB"}]}


def _two_node_run(tmp_path: Path, case: dict[str, str], nodes: dict[str, dict] | None = None) -> Path:
    """One case measured three times on node h100 and twice on node a100 (plus a case on h100 only)."""
    nodes = nodes or {"h100": H100, "a100": A100}
    run_dir = tmp_path / "two-nodes"
    with RunWriter.create(run_dir, {"run_id": "r", "fingerprint": H100, "nodes": nodes}) as writer:
        for i, v in enumerate([1.0, 1.1, 1.2]):
            writer.append(Sample.ok(case, "r", i, "load_s", v, node="h100"))
        for i, v in enumerate([3.0, 3.4], start=3):
            writer.append(Sample.ok(case, "r", i, "load_s", v, node="a100"))
        writer.append(Sample.ok(_at(case, path="task"), "r", 0, "load_s", 0.5, node="h100"))
    return run_dir


def test_two_machines_in_one_run_are_never_pooled(tmp_path: Path, case: dict[str, str]) -> None:
    summary = summarize(load(_two_node_run(tmp_path, case)))
    assert list(summary.columns) == SUMMARY_COLUMNS
    h100, a100 = machine_key(H100), machine_key(A100)
    assert summary[["path", "machine", "n", "median"]].values.tolist() == [
        ["base", h100, 3, pytest.approx(1.1)], ["base", a100, 2, pytest.approx(3.2)], ["task", h100, 1, 0.5]]


def test_one_machine_gives_the_rows_it_always_gave(tmp_path: Path, case: dict[str, str]) -> None:
    # Two nodes of the same hardware are one machine: their samples are pooled, as one machine's.
    run = _two_node_run(tmp_path, case, nodes={"h100": H100, "a100": {**H100, "hostname": "gpu-3"}})
    summary = summarize(load(run))
    assert summary[["path", "n"]].values.tolist() == [["base", 5], ["task", 1]]
    assert set(summary["machine"]) == {machine_key(H100)}
    # Without fingerprint columns there is nothing to split by: machine is missing, the rows the same.
    plain = summarize(load(run, fingerprint=False))
    assert list(plain.columns) == SUMMARY_COLUMNS and plain["machine"].isna().all()
    assert plain[["path", "n", "median"]].values.tolist() == summary[["path", "n", "median"]].values.tolist()


def test_the_terminal_table_gives_each_machine_a_row(tmp_path: Path, case: dict[str, str]) -> None:
    text = summary_text(load(_two_node_run(tmp_path, case)), spread=False)
    assert _row(text, "checkpoint") == ["checkpoint", "task", "machine", "metric", "base", "task"]
    assert _row(text, "org/model", "feature-extraction", machine_key(H100), "load_s")[4:] == ["1.10 s", "500 ms"]
    assert _row(text, "org/model", "feature-extraction", machine_key(A100), "load_s")[4:] == ["3.20 s", "—"]
    # The title keeps the case settings; a varying machine is a column, never a title entry.
    assert text.splitlines()[0].strip() == "dtype float32 · device cpu · cache warm"
