"""pytest-benchmark's --benchmark-json files read as loadbench results, and compared with runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from loadbench.results import CorruptRun, RunWriter, Sample, load
from loadbench.results.comparison.unpaired import compare
from loadbench.results.records.benchjson import InvalidBenchmarkJson, read_benchmark_json, read_results
from loadbench.results.records.frame import FRAME_COLUMNS, DuplicateRun
from loadbench.results.records.runinfo import machine_key
from loadbench.results.records.store import NotARun

CASE = {"checkpoint": "tiny-bert", "path": "task", "task": "text-classification", "dtype": "auto",
        "device": "cpu", "cache": "warm"}
FINGERPRINT = {"hostname": "ci-1", "cpu_model": "AMD EPYC", "cpu_count": 2, "gpus": "NVML unavailable",
               "python": "3.11.7", "packages": {"torch": "2.13.0+cpu", "transformers": "5.24.0"}}
MACHINE_INFO = {"node": "ci-1", "python_version": "3.11.7", "cpu": {"brand_raw": "AMD EPYC", "count": 2}}


def _bench(name: str, data: list[float] | None, extra_info: dict[str, Any] | None = None,
           group: str | None = None) -> dict[str, Any]:
    stats: dict[str, Any] = {"min": 0.1, "max": 0.3, "mean": 0.2, "median": 0.2, "rounds": 3, "iterations": 1}
    if data is not None:
        stats["data"] = data
    return {"group": group, "name": name, "fullname": f"tests/test_x.py::{name}", "params": None, "param": None,
            "extra_info": extra_info or {}, "options": {"timer": "perf_counter"}, "stats": stats}


def _write(path: Path, benchmarks: list[dict[str, Any]], machine_info: dict[str, Any] | None = None) -> Path:
    document = {"machine_info": machine_info if machine_info is not None else MACHINE_INFO,
                "commit_info": {"id": "abc123", "dirty": False}, "benchmarks": benchmarks,
                "datetime": "2026-11-26T12:00:00+00:00", "version": "5.3.1"}
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def _loadbench_block(load_s: list[float], peak: float = 3.3e8) -> dict[str, Any]:
    rounds = [{"load_s": v, "peak_rss_bytes": peak, "forward_tokens_per_s": 5000.0, "from_the_future_s": 1.0}
              for v in load_s]
    return {"loadbench_case": "tiny-bert · task", "load_s": sorted(load_s)[len(load_s) // 2],
            "loadbench": {"schema_version": 2, "case": CASE, "rounds": rounds, "attn_implementation": "sdpa"}}


def test_plain_benchmarks_become_time_s_records(tmp_path: Path) -> None:
    path = _write(tmp_path / "plain.json", [_bench("test_a", [0.1, 0.2, 0.3], group="io"), _bench("test_b", None)])
    df = read_benchmark_json(path)
    assert list(df.columns) == list(FRAME_COLUMNS)
    assert df["value"].tolist() == [0.1, 0.2, 0.3, 0.2]  # raw data, then the median when there is none
    assert set(df["metric"]) == {"time_s"} and set(df["unit"]) == {"s"} and set(df["direction"]) == {"lower"}
    first = df.iloc[0]
    assert (first["checkpoint"], first["path"], first["task"]) == ("tests/test_x.py::test_a", "pytest-benchmark", "io")
    assert first["run_id"] == "pytest-benchmark:plain.json" and first["status"] == "ok"
    assert (first["cpu_model"], first["cpu_count"], first["git_commit"]) == ("AMD EPYC", "2", "abc123")
    assert pd.isna(first["torch_version"])  # plain machine_info does not say
    assert df["repeat"].tolist() == [0, 1, 2, 0]


def test_dtypes_match_a_loaded_run(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    with RunWriter.create(run_dir, {"run_id": "r", "fingerprint": FINGERPRINT}) as writer:
        writer.append(Sample.ok(CASE, "r", 0, "load_s", 0.1))
    from_json = read_benchmark_json(_write(tmp_path / "b.json", [_bench("t", [0.1])]))
    assert from_json.dtypes.to_dict() == load(run_dir).dtypes.to_dict()


def test_loadbench_fixture_rounds_become_records_of_every_metric(tmp_path: Path) -> None:
    machine = {**MACHINE_INFO, "loadbench": FINGERPRINT}
    path = _write(tmp_path / "lb.json", [_bench("test_load", [0.11, 0.12], _loadbench_block([0.11, 0.12]))], machine)
    df = read_benchmark_json(path)
    assert len(df) == 6  # 2 rounds x 3 known metrics; the unknown one is skipped
    assert set(df["metric"]) == {"load_s", "peak_rss_bytes", "forward_tokens_per_s"}
    assert df.loc[df["metric"] == "load_s", "value"].tolist() == [0.11, 0.12]
    row = df[df["metric"] == "forward_tokens_per_s"].iloc[0]
    assert (row["unit"], row["direction"]) == ("tok/s", "higher")
    assert {k: row[k] for k in CASE} == CASE
    assert row["attn_implementation"] == "sdpa"
    assert (row["torch_version"], row["transformers_version"]) == ("2.13.0+cpu", "5.24.0")
    # The same hardware key as a run directory written with this fingerprint.
    assert set(df["machine"]) == {machine_key(FINGERPRINT)} and df["node"].isna().all()


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "not valid JSON"),
    ('{"benchmarks": 3}', "no 'benchmarks' list"),
    ('{"benchmarks": [{"name": "t", "stats": {"data": ["fast"]}}]}',
     r"benchmarks\[0\] \(t\): stats: expected a finite"),
    ('{"benchmarks": [{"name": "t", "extra_info": {"loadbench": {"case": {"path": "base"}, "rounds": []}}}]}',
     "case lacks checkpoint"),
])
def test_unreadable_files_are_one_line_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(InvalidBenchmarkJson, match=message) as info:
        read_benchmark_json(path)
    assert "\n" not in str(info.value) and isinstance(info.value, CorruptRun)


def test_a_benchmark_json_compares_with_a_run_directory(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "base"
    with RunWriter.create(run_dir, {"run_id": "base", "fingerprint": FINGERPRINT}) as writer:
        for i in range(10):
            writer.append(Sample.ok(CASE, "base", i, "load_s", 0.100 + i / 1000))
            writer.append(Sample.ok(CASE, "base", i, "peak_rss_bytes", 3.3e8))
    slow = [0.130 + i / 1000 for i in range(10)]
    path = _write(tmp_path / "cand.json", [_bench("t", slow, _loadbench_block(slow))],
                  {**MACHINE_INFO, "loadbench": FINGERPRINT})
    table = compare(read_results(run_dir), read_results(path))
    verdicts = dict(zip(table["metric"], table["verdict"]))
    assert verdicts == {"load_s": "regressed", "peak_rss_bytes": "unchanged", "forward_tokens_per_s": "new"}
    assert set(table["machine"]) == {machine_key(FINGERPRINT)}  # one machine: the file and the run agree


def test_read_results_pools_folders_of_runs_and_files(tmp_path: Path) -> None:
    for run_id in ("a", "b"):
        with RunWriter.create(tmp_path / "runs" / run_id, {"run_id": run_id}) as writer:
            writer.append(Sample.ok(CASE, run_id, 0, "load_s", 0.1))
    path = _write(tmp_path / "x.json", [_bench("t", [0.1])])
    df = read_results([tmp_path / "runs", path])
    assert list(dict.fromkeys(df["run_id"])) == ["a", "b", "pytest-benchmark:x.json"]
    with pytest.raises(DuplicateRun):
        read_results([tmp_path / "runs" / "a", tmp_path / "runs"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(NotARun, match="neither a loadbench run directory nor a folder of runs"):
        read_results(tmp_path / "empty")
