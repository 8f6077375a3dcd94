"""Real interruptions of a real run: Ctrl-C, SIGTERM, kill -9; then --resume finishes it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from loadbench.results import load, read_run_info

REPEATS = 3


def _suite(tmp_path: Path) -> Path:
    suite = tmp_path / "suite.toml"
    suite.write_text(f'repeats = {REPEATS}\nwarmups = 0\ncache = "warm"\npaths = ["base", "custom"]\n'
                     'forward_iters = 2\n[[checkpoints]]\nbuiltin = "tiny-bert"\n')
    return suite


def _as_at_a_terminal() -> None:
    # A command run in the background of a script inherits SIGINT ignored (POSIX), and Python
    # keeps an ignored SIGINT ignored; at a terminal, where Ctrl-C comes from, it is not.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def _start(suite: Path, out: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "loadbench.bench.cli.main", "run", str(suite), "--no-progress",
                             "--output", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=_as_at_a_terminal)


def _wait_for_samples(out: Path, process: subprocess.Popen[str], count: int) -> None:
    """Until ``count`` measured samples (load_s records with status ok) are on disk; a failed one says why."""
    deadline = time.monotonic() + 240
    samples = out / "samples.jsonl"
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        whole = samples.read_text().split("\n")[:-1] if samples.exists() else []  # a line being written waits
        loads = [r for r in map(json.loads, whole) if r["metric"] == "load_s"]
        assert all(r["status"] == "ok" for r in loads), [r.get("error") for r in loads]
        if len(loads) >= count:
            return
        time.sleep(0.05)
    raise AssertionError("run made no progress")


def _resume(cli, out: Path) -> subprocess.CompletedProcess[str]:
    """The resume needs no process of its own: the interruption was the other process's."""
    return cli("run", "--resume", str(out), "--no-progress")


def _assert_complete_once(out: Path) -> None:
    df = load(out)
    load_s = df[(df.metric == "load_s") & (df.status == "ok")]
    counts = load_s.groupby(["path", "repeat"]).size()
    assert len(counts) == 2 * REPEATS and (counts == 1).all(), counts
    assert read_run_info(out)["status"] == "complete"


@pytest.mark.parametrize("sig, times", [(signal.SIGINT, 1), (signal.SIGINT, 2), (signal.SIGTERM, 1),
                                        (signal.SIGHUP, 1)], ids=["ctrl-c", "ctrl-c-twice", "sigterm", "sighup"])
def test_signal_stops_cleanly_keeps_samples_and_resume_completes(builtin, cli, tmp_path: Path, sig, times) -> None:
    builtin("tiny-bert")
    out = tmp_path / "run"
    process = _start(_suite(tmp_path), out)
    _wait_for_samples(out, process, 2)
    # Ctrl-C reaches the whole foreground process group (an impatient user presses it twice);
    # SIGTERM comes from a scheduler, SIGHUP from a closed terminal or SSH session: the parent.
    for _ in range(times):
        if sig == signal.SIGINT:
            os.killpg(process.pid, sig)
        else:
            process.send_signal(sig)
        time.sleep(0.05)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130
    assert f"loadbench run --resume {out}" in stderr
    assert read_run_info(out)["status"] == "interrupted"
    kept = load(out)
    assert (kept[kept.metric == "load_s"].status == "ok").sum() >= 2
    result = _resume(cli, out)
    assert result.returncode == 0, result.stderr
    _assert_complete_once(out)


def test_kill_9_of_the_main_process_leaves_a_readable_resumable_run(builtin, cli, tmp_path: Path) -> None:
    builtin("tiny-bert")
    out = tmp_path / "run"
    process = _start(_suite(tmp_path), out)
    _wait_for_samples(out, process, 2)
    process.kill()  # SIGKILL to the main process only, as a power cut would leave it
    process.communicate(timeout=30)
    assert read_run_info(out)["status"] == "running"  # nobody was left to say otherwise
    assert (load(out).metric == "load_s").sum() >= 2
    result = _resume(cli, out)
    assert result.returncode == 0, result.stderr
    _assert_complete_once(out)


def test_resume_of_a_missing_run_is_a_one_line_error(cli, tmp_path: Path) -> None:
    result = _resume(cli, tmp_path / "nope")
    assert result.returncode == 2 and "no such run directory" in result.stderr
