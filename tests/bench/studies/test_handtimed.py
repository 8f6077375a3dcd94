"""The hand-timed reference: a fresh process that times the path's own load, and nothing else."""

from __future__ import annotations

import pytest

from loadbench.bench import api
from loadbench.bench.sample.protocol import SampleRequest
from loadbench.bench.studies.handtimed import Pair, PairedExecutor, agreement, hand_sample, main


def test_a_hand_timed_sample_loads_and_decodes_in_a_fresh_process(builtin) -> None:
    out = hand_sample(builtin("tiny-llama"), "task", "text-generation", "warm", threads=1, cpus=None,
                      prompt="the river", new_tokens=4)
    assert set(out) == {"load_s", "decode_tokens_per_s", "host_probe_s"}
    assert 0 < out["load_s"] < 120 and out["decode_tokens_per_s"] > 0 and out["host_probe_s"] > 0


def test_a_forward_path_has_no_decode_figure(builtin) -> None:
    out = hand_sample(builtin("tiny-bert"), "base", "feature-extraction", "warm", threads=1, cpus=None,
                      prompt="the river")
    assert set(out) == {"load_s", "host_probe_s"}


def test_a_failing_load_names_the_path(builtin, tmp_path) -> None:
    with pytest.raises(RuntimeError, match="hand-timed task failed"):
        hand_sample(builtin("tiny-bert"), "task", "no-such-task", "warm", threads=1, cpus=None, prompt="x")


@pytest.mark.parametrize("argv", [["tiny-llama", "--samples", "5"], ["tiny-llama", "--tolerance", "0"],
                                  ["tiny-llama", "--tolerance", "1.5"], ["/no/such/dir"],
                                  ["tiny-bert", "--task", "nope"], ["no-such-builtin"],
                                  ["tiny-bert", "--paths", "nope"]])
def test_unusable_input_is_a_one_line_usage_error_before_any_sample(argv: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("python -m loadbench.bench.studies.handtimed: error: ") and "Traceback" not in err[0]


def test_identical_pairs_agree_and_a_steady_fifth_slower_differs() -> None:
    same = agreement([0.10, 0.20, 0.15, 0.12, 0.30, 0.11], [0.10, 0.20, 0.15, 0.12, 0.30, 0.11], 0.05)
    assert (same.ratio, same.low, same.high, same.verdict) == (pytest.approx(1.0), pytest.approx(1.0),
                                                              pytest.approx(1.0), "agrees")
    hand = [0.10, 0.20, 0.15, 0.12, 0.30, 0.11, 0.14, 0.18]
    slower = agreement([1.2 * h * (1 + 0.01 * (i % 3 - 1)) for i, h in enumerate(hand)], hand, 0.05)
    assert slower.verdict == "differs" and 1.18 < slower.ratio < 1.22 and slower.low > 1.05


def test_pairs_too_noisy_to_decide_are_unresolved_not_agreeing() -> None:
    hand = [0.10, 0.20, 0.15, 0.12, 0.30, 0.11]
    noisy = agreement([h * f for h, f in zip(hand, [0.7, 1.4, 0.9, 1.2, 0.8, 1.1])], hand, 0.05)
    assert noisy.verdict == "unresolved" and noisy.low < 0.95 and noisy.high > 1.05


def test_each_measured_sample_gets_a_hand_partner_alternating_first_and_warmups_none(builtin, tmp_path) -> None:
    calls: list[tuple[str, int, str]] = []

    def hand(request: SampleRequest, threads: int, cpus: list[int] | None) -> dict[str, float]:
        calls.append((request.path, threads, request.checkpoint_dir))
        return {"load_s": 0.5, "host_probe_s": 0.005}

    kept: list[Pair] = []
    executor = PairedExecutor(1, None, warmup_jobs=2, hand=hand, kept=kept.append)
    result = api.run(checkpoints=[builtin("tiny-bert")], paths=["base", "task"], repeats=2, warmups=1,
                     cache=["warm"], output=tmp_path / "run", executor=executor, reports=False)
    measured = result.frame().query("metric == 'load_s' and not warmup")
    assert len(executor.pairs) == len(calls) == 4 == len(measured)
    assert kept == executor.pairs
    for path in ("base", "task"):
        assert [p.hand_first for p in executor.pairs if p.path == path] == [False, True]
    assert sorted(p.loadbench["load_s"] for p in executor.pairs) == sorted(measured["value"])
    assert {path for path, _, _ in calls} == {"base", "task"} and all(t == 1 for _, t, _ in calls)
