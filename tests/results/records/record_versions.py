"""Records as each schema version wrote them, shared by the tests of the record type and of its migrations."""

from __future__ import annotations

from typing import Any

__all__ = ["FIELDS", "ok_record", "v1_record", "v2_record", "v3_record", "v4_record", "v5_record"]

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
