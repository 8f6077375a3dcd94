"""The hand-timed reference: a fresh process that times the path's own load, and nothing else."""

from __future__ import annotations

import pytest

from loadbench.bench.handtimed import hand_sample, main


def test_a_hand_timed_sample_loads_and_decodes_in_a_fresh_process(builtin) -> None:
    out = hand_sample(builtin("tiny-llama"), "task", "text-generation", "warm", threads=1, cpus=None,
                      prompt="the river", new_tokens=4)
    assert set(out) == {"load_s", "decode_tokens_per_s"}
    assert 0 < out["load_s"] < 120 and out["decode_tokens_per_s"] > 0


def test_a_forward_path_has_no_decode_figure(builtin) -> None:
    out = hand_sample(builtin("tiny-bert"), "base", "feature-extraction", "warm", threads=1, cpus=None,
                      prompt="the river")
    assert set(out) == {"load_s"}


def test_a_failing_load_names_the_path(builtin, tmp_path) -> None:
    with pytest.raises(RuntimeError, match="hand-timed task failed"):
        hand_sample(builtin("tiny-bert"), "task", "no-such-task", "warm", threads=1, cpus=None, prompt="x")


@pytest.mark.parametrize("argv", [["tiny-llama", "--samples", "1"], ["tiny-llama", "--samples", "4", "--rounds", "5"]])
def test_too_few_samples_is_a_usage_error(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2
