"""``loadbench tune`` refuses bad input in one line, exit 2, before anything is measured."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.mark.parametrize(("args", "says"), [
    (["--goal", "quickest"], "--goal 'quickest' is not one of fastest, least-memory, fastest-within-memory=SIZE"),
    (["--goal", "fastest-within-memory=lots"], "'lots' is not a size; write it like 4GiB"),
    (["--budget-minutes", "0"], "--budget-minutes 0: give the minutes the tune may take, more than 0"),
    (["--budget-minutes", "nan"], "--budget-minutes nan"),
    (["--confirm-pairs", "2"], "--confirm-pairs 2: give at least 6"),
    (["--settings", "loading_workers=99"], "--settings: 'loading_workers=99' is not a setting here; known: default"),
])
def test_bad_input_is_one_line_and_exit_2(cli, builtin, tmp_path: Path, args: list[str], says: str) -> None:
    builtin("tiny-llama")
    result = cli("tune", "tiny-llama", "--output", str(tmp_path / "out"), *args)
    assert result.returncode == 2
    assert says in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()  # nothing started
