"""Goals: what a user may ask a tune for, and how a setting is ranked by it."""

from __future__ import annotations

import math

import pytest

from loadbench.bench.tune.goals import Goal, TuneError, parse_goal, parse_size


@pytest.mark.parametrize(("text", "expected"), [
    ("fastest", Goal("fastest")), ("least-memory", Goal("least-memory")),
    ("fastest-within-memory=4GiB", Goal("fastest-within-memory", 4 * 2**30)),
    ("fastest-within-memory=1.5 GB", Goal("fastest-within-memory", 1_500_000_000)),
])
def test_goals_parse(text: str, expected: Goal) -> None:
    assert parse_goal(text) == expected
    assert parse_goal(expected.text) == expected  # the text it is written back as parses to itself


@pytest.mark.parametrize(("text", "says"), [
    ("fast", "is not one of fastest, least-memory"), ("fastest=1", "is not one of"),
    ("fastest-within-memory", "give the memory limit"), ("fastest-within-memory=4XB", "is not a size"),
    ("fastest-within-memory=0GiB", "must be more than 0 bytes"), ("fastest-within-memory=-1", "is not a size"),
])
def test_a_bad_goal_is_one_line_naming_it(text: str, says: str) -> None:
    with pytest.raises(TuneError, match=says) as caught:
        parse_goal(text)
    assert "`goal`" in str(caught.value) and "\n" not in str(caught.value)


def test_sizes_take_both_unit_families() -> None:
    assert parse_size("512MiB", "x") == 512 * 2**20
    assert parse_size("2kb", "x") == 2000
    assert parse_size("4096", "x") == 4096


def test_a_setting_over_the_memory_limit_ranks_after_every_one_within_it() -> None:
    goal = parse_goal("fastest-within-memory=1GiB")
    fast_but_heavy = goal.rank(0.1, 2 * 2**30)
    slow_but_light = goal.rank(5.0, 2**20)
    assert slow_but_light < fast_but_heavy and fast_but_heavy[0] == math.inf
    assert not goal.admits(2 * 2**30) and goal.admits(2**20)
    least = parse_goal("least-memory")
    assert least.rank(5.0, 2**20) < least.rank(0.1, 2**30)
    assert least.metric == "memory" and goal.metric == "load_s"
