"""The path table model shared by terminal, markdown and HTML: cells, best path, footnotes."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd

from loadbench.results.analysis.tables import (
    SETTING_KEYS,
    Footnotes,
    best_path,
    ordered_paths,
    path_table,
    per_machine,
    spread_text,
    varying_settings,
)


def _row(path: str, median: float, status: str = "ok", direction: str = "lower") -> SimpleNamespace:
    return SimpleNamespace(path=path, median=median, status=status, direction=direction)


def test_best_path_by_direction() -> None:
    rows = {p: _row(p, m) for p, m in [("base", 2.0), ("task", 1.0), ("custom", 3.0)]}
    assert best_path(rows) == "task"
    rows = {p: _row(p, m, direction="higher") for p, m in [("base", 2.0), ("task", 1.0)]}
    assert best_path(rows) == "base"


def test_no_best_for_ties_single_paths_failures_and_facts() -> None:
    assert best_path({"task": _row("task", 0.0), "custom": _row("custom", 0.0)}) is None  # tie
    assert best_path({"base": _row("base", 1.0), "task": _row("task", float("nan"), "failed")}) is None
    assert best_path({"base": _row("base", 1.0, direction="none"), "task": _row("task", 2.0, direction="none")}) is None


def test_ordered_paths_and_footnotes() -> None:
    assert ordered_paths(["zeta", "pipeline", "base", "zeta"]) == ["base", "pipeline", "zeta"]
    assert ordered_paths(["runai-streamer", "task", "fastsafetensors"]) == ["task", "fastsafetensors", "runai-streamer"]
    notes = Footnotes()
    assert [notes.ref("a\nsecond line"), notes.ref("b"), notes.ref("a")] == ["[1]", "[2]", "[1]"]
    assert list(notes.numbers) == ["a", "b"]


def test_spread_text() -> None:
    def row(n: int, cv: float, unstable: bool = False) -> SimpleNamespace:
        return SimpleNamespace(n=n, cv=cv, unstable=unstable)

    assert spread_text(row(1, float("nan"))) == ""
    assert spread_text(row(3, 0.004)) == " ±<1%"
    assert spread_text(row(3, 0.0)) == " ±0%"
    assert spread_text(row(3, 0.22, True)) == " ±22% !"


def _summary(rows: list[tuple[str, str, str, float]]) -> pd.DataFrame:
    """A summarize()-shaped frame: (run_id, path, machine, median) per row, one load_s case."""
    return pd.DataFrame([
        {"run_id": run_id, "checkpoint": "org/model", "path": path, "task": "feature-extraction", "dtype": "auto",
         "device": "cuda", "cache": "warm", "machine": machine, "metric": "load_s", "n": 3, "n_failed": 0,
         "median": median, "q1": median, "q3": median, "min": median, "max": median, "iqr": 0.0, "cv": 0.0,
         "unstable": False, "unit": "s", "direction": "lower", "status": "ok", "reason": None}
        for run_id, path, machine, median in rows])


def test_two_machines_of_one_case_get_a_row_each() -> None:
    model = path_table(_summary([("r", "base", "h100", 1.0), ("r", "task", "h100", 2.0),
                                 ("r", "base", "a100", 3.0), ("r", "task", "a100", 2.5)]), spread=False)
    assert model.key_columns == ["checkpoint", "task", "machine", "metric"]
    # Machines in name order, not the order a run happened to reach them.
    assert [(keys["machine"], [c.text for c in cells]) for keys, cells in model.rows] == [
        ("a100", ["3.00 s", "2.50 s"]), ("h100", ["1.00 s", "2.00 s"])]
    # The best path is judged within one machine's row, never across machines.
    assert [[c.best for c in cells] for _, cells in model.rows] == [[False, True], [True, False]]
    assert model.title == "dtype auto · device cuda · cache warm"


def test_one_machine_stays_out_of_the_columns_and_the_title() -> None:
    model = path_table(_summary([("r", "base", "h100", 1.0), ("r", "task", "h100", 2.0)]))
    assert model.key_columns == ["checkpoint", "task", "metric"] and len(model.rows) == 1
    assert model.title == "dtype auto · device cuda · cache warm"
    # A summary without the column (built before machines were tracked) reads the same.
    legacy = path_table(_summary([("r", "base", "h100", 1.0)]).drop(columns="machine"))
    assert legacy.key_columns == ["checkpoint", "task", "metric"] and legacy.title == model.title


def test_a_missing_machine_is_a_machine_of_its_own() -> None:
    model = path_table(_summary([("r", "base", None, 3.0), ("r", "base", "h100", 1.0)]), spread=False)
    assert [(keys["machine"], cells[0].text) for keys, cells in model.rows] == [("h100", "1.00 s"),
                                                                                ("unknown", "3.00 s")]


def test_varying_settings_of_frames_and_rows() -> None:
    assert varying_settings(_summary([("r", "base", "h100", 1.0), ("r", "task", "h100", 2.0)])) == []
    assert varying_settings(_summary([("r", "base", "h100", 1.0), ("r", "base", "a100", 2.0)])) == ["machine"]
    rows = [{"dtype": "auto", "cache": "warm"}, {"dtype": "bfloat16", "cache": "warm", "machine": float("nan")}]
    assert varying_settings(rows) == ["dtype"]  # NaN and an absent machine are both "none"
    assert varying_settings([{"machine": "h100"}, {"machine": None}]) == ["machine"]
    assert varying_settings([{"env": "default", "cache": "warm"}, {"env": "py313", "cache": "warm"}]) == ["env"]
    assert SETTING_KEYS == ("env", "dtype", "device", "options", "cache", "machine")


def test_per_machine_only_for_a_run_spread_over_machines() -> None:
    # Two runs on different hardware are compared side by side: no machine key needed.
    assert per_machine(_summary([("a", "base", "h100", 1.0), ("b", "base", "a100", 2.0)])) == []
    assert per_machine(_summary([("a", "base", "h100", 1.0), ("b", "base", "h100", 2.0),
                                 ("b", "task", "a100", 2.0)])) == ["machine"]
    assert per_machine(_summary([("a", "base", "h100", 1.0)]).drop(columns="machine")) == []


def test_a_run_with_nothing_but_one_not_applicable_reason_gives_an_empty_table() -> None:
    # What a run writes when no sample could run: the n/a cases only, all for one reason.
    summary = pd.DataFrame([
        {"run_id": "r", "checkpoint": "tiny-t5", "path": "pipeline", "task": "text2text-generation",
         "dtype": "auto", "device": "cuda:0", "cache": cache, "machine": None, "metric": "load_s",
         "status": "not_applicable", "reason": "no pipeline", "median": float("nan"), "cv": float("nan"),
         "unstable": False, "direction": "lower", "unit": "s", "n": 0, "n_failed": 0}
        for cache in ("warm", "cold")])
    table = path_table(summary)
    assert table.rows == [] and table.unmeasured == {"no pipeline": ["load_s"]}
