"""The phase clock's arithmetic on a fake clock: exclusive phases, totals, recording on and off."""

from __future__ import annotations

import pytest

from loadbench.bench import phases


class FakeClock:
    """``time.perf_counter`` that only moves when the test says so."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now
        self.reads = 0

    def __call__(self) -> float:
        self.reads += 1
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    clock = FakeClock()
    monkeypatch.setattr(phases.time, "perf_counter", clock)
    return clock


def test_a_fresh_clock_has_every_phase_at_zero_and_is_not_recording() -> None:
    clock = phases.PhaseClock()
    assert clock.totals == {"config_s": 0.0, "tokenizer_s": 0.0, "weights_s": 0.0, "to_device_s": 0.0}
    assert not clock.recording


def test_a_nested_phase_counts_once_and_only_in_itself(fake: FakeClock) -> None:
    clock = phases.PhaseClock()
    with clock.record():
        with clock.phase("weights_s"):
            fake.advance(1.0)
            with clock.phase("config_s"):
                fake.advance(2.0)
            fake.advance(3.0)
            with clock.phase("to_device_s"):
                fake.advance(0.5)
                with clock.phase("config_s"):  # two levels down: not in weights_s either
                    fake.advance(0.25)
    assert clock.totals == {"config_s": 2.25, "tokenizer_s": 0.0, "weights_s": 4.0, "to_device_s": 0.5}
    assert sum(clock.totals.values()) == 6.75  # the outermost phase's wall time, counted once


def test_repeated_phases_accumulate(fake: FakeClock) -> None:
    clock = phases.PhaseClock()
    with clock.record():
        for seconds in (0.5, 1.5):
            with clock.phase("tokenizer_s"):
                fake.advance(seconds)
            fake.advance(10.0)  # between phases: not any phase's time
    assert clock.totals["tokenizer_s"] == 2.0


def test_outside_record_nothing_is_timed_or_read(fake: FakeClock) -> None:
    clock = phases.PhaseClock()
    with clock.phase("weights_s"):
        fake.advance(5.0)
    assert clock.totals["weights_s"] == 0.0 and fake.reads == 0


def test_record_stops_recording_even_when_the_load_raises(fake: FakeClock) -> None:
    clock = phases.PhaseClock()
    with pytest.raises(RuntimeError):
        with clock.record() as recording:
            assert recording is clock and clock.recording
            with clock.phase("weights_s"):
                fake.advance(1.0)
                raise RuntimeError("load failed")
    assert not clock.recording
    assert clock.totals["weights_s"] == 1.0  # the time until the failure is still counted


def test_instrument_times_the_library_entry_points(fake: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch
    from transformers import AutoConfig, AutoTokenizer, PretrainedConfig, PreTrainedModel
    from transformers.models.auto.auto_factory import _BaseAutoModelClass
    from transformers.tokenization_utils_base import PreTrainedTokenizerBase

    wrapped = {AutoConfig: "config_s", PretrainedConfig: "config_s", AutoTokenizer: "tokenizer_s",
               PreTrainedTokenizerBase: "tokenizer_s", _BaseAutoModelClass: "weights_s", PreTrainedModel: "weights_s"}
    originals = {owner: owner.__dict__["from_pretrained"].__func__ for owner in wrapped}
    for owner in wrapped:  # monkeypatch puts every entry point back after the test
        monkeypatch.setattr(owner, "from_pretrained", owner.__dict__["from_pretrained"])
    monkeypatch.setattr(torch.nn.Module, "to", torch.nn.Module.__dict__["to"])
    module_to = torch.nn.Module.to

    clock = phases.PhaseClock()
    phases.instrument(clock)
    for owner in wrapped:
        entry = owner.__dict__["from_pretrained"]
        assert isinstance(entry, classmethod) and entry.__func__.__wrapped__ is originals[owner]
    assert torch.nn.Module.to.__wrapped__ is module_to

    class SlowToMove(torch.nn.Module):
        def _apply(self, fn, recurse=True):  # what Module.to runs: takes 0.75 s on the fake clock
            fake.advance(0.75)
            return super()._apply(fn, recurse)

    layer = SlowToMove()
    layer.to("cpu")  # not recording: passes through untimed
    assert clock.totals["to_device_s"] == 0.0
    with clock.record():
        layer.to("cpu")
        fake.advance(1.0)  # after the call: not the call's time
    assert clock.totals["to_device_s"] == 0.75
