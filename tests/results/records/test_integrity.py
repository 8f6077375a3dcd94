"""Runs no measurement can produce are refused by the real commands, naming the file and line.

Each test damages a real run directory the way a hand edit or a script would and runs the
real ``loadbench report`` / ``compare`` (the CLI in this process) and the API.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from loadbench.results import CorruptRun, RunWriter, Sample, load, read_samples
from loadbench.results.comparison.comparability import CannotCompare
from loadbench.results.comparison.paired import compare_paired

CASE = {"checkpoint": "tiny-bert", "path": "task", "task": "text-classification", "dtype": "auto", "device": "cpu",
        "cache": "warm"}
FINGERPRINT = {"hostname": "ci-1", "cpu_model": "AMD EPYC", "cpu_count": 2, "gpus": "NVML unavailable",
               "packages": {"torch": "2.13.0+cpu", "transformers": "5.24.0"}}
# Nine: with one cut off, eight pairs still decide one gated row at 0.05 (the sign sequence: 2**8 / 9 >= 20).
BLOCKS = 9


def _paired(tmp_path: Path, envs: tuple[str, ...] = ("base", "head"), name: str = "run") -> Path:
    """A run with environments, one block per repeat, each sample of load_s, load_added_rss_bytes and config_s."""
    with RunWriter.create(tmp_path / name, {"run_id": name, "fingerprint": dict(FINGERPRINT)}) as writer:
        for block in range(BLOCKS):
            for k, env in enumerate(envs):
                case = {**CASE, "env": env}
                writer.append_sample([
                    Sample.ok(case, name, block, "load_s", 0.1 * (1 + 0.1 * k) * (1 + block / 1000), block=block),
                    # A load may return memory, and a phase it never entered takes no time: both are real.
                    Sample.ok(case, name, block, "load_added_rss_bytes", -4096.0 * (k + 1), block=block),
                    Sample.ok(case, name, block, "config_s", 0.0, block=block),
                ])
    return writer.run_dir


def _edit(run: Path, change: Callable[[list[dict]], list[dict]]) -> None:
    path = run / "samples.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()]
    path.write_text("".join(json.dumps(r) + "\n" for r in change(records)))


def _refused(cli, run: Path, *messages: str) -> None:
    """``report`` and ``compare`` each exit 2 with one line holding every message."""
    for verb in ("report", "compare"):
        result: subprocess.CompletedProcess[str] = cli(verb, str(run))
        assert result.returncode == 2, (verb, result.stdout[-300:], result.stderr)
        assert result.stderr.count("\n") == 1 and result.stderr.startswith("loadbench: error: "), result.stderr
        for message in messages:
            assert message in result.stderr, result.stderr


def test_a_real_paired_run_with_negative_memory_deltas_and_zero_phases_is_read(tmp_path: Path, cli) -> None:
    run = _paired(tmp_path)
    assert len(read_samples(run)) == BLOCKS * 2 * 3
    result = cli("compare", str(run), "--format", "json")
    assert result.returncode == 1, result.stderr  # head is 10% slower
    rows = {r["metric"]: r for r in json.loads(result.stdout)["rows"]}
    assert rows["load_s"]["pairs"] == BLOCKS and rows["load_s"]["verdict"] == "regressed"


def test_a_sample_appended_twice_is_refused_naming_both_lines(tmp_path: Path, cli) -> None:
    run = _paired(tmp_path)
    _edit(run, lambda records: records + records[-3:])  # the last sample again: one more pair than blocks
    last = BLOCKS * 2 * 3
    _refused(cli, run, f"samples.jsonl:{last + 1}: load_s of environment 'head', tiny-bert/task repeat {BLOCKS - 1} is "
                       f"recorded again (first at line {last - 2}); each sample is recorded once")


def test_a_block_with_two_samples_of_one_environment_is_refused(tmp_path: Path, cli) -> None:
    run = _paired(tmp_path)

    def move(records: list[dict]) -> list[dict]:
        # Block 2's head sample relabelled as base, as another repeat: base twice in the block, head never.
        for record in records:
            if record["block"] == 2 and record["env"] == "head":
                record.update(env="base", repeat=17)
        return records

    _edit(run, move)
    _refused(cli, run, "samples.jsonl:16: block 2 holds a second sample of environment 'base' for tiny-bert/task "
                       "(the first at line 13)")


@pytest.mark.parametrize("value", [0, -1, -0.001])
def test_a_load_time_of_zero_or_less_is_refused_and_never_a_ratio_below_minus_100(tmp_path: Path, cli,
                                                                                    value: float) -> None:
    run = _paired(tmp_path)

    def damage(records: list[dict]) -> list[dict]:
        for record in records:
            if record["metric"] == "load_s" and record["env"] == "base":
                record["value"] = value
        return records

    _edit(run, damage)
    _refused(cli, run, f"samples.jsonl:1: load_s = {value:g} with status ok: a time cannot be zero or negative; "
                       "the file was edited or damaged: measure the run again")


def test_compare_paired_refuses_impossible_frames_built_by_hand(tmp_path: Path) -> None:
    frame = load(_paired(tmp_path))
    negative = frame.copy()
    negative.loc[negative["metric"] == "load_s", "value"] = -1.0
    with pytest.raises(CannotCompare, match="load_s = -1 with status ok: a time cannot be zero or negative"):
        compare_paired(negative)
    twice = frame[frame["metric"] == "load_s"]
    twice = pd.concat([twice, twice.iloc[[-1]]])  # one block's sample of head counted twice
    with pytest.raises(CannotCompare, match=f"block {BLOCKS - 1} holds load_s of environment 'head'"):
        compare_paired(twice)
    # Every ratio compare prints from a readable run is a ratio of positive times: above -100%.
    table = compare_paired(frame)
    timed = table[table["unit"] == "s"].dropna(subset=["change"])
    assert len(timed) and (timed[["change", "ci_low", "ci_high"]] > -1).all().all()


def test_a_400_digit_value_is_one_line(tmp_path: Path, cli) -> None:
    run = _paired(tmp_path)
    (run / "samples.jsonl").write_text((run / "samples.jsonl").read_text().replace(
        '"value": 0.0,', '"value": ' + "9" * 400 + ",", 1))
    _refused(cli, run, "samples.jsonl:3: value 999999999999999999999999999999… (400 digits) is too large for any "
                       "measurement: the file was edited")


@pytest.mark.parametrize("fingerprint", ["a string", [1, 2], 3])
def test_a_fingerprint_that_is_not_an_object_is_one_line(tmp_path: Path, cli, fingerprint: object) -> None:
    run = _paired(tmp_path)
    info = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**info, "fingerprint": fingerprint}))
    _refused(cli, run, f"run.json: fingerprint must be an object, got {type(fingerprint).__name__}")


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_run_json_has_the_mode_of_the_other_files_of_the_run(tmp_path: Path, umask: int) -> None:
    previous = os.umask(umask)
    try:
        run = _paired(tmp_path, name=f"run{umask:o}")
        with RunWriter.create(tmp_path / f"open{umask:o}", {}) as writer:
            writer.update(note="rewritten")  # every rewrite too
    finally:
        os.umask(previous)
    for directory in (run, writer.run_dir):
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in directory.iterdir()}
        assert modes["run.json"] == modes["samples.jsonl"] == 0o666 & ~umask, modes


def test_a_cut_last_line_is_one_clean_warning_line(tmp_path: Path, cli) -> None:
    run = _paired(tmp_path)
    path = run / "samples.jsonl"
    path.write_bytes(path.read_bytes()[:-30])
    for verb in ("report", "compare"):
        result = cli(verb, str(run))
        assert result.returncode in (0, 1), result.stderr
        assert result.stderr == (f"loadbench: warning: {path}: its last sample was cut short (an interrupted "
                                 f"write): {BLOCKS * 2 - 1} whole sample(s) read; left out 3 record(s) of the cut "
                                 "one; `loadbench run --resume` of an unfinished run measures it again\n")


def test_the_reader_refuses_with_corrupt_run(tmp_path: Path) -> None:
    run = _paired(tmp_path)
    _edit(run, lambda records: records + records[:3])
    with pytest.raises(CorruptRun, match=rf"samples\.jsonl:{BLOCKS * 2 * 3 + 1}: load_s of environment 'base'"):
        load(run)


def test_a_time_too_small_for_its_ratio_is_an_infinite_change_not_a_crash(tmp_path: Path, cli) -> None:
    # Found by the property test: 1e-320 s against 0.1 s is a log-ratio past what exp() can hold.
    run = _paired(tmp_path)

    def tiny(records: list[dict]) -> list[dict]:
        for record in records:
            if record["metric"] == "load_s" and record["env"] == "base":
                record["value"] = 1e-320
        return records

    _edit(run, tiny)
    result = cli("compare", str(run), "--format", "json")
    assert result.returncode == 1, result.stderr
    row = next(r for r in json.loads(result.stdout)["rows"] if r["metric"] == "load_s")
    assert row["verdict"] == "regressed" and row["change"] is None  # +inf: JSON has no infinity
    assert "| 110 ms | +∞ | +∞ … +∞ |" in cli("compare", str(run)).stdout


def test_nan_in_run_json_is_one_line_and_environments_not_a_list_are_ignored(tmp_path: Path, cli) -> None:
    # Found by the property test: NaN broke the JSON report; a suite.environments of 5 crashed report and compare.
    run = _paired(tmp_path)
    info = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**info, "run_id": float("nan")}))
    result = cli("report", str(run), "--format", "json")
    assert result.returncode == 2 and result.stderr == (
        f"loadbench: error: {run}/run.json: not valid JSON (NaN is not a JSON number)\n")
    (run / "run.json").write_text(json.dumps({**info, "suite": {"environments": 5}}))
    assert cli("report", str(run)).returncode == 0
    assert cli("compare", str(run)).returncode == 1  # head is slower: the sides are the environments as sampled
