"""The record type: construction, validation, versions."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import pytest

from loadbench.results import schema
from loadbench.results.metrics import UnknownMetric
from loadbench.results.schema import (
    CASE_KEYS,
    SCHEMA_VERSION,
    InvalidRecord,
    Sample,
    UnsupportedSchema,
    drop_superseded,
    migrate,
    sample_key,
)
from loadbench.vocabulary import RETRYABLE_ERRORS

FIELDS = [
    "schema_version", "run_id", "checkpoint", "path", "task", "dtype", "device", "cache", "options", "env", "repeat",
    "metric", "value", "unit", "direction", "status", "reason", "error_type", "error",
    "attn_implementation", "resident_dtype", "warmup", "node", "sample_records", "block",
]


def ok_record(**changes: Any) -> dict[str, Any]:
    """A valid current-version (v6) record."""
    record = {
        "schema_version": 6, "run_id": "r", "checkpoint": "org/model", "path": "base",
        "task": "feature-extraction", "dtype": "float32", "device": "cpu", "cache": "warm", "options": "default",
        "env": "default",
        "repeat": 0, "metric": "load_s", "value": 0.5, "unit": "s", "direction": "lower", "status": "ok",
        "reason": None, "error_type": None, "error": None,
        "attn_implementation": None, "resident_dtype": None, "warmup": False, "node": None,
        "sample_records": 1, "block": None,
    }
    record.update(changes)
    return record


def v5_record(**changes: Any) -> dict[str, Any]:
    """A record as schema v5 wrote it: no options."""
    record = {k: v for k, v in ok_record(schema_version=5).items() if k != "options"}
    record.update(changes)
    return record


def v4_record(**changes: Any) -> dict[str, Any]:
    """A record as schema v4 wrote it: no env, no block."""
    record = {k: v for k, v in v5_record(schema_version=4).items() if k not in ("env", "block")}
    record.update(changes)
    return record


def v3_record(**changes: Any) -> dict[str, Any]:
    """A record as schema v3 wrote it: no sample_records."""
    record = {k: v for k, v in v4_record(schema_version=3).items() if k != "sample_records"}
    record.update(changes)
    return record


def v2_record(**changes: Any) -> dict[str, Any]:
    """A record as schema v2 wrote it: no node."""
    record = {k: v for k, v in v3_record(schema_version=2, attn_implementation="sdpa").items() if k != "node"}
    record.update(changes)
    return record


def v1_record(**changes: Any) -> dict[str, Any]:
    """A record as loadbench 0.1 (schema v1) wrote it: no cache, no warmup."""
    record = {
        "schema_version": 1, "run_id": "r", "checkpoint": "org/model", "path": "base",
        "task": "feature-extraction", "dtype": "float32", "device": "cpu", "repeat": 0,
        "metric": "load_s", "value": 0.5, "unit": "s", "direction": "lower", "status": "ok",
        "reason": None, "error_type": None, "error": None,
        "attn_implementation": "sdpa", "resident_dtype": None,
    }
    record.update(changes)
    return record


def test_fields_in_order_and_case_keys() -> None:
    assert [f.name for f in dataclasses.fields(Sample)] == FIELDS
    assert CASE_KEYS == ("checkpoint", "path", "task", "dtype", "device", "cache", "options", "env")
    assert SCHEMA_VERSION == 6


def test_format_history_documents_current_version() -> None:
    source = Path(schema.__file__).read_text(encoding="utf-8")
    history = source[source.index("# Format history"):source.index("SCHEMA_VERSION = ")]
    assert f"#   {SCHEMA_VERSION} —" in history


def test_ok_takes_unit_and_direction_from_registry(case: dict[str, str]) -> None:
    s = Sample.ok(case, "r", 2, "forward_tokens_per_s", 1234.5, attn_implementation="sdpa")
    assert (s.unit, s.direction, s.status, s.value, s.repeat) == ("tok/s", "higher", "ok", 1234.5, 2)
    assert (s.checkpoint, s.path, s.device) == ("org/model", "base", "cpu")
    assert s.attn_implementation == "sdpa" and s.schema_version == SCHEMA_VERSION


def test_not_applicable_and_failed_helpers(case: dict[str, str]) -> None:
    na = Sample.not_applicable(case, "r", 0, "ttft_s", "encoder-only")
    assert (na.status, na.value, na.reason, na.unit) == ("not_applicable", None, "encoder-only", "s")
    failed = Sample.failed(case, "r", 1, "peak_rss_bytes", "OSError", "disk full")
    assert (failed.status, failed.value, failed.error_type, failed.error, failed.unit) == (
        "failed", None, "OSError", "disk full", "bytes",
    )


def test_helpers_reject_unknown_metric_and_incomplete_case(case: dict[str, str]) -> None:
    with pytest.raises(UnknownMetric):
        Sample.ok(case, "r", 0, "load_ms", 1.0)
    del case["device"]
    with pytest.raises(InvalidRecord, match="device"):
        Sample.ok(case, "r", 0, "load_s", 1.0)


def test_helpers_need_cache_in_case(case: dict[str, str]) -> None:
    del case["cache"]
    with pytest.raises(InvalidRecord, match="cache"):
        Sample.ok(case, "r", 0, "load_s", 1.0)


def test_helpers_default_to_the_default_env(case: dict[str, str]) -> None:
    assert "env" not in case
    assert Sample.ok(case, "r", 0, "load_s", 1.0).env == "default"
    assert Sample.ok({**case, "env": "py313"}, "r", 0, "load_s", 1.0).env == "py313"
    assert Sample.failed({**case, "env": "py313"}, "r", 0, "load_s", "E", "e", block=2).block == 2
    assert Sample.not_applicable(case, "r", 0, "ttft_s", "encoder-only").block is None


def test_helpers_default_to_measured_and_mark_warmup(case: dict[str, str]) -> None:
    assert Sample.ok(case, "r", 0, "load_s", 1.0).warmup is False
    warm = Sample.ok(case, "r", 0, "load_s", 1.0, warmup=True)
    assert warm.warmup is True and warm.cache == "warm"
    assert Sample.failed(case, "r", 0, "load_s", "E", "e", warmup=True).warmup is True


def test_int_value_becomes_float() -> None:
    value = Sample.from_dict(ok_record(value=3)).value
    assert value == 3.0 and type(value) is float


def test_to_dict_round_trips_through_json(case: dict[str, str]) -> None:
    s = Sample.failed(case, "r", 1, "load_s", "ValueError", "bad")
    d = s.to_dict()
    assert list(d) == FIELDS
    assert Sample.from_dict(json.loads(json.dumps(d))) == s


def test_sample_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Sample.from_dict(ok_record()).value = 1.0  # type: ignore[misc]


def _without(key: str) -> dict[str, Any]:
    record = ok_record()
    del record[key]
    return record


INVALID = {
    "missing run_id": _without("run_id"),
    "missing value": _without("value"),
    "missing schema_version": _without("schema_version"),
    "unknown field": ok_record(colour="red"),
    "schema_version str": ok_record(schema_version="1"),
    "schema_version 0": ok_record(schema_version=0),
    "run_id int": ok_record(run_id=5),
    "empty checkpoint": ok_record(checkpoint=""),
    "repeat str": ok_record(repeat="0"),
    "repeat bool": ok_record(repeat=True),
    "repeat negative": ok_record(repeat=-1),
    "value str": ok_record(value="0.5"),
    "value bool": ok_record(value=True),
    "reason int": ok_record(reason=3),
    "missing cache": _without("cache"),
    "empty cache": ok_record(cache=""),
    "cache null": ok_record(cache=None),
    "missing warmup": _without("warmup"),
    "warmup str": ok_record(warmup="false"),
    "warmup int": ok_record(warmup=0),
    "warmup null": ok_record(warmup=None),
    "node int": ok_record(node=3),
    "node list": ok_record(node=["n1"]),
    "v1 record unmigrated": v1_record(),
    "v2 record unmigrated": v2_record(),
    "v4 record unmigrated": v4_record(),
    "missing env": _without("env"),
    "empty env": ok_record(env=""),
    "env null": ok_record(env=None),
    "missing block": _without("block"),
    "bad status": ok_record(status="skipped"),
    "bad direction": ok_record(direction="up"),
    "ok without value": ok_record(value=None),
    "ok with nan": ok_record(value=math.nan),
    "ok with inf": ok_record(value=math.inf),
    "n/a with value": ok_record(status="not_applicable", reason="x"),
    "n/a without reason": ok_record(status="not_applicable", value=None),
    "failed with value": ok_record(status="failed", error_type="E", error="e"),
    "failed without error_type": ok_record(status="failed", value=None, error="e"),
    "failed without error": ok_record(status="failed", value=None, error_type="E"),
}


@pytest.mark.parametrize("record", list(INVALID.values()), ids=list(INVALID))
def test_invalid_records_raise_one_line(record: dict[str, Any]) -> None:
    with pytest.raises(InvalidRecord) as info:
        Sample.from_dict(record)
    assert str(info.value) and "\n" not in str(info.value)


def test_from_dict_rejects_non_mapping() -> None:
    with pytest.raises(InvalidRecord, match="JSON object"):
        Sample.from_dict([1, 2])  # type: ignore[arg-type]


def test_valid_variants_accepted() -> None:
    assert Sample.from_dict(ok_record()).status == "ok"
    assert Sample.from_dict(ok_record(cache="cold", warmup=True)).warmup is True
    assert Sample.from_dict(ok_record(node="gpu-3-1a2b3c4d")).node == "gpu-3-1a2b3c4d"
    assert Sample.from_dict(ok_record(status="not_applicable", value=None, reason="x")).reason == "x"
    failed = ok_record(status="failed", value=None, error_type="E", error="e")
    assert Sample.from_dict(failed).error == "e"


def test_newer_schema_refused() -> None:
    newer = ok_record(schema_version=SCHEMA_VERSION + 1, brand_new_field=1)
    with pytest.raises(UnsupportedSchema, match="upgrade loadbench"):
        migrate(newer)
    with pytest.raises(UnsupportedSchema):
        Sample.from_dict(newer)


def test_migrate_current_version_returns_equal_copy() -> None:
    record = ok_record()
    migrated = migrate(record)
    assert migrated == record and migrated is not record


def test_v1_record_must_be_migrated_first() -> None:
    with pytest.raises(InvalidRecord, match="migrate"):
        Sample.from_dict(v1_record())


def test_every_version_has_a_migration() -> None:
    assert sorted(schema._MIGRATIONS) == list(range(2, SCHEMA_VERSION + 1))


def test_migrate_v1_adds_cache_after_device_and_warmup_last() -> None:
    record = v1_record()
    before = dict(record)
    migrated = migrate(record)
    assert record == before  # the input is left alone
    assert list(migrated) == FIELDS
    assert migrated["schema_version"] == SCHEMA_VERSION
    assert migrated["cache"] == "unspecified" and migrated["warmup"] is False and migrated["node"] is None
    assert migrated["sample_records"] is None
    assert migrated["env"] == "default" and migrated["block"] is None
    # Everything v1 had is carried over unchanged.
    added = ("schema_version", "cache", "warmup", "node", "sample_records", "env", "block", "options")
    assert {k: v for k, v in migrated.items() if k not in added} == {
        k: v for k, v in record.items() if k != "schema_version"
    }
    sample = Sample.from_dict(migrated)
    assert (sample.cache, sample.warmup, sample.schema_version, sample.node) == (
        "unspecified", False, SCHEMA_VERSION, None)
    assert sample.attn_implementation == "sdpa"


@pytest.mark.parametrize(
    "record",
    [
        v1_record(status="not_applicable", value=None, reason="encoder-only"),
        v1_record(status="failed", value=None, error_type="OSError", error="disk full"),
    ],
    ids=["not_applicable", "failed"],
)
def test_migrate_v1_non_ok_records(record: dict[str, Any]) -> None:
    sample = Sample.from_dict(migrate(record))
    assert sample.status == record["status"] and sample.value is None
    assert (sample.reason, sample.error_type, sample.error) == (
        record["reason"], record["error_type"], record["error"],
    )
    assert (sample.cache, sample.warmup) == ("unspecified", False)


def test_migrate_v2_adds_a_null_node_last() -> None:
    record = v2_record(cache="cold", warmup=True)
    before = dict(record)
    migrated = migrate(record)
    assert record == before  # the input is left alone
    assert list(migrated) == FIELDS
    assert migrated["schema_version"] == SCHEMA_VERSION
    assert migrated["node"] is None and migrated["sample_records"] is None
    assert migrated["env"] == "default" and migrated["block"] is None
    added = ("schema_version", "node", "sample_records", "env", "block", "options")
    assert {k: v for k, v in migrated.items() if k not in added} == {
        k: v for k, v in record.items() if k != "schema_version"
    }
    sample = Sample.from_dict(migrated)
    assert (sample.cache, sample.warmup, sample.attn_implementation) == ("cold", True, "sdpa")
    assert schema.migrate_to_3(v2_record())["node"] is None


def test_migrate_v3_adds_a_null_sample_records_last() -> None:
    record = v3_record(node="gpu-a", warmup=True)
    migrated = migrate(record)
    assert list(migrated) == FIELDS and migrated["schema_version"] == SCHEMA_VERSION
    assert migrated["sample_records"] is None
    assert migrated["env"] == "default" and migrated["block"] is None
    added = ("schema_version", "sample_records", "env", "block", "options")
    assert {k: v for k, v in migrated.items() if k not in added} == {
        k: v for k, v in record.items() if k != "schema_version"
    }


def test_migrate_v4_adds_env_after_cache_and_a_null_block_last() -> None:
    record = v4_record(cache="cold", node="gpu-a", warmup=True, sample_records=3)
    before = dict(record)
    migrated = migrate(record)
    assert record == before  # the input is left alone
    assert list(migrated) == FIELDS and migrated["schema_version"] == SCHEMA_VERSION
    v5 = schema.migrate_to_5(record)
    assert list(v5).index("env") == list(v5).index("cache") + 1
    assert list(migrated)[-1] == "block"
    assert migrated["env"] == "default" and migrated["block"] is None
    assert {k: v for k, v in migrated.items() if k not in ("schema_version", "env", "block", "options")} == {
        k: v for k, v in record.items() if k != "schema_version"
    }
    sample = Sample.from_dict(migrated)
    assert (sample.env, sample.block, sample.schema_version) == ("default", None, SCHEMA_VERSION)
    assert (sample.cache, sample.node, sample.warmup, sample.sample_records) == ("cold", "gpu-a", True, 3)
    assert schema.migrate_to_5(v4_record())["env"] == "default"


def test_migrate_v5_adds_default_options_after_cache() -> None:
    record = v5_record(cache="cold", env="head")
    before = dict(record)
    migrated = migrate(record)
    assert record == before and list(migrated) == FIELDS
    assert list(migrated).index("options") == list(migrated).index("cache") + 1
    assert migrated["options"] == "default" and migrated["schema_version"] == SCHEMA_VERSION
    assert {k: v for k, v in migrated.items() if k not in ("schema_version", "options")} == {
        k: v for k, v in record.items() if k != "schema_version"}
    assert Sample.from_dict(migrated).options == "default"


@pytest.mark.parametrize("count", [0, -1, 1.5, True, "3"])
def test_sample_records_must_be_a_positive_count(count: object) -> None:
    with pytest.raises(InvalidRecord, match="sample_records"):
        Sample.from_dict(ok_record(sample_records=count))


@pytest.mark.parametrize("block", [-1, 1.5, 0.0, True, False, "3"])
def test_block_must_be_a_non_negative_int_or_null(block: object) -> None:
    with pytest.raises(InvalidRecord, match="block must be an int >= 0 or null"):
        Sample.from_dict(ok_record(block=block))


@pytest.mark.parametrize("block", [None, 0, 7])
def test_block_accepts_a_non_negative_int_or_null(block: int | None) -> None:
    assert Sample.from_dict(ok_record(block=block)).block == block


def test_constructors_record_the_node(case: dict[str, str]) -> None:
    assert Sample.ok(case, "r", 0, "load_s", 1.0).node is None
    assert Sample.ok(case, "r", 0, "load_s", 1.0, node="n1").to_dict()["node"] == "n1"
    assert Sample.failed(case, "r", 0, "load_s", "node_lost", "worker node died", node="n2").node == "n2"


def test_format_history_documents_node() -> None:
    source = Path(schema.__file__).read_text(encoding="utf-8")
    history = source[source.index("# Format history"):source.index("SCHEMA_VERSION = ")]
    assert "`node`: id of the machine that measured the sample, a key of run.json's" in history


def _lost(case: dict[str, str], run_id: str = "r", repeat: int = 0, **extra: Any) -> dict[str, Any]:
    return Sample.failed(case, run_id, repeat, "load_s", "node_lost", "node n1 went away", **extra).to_dict()


def _ok(case: dict[str, str], run_id: str = "r", repeat: int = 0, metric: str = "load_s",
        **extra: Any) -> dict[str, Any]:
    return Sample.ok(case, run_id, repeat, metric, 1.0, **extra).to_dict()


def test_retryable_errors() -> None:
    assert RETRYABLE_ERRORS == ("node_lost",)


def test_a_retried_lost_sample_drops_its_failure(case: dict[str, str]) -> None:
    lost, retried, other = _lost(case, node="n1"), _ok(case, node="n2"), _ok(case, repeat=1)
    assert drop_superseded([lost, other, retried]) == [other, retried]  # order kept
    # Any record of the same sample counts, whatever its metric or status.
    assert drop_superseded([lost, _ok(case, metric="first_forward_s")]) == [_ok(case, metric="first_forward_s")]
    failed_again = Sample.failed(case, "r", 0, "load_s", "RuntimeError", "boom").to_dict()
    assert drop_superseded([lost, failed_again]) == [failed_again]


def test_an_unretried_loss_stays_visible(case: dict[str, str]) -> None:
    lost = _lost(case)
    assert drop_superseded([lost]) == [lost]
    assert drop_superseded([lost, _lost(case)]) == [lost, lost]  # lost twice: still no measurement
    # Another repeat, run, case or warmup flag is another sample: it does not stand in for this one.
    others = [_ok(case, repeat=1), _ok(case, run_id="r2"), _ok({**case, "cache": "cold"}), _ok(case, warmup=True)]
    assert drop_superseded([lost, *others]) == [lost, *others]


def test_other_failures_are_never_dropped(case: dict[str, str]) -> None:
    oom = Sample.failed(case, "r", 0, "load_s", "OutOfMemoryError", "CUDA out of memory").to_dict()
    assert drop_superseded([oom, _ok(case, metric="peak_rss_bytes")]) == [oom, _ok(case, metric="peak_rss_bytes")]


def test_sample_key_leaves_the_metric_out(case: dict[str, str]) -> None:
    assert sample_key(_ok(case)) == sample_key(_ok(case, metric="peak_rss_bytes")) == (
        "r", *({"env": "default", "options": "default", **case}[k] for k in CASE_KEYS), 0, False)
    assert sample_key(_ok(case)) != sample_key(_ok(case, warmup=True))
