"""The probe-cost benchmark: its paired statistics and the shape of its records, never a timing threshold."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loadbench.bench.studies import probecost


def test_a_constant_ratio_is_the_change_and_its_whole_interval() -> None:
    baseline = [0.10, 0.20, 0.15, 0.30, 0.12, 0.25, 0.18]
    cost = probecost.paired_cost("ck", "load_s", "probes", [1.05 * b for b in baseline], baseline)
    assert cost.change == pytest.approx(0.05)
    assert cost.ci_low == pytest.approx(0.05) and cost.ci_high == pytest.approx(0.05)
    assert cost.p_value == pytest.approx(2 * 2.0 ** -len(baseline))  # every pair the same way: the smallest p


def test_no_difference_spans_zero() -> None:
    baseline = [0.10, 0.20, 0.15, 0.30, 0.12, 0.25]
    values = [0.11, 0.19, 0.16, 0.29, 0.13, 0.24]
    cost = probecost.paired_cost("ck", "load_s", "thread", values, baseline)
    assert cost.ci_low < 0 < cost.ci_high


def test_pairs_must_match() -> None:
    with pytest.raises(ValueError, match="equally many"):
        probecost.paired_cost("ck", "load_s", "probes", [1.0, 2.0], [1.0])


def test_blocks_rotate_the_variants_and_only_the_probed_one_reports_its_memory(
        builtin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(probecost, "_checkpoints", lambda: {"tiny-bert": builtin("tiny-bert")})
    output = tmp_path / "probecost.jsonl"
    costs = probecost.measure_probe_cost(2, output)
    records = [json.loads(line) for line in output.read_text().splitlines()]
    samples = [r for r in records if "summary" not in r]
    assert [(r["block"], r["variant"]) for r in samples] == [
        (0, "probes"), (0, "thread"), (0, "none"), (1, "thread"), (1, "none"), (1, "probes")]
    assert all(r["load_s"] > 0 and r["load_cpu_s"] > 0 for r in samples)
    assert {r["variant"] for r in samples if r["rss_peak"] is not None} == {"probes"}
    summaries = [r["summary"] for r in records if "summary" in r]
    assert {(s["variant"], s["metric"]) for s in summaries} == {
        (variant, metric) for variant in ("probes", "thread")
        for metric in ("load_s", "load_cpu_s", "forward_tokens_per_s")}
    assert len(costs) == len(summaries)
    assert probecost.POOLED not in {s["checkpoint"] for s in summaries}  # one checkpoint: nothing to pool


def test_the_checkpoints_pool_into_one_figure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from loadbench.bench.sample.protocol import SampleReply

    class Scripted:
        """A zygote whose loads take 100 ms, 10% longer with a probe, and no workload."""

        def warm_up(self) -> None:
            pass

        def run(self, request, timeout_s, target=None) -> SampleReply:
            slower = 1.0 if getattr(target, "keywords", {}).get("memory_probes") is False else 1.1
            return SampleReply([{"metric": "load_s", "value": 0.1 * slower}], [], [], {})

    monkeypatch.setattr(probecost, "_checkpoints", lambda: {"a": tmp_path, "b": tmp_path})
    monkeypatch.setattr(probecost, "_request", lambda directory: None)
    monkeypatch.setattr("loadbench.bench.sample.spawn.Zygote", Scripted)
    costs = {(c.checkpoint, c.variant): c for c in probecost.measure_probe_cost(3)}
    pooled = costs[(probecost.POOLED, "probes")]
    assert len(pooled.values) == 6 and pooled.change == pytest.approx(0.1)
    assert costs[(probecost.POOLED, "thread")].change == pytest.approx(0.1)
