"""How far a case is from what the machine allows: its load rate, and shares of the machine's ceiling.

A run records the machine's ceiling in run.json (``loadbench ceiling``: the storage's
cold read rate per checkpoint, the memory's read rate). Each record row carries the
ceiling that applies to it (``frame_values``), and ``derive`` turns a summary's medians
into two columns, once, for every table to show next to the times:

- ``rate_bytes_per_s``, for ``weights_s`` of a cold case: weight file bytes over the
  weights phase;
- ``of_ceiling``: that rate over the storage's cold read rate, and, for
  ``decode_tokens_per_s``, the rate over the memory-bandwidth bound
  (batch × memory read rate / resident weight bytes: a decoding step reads every weight once).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from loadbench.results.analysis.metrics import format_value
from loadbench.results.records.schema import CASE_KEYS
from loadbench.vocabulary import COLD

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CEILING_LEGEND", "DERIVED_COLUMNS", "FRAME_CEILING_COLUMNS", "ceiling_rows", "ceiling_summary",
           "ceiling_text", "derive",
           "frame_values"]

# Added to each load() row: the ceiling that applies to it (NaN where none was measured).
FRAME_CEILING_COLUMNS: tuple[str, ...] = ("read_ceiling_bytes_per_s", "memory_ceiling_bytes_per_s", "batch_size")
# Added to each summarize() row; NaN where they do not apply.
DERIVED_COLUMNS: tuple[str, ...] = ("rate_bytes_per_s", "of_ceiling")
CEILING_LEGEND = (
    "(GB/s, %) after weights_s of a cold case: weight file bytes over the weights phase, and that as a share of "
    "the storage's cold read rate (over 100%: the phase did not read every byte, e.g. memory-mapped weights are "
    "read at first use); (%) after decode_tokens_per_s: the share of the memory-bandwidth bound (batch × memory "
    "read rate / resident weight bytes). See `loadbench ceiling`."
)


def _median(rate: Any) -> float | None:
    value = rate.get("median_bytes_per_s") if isinstance(rate, Mapping) else None
    return float(value) if isinstance(value, (int, float)) and value > 0 else None


def frame_values(info: Mapping[str, Any], checkpoint: str, device: str, hostname: str | None) -> dict[str, Any]:
    """FRAME_CEILING_COLUMNS of one record: its checkpoint's read ceiling, its device's memory read rate.

    Only for records measured on the host the ceiling was measured on (another node's
    disks and memory are its own); the batch size comes from the run's suite.
    """
    suite = info.get("suite")
    batch = suite.get("batch_size") if isinstance(suite, Mapping) else None
    values: dict[str, Any] = {"read_ceiling_bytes_per_s": None, "memory_ceiling_bytes_per_s": None,
                              "batch_size": batch if isinstance(batch, int) and batch > 0 else None}
    ceiling = info.get("ceiling")
    if not isinstance(ceiling, Mapping) or ceiling.get("hostname") != hostname:
        return values
    storage = ceiling.get("storage")
    entry = storage.get(checkpoint) if isinstance(storage, Mapping) else None
    values["read_ceiling_bytes_per_s"] = _median(entry.get("cold_read")) if isinstance(entry, Mapping) else None
    values["memory_ceiling_bytes_per_s"] = _median(
        ceiling.get("device_memory_read" if device.startswith("cuda") else "memory_read"))
    return values


def derive(out: pd.DataFrame) -> pd.DataFrame:
    """A summary with DERIVED_COLUMNS added, from its medians and FRAME_CEILING_COLUMNS (dropped after).

    ``out`` has one row per case and metric; each case's weights_file_bytes and
    weights_resident_bytes rows give the byte counts.
    """
    import pandas as pd

    keys = ["run_id", *CASE_KEYS, "machine"]
    ok = out["status"] == "ok"
    case = out.groupby(keys, sort=False, dropna=False).ngroup()

    def per_case(metric: str) -> pd.Series:
        rows = ok & (out["metric"] == metric)
        return case.map(pd.Series(out.loc[rows, "median"].to_numpy(), index=case[rows].to_numpy()))

    def column(name: str) -> pd.Series:
        return out[name].astype("float64") if name in out.columns else pd.Series(math.nan, index=out.index)

    median = out["median"].where(out["median"] > 0)
    weights = ok & (out["metric"] == "weights_s") & (out["cache"] == COLD)
    rate = (per_case("weights_file_bytes") / median).where(weights)
    bound = column("batch_size") * column("memory_ceiling_bytes_per_s") / per_case("weights_resident_bytes")
    decode = ok & (out["metric"] == "decode_tokens_per_s")
    share = (rate / column("read_ceiling_bytes_per_s")).where(weights, (median / bound).where(decode))
    derived = out.drop(columns=[c for c in FRAME_CEILING_COLUMNS if c in out.columns])
    derived["rate_bytes_per_s"] = rate.astype("float64")
    derived["of_ceiling"] = share.astype("float64")
    return derived


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def ceiling_text(row: Any) -> str:
    """" (1.20 GB/s, 86%)" after a cold weights_s, " (41%)" after a decode rate; "" when neither applies."""
    parts = []
    rate, share = getattr(row, "rate_bytes_per_s", None), getattr(row, "of_ceiling", None)
    if _finite(rate):
        parts.append(format_value(rate, "B/s"))
    if isinstance(share, (int, float)) and math.isfinite(share):
        parts.append("<1%" if 0 < share < 0.005 else f"{share:.0%}")  # what rounds to 0% but is not 0
    return f" ({', '.join(parts)})" if parts else ""


def _rate_text(rate: Any) -> str:
    median = _median(rate)
    if median is None:
        reason = rate.get("reason") if isinstance(rate, Mapping) else None
        return str(reason or "not measured")
    repeats = [v for v in rate.get("repeats_bytes_per_s") or [] if isinstance(v, (int, float))]
    spread = f", spread {(max(repeats) - min(repeats)) / median:.0%}" if len(repeats) > 1 else ""
    return f"{format_value(median, 'B/s')} (median of {len(repeats)}{spread})"


def ceiling_rows(info: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(label, text) of a run's ceiling for the environment section; one row saying why when none was measured."""
    ceiling = info.get("ceiling")
    if not isinstance(ceiling, Mapping):
        return [("ceiling", "not recorded (a run made before loadbench measured it)")]
    if "not_measured" in ceiling:
        return [("ceiling", f"not measured: {ceiling['not_measured']}")]
    storage = ceiling.get("storage")
    rows = [(f"cold read ({label})", _rate_text(entry.get("cold_read")))
            for label, entry in (storage.items() if isinstance(storage, Mapping) else ()) if isinstance(entry, Mapping)]
    rows += [("memory read", _rate_text(ceiling.get("memory_read"))),
             ("memory copy", _rate_text(ceiling.get("memory_copy"))),
             ("host to device (pinned)", _rate_text(ceiling.get("h2d_pinned"))),
             ("host to device (pageable)", _rate_text(ceiling.get("h2d_pageable"))),
             ("device memory read", _rate_text(ceiling.get("device_memory_read")))]
    return rows


def ceiling_summary(info: Mapping[str, Any]) -> str:
    """ceiling_rows on one line, rates with the same text (one reason for all CUDA rates) said once."""
    grouped: dict[str, list[str]] = {}
    for label, text in ceiling_rows(info):
        grouped.setdefault(text, []).append(label)
    return "; ".join(f"{', '.join(labels)}: {text}" for text, labels in grouped.items())
