"""The report model: cases and their status, environment, warnings, the glance and the runs side by side.

The verdicts of the runs side by side are compare's: tests/results/report/test_runs.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from loadbench.results import Sample
from loadbench.results.records.runinfo import machine_key
from loadbench.results.report.cases import case_table
from loadbench.results.report.env import environment_rows, node_rows
from loadbench.results.report.glance import best_paths
from loadbench.results.report.model import build_report
from loadbench.results.report.runs import NO_VERDICT
from loadbench.results.report.runs_table import run_comparison, verdict_notes


def test_every_case_with_status_and_reason(synthetic_run: Path, synthetic) -> None:
    report = build_report(synthetic_run)
    cases = case_table(report.summary)
    assert len(cases) == len(synthetic.CHECKPOINTS) * len(synthetic.PATHS) * len(synthetic.CACHES)
    by_case = cases.set_index(["checkpoint", "path", "cache"])
    failed = by_case.loc[synthetic.FAILED]
    assert failed["status"] == "failed" and failed["samples"] == 0
    assert failed["detail"] == "RuntimeError: worker crashed: out of memory"
    na = by_case.loc[("tiny-t5", "pipeline", "warm")]
    assert (na["status"], na["detail"]) == ("not_applicable", synthetic.NA_REASON)
    ok = by_case.loc[("tiny-llama", "base", "warm")]
    # GPU memory is n/a in every case for one reason: said once, not as a per-case problem.
    assert (ok["status"], ok["samples"], ok["detail"]) == ("ok", synthetic.REPEATS, "")
    assert cases["status"].value_counts().to_dict() == {"ok": 21, "not_applicable": 2, "failed": 1}
    # Reading order: checkpoints by name, warm before cold, paths in the usual order.
    assert cases[["checkpoint", "cache", "path"]].values.tolist()[:5] == [
        ["tiny-bert", "warm", "base"], ["tiny-bert", "warm", "task"], ["tiny-bert", "warm", "custom"],
        ["tiny-bert", "warm", "pipeline"], ["tiny-bert", "cold", "base"],
    ]


def test_partly_failed_case(make_run, case: dict[str, str]) -> None:
    run = make_run([
        Sample.ok(case, "r", 0, "load_s", 1.0),
        Sample.failed(case, "r", 1, "load_s", "OSError", "disk full"),
        Sample.ok(case, "r", 2, "load_s", 1.2),
        Sample.ok(case, "r", 0, "first_forward_s", 0.1),
    ])
    row = case_table(build_report(run).summary).iloc[0]
    assert row["status"] == "partly_failed" and row["samples"] == 2
    assert row["detail"] == "load_s: 1 repeat(s) failed: OSError: disk full"


def test_fingerprint_differences_and_partial_runs_are_warned(tmp_path: Path, synthetic) -> None:
    a = synthetic.write_run(tmp_path / "a", "run-a")
    b = synthetic.write_run(tmp_path / "b", "run-b", cpu_model="Intel Xeon", status="interrupted")
    report = build_report([a, b])
    assert [d.field for d in report.key_differences] == ["cpu_model"]
    assert report.warnings == ["run B: run-b is interrupted: its results are partial"]
    rows = {label: (values, differs, key) for label, values, differs, key in environment_rows(report)}
    assert rows["CPU"] == (["AMD EPYC 7763", "Intel Xeon"], True, True)
    assert rows["torch"] == (["2.13.0+cpu", "2.13.0+cpu"], False, True)
    assert rows["run"][1] is False  # ids always differ; that is not an environment difference
    assert build_report(a).key_differences == [] and build_report(a).warnings == []


def test_cv_threshold_comes_from_the_suite(synthetic_run: Path) -> None:
    assert build_report(synthetic_run).cv_threshold == 0.1
    assert build_report(synthetic_run, cv_threshold=0.5).cv_threshold == 0.5


def test_glance_names_the_winner_and_who_is_within_the_spread(synthetic_run: Path) -> None:
    labels, rows = best_paths(build_report(synthetic_run).summary)
    assert labels == ["load time", "first call", "peak RSS", "decode tok/s", "forward tok/s"]
    llama_warm = next(r for r in rows if (r["checkpoint"], r["cache"]) == ("tiny-llama", "warm"))
    load, first_call, rss, decode, forward = llama_warm["cells"]
    assert (load.best, load.text()[0]) == ("base", "base 200 ms")
    assert rss.best == "base" and rss.text() == ("base 300 MiB", "")
    assert decode.best == "task" and forward.best == "base"
    assert first_call.best is None and first_call.text() == ("no clear winner", "4 paths tie")
    t5 = next(r for r in rows if (r["checkpoint"], r["cache"]) == ("tiny-t5", "warm"))
    assert t5["cells"][3].text() == ("task 400 tok/s", "the only path measured")  # pipeline is n/a for t5


def test_run_comparison_rows(synthetic_pair_10: tuple[Path, Path]) -> None:
    rows = run_comparison(build_report(list(synthetic_pair_10)))
    metrics = {r["metric"] for r in rows}
    assert "gpu_peak_used_bytes" not in metrics  # measured nowhere
    assert {"load_s", "peak_rss_bytes", "decode_tokens_per_s", "forward_tokens_per_s"} <= metrics
    task = next(r for r in rows if (r["checkpoint"], r["path"], r["cache"], r["metric"])
                == ("tiny-llama", "task", "warm", "load_s"))
    [change] = task["changes"]
    assert change.ratio == pytest.approx(1.3) and change.verdict == "regressed"
    first = [(r["path"], r["cache"], r["metric"]) for r in rows[:5]]
    assert first == [("base", "warm", "load_s"), ("task", "warm", "load_s"), ("custom", "warm", "load_s"),
                     ("pipeline", "warm", "load_s"), ("base", "cold", "load_s")]


def test_a_run_spread_over_unlike_nodes(tmp_path: Path, synthetic) -> None:
    run = synthetic.write_spread_run(tmp_path / "spread")
    report = build_report(run)
    amd, intel = (machine_key(fp) for fp in synthetic.NODES.values())
    [(meta, rows)] = node_rows(report)
    assert meta.run_id == "20260103T000000Z-cccc"
    assert rows == [
        {"node": "bench-01-1a2b3c4d", "host": "bench-01", "CPU": "AMD EPYC 7763",
         "GPUs": "none (NVML unavailable: NVML Shared Library Not Found)", "torch threads": "unknown",
         "machine": amd},
        {"node": "bench-02-5e6f7a8b", "host": "bench-02", "CPU": "Intel Xeon Gold 6338",
         "GPUs": "none (NVML unavailable: NVML Shared Library Not Found)", "torch threads": "unknown",
         "machine": intel},
    ]
    assert report.warnings == ["run A: 20260103T000000Z-cccc was measured on 2 different machines (see its "
                               "nodes under Environment): each case is shown once per machine, never pooled"]
    cases = case_table(report.summary)
    # Every case on both machines, but the two not-applicable ones: they wrote repeat 0 only.
    assert len(cases) == 2 * 22 + 2 and set(cases["machine"]) == {amd, intel}
    assert cases[cases["status"] == "not_applicable"]["machine"].tolist() == [amd, amd]
    # Even repeats ran on bench-01 (one measured, the warmup left out), odd ones on bench-02.
    by_case = cases.set_index(["checkpoint", "path", "cache", "machine"])
    assert by_case.loc[("tiny-llama", "base", "warm", amd), "samples"] == 1
    assert by_case.loc[("tiny-llama", "base", "warm", intel), "samples"] == 2
    labels, glance = best_paths(report.summary)
    assert [(r["checkpoint"], r["cache"], r["machine"]) for r in glance[:2]] == [
        ("tiny-bert", "warm", amd), ("tiny-bert", "warm", intel)]


def test_runs_side_by_side_keep_a_spread_runs_machines_apart(tmp_path: Path, synthetic) -> None:
    single = synthetic.write_run(tmp_path / "single", "run-a")
    spread = synthetic.write_spread_run(tmp_path / "spread", "run-b")
    amd, intel = (machine_key(fp) for fp in synthetic.NODES.values())
    rows = run_comparison(build_report([single, spread]))
    load = [r for r in rows if (r["checkpoint"], r["path"], r["cache"], r["metric"])
            == ("tiny-llama", "custom", "warm", "load_s")]
    assert [r["machine"] for r in load] == [amd, intel]
    same, other = load
    # Run A (bench-01 hardware only) meets run B's bench-01 samples; bench-02 has no counterpart.
    assert same["cells"][0] is not None and same["cells"][1].n == 1
    assert other["cells"][0] is None and other["cells"][1].n == 2
    # Three repeats against one or two cannot reach significance: compare refuses, the report says why.
    assert same["changes"] == other["changes"] == [NO_VERDICT]
    [note] = verdict_notes(build_report([single, spread]))
    assert note.startswith("Run B: run-b has no verdicts: too few samples to bound any change")


def test_one_node_or_none_lists_no_nodes(tmp_path: Path, synthetic) -> None:
    one = synthetic.write_spread_run(tmp_path / "one", nodes={"bench-01-1a2b3c4d": synthetic.FINGERPRINT})
    report = build_report(one)
    assert node_rows(report) == [] and report.warnings == []
    assert node_rows(build_report(synthetic.write_run(tmp_path / "none"))) == []
    # Two nodes of the same hardware: listed (they are two nodes), but one machine, so no warning.
    twins = {"a": {**synthetic.FINGERPRINT, "threads": 7},
             "b": {**synthetic.FINGERPRINT, "hostname": "bench-03", "threads": 3}}
    report = build_report(synthetic.write_spread_run(tmp_path / "twins", nodes=twins))
    assert [(r["host"], r["torch threads"]) for r in node_rows(report)[0][1]] == [("bench-01", "7"), ("bench-03", "3")]
    assert report.warnings == [] and "machine" not in case_table(report.summary).columns


def test_the_v3_golden_run_reports_its_two_nodes(golden_run_v3: Path) -> None:
    report = build_report(golden_run_v3)
    [(_, rows)] = node_rows(report)
    assert [(r["host"], r["GPUs"], r["torch threads"]) for r in rows] == [
        ("gpu-a", "NVIDIA H100 80GB HBM3 (79.6 GiB, driver 550.90.07)", "7"),
        ("gpu-b", "NVIDIA A100-SXM4-40GB (40.0 GiB, driver 550.90.07)", "7")]
    assert report.warnings == ["run A: 20260115T093000Z-3c5d was measured on 2 different machines (see its nodes "
                               "under Environment): each case is shown once per machine, never pooled"]
    cases = case_table(report.summary)
    assert cases[["path", "cache", "status"]].values.tolist() == [
        ["base", "warm", "ok"], ["base", "warm", "ok"], ["pipeline", "warm", "failed"], ["task", "cold", "ok"]]
