"""``loadbench bisect --repo``: names the commit that slowed a user's loader, survives Ctrl-C, and continues."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

Planted = Callable[..., list[str]]


def _as_at_a_terminal() -> None:
    # A command run in the background of a script (CI's) inherits SIGINT ignored, and Python keeps
    # an ignored SIGINT ignored; at a terminal, where Ctrl-C comes from, it is not.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _history_runs(history: Path) -> list[Path]:
    return sorted(history.glob("*/runs/*.json"))


def test_bisect_names_the_slower_commit_and_a_rerun_after_ctrl_c_continues(
        tmp_path: Path, planted: Planted, builtin, cli) -> None:
    builtin("tiny-llama")
    # 150 ms of CPU work added to a load of ~80 ms: a step no noise on a shared machine hides.
    hashes = planted(tmp_path / "repo", 3, slow_from=3, busy_ms=150)
    out, history = tmp_path / "bisect", tmp_path / "history"
    args = ["bisect", "--repo", str(tmp_path / "repo"), hashes[0], hashes[2], "--checkpoint", "tiny-llama",
            "--paths", "lbbisectpkg.loading:load", "--output", str(out), "--history", str(history),
            "--format", "json", "--no-progress", "--alpha", "0.2", "--max-repeats", "30"]

    # Ctrl-C as soon as the first step is in the table: the command says how to go on, exit 130.
    child = subprocess.Popen([sys.executable, "-m", "loadbench.bench.cli.main", *args], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=os.environ.copy(), preexec_fn=_as_at_a_terminal)
    assert child.stderr is not None
    said = []
    for line in child.stderr:
        said.append(line)
        if line.startswith("1 "):
            child.send_signal(signal.SIGINT)
            break
    printed, rest = child.communicate(timeout=300)
    said.append(rest)
    assert child.returncode == 130 and not printed, f"exit {child.returncode}, stdout {printed!r}: {''.join(said)}"
    assert "".join(said).rstrip().endswith("every sample measured so far is kept; run the same command again to "
                                           "continue")
    assert (out / "step-01" / "run.json").exists() and len(_history_runs(history)) == 1

    again = cli(*args)
    assert again.returncode == 0, again.stderr
    result = json.loads(again.stdout)
    assert (result["outcome"], result["first_changed"], result["previous"]) == ("found", hashes[2][:10],
                                                                                hashes[1][:10])
    assert result["ci_low"] > 0 and [s["kind"] for s in result["steps"]] == ["ends", "middle", "confirm"]
    assert [s["reused"] for s in result["steps"]] == [True, False, False]
    table = again.stderr.splitlines()
    assert table[0].startswith("step  measured") and "(found on disk)" in table[1]
    assert any(line.startswith(f"first changed: repo {hashes[2][:10]} (revision 3 (slower load)), after "
                               f"{hashes[1][:10]}: load_s +") for line in table)
    assert len(_history_runs(history)) == 3  # each step's run filed once

    # Done: the same command replays every step from disk, measures nothing and files nothing again.
    replay = cli(*args)
    assert replay.returncode == 0 and json.loads(replay.stdout)["first_changed"] == hashes[2][:10]
    assert all(step["reused"] for step in json.loads(replay.stdout)["steps"]) and len(_history_runs(history)) == 3

    other = cli(*[a if a != hashes[2] else hashes[1] for a in args])
    assert other.returncode == 2 and other.stderr.strip().endswith(
        "give another --output, or the same arguments to continue it")


@pytest.mark.parametrize(("args", "message"), [
    (["transformers", "5.0.0"], "bisect takes PACKAGE GOOD BAD; got transformers 5.0.0"),
    (["--repo", ".", "a", "b", "c"], "bisect takes --repo DIR GOOD BAD; got a b c"),
    (["transformers", "5.0.0", "5.1.0"], "a bisect follows one case, and the suite has 3 checkpoints, 4 paths: "
                                         "name one, e.g. --checkpoint tiny-llama --paths task"),
    (["transformers", "5.0.0", "5.1.0", "--checkpoint", "tiny-llama", "--paths", "task", "--metric", "load_ms"],
     "load_ms"),
    (["transformers", "5.0.0", "5.1.0", "--checkpoint", "tiny-llama", "--paths", "task", "--alpha", "2"],
     "`alpha` must be between 0 and 1, not 2.0"),
])
def test_unusable_arguments_are_refused_in_one_line(args: list[str], message: str, tmp_path: Path, cli) -> None:
    result = cli("bisect", *args, "--output", str(tmp_path / "b"), cwd=tmp_path)
    [line] = result.stderr.strip().splitlines()[-1:]
    assert result.returncode == 2 and line.startswith("loadbench: error: ") and message in line, result.stderr
    assert not (tmp_path / "b").exists()
