"""The helpers every harness benchmark script shares: options, record file, spread."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loadbench.bench.studies import scripts


def _args(*argv: str, least: int = 2):
    return scripts.benchmark_args(list(argv), "loadbench.bench.example", "An example.\n\nMore.", 10, least, "repeats")


def test_parser_defaults_and_reads_both_options(tmp_path: Path) -> None:
    assert (_args().samples, _args().output) == (10, None)
    args = _args("--samples", "3", "--output", str(tmp_path / "out.jsonl"))
    assert (args.samples, args.output) == (3, tmp_path / "out.jsonl")


def test_parser_rejects_samples_below_the_least_allowed(capsys: pytest.CaptureFixture[str]) -> None:
    assert _args("--samples", "2").samples == 2
    with pytest.raises(SystemExit) as exit_info:
        _args("--samples", "1")
    assert exit_info.value.code == 2
    assert "--samples must be at least 2" in capsys.readouterr().err


def test_append_record_adds_one_synced_line_per_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real_fsync = scripts.os.fsync
    monkeypatch.setattr(scripts.os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    output = tmp_path / "records.jsonl"
    output.write_text('{"kept": true}\n')  # appends, never truncates
    scripts.append_record(output, {"sample": 0, "value": 0.5})
    scripts.append_record(output, {"summary": {"samples": 1}})
    lines = [json.loads(line) for line in output.read_text().splitlines()]
    assert lines == [{"kept": True}, {"sample": 0, "value": 0.5}, {"summary": {"samples": 1}}]
    assert len(synced) == 2


def test_append_record_without_output_writes_nothing(tmp_path: Path) -> None:
    scripts.append_record(None, {"sample": 0})
    assert list(tmp_path.iterdir()) == []


def test_spread_is_median_iqr_min_max() -> None:
    # Linear-interpolated quartiles of 1..5 are 2 and 4.
    assert scripts.spread([5.0, 1.0, 4.0, 2.0, 3.0]) == (3.0, 2.0, 1.0, 5.0)
    assert scripts.spread([0.25]) == (0.25, 0.0, 0.25, 0.25)  # selfbench allows one sample


def test_machine_info_names_what_figures_depend_on() -> None:
    info = scripts.machine_info()
    assert set(info) == {"cpu_count", "python", "torch", "transformers", "platform"}
    assert json.loads(json.dumps(info)) == info
