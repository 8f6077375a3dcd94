"""The host-noise benchmark: structure of what it measures and writes, not the figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loadbench.bench.studies.hostnoise import main, measure_host_noise


def test_records_every_sample_then_a_summary(tmp_path: Path) -> None:
    output = tmp_path / "noise.jsonl"
    result = measure_host_noise(4, iterations=20_000, output=output)
    lines = [json.loads(line) for line in output.read_text().splitlines()]
    assert [line.get("sample") for line in lines[:-1]] == [0, 1, 2, 3]
    summary = lines[-1]["summary"]
    assert summary["samples"] == 4 and summary["wall_cv"] == pytest.approx(result.wall_cv)
    assert len(result.wall_s) == len(result.cpu_s) == 4
    assert all(value > 0 for value in (*result.wall_s, *result.cpu_s))


def test_the_callers_cpus_are_given_back() -> None:
    """It pins itself where the workers would run, for the loops only: the caller keeps its CPUs."""
    import os

    before = os.sched_getaffinity(0)
    result = measure_host_noise(2, iterations=1_000)
    assert os.sched_getaffinity(0) == before
    assert result.cpus is None or set(result.cpus) <= before
    assert result.steal_s is None or result.steal_s >= 0


def test_a_single_sample_has_no_spread() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        measure_host_noise(1)


def test_main_prints_both_clocks(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("loadbench.bench.studies.hostnoise.LOOP_ITERATIONS", 20_000)
    monkeypatch.setattr("loadbench.bench.studies.hostnoise.PAUSE_S", 0.0)
    assert main(["--samples", "3"]) == 0
    out = capsys.readouterr().out
    assert "wall" in out and "CPU time" in out and "steal during the run" in out
