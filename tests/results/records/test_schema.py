"""The record type: construction, validation, the version check."""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

import pytest
from loadbench_tests_record_versions import (  # registered by conftest.py
    FIELDS,
    ok_record,
    v1_record,
    v2_record,
    v4_record,
)

from loadbench.results.analysis.metrics import UnknownMetric
from loadbench.results.records.schema import (
    CASE_KEYS,
    SCHEMA_VERSION,
    InvalidRecord,
    Sample,
    drop_superseded,
    sample_key,
)
from loadbench.vocabulary import RETRYABLE_ERRORS


def test_fields_in_order_and_case_keys() -> None:
    assert [f.name for f in dataclasses.fields(Sample)] == FIELDS
    assert CASE_KEYS == ("checkpoint", "path", "task", "dtype", "device", "cache", "options", "env")
    assert SCHEMA_VERSION == 6


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


def test_v1_record_must_be_migrated_first() -> None:
    with pytest.raises(InvalidRecord, match="migrate"):
        Sample.from_dict(v1_record())


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
    # Lost twice: still no measurement, and one sample counts once (the last attempt).
    assert drop_superseded([lost, _lost(case, node="n2")]) == [_lost(case, node="n2")]
    # Another repeat, run, case or warmup flag is another sample: it does not stand in for this one.
    others = [_ok(case, repeat=1), _ok(case, run_id="r2"), _ok({**case, "cache": "cold"}), _ok(case, warmup=True)]
    assert drop_superseded([lost, *others]) == [lost, *others]


def test_a_lost_sample_goes_whole_with_the_load_it_reported_before_the_loss(case: dict[str, str]) -> None:
    # A node lost in the workload had reported its load: without the whole attempt dropped, a
    # paired compare would count that load and the retry's as two pairs of one block.
    partial = [{**_ok(case, node="n1"), "sample_records": 2}, {**_lost(case, node="n1"), "sample_records": 2}]
    retry = [{**_ok(case, node="n2"), "sample_records": 2}, {**_ok(case, metric="peak_rss_bytes"), "sample_records": 2}]
    assert drop_superseded([*partial, *retry]) == retry
    assert drop_superseded(partial) == partial  # never retried: the loss and its load stay


def test_other_failures_are_never_dropped(case: dict[str, str]) -> None:
    oom = Sample.failed(case, "r", 0, "load_s", "OutOfMemoryError", "CUDA out of memory").to_dict()
    assert drop_superseded([oom, _ok(case, metric="peak_rss_bytes")]) == [oom, _ok(case, metric="peak_rss_bytes")]


def test_sample_key_leaves_the_metric_out(case: dict[str, str]) -> None:
    assert sample_key(_ok(case)) == sample_key(_ok(case, metric="peak_rss_bytes")) == (
        "r", *({"env": "default", "options": "default", **case}[k] for k in CASE_KEYS), 0, False)
    assert sample_key(_ok(case)) != sample_key(_ok(case, warmup=True))
