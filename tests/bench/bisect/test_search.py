"""How a bisect decides: each step's reading, and the walk they make over a series of versions."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from loadbench.bench.bisect import driver
from loadbench.bench.bisect.candidates import BisectError, Candidate
from loadbench.bench.bisect.driver import Step, run_bisect
from loadbench.bench.bisect.search import (
    Reading,
    half_change,
    planned_steps,
    read_confirmation,
    read_ends,
    read_middle,
)
from loadbench.bench.suite import default_suite


def _reading(verdict: str, change: float = 0.0) -> Reading:
    return Reading(verdict, change, change - 0.05, change + 0.05, 12)


def test_the_ends_must_differ_past_the_threshold() -> None:
    assert read_ends(_reading("regressed", 2.5)) == "changed"
    assert read_ends(_reading("improved", -0.4)) == "changed"
    assert read_ends(_reading("unchanged")) == "unchanged"
    assert read_ends(_reading("inconclusive", 0.1)) == "inconclusive"
    assert read_ends(_reading("failed", math.nan)) == "inconclusive"


@pytest.mark.parametrize("direction", [1, -1])
def test_a_middle_goes_toward_the_side_that_moved(direction: int) -> None:
    moved, still = _reading("regressed" if direction > 0 else "improved", 0.5 * direction), _reading("unchanged")
    back = _reading("improved" if direction > 0 else "regressed", -0.4 * direction)
    assert read_middle(still, moved, direction) == "right"  # the later end moved: the change is after the middle
    assert read_middle(back, still, direction) == "left"  # the earlier end moved back: at or before it
    assert read_middle(back, moved, direction) == "left"  # both: the first change is followed
    assert read_middle(still, still, direction) == "spread"
    assert read_middle(still, _reading("inconclusive", 0.2), direction) == "inconclusive"
    # A side that moved against the direction looked for is no answer.
    assert read_middle(still, back, direction) == "inconclusive"


def test_the_confirmation_must_show_the_same_direction() -> None:
    assert read_confirmation(_reading("regressed", 0.3), 1) == "changed"
    assert read_confirmation(_reading("improved", -0.3), 1) == "inconclusive"
    assert read_confirmation(_reading("unchanged"), 1) == "unchanged"


def test_half_the_change_on_the_log_scale() -> None:
    assert half_change(2.5) == pytest.approx(1 - 1 / math.sqrt(3.5))
    assert half_change(-0.5) == pytest.approx(half_change(1.0))  # twice as fast, twice as slow: one size
    assert [planned_steps(n) for n in (2, 3, 5, 17, 45)] == [2, 3, 4, 6, 8]


class _Versions:
    """Stands in for measuring: version i's metric is ``values[i]``, read without noise."""

    def __init__(self, values: list[float]) -> None:
        self.values = values
        self.measured: list[tuple[int, ...]] = []

    def measure(self, job: driver._Bisect, kind: str, indices: list[int], threshold: float | None) -> Step:
        self.measured.append(tuple(indices))
        counts = threshold if threshold is not None else 0.03
        base = self.values[indices[0]]
        readings = {}
        for i in indices[1:]:
            change = self.values[i] / base - 1
            verdict = ("unchanged" if abs(change) < counts / 2 else "inconclusive" if abs(change) < counts
                       else "regressed" if change > 0 else "improved")
            readings[job.candidates[i].label] = _reading(verdict, change)
        return Step(len(job.steps) + 1, kind, tuple(job.candidates[i].label for i in indices), "", counts, readings,
                    "", 12, 0.1, False)


def _walk(values: list[float], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[driver.BisectResult,
                                                                                         _Versions]:
    versions = _Versions(values)
    monkeypatch.setattr(driver._Bisect, "measure", lambda self, *a: versions.measure(self, *a))
    candidates = [Candidate(f"1.{i}", f"pkg==1.{i}") for i in range(len(values))]
    result = run_bisect(candidates, target="pkg", suite=default_suite(), metric="load_s", alpha=0.05,
                        output=tmp_path / f"b{len(list(tmp_path.iterdir()))}", history=None)
    return result, versions


@pytest.mark.parametrize("first_slow", range(1, 17))
def test_the_walk_names_the_first_changed_version_within_the_planned_steps(
        first_slow: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result, versions = _walk([1.0 if i < first_slow else 3.5 for i in range(17)], tmp_path, monkeypatch)
    assert (result.outcome, result.first_changed, result.previous) == ("found", f"1.{first_slow}",
                                                                       f"1.{first_slow - 1}")
    assert len(versions.measured) <= planned_steps(17) and versions.measured[-1] == (first_slow - 1, first_slow)
    assert result.exit_code == 0 and result.change == pytest.approx(2.5)


def test_a_faster_release_is_found_as_well(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result, _ = _walk([1.0] * 5 + [0.5] * 4, tmp_path, monkeypatch)
    assert (result.outcome, result.first_changed) == ("found", "1.5")


def test_ends_alike_or_a_drift_name_no_release(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    alike, _ = _walk([1.0] * 9, tmp_path, monkeypatch)
    assert (alike.outcome, alike.first_changed, alike.open_range, alike.exit_code) == ("no_change", None,
                                                                                        ("1.0", "1.8"), 1)
    # 2% a release, 17% in all: a middle near half the change is not decided, or the pair the walk
    # ends at holds 2%, which the confirmation does not call a change. Either way: none found, exit 3.
    drift, _ = _walk([1.02 ** i for i in range(9)], tmp_path, monkeypatch)
    assert drift.outcome in ("inconclusive", "unconfirmed") and drift.exit_code == 3


def test_an_output_directory_of_another_bisect_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _walk([1.0, 1.0, 2.0], tmp_path, monkeypatch)
    (tmp_path / "b0" / "step-01").mkdir()  # what a measured step leaves (the stand-in measures nothing)
    versions = _Versions([1.0, 2.0])
    monkeypatch.setattr(driver._Bisect, "measure", lambda self, *a: versions.measure(self, *a))
    with pytest.raises(BisectError, match="holds another bisect"):
        run_bisect([Candidate("2.0", "pkg==2.0"), Candidate("2.1", "pkg==2.1")], target="pkg", suite=default_suite(),
                   metric="load_s", alpha=0.05, output=tmp_path / "b0", history=None)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(BisectError, match="not empty and not a bisect"):
        run_bisect([Candidate("2.0", "pkg==2.0"), Candidate("2.1", "pkg==2.1")], target="pkg", suite=default_suite(),
                   metric="load_s", alpha=0.05, output=tmp_path / "other", history=None)


def test_a_bisect_that_measured_nothing_yet_can_be_started_again_differently(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A first try that stopped before any step (a checkpoint mistyped) does not hold its directory."""
    versions = _Versions([1.0, 2.0])
    monkeypatch.setattr(driver._Bisect, "measure", lambda self, *a: versions.measure(self, *a))
    one, other = ([Candidate(v, f"pkg=={v}") for v in pair] for pair in (("2.0", "2.1"), ("3.0", "3.1")))
    for candidates in (one, other):
        result = run_bisect(candidates, target="pkg", suite=default_suite(), metric="load_s", alpha=0.05,
                            output=tmp_path / "b", history=None)
        assert result.first_changed == candidates[1].label
    (tmp_path / "b" / "bisect.json").write_text("[1]")
    with pytest.raises(BisectError, match="not a bisect's record"):
        run_bisect(one, target="pkg", suite=default_suite(), metric="load_s", alpha=0.05, output=tmp_path / "b",
                   history=None)
