"""A tune's directory: what it must hold for a rerun to continue, refused in one line otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadbench.bench.tune.driver import TuneState, _cost, _load_state
from loadbench.bench.tune.goals import TuneError

REQUEST = {"checkpoint": "/c", "goal": "fastest", "settings": ["default", "x"]}


@pytest.mark.parametrize(("content", "says"), [
    (b"\xff\xfe", "can't decode"), (b"{", "Expecting"), (b'{"request": {}, "steps": "xx", "spent_s": 0}', "string"),
    (b'{"request": {}, "steps": [{"dir": 1, "settings": [], "repeats": 3}], "spent_s": 0}', "a step is malformed"),
])
def test_a_state_that_is_not_a_tunes_is_refused(tmp_path: Path, content: bytes, says: str) -> None:
    (tmp_path / "tune.json").write_bytes(content)
    with pytest.raises(TuneError, match="not a tune's state") as caught:
        _load_state(tmp_path, REQUEST)
    assert says in str(caught.value) and "\n" not in str(caught.value)


def test_a_state_of_another_request_names_what_differs(tmp_path: Path) -> None:
    TuneState({**REQUEST, "goal": "least-memory"}).save(tmp_path)
    with pytest.raises(TuneError, match="goal was 'least-memory', now 'fastest'"):
        _load_state(tmp_path, REQUEST)
    assert _load_state(tmp_path, {**REQUEST, "goal": "least-memory"}).steps == []


def test_the_cost_of_a_run_is_its_fixed_part_and_the_latest_rate() -> None:
    steps = [{"wall_s": 30.0, "sampling_s": 25.0, "samples": 10}, {"wall_s": 12.0, "sampling_s": 9.0, "samples": 6},
             {"dir": "rung-2"}]  # not measured yet: no cost of its own
    fixed, per = _cost(steps)
    assert fixed == pytest.approx(4.0) and per == pytest.approx(1.5)
