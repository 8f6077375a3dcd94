"""The run directory: writing safely, reading back, refusing damage."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from loadbench.results.records import store
from loadbench.results.records.schema import SCHEMA_VERSION, Sample, UnsupportedSchema
from loadbench.results.records.store import (
    CorruptRun,
    NotARun,
    RunExists,
    RunWriter,
    TruncatedRunWarning,
    read_run_info,
    read_samples,
)


@pytest.fixture
def samples(case: dict[str, str]) -> list[Sample]:
    return [Sample.ok(case, "r", i, "load_s", 0.1 * (i + 1)) for i in range(3)]


def _alone(sample: Sample) -> dict[str, object]:
    """A record as append() writes it: a sample of one record."""
    return {**sample.to_dict(), "sample_records": 1}


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def test_create_writes_run_info_and_empty_samples(tmp_path: Path) -> None:
    run_dir = tmp_path / "a" / "b"
    writer = RunWriter.create(run_dir, {"run_id": "r", "suite": "smoke"})
    info = json.loads((run_dir / "run.json").read_text())
    assert info["run_id"] == "r" and info["suite"] == "smoke"
    assert info["schema_version"] == SCHEMA_VERSION == 6 and info["status"] == "running"
    started = datetime.fromisoformat(info["started_at"])
    assert started.utcoffset() == UTC.utcoffset(None)
    assert (run_dir / "samples.jsonl").read_text() == ""
    writer.close()


def test_append_is_on_disk_before_close(tmp_path: Path, samples: list[Sample]) -> None:
    writer = RunWriter.create(tmp_path / "run", {"run_id": "r"})
    for i, sample in enumerate(samples, 1):
        writer.append(sample)
        lines = _lines(tmp_path / "run" / "samples.jsonl")
        assert len(lines) == i and json.loads(lines[-1]) == _alone(sample)
    assert read_samples(tmp_path / "run") == [_alone(s) for s in samples]
    writer.close()


@pytest.mark.parametrize("existing", ["run.json", "samples.jsonl"])
def test_refuses_existing_run(tmp_path: Path, existing: str) -> None:
    (tmp_path / existing).write_text("{}")
    with pytest.raises(RunExists) as info:
        RunWriter.create(tmp_path, {})
    assert isinstance(info.value, FileExistsError)
    assert "`output`" in str(info.value) and "\n" not in str(info.value)
    assert (tmp_path / existing).read_text() == "{}"


def test_second_create_in_same_dir_refused(tmp_path: Path) -> None:
    RunWriter.create(tmp_path, {}).close()
    with pytest.raises(RunExists):
        RunWriter.create(tmp_path, {})


def test_reserved_run_info_keys_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="status"):
        RunWriter.create(tmp_path, {"status": "done"})


def test_update_rewrites_run_json_atomically(tmp_path: Path) -> None:
    writer = RunWriter.create(tmp_path, {"run_id": "r"})
    writer.update(n_cases=4, notes="warm cache")
    info = json.loads((tmp_path / "run.json").read_text())
    assert info["n_cases"] == 4 and info["notes"] == "warm cache" and info["run_id"] == "r"
    assert info["status"] == "running"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json", "samples.jsonl"]
    writer.close()


def test_failed_update_leaves_previous_run_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writer = RunWriter.create(tmp_path, {"run_id": "r"})
    before = (tmp_path / "run.json").read_text()

    def crash(src: str, dst: str) -> None:
        raise OSError("simulated crash before the rename")

    monkeypatch.setattr(store.os, "replace", crash)
    with pytest.raises(OSError, match="simulated"):
        writer.update(n_cases=4)
    assert (tmp_path / "run.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json", "samples.jsonl"]
    monkeypatch.undo()
    writer.close()


def test_update_cannot_set_status(tmp_path: Path) -> None:
    with RunWriter.create(tmp_path, {}) as writer, pytest.raises(ValueError, match="close"):
        writer.update(status="complete")


def test_close_sets_status_and_finished_at(tmp_path: Path, samples: list[Sample]) -> None:
    writer = RunWriter.create(tmp_path, {"run_id": "r"})
    writer.close("interrupted")
    info = read_run_info(tmp_path)
    assert info["status"] == "interrupted" and "finished_at" in info
    with pytest.raises(ValueError, match="closed"):
        writer.append(samples[0])
    with pytest.raises(ValueError, match="closed"):
        writer.close()


def test_close_rejects_unknown_status(tmp_path: Path) -> None:
    writer = RunWriter.create(tmp_path, {})
    with pytest.raises(ValueError, match="complete"):
        writer.close("done")  # type: ignore[arg-type]
    writer.close()


@pytest.mark.parametrize(
    ("error", "status"),
    [(None, "complete"), (RuntimeError, "failed"), (KeyboardInterrupt, "interrupted")],
)
def test_context_manager_status(tmp_path: Path, error: type[BaseException] | None, status: str) -> None:
    if error is None:
        with RunWriter.create(tmp_path, {}):
            pass
    else:
        with pytest.raises(error), RunWriter.create(tmp_path, {}):
            raise error()
    assert read_run_info(tmp_path)["status"] == status


def test_append_refuses_other_run_id(tmp_path: Path, case: dict[str, str]) -> None:
    with RunWriter.create(tmp_path, {"run_id": "r"}) as writer, pytest.raises(ValueError, match="run_id"):
        writer.append(Sample.ok(case, "other", 0, "load_s", 1.0))


def test_missing_dir_is_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(NotARun) as info:
        read_samples(tmp_path / "nope")
    assert isinstance(info.value, FileNotFoundError) and "\n" not in str(info.value)
    with pytest.raises(NotARun, match="run.json"):
        read_run_info(tmp_path)


def _write_run(tmp_path: Path, samples: list[Sample]) -> Path:
    with RunWriter.create(tmp_path, {"run_id": "r"}) as writer:
        for sample in samples:
            writer.append(sample)
    return tmp_path / "samples.jsonl"


def test_truncated_last_line_skipped_with_warning(tmp_path: Path, samples: list[Sample]) -> None:
    path = _write_run(tmp_path, samples)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 25])  # a crash in the middle of the last write
    cut = (r"samples\.jsonl: its last sample was cut short \(an interrupted write\): 2 whole sample\(s\) read; "
           r"left out 1 record")
    with pytest.warns(TruncatedRunWarning, match=cut):
        records = read_samples(tmp_path)
    assert records == [_alone(s) for s in samples[:2]]


def test_corrupt_middle_line_names_file_and_line(tmp_path: Path, samples: list[Sample]) -> None:
    path = _write_run(tmp_path, samples)
    lines = _lines(path)
    lines[1] = lines[1][:40]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(CorruptRun, match=r"samples\.jsonl:2: not valid JSON"):
        read_samples(tmp_path)


def test_invalid_record_in_middle_names_line(tmp_path: Path, samples: list[Sample]) -> None:
    path = _write_run(tmp_path, samples)
    lines = _lines(path)
    record = json.loads(lines[1])
    record["status"] = "maybe"
    lines[1] = json.dumps(record)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(CorruptRun, match=r"samples\.jsonl:2: status must be one of"):
        read_samples(tmp_path)


def test_newer_sample_schema_refused(tmp_path: Path, samples: list[Sample]) -> None:
    path = _write_run(tmp_path, samples)
    record = samples[0].to_dict() | {"schema_version": 99}
    with path.open("a") as f:
        f.write(json.dumps(record) + "\n")
    with pytest.raises(UnsupportedSchema, match=r"samples\.jsonl:4: .*99"):
        read_samples(tmp_path)


def test_newer_run_info_schema_refused(tmp_path: Path) -> None:
    RunWriter.create(tmp_path, {}).close()
    info = json.loads((tmp_path / "run.json").read_text()) | {"schema_version": SCHEMA_VERSION + 1}
    (tmp_path / "run.json").write_text(json.dumps(info))
    with pytest.raises(UnsupportedSchema, match="run.json"):
        read_run_info(tmp_path)


def test_missing_samples_file_is_corrupt(tmp_path: Path) -> None:
    RunWriter.create(tmp_path, {}).close()
    os.remove(tmp_path / "samples.jsonl")
    with pytest.raises(CorruptRun, match="samples.jsonl"):
        read_samples(tmp_path)


def test_v1_lines_are_read_back_as_current(tmp_path: Path, samples: list[Sample]) -> None:
    path = _write_run(tmp_path, samples)
    added = ("cache", "warmup", "node", "sample_records", "env", "block")  # all after v1
    v1 = {k: v for k, v in samples[0].to_dict().items() if k not in added}
    with path.open("a") as f:
        f.write(json.dumps(v1 | {"schema_version": 1, "repeat": 7}) + "\n")
    records = read_samples(tmp_path)
    assert records[:3] == [_alone(s) for s in samples]
    last = records[3]
    assert list(last) == list(samples[0].to_dict())
    assert (last["schema_version"], last["cache"], last["warmup"], last["repeat"], last["node"]) == (
        SCHEMA_VERSION, "unspecified", False, 7, None,
    )
    assert last["sample_records"] is None
    assert (last["env"], last["block"]) == ("default", None)


def test_warmup_sample_round_trips(tmp_path: Path, case: dict[str, str]) -> None:
    warm = Sample.ok(case, "r", 0, "load_s", 9.0, warmup=True)
    _write_run(tmp_path, [warm])
    assert json.loads(_lines(tmp_path / "samples.jsonl")[0])["warmup"] is True
    assert read_samples(tmp_path) == [_alone(warm)]


def test_v1_run_info_still_readable(golden_run: Path) -> None:
    # run.json is written once per run and not migrated: it says what wrote it.
    assert read_run_info(golden_run)["schema_version"] == 1
