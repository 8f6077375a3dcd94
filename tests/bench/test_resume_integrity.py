"""A sample is all or nothing, to the reader and to --resume alike; a damaged tail is repaired first."""

from __future__ import annotations

import json
import resource
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from loadbench.bench import api
from loadbench.bench.identity import CheckpointChanged
from loadbench.bench.studies.interrupt_soak import check_run
from loadbench.bench.suite import CheckpointEntry, Suite
from loadbench.results import CorruptRun, TruncatedRunWarning, load, read_run_info, read_samples

REPEATS = 2


def _suite() -> Suite:
    return Suite(checkpoints=[CheckpointEntry(builtin="tiny-bert")], paths=["base", "custom"], cache=["warm"],
                 repeats=REPEATS, warmups=0, forward_iters=1, seed=3)


@pytest.fixture
def finished_run(builtin, tmp_path: Path) -> Path:
    builtin("tiny-bert")
    result = api.run(_suite(), output=tmp_path / "run", reports=False)
    assert result.complete
    return result.run_dir


def _set_status(run_dir: Path, status: str) -> None:
    info = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    (run_dir / "run.json").write_text(json.dumps({**info, "status": status}), encoding="utf-8")


def _lines(run_dir: Path) -> list[str]:
    return (run_dir / "samples.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)


def assert_every_sample_whole_once(run_dir: Path, repeats: int = REPEATS) -> None:
    """Complete, each (path, repeat) measured once with every record its sample wrote, none left over."""
    check_run(run_dir, planned=2 * repeats)
    df = load(run_dir)
    assert sorted(set(zip(df["path"], df["repeat"]))) == [(p, r) for p in ("base", "custom") for r in range(repeats)]
    assert (df[df.metric == "load_s"].status == "ok").sum() == 2 * repeats


def test_a_sample_cut_short_is_left_out_and_measured_again(finished_run: Path) -> None:
    # The reproduction: the last 10 lines gone, as a Ctrl-C between two lines left them.
    lines = _lines(finished_run)
    last = json.loads(lines[-1])
    assert last["sample_records"] > 10
    (finished_run / "samples.jsonl").write_text("".join(lines[:-10]), encoding="utf-8")
    _set_status(finished_run, "running")
    with pytest.warns(TruncatedRunWarning, match=f"left out {last['sample_records'] - 10} record"):
        kept = read_samples(finished_run)
    assert not any(r["path"] == last["path"] and r["repeat"] == last["repeat"] for r in kept)
    result = api.resume(finished_run, reports=False)
    assert result.samples == 1 and result.complete
    assert_every_sample_whole_once(finished_run)


def test_a_garbage_last_line_is_cut_before_resume_appends(finished_run: Path) -> None:
    lines = _lines(finished_run)
    count = json.loads(lines[-1])["sample_records"]
    # The last sample gone whole, then a line of garbage that ends in a newline.
    (finished_run / "samples.jsonl").write_text("".join(lines[:-count]) + "{garbage\n", encoding="utf-8")
    _set_status(finished_run, "interrupted")
    result = api.resume(finished_run, reports=False)
    assert result.samples == 1 and result.complete
    assert "garbage" not in (finished_run / "samples.jsonl").read_text(encoding="utf-8")
    assert_every_sample_whole_once(finished_run)


def test_damage_before_the_end_refuses_resume_and_leaves_the_status(finished_run: Path) -> None:
    lines = _lines(finished_run)
    lines[1] = "{garbage\n"
    (finished_run / "samples.jsonl").write_text("".join(lines), encoding="utf-8")
    _set_status(finished_run, "interrupted")
    before = (finished_run / "run.json").read_bytes()
    with pytest.raises(CorruptRun, match=r"samples\.jsonl:2: not valid JSON"):
        api.resume(finished_run, reports=False)
    assert (finished_run / "run.json").read_bytes() == before


FILE_LIMIT = 60_000  # bytes: run.json and about three samples of tiny-bert fit, not eight


def _limit_file_size() -> None:
    # A real full disk for one process: writes past the limit fail with EFBIG (Python ignores
    # SIGXFSZ), exactly as ENOSPC would, part-way through a sample's records.
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_LIMIT, FILE_LIMIT))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def test_a_full_disk_stops_the_run_resumable_with_whole_samples(builtin, cli, tmp_path: Path) -> None:
    builtin("tiny-bert")
    suite = tmp_path / "suite.toml"
    suite.write_text(f'repeats = {REPEATS * 2}\nwarmups = 0\ncache = "warm"\npaths = ["base", "custom"]\n'
                     'forward_iters = 1\n[[checkpoints]]\nbuiltin = "tiny-bert"\n', encoding="utf-8")
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", "loadbench.bench.cli.main", "run", str(suite), "--no-progress",
                             "--output", str(out)], capture_output=True, text=True, timeout=600,
                            preexec_fn=_limit_file_size)
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert "cannot write more samples (File too large)" in line and f"loadbench run --resume {out}" in line
    assert read_run_info(out)["status"] == "interrupted"
    assert (out / "samples.jsonl").stat().st_size <= FILE_LIMIT
    with warnings.catch_warnings():
        warnings.simplefilter("error", TruncatedRunWarning)  # the failed write was cut back off
        kept = read_samples(out)
    assert 0 < len({(r["path"], r["repeat"]) for r in kept}) < 4 * REPEATS
    resumed = cli("run", "--resume", str(out), "--no-progress")  # the file-size limit was the first process's
    assert resumed.returncode == 0, resumed.stderr
    assert_every_sample_whole_once(out, repeats=REPEATS * 2)


