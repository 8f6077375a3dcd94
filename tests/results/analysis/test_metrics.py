"""The metric registry and human formatting."""

from __future__ import annotations

import dataclasses
import math
import re

import pytest

from loadbench.results.analysis.metrics import METRICS, Metric, UnknownMetric, format_value, get_metric

EXPECTED = {
    "load_s": ("s", "lower"),
    "load_cpu_s": ("s", "lower"),  # a diagnostic: the CPU the load used, not the time it took
    "import_s": ("s", "lower"),
    "host_probe_s": ("s", "none"),  # the host's speed before a load: context, neither better nor worse
    "first_forward_s": ("s", "lower"),
    "peak_rss_bytes": ("bytes", "lower"),
    "forward_tokens_per_s": ("tok/s", "higher"),
    "decode_tokens_per_s": ("tok/s", "higher"),
    "ttft_s": ("s", "lower"),
    "new_tokens": ("tokens", "none"),
    "max_abs_diff_vs_base": ("abs", "lower"),
    "gpu_peak_used_bytes": ("bytes", "lower"),
    "gpu_max_allocated_bytes": ("bytes", "lower"),
}
SUFFIX = {"s": "_s", "bytes": "_bytes", "tok/s": "_tokens_per_s", "tokens": "_tokens"}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_registry_has_metric_with_unit_and_direction(name: str) -> None:
    metric = METRICS[name]
    assert (metric.name, metric.unit, metric.direction) == (name, *EXPECTED[name])
    assert metric.description.strip()


@pytest.mark.parametrize("metric", list(METRICS.values()), ids=list(METRICS))
def test_names_are_snake_case_with_unit_suffix(metric: Metric) -> None:
    assert re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", metric.name)
    assert metric.direction in ("lower", "higher", "none")
    if metric.unit in SUFFIX:
        assert metric.name.endswith(SUFFIX[metric.unit])
    else:
        # The one documented exception: an absolute difference has no suffix.
        assert metric.name == "max_abs_diff_vs_base"


def test_load_s_description_says_tokenizer_included() -> None:
    assert "tokenizer included" in METRICS["load_s"].description


def test_metric_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        METRICS["load_s"].unit = "ms"  # type: ignore[misc]


def test_get_metric_known() -> None:
    assert get_metric("ttft_s") is METRICS["ttft_s"]


def test_get_metric_unknown_raises_one_line_key_error() -> None:
    with pytest.raises(UnknownMetric) as info:
        get_metric("load_ms")
    assert isinstance(info.value, KeyError)
    message = str(info.value)
    assert "'load_ms'" in message and "load_s" in message
    assert "\n" not in message and not message.startswith('"')


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [
        (812e-6, "s", "812 µs"),
        (0.0812, "s", "81.2 ms"),
        (1.234, "s", "1.23 s"),
        (12.345, "s", "12.3 s"),
        (0.9996, "s", "1.00 s"),  # rounds up into the next scale
        (0.5, "s", "500 ms"),
        (2.5e-7, "s", "250 ns"),
        (0, "s", "0 s"),
        (512, "bytes", "512 B"),
        (1536, "bytes", "1.50 KiB"),
        (5 * 1024**2, "bytes", "5.00 MiB"),
        (1.5 * 1024**3, "bytes", "1.50 GiB"),
        (1_300_000_000, "bytes", "1.21 GiB"),
        (1234, "tok/s", "1.23k tok/s"),
        (523.4, "tok/s", "523 tok/s"),
        (12.34, "tok/s", "12.3 tok/s"),
        (2_500_000, "tok/s", "2.50M tok/s"),
        (3.1e-7, "abs", "3.1e-07"),
        (0.0, "abs", "0"),
        (128.0, "tokens", "128"),
        (None, "s", "—"),
        (math.nan, "bytes", "—"),
        (-0.0123, "s", "-12.3 ms"),
    ],
)
def test_format_value(value: float | None, unit: str, expected: str) -> None:
    assert format_value(value, unit) == expected


@pytest.mark.parametrize(("unit", "largest", "expected"), [
    ("s", 0.2, (1e-3, "ms")),
    ("s", 0.9996, (1.0, "s")),  # would print "1000 ms": the axis reads seconds
    ("s", 12.0, (1.0, "s")),
    ("bytes", 300 * 1024**2, (1024.0**2, "MiB")),
    ("bytes", 3 * 1024**3, (1024.0**3, "GiB")),
    ("tok/s", 400.0, (1.0, "tok/s")),
    ("tok/s", 6500.0, (1e3, "k tok/s")),
    ("s", 0.0, (1.0, "s")),
    ("s", float("nan"), (1.0, "s")),
    ("abs", 3e-6, (1.0, "abs")),
])
def test_axis_scale_picks_one_human_unit(unit: str, largest: float, expected: tuple[float, str]) -> None:
    from loadbench.results.analysis.metrics import axis_scale

    assert axis_scale(unit, largest) == expected
