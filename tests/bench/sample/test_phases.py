"""The phase clock's arithmetic on a fake clock: exclusive phases, totals, recording on and off."""

from __future__ import annotations

from unittest import mock

import pytest

from loadbench.bench.sample import phases


def scripted(monkeypatch: pytest.MonkeyPatch, *readings: float) -> mock.Mock:
    """``time.perf_counter`` returning ``readings`` in order; one read too many raises StopIteration."""
    clock = mock.Mock(side_effect=list(readings))
    monkeypatch.setattr(phases.time, "perf_counter", clock)
    return clock


def test_a_fresh_clock_has_every_phase_at_zero_and_is_not_recording() -> None:
    clock = phases.PhaseClock()
    assert clock.totals == {"config_s": 0.0, "tokenizer_s": 0.0, "weights_s": 0.0, "to_device_s": 0.0}
    assert not clock.recording


def test_a_nested_phase_counts_once_and_only_in_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    # weights_s [0, 6.75] holds config_s [1, 3] and to_device_s [6, 6.75], which holds config_s [6.5, 6.75].
    clock = phases.PhaseClock()
    scripted(monkeypatch, 0.0, 1.0, 3.0, 6.0, 6.5, 6.75, 6.75, 6.75)
    with clock.record():
        with clock.phase("weights_s"):
            with clock.phase("config_s"):
                pass
            with clock.phase("to_device_s"):
                with clock.phase("config_s"):  # two levels down: not in weights_s either
                    pass
    assert clock.totals == {"config_s": 2.25, "tokenizer_s": 0.0, "weights_s": 4.0, "to_device_s": 0.5}
    assert sum(clock.totals.values()) == 6.75  # the outermost phase's wall time, counted once


def test_repeated_phases_accumulate(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = phases.PhaseClock()
    scripted(monkeypatch, 10.0, 10.5, 20.5, 22.0)  # the 10 s between the calls is no phase's time
    with clock.record():
        for _ in range(2):
            with clock.phase("tokenizer_s"):
                pass
    assert clock.totals["tokenizer_s"] == 2.0


def test_outside_record_nothing_is_timed_or_read(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = phases.PhaseClock()
    perf_counter = scripted(monkeypatch)
    with clock.phase("weights_s"):
        pass
    assert clock.totals["weights_s"] == 0.0 and perf_counter.call_count == 0


def test_record_stops_recording_even_when_the_load_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = phases.PhaseClock()
    scripted(monkeypatch, 5.0, 6.0)
    with pytest.raises(RuntimeError):
        with clock.record() as recording:
            assert recording is clock and clock.recording
            with clock.phase("weights_s"):
                raise RuntimeError("load failed")
    assert not clock.recording
    assert clock.totals["weights_s"] == 1.0  # the time until the failure is still counted


def test_instrument_times_the_library_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
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

    layer = torch.nn.Linear(2, 2)
    perf_counter = scripted(monkeypatch, 10.0, 10.75)
    layer.to("cpu")  # not recording: passes through untimed
    assert perf_counter.call_count == 0
    with clock.record():
        layer.to("cpu")
    assert clock.totals == {"config_s": 0.0, "tokenizer_s": 0.0, "weights_s": 0.0, "to_device_s": 0.75}
