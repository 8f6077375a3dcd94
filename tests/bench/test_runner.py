"""A whole run through the Python API: records on disk, failures kept, the run goes on."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from loadbench.bench.executors.factory import make_executor
from loadbench.bench.plan import plan
from loadbench.bench.runner import run_suite
from loadbench.bench.suite import CheckpointEntry, Suite
from loadbench.results import CASE_KEYS, load, read_run_info


@pytest.fixture(scope="module")
def t5_run(builtin_cache: Path, tmp_path_factory: pytest.TempPathFactory):
    suite = Suite(
        checkpoints=[CheckpointEntry(builtin="tiny-t5", tasks="all")],
        paths=["base", "pipeline"], repeats=2, warmups=1, device="cpu", cache="warm", new_tokens=4,
        forward_iters=1, seed=7,
    )
    seen: list[tuple[str, int, int]] = []
    outcome = run_suite(suite, tmp_path_factory.mktemp("runs") / "t5", cache_dir=builtin_cache,
                        executor=make_executor(None, suite),
                        progress=lambda label, done, total: seen.append((label, done, total)))
    return outcome, seen


def test_run_directory_and_fingerprint(t5_run) -> None:
    outcome, _ = t5_run
    info = read_run_info(outcome.run_dir)
    assert info["status"] == "complete"
    assert info["suite"]["repeats"] == 2
    assert info["fingerprint"]["packages"]["transformers"]
    lines = (outcome.run_dir / "samples.jsonl").read_text().splitlines()
    assert all(json.loads(line)["run_id"] == info["run_id"] for line in lines)


def test_every_case_is_measured_failed_or_not_applicable(t5_run) -> None:
    outcome, seen = t5_run
    df = load(outcome.run_dir)
    assert list(df.columns[:len(CASE_KEYS) + 2])[2:] == list(CASE_KEYS)
    load_s = df[(df.metric == "load_s") & ~df.warmup]
    by_case = load_s.groupby(["path", "task"])["status"].agg(list).to_dict()
    # 3 tasks x 2 paths; the seq2seq pipeline does not exist in transformers v5
    assert by_case[("pipeline", "text2text-generation")] == ["not_applicable"]
    for case in [("base", "text2text-generation"), ("base", "feature-extraction"),
                 ("base", "text-classification"), ("pipeline", "feature-extraction")]:
        assert by_case[case] == ["ok", "ok"], case
    # T5Model under the feature-extraction pipeline raises: a failed record, and the run went on.
    failed = df[(df.status == "failed") & (df.path == "pipeline") & (df.task == "feature-extraction")
                & ~df.warmup]
    assert set(failed["repeat"]) == {0, 1}
    assert failed["error_type"].notna().all() and failed["error"].str.len().gt(0).all()
    # 5 runnable cases x (1 warmup + 2 repeats), reported to the progress callback as they go
    assert outcome.samples == 15
    assert seen[-1] == ("done", 15, 15)


def test_warmups_recorded_as_such_and_order_is_seeded(t5_run, builtin_cache: Path) -> None:
    outcome, seen = t5_run
    df = load(outcome.run_dir)
    warm = df[df.warmup & (df.metric == "load_s")]
    assert len(warm) == 5 and set(warm["repeat"]) == {0}
    assert all(label.startswith("warmup · ") for label, _, _ in seen[:5])
    info = read_run_info(outcome.run_dir)
    assert info["seed"] == 7 and info["threads"] >= 1
    # Each round is a fresh shuffle drawn from the recorded seed: the order is reproducible.
    suite = Suite(**info["suite"])
    cases = [c for c in plan(suite, builtin_cache) if c.not_applicable is None]
    rng = random.Random(7)
    expected = [c.label for _ in range(3) for c in rng.sample(cases, len(cases))]
    assert [label.removeprefix("warmup · ") for label, _, _ in seen[:-1]] == expected
    assert expected[:5] != [c.label for c in cases] or expected[5:10] != expected[:5]


def test_not_applicable_gpu_metrics_recorded_once_per_case(t5_run) -> None:
    outcome, _ = t5_run
    df = load(outcome.run_dir)
    gpu = df[df.metric == "gpu_peak_used_bytes"]
    assert (gpu.status == "not_applicable").all() and set(gpu["repeat"]) == {0}
    assert gpu["value"].isna().all()


def test_equivalence_checked_on_the_first_repeat(t5_run) -> None:
    outcome, _ = t5_run
    df = load(outcome.run_dir)
    eq = df[(df.metric == "max_abs_diff_vs_base") & (df.status == "ok")]
    assert not eq.empty and set(eq["repeat"]) == {0} and not eq["warmup"].any()
    assert (eq["value"] < 1e-5).all()
