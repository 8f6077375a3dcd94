"""Environment variables and output paths that name unusable places: one line and exit 2, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.mark.parametrize("cache", ["a-file", "/proc/no-such-dir"])
def test_a_cache_directory_that_cannot_be_made_is_one_line(tmp_path: Path, cache: str, cli) -> None:
    (tmp_path / "a-file").write_text("x")
    where = str(tmp_path / cache) if cache == "a-file" else cache
    for args in (("checkpoints",), ("run", "--repeats", "1", "--output", str(tmp_path / "run"))):
        result = cli(*args, env={"LOADBENCH_CACHE_DIR": where})  # read when a built-in is wanted
        assert result.returncode == 2, result.stderr
        [line] = result.stderr.strip().splitlines()
        assert line.startswith(f"loadbench: error: LOADBENCH_CACHE_DIR {where}: cannot build built-in checkpoints")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("output", ["a-file", "/dev/null"])
def test_an_output_that_is_a_file_or_a_device_is_one_line(builtin_cache: Path, builtin, tmp_path: Path,
                                                          output: str, cli) -> None:
    builtin("tiny-bert")
    (tmp_path / "a-file").write_text("x")
    where = str(tmp_path / output) if output == "a-file" else output
    result = cli("run", "--repeats", "1", "--output", where, "--checkpoint", str(builtin("tiny-bert")),
                 env={"LOADBENCH_CACHE_DIR": str(builtin_cache)})
    assert result.returncode == 2
    assert result.stderr.strip() == f"loadbench: error: {where}: is a file, not a directory; choose another --output"
    if output == "a-file":
        assert (tmp_path / "a-file").read_text() == "x"
