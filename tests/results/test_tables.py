"""The path table model shared by terminal, markdown and HTML: cells, best path, footnotes."""

from __future__ import annotations

from types import SimpleNamespace

from loadbench.results.tables import Footnotes, best_path, ordered_paths, spread_text


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
