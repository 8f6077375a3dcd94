"""Older records: every format change is migrated, and the format history says what changed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from loadbench_tests_record_versions import (  # registered by conftest.py
    FIELDS,
    ok_record,
    v1_record,
    v2_record,
    v3_record,
    v4_record,
    v5_record,
)

from loadbench.results.records import migrations
from loadbench.results.records.migrations import migrate
from loadbench.results.records.schema import SCHEMA_VERSION, Sample, UnsupportedSchema


def test_format_history_documents_current_version() -> None:
    source = Path(migrations.__file__).read_text(encoding="utf-8")
    history = source[source.index("# Format history"):source.index("# migrate_to_N(record)")]
    assert f"#   {SCHEMA_VERSION} —" in history


def test_format_history_documents_node() -> None:
    source = Path(migrations.__file__).read_text(encoding="utf-8")
    history = source[source.index("# Format history"):source.index("# migrate_to_N(record)")]
    assert "`node`: id of the machine that measured the sample, a key of run.json's" in history


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


def test_every_version_has_a_migration() -> None:
    assert sorted(migrations._MIGRATIONS) == list(range(2, SCHEMA_VERSION + 1))


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
    assert migrations.migrate_to_3(v2_record())["node"] is None


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
    v5 = migrations.migrate_to_5(record)
    assert list(v5).index("env") == list(v5).index("cache") + 1
    assert list(migrated)[-1] == "block"
    assert migrated["env"] == "default" and migrated["block"] is None
    assert {k: v for k, v in migrated.items() if k not in ("schema_version", "env", "block", "options")} == {
        k: v for k, v in record.items() if k != "schema_version"
    }
    sample = Sample.from_dict(migrated)
    assert (sample.env, sample.block, sample.schema_version) == ("default", None, SCHEMA_VERSION)
    assert (sample.cache, sample.node, sample.warmup, sample.sample_records) == ("cold", "gpu-a", True, 3)
    assert migrations.migrate_to_5(v4_record())["env"] == "default"


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
