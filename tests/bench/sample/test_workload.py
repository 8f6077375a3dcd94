"""Workload metrics computed from a fake clock: the exact figures the arithmetic must give.

A fake "loaded" path moves the clock by known amounts inside ``generate`` and
``forward``, so every rate and percentile below is a hand-computed number, not a bound.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from loadbench.bench.sample import workload


class FakeClock:
    """``time.perf_counter`` that only moves when the fake model says so."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    clock = FakeClock()
    # workload and probes.StepClock read the same module's clock
    monkeypatch.setattr(workload.time, "perf_counter", clock)
    return clock


def generating(fake: FakeClock, step_s: list[float], after_s: float = 0.0) -> SimpleNamespace:
    """A path whose ``generate`` streams the prompt, then one token per entry of ``step_s``."""
    calls: list[tuple[list[str], int]] = []

    def generate(prompts: list[str], new_tokens: int, streamer: Any) -> None:
        calls.append((prompts, new_tokens))
        streamer.put("prompt")
        for seconds in step_s[:new_tokens]:
            fake.advance(seconds)
            streamer.put("token")
        streamer.end()
        fake.advance(after_s)  # detokenising, returning: in the end-to-end time only

    return SimpleNamespace(generate=generate, forward=None, calls=calls)


def forwarding(fake: FakeClock, call_s: list[float]) -> SimpleNamespace:
    """A path without ``generate`` whose n-th ``forward`` takes ``call_s[n]``."""
    durations = iter(call_s)
    return SimpleNamespace(generate=None, forward=lambda prompts: fake.advance(next(durations)))


def reported() -> tuple[dict[str, float], Any]:
    metrics: dict[str, float] = {}
    return metrics, metrics.__setitem__


def test_generation_metrics_are_exact_on_a_fake_clock(fake: FakeClock) -> None:
    # Prefill 0.5 s to the first token, then gaps of 0.1, 0.3 and 0.6 s, then 0.25 s to return.
    loaded = generating(fake, [0.5, 0.1, 0.3, 0.6], after_s=0.25)
    metrics, report = reported()
    error = workload.measure_generation(loaded, ["p", "p"], new_tokens=4, prompt_tokens=10, device="cpu",
                                        report=report)
    assert error is None and loaded.calls == [(["p", "p"], 4)]
    assert metrics["new_tokens"] == 4
    assert metrics["ttft_s"] == pytest.approx(0.5)
    assert metrics["prefill_tokens_per_s"] == pytest.approx(2 * 10 / 0.5)
    assert metrics["decode_tokens_per_s"] == pytest.approx(2 * 3 / 1.0)  # tokens after the first / their time
    assert metrics["e2e_tokens_per_s"] == pytest.approx(2 * 4 / 1.75)  # every token / call start to return
    # Linear-interpolated percentiles of the gaps [0.1, 0.3, 0.6].
    assert metrics["token_latency_p50_s"] == pytest.approx(0.3)
    assert metrics["token_latency_p90_s"] == pytest.approx(0.3 + 0.8 * 0.3)
    assert metrics["token_latency_p99_s"] == pytest.approx(0.3 + 0.98 * 0.3)
    assert set(metrics) == {"new_tokens", "ttft_s", "prefill_tokens_per_s", "decode_tokens_per_s",
                            "e2e_tokens_per_s", "token_latency_p50_s", "token_latency_p90_s", "token_latency_p99_s"}


def test_a_short_generation_is_an_error_with_only_its_token_count(fake: FakeClock) -> None:
    loaded = generating(fake, [0.5, 0.1])  # stops after 2 of the 4 tokens asked for
    metrics, report = reported()
    error = workload.measure_generation(loaded, ["p"], new_tokens=4, prompt_tokens=3, device="cpu", report=report)
    assert error == "generated 2 tokens, asked for 4"
    assert metrics == {"new_tokens": 2}


def test_forward_metrics_are_exact_on_a_fake_clock(fake: FakeClock) -> None:
    loaded = forwarding(fake, [0.1, 0.2, 0.3, 0.4])
    metrics, report = reported()
    workload.measure_forward(loaded, ["a", "b"], iters=4, tokens=12, device="cpu", report=report)
    assert metrics["forward_tokens_per_s"] == pytest.approx(12 * 4 / 1.0)
    assert metrics["forward_latency_p50_s"] == pytest.approx(0.25)
    assert metrics["forward_latency_p90_s"] == pytest.approx(0.3 + 0.7 * 0.1)
    assert metrics["forward_latency_p99_s"] == pytest.approx(0.3 + 0.97 * 0.1)
    assert set(metrics) == {"forward_tokens_per_s", "forward_latency_p50_s", "forward_latency_p90_s",
                            "forward_latency_p99_s"}


def test_first_call_times_one_token_of_generation(fake: FakeClock) -> None:
    loaded = generating(fake, [0.7, 5.0], after_s=0.05)
    assert workload.first_call(loaded, ["p"], "cpu") == pytest.approx(0.75)
    assert loaded.calls == [(["p"], 1)]


def test_first_call_times_one_forward_without_generate(fake: FakeClock) -> None:
    assert workload.first_call(forwarding(fake, [0.3]), ["p"], "cpu") == pytest.approx(0.3)


class WordTokenizer:
    """One token per word; ``add_special_tokens`` prepends one BOS, as most tokenizers do."""

    BOS = -1

    def __init__(self) -> None:
        self.vocab: dict[str, int] = {}

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict[str, list[int]]:
        ids = [self.vocab.setdefault(word, len(self.vocab)) for word in text.split()]
        return {"input_ids": ([self.BOS] if add_special_tokens else []) + ids}

    def decode(self, ids: list[int]) -> str:
        words = {i: w for w, i in self.vocab.items()}
        return " ".join(words[i] for i in ids)


def test_build_prompts_repeats_the_prompt_to_the_asked_token_count() -> None:
    tokenizer = WordTokenizer()
    prompts = workload.build_prompts(tokenizer, "the river runs", prompt_tokens=6, batch_size=3)
    # 5 words + BOS = 6 tokens: the shortest cut that reaches 6
    assert prompts == ["the river runs the river"] * 3
    assert len(tokenizer(prompts[0])["input_ids"]) == 6


def test_build_prompts_cuts_a_long_prompt() -> None:
    assert workload.build_prompts(WordTokenizer(), "a b c d e f", prompt_tokens=3, batch_size=1) == ["a b"]


def test_build_prompts_without_a_length_keeps_the_prompt() -> None:
    assert workload.build_prompts(WordTokenizer(), "the river runs", None, 2) == ["the river runs"] * 2
