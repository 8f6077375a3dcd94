"""Change points on seeded histories: a planted step found where it is, with its size, and none in noise."""

from __future__ import annotations

from loadbench.results.history.changes import MIN_RUNS, change_points, series_of
from loadbench.results.history.store import add, read


def _history(tmp_path, history_run, factors, added=None, versions=None):
    root = tmp_path / "history"
    add([history_run(n, f, transformers=(versions or {}).get(n), added_mib=added[n - 1] if added else None)
         for n, f in enumerate(factors, 1)], root)
    (runs,) = read(root).values()
    return runs


def test_a_planted_step_is_one_change_point_at_its_run_with_its_size(tmp_path, history_run) -> None:
    runs = _history(tmp_path, history_run, [1.0] * 6 + [1.10] * 6, versions={7: "5.25.0"})
    found = change_points(series_of(runs))
    (point,) = found
    assert (point.series.metric, point.label, point.previous_label) == ("load_s", "c07", "c06")
    assert point.regression
    assert 0.05 < point.ci_low < point.change < point.ci_high < 0.16
    assert point.differences == [{"package": "transformers", "before": "5.24.0", "after": "5.25.0"}]
    assert point.as_dict()["checkpoint"] == "tiny-llama" and point.as_dict()["path"] == "task"


def test_a_faster_step_is_a_change_point_but_no_regression(tmp_path, history_run) -> None:
    (point,) = change_points(series_of(_history(tmp_path, history_run, [1.0] * 6 + [0.85] * 6)))
    assert not point.regression and point.change < -0.1


def test_noise_alone_has_no_change_point(tmp_path, history_run) -> None:
    assert change_points(series_of(_history(tmp_path, history_run, [1.0] * 30))) == []


def test_a_step_smaller_than_the_threshold_is_not_reported(tmp_path, history_run) -> None:
    runs = _history(tmp_path, history_run, [1.0] * 8 + [1.03] * 8)
    assert change_points(series_of(runs)) == []
    (point,) = change_points(series_of(runs), thresholds={"load_s": 0.01})
    assert point.label == "c09"


def test_one_odd_run_is_no_change_point(tmp_path, history_run) -> None:
    runs = _history(tmp_path, history_run, [1.0] * 6 + [1.5] + [1.0] * 6)
    assert change_points(series_of(runs)) == []


def test_too_few_runs_on_a_side_say_nothing_yet(tmp_path, history_run) -> None:
    runs = _history(tmp_path, history_run, [1.0] * 6 + [1.2] * (MIN_RUNS - 1))
    assert change_points(series_of(runs)) == []


def test_two_steps_are_two_change_points(tmp_path, history_run) -> None:
    runs = _history(tmp_path, history_run, [1.0] * 5 + [1.2] * 5 + [1.0] * 5)
    assert [(p.label, p.regression) for p in change_points(series_of(runs))] == [("c06", True), ("c11", False)]


def test_values_around_zero_are_tested_as_they_are_and_the_change_is_relative_to_before(tmp_path, history_run) -> None:
    runs = _history(tmp_path, history_run, [1.0] * 12, added=[2.0] * 6 + [40.0] * 6)
    (point,) = change_points(series_of(runs, ["load_added_rss_bytes"]))
    assert point.label == "c07" and point.regression
    assert point.scale is not None and 10 < point.change < 40  # some 38 MiB more on a median of about 2 MiB


def _anchored(tmp_path, anchored_run, factors):
    root = tmp_path / "anchored-history"
    add([anchored_run(n, f) for n, f in enumerate(factors, 1)], root)
    (runs,) = read(root).values()
    return {(s.case["env"], s.unit): s for s in series_of(runs)}


def test_an_anchored_series_finds_the_step_the_machine_s_drift_hides(tmp_path, anchored_run) -> None:
    """Two environments in each run: head over ref, block by block, divides the machine's state out."""
    series = _anchored(tmp_path, anchored_run, [1.0] * 6 + [1.10] * 6)
    assert set(series) == {("ref", "s"), ("head", "s"), ("head vs ref", "ratio")}
    assert change_points([series[("head", "s")]]) == []  # ±25% from run to run: a 10% step is not shown
    (point,) = change_points([series[("head vs ref", "ratio")]])
    assert (point.label, point.previous_label, point.regression, point.threshold) == ("c07", "c06", True, 0.05)
    assert 0.05 < point.ci_low < point.change < point.ci_high < 0.16


def test_an_anchored_series_of_the_same_code_has_no_change_point(tmp_path, anchored_run) -> None:
    series = _anchored(tmp_path, anchored_run, [1.0] * 30)
    assert change_points([series[("head vs ref", "ratio")]]) == []
