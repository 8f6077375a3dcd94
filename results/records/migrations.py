"""Brings records written by older loadbench versions up to the current schema, so old runs stay readable.

Each format change gets one ``migrate_to_N`` step; ``migrate`` chains them, so the
record type in schema.py only ever has to understand the current version.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from loadbench.results.records.schema import DEFAULT_ENV, SCHEMA_VERSION, InvalidRecord, record_version
from loadbench.vocabulary import DEFAULT_OPTIONS

__all__ = ["migrate"]

# Format history (bump schema.SCHEMA_VERSION and add a migrate_to_N below for every
# change that an older reader would misread):
#   1 — first format: one flat record per (case, repeat, metric); samples.jsonl
#       plus run.json in a run directory.
#   2 — page cache becomes a case key (`cache`: warm | cold; v1 records read as
#       "unspecified", since v1 never controlled it) and `warmup` marks samples
#       taken to be discarded (v1 had none: false).
#   3 — `node`: id of the machine that measured the sample, a key of run.json's
#       `nodes` (null: the run's own `fingerprint`).
#   4 — `sample_records`: how many records the sample wrote, in one write, on
#       consecutive lines; a reader keeps a sample only when all of them are there
#       (null in older records: each one stands alone).
#   5 — `env`: the Python environment that measured the sample, a case key (older
#       runs had one: "default"); `block`: the samples of one case taken back to
#       back, one per environment, which a paired compare pairs (null: unpaired).
#   6 — `options`: the loading options of the case (device_map, attention implementation,
#       parallel loading, ...), a case key after `cache` (older runs set none: "default").


# migrate_to_N(record) turns a version N-1 record into version N; register each
# here as _MIGRATIONS[N].
def migrate_to_2(record: dict[str, Any]) -> dict[str, Any]:
    """v1 never controlled the page cache and took no warmup samples."""
    out = {k: v for k, v in record.items() if k not in ("cache", "warmup")}
    position = list(out).index("device") + 1 if "device" in out else len(out)
    items = list(out.items())
    items.insert(position, ("cache", "unspecified"))
    return {**dict(items), "warmup": False}


def migrate_to_3(record: dict[str, Any]) -> dict[str, Any]:
    """v2 ran on one machine only: the run's own fingerprint (node null)."""
    return {**{k: v for k, v in record.items() if k != "node"}, "node": None}


def migrate_to_4(record: dict[str, Any]) -> dict[str, Any]:
    """v3 wrote a sample's records one line at a time and did not count them."""
    return {**{k: v for k, v in record.items() if k != "sample_records"}, "sample_records": None}


def migrate_to_5(record: dict[str, Any]) -> dict[str, Any]:
    """v4 measured in one Python environment and never paired samples."""
    items = [(k, v) for k, v in record.items() if k not in ("env", "block")]
    position = [k for k, _ in items].index("cache") + 1 if "cache" in record else len(items)
    items.insert(position, ("env", DEFAULT_ENV))
    return {**dict(items), "block": None}


def migrate_to_6(record: dict[str, Any]) -> dict[str, Any]:
    """v5 loaded every case with the library's default options."""
    items = [(k, v) for k, v in record.items() if k != "options"]
    position = [k for k, _ in items].index("cache") + 1 if "cache" in record else len(items)
    items.insert(position, ("options", DEFAULT_OPTIONS))
    return dict(items)


_MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {
    2: migrate_to_2, 3: migrate_to_3, 4: migrate_to_4, 5: migrate_to_5, 6: migrate_to_6}


def migrate(record: Mapping[str, Any]) -> dict[str, Any]:
    """Bring a record of any supported version up to SCHEMA_VERSION (a new dict)."""
    if not isinstance(record, Mapping):
        raise InvalidRecord(f"record must be a JSON object, got {type(record).__name__}")
    version = record_version(record)
    out = dict(record)
    while version < SCHEMA_VERSION:
        version += 1
        out = _MIGRATIONS[version](out)
        out["schema_version"] = version
    return out