def _drop_last_sample(run_dir: Path) -> None:
    lines = _lines(run_dir)
    count = json.loads(lines[-1])["sample_records"]
    (run_dir / "samples.jsonl").write_text("".join(lines[:-count]), encoding="utf-8")
    _set_status(run_dir, "interrupted")


def test_a_relative_checkpoint_path_means_the_same_directory_on_resume(
        builtin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    for where, name in (("a", "tiny-bert"), ("b", "tiny-llama")):
        shutil.copytree(builtin(name), tmp_path / where / "model")
    monkeypatch.chdir(tmp_path / "a")
    suite = _suite().model_copy(update={"checkpoints": [CheckpointEntry(path="model")]})
    run_dir = api.run(suite, output=tmp_path / "run", reports=False).run_dir
    info = read_run_info(run_dir)
    assert info["suite"]["checkpoints"][0]["path"] == str(tmp_path / "a" / "model")
    assert list(info["checkpoints"]) == [str(tmp_path / "a" / "model")]
    _drop_last_sample(run_dir)
    monkeypatch.chdir(tmp_path / "b")  # another "model" here: a Llama, not the BERT the run measured
    result = api.resume(run_dir, reports=False)
    assert result.samples == 1 and result.complete
    assert set(load(run_dir)["task"]) == {"text-classification"}
    assert_every_sample_whole_once(run_dir)


def test_a_changed_checkpoint_refuses_resume(builtin, tmp_path: Path) -> None:
    import shutil

    shutil.copytree(builtin("tiny-bert"), tmp_path / "model")
    suite = _suite().model_copy(update={"checkpoints": [CheckpointEntry(path=str(tmp_path / "model"))]})
    run_dir = api.run(suite, output=tmp_path / "run", reports=False).run_dir
    _drop_last_sample(run_dir)
    config = json.loads((tmp_path / "model" / "config.json").read_text(encoding="utf-8"))
    (tmp_path / "model" / "config.json").write_text(json.dumps({**config, "num_hidden_layers": 1}),
                                                   encoding="utf-8")
    before = (run_dir / "run.json").read_bytes()
    with pytest.raises(CheckpointChanged, match="changed since .* start a new run"):
        api.resume(run_dir, reports=False)
    assert (run_dir / "run.json").read_bytes() == before
