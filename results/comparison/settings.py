"""How strict ``compare`` is: alpha, minimum changes by metric family, and which metrics count.

One owner for these settings and their one parser: ``loadbench compare --threshold``,
a suite file's ``[compare]`` table read on its own, and the suite model's ``compare``
field all go through here, so a key or value accepted in one place is accepted in all.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadbench.results.analysis.metrics import METRICS
from loadbench.results.comparison.comparability import CannotCompare
from loadbench.results.records.benchjson import PLAIN_METRIC
from loadbench.results.records.documents import read_document

__all__ = [
    "COMPARE_KEYS",
    "CompareSettings",
    "DEFAULT_ALPHA",
    "DEFAULT_THRESHOLDS",
    "FAMILIES",
    "InvalidSetting",
    "check_alpha",
    "check_metric",
    "check_thresholds",
    "compare_settings_from_table",
    "family_of",
    "parse_threshold",
    "read_compare_settings",
    "threshold_for",
]

# Metric family by unit: one default threshold and one multiple-testing family each.
FAMILIES: dict[str, str] = {"s": "time", "bytes": "memory", "tok/s": "throughput"}
DEFAULT_THRESHOLDS: dict[str, float] = {"time": 0.10, "memory": 0.05, "throughput": 0.10, "other": 0.10}
DEFAULT_ALPHA = 0.01
# The keys of a suite's [compare] table.
COMPARE_KEYS: tuple[str, ...] = ("alpha", "thresholds", "metrics", "gate")


@dataclass(frozen=True)
class CompareSettings:
    """A suite's ``[compare]`` table: thresholds (fractions by metric or family), alpha, metrics, gate.

    None keeps the default (alpha 0.01; every metric compared; a paired compare gates the
    headline metrics). ``gate``: the metrics whose verdicts fail a paired gate and that
    ``--until-decided`` measures until decided (``loadbench bisect`` follows one this way).
    """

    thresholds: Mapping[str, float] = field(default_factory=dict)
    alpha: float | None = None
    metrics: tuple[str, ...] | None = None
    gate: tuple[str, ...] | None = None


class InvalidSetting(CannotCompare):
    """A threshold, alpha or metric that compare cannot use; the message names it."""


def family_of(unit: str) -> str:
    """The metric family of a unit: time, memory, throughput, or other."""
    return FAMILIES.get(unit, "other")


def check_metric(name: str, what: str = "metric") -> str:
    """``name`` if loadbench records such a metric, else InvalidSetting naming it."""
    if name not in METRICS and name != PLAIN_METRIC:
        raise InvalidSetting(f"{what} {name!r} is not a metric loadbench records (see loadbench.results.METRICS)")
    return name


def _check_threshold_name(name: str) -> str:
    if name not in DEFAULT_THRESHOLDS:
        check_metric(name, f"threshold for unknown family ({', '.join(DEFAULT_THRESHOLDS)}) or metric:")
    return name


def check_thresholds(thresholds: Mapping[str, float] | None) -> dict[str, float]:
    """Thresholds given as fractions (the API's form), checked: known names, positive numbers."""
    out = dict(thresholds or {})
    for name, value in out.items():
        _check_threshold_name(name)
        if not isinstance(value, (int, float)) or value <= 0:
            raise InvalidSetting(f"threshold {name}: must be a positive fraction, got {value!r}")
    return out


def _fraction(name: str, value: object) -> float:
    text = str(value).strip().removesuffix("%")
    try:
        percent = float(text)
    except ValueError:  # float() of the text
        raise InvalidSetting(f"threshold {name}={value!r}: expected a percentage such as 10") from None
    if not 0 < percent < 1000 or isinstance(value, bool):
        raise InvalidSetting(f"threshold {name}={value!r}: must be above 0 (a percentage)")
    return percent / 100


def parse_threshold(text: str) -> tuple[str, float]:
    """``"load_s=15"`` (or ``time=15%``) -> ``("load_s", 0.15)``: a metric or family and a fraction."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise InvalidSetting(f"threshold {text!r}: expected METRIC=PERCENT or FAMILY=PERCENT, e.g. load_s=15")
    name = _check_threshold_name(name.strip())
    return name, _fraction(name, value)


def check_alpha(value: object) -> float:
    """``value`` as a float if it is a number strictly between 0 and 1, else InvalidSetting."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < float(value) < 1:
        raise InvalidSetting(f"alpha must be a number between 0 and 1, got {value!r}")
    return float(value)


def threshold_for(metric: str, family: str, overrides: Mapping[str, float]) -> float:
    """The minimum change of a metric: its own override, else its family's, else the default."""
    if metric in overrides:
        return overrides[metric]
    if family in overrides:
        return overrides[family]
    return DEFAULT_THRESHOLDS[family]


def _at(where: str, text: str, sep: str = ": ") -> str:
    return f"{where}{sep}{text}" if where else text


def compare_settings_from_table(table: Mapping[str, Any], where: str = "") -> CompareSettings:
    """Validate a ``[compare]`` table: ``alpha``, ``thresholds = {load_s = 15, time = 10}`` (percentages)
    and ``metrics = ["load_s", ...]`` (compare only these).

    ``where`` names the table in messages (``"suite.toml: compare"``); leave it empty
    when the caller names it. A key set to None is not given: the suite model once
    stored its defaults that way, and runs written then must still resume.
    Raises CannotCompare naming the key.
    """
    if not isinstance(table, Mapping):
        raise CannotCompare(_at(where, "must be a table", " "))
    unknown = sorted(set(table) - set(COMPARE_KEYS))
    if unknown:
        raise CannotCompare(_at(where, f"unknown key(s) {', '.join(unknown)} (known: {', '.join(COMPARE_KEYS)})"))
    raw = {} if table.get("thresholds") is None else table["thresholds"]
    if not isinstance(raw, Mapping):
        raise CannotCompare(_at(where, "thresholds must be a table such as {load_s = 15}", "."))
    try:
        thresholds = {_check_threshold_name(k): _fraction(k, v) for k, v in raw.items()}
        alpha = check_alpha(table["alpha"]) if table.get("alpha") is not None else None
        metrics, gate = (_metric_list(key, table.get(key)) for key in ("metrics", "gate"))
    except InvalidSetting as exc:
        raise InvalidSetting(_at(where, str(exc))) from None
    return CompareSettings(thresholds, alpha, metrics, gate)


def _metric_list(key: str, names: Any) -> tuple[str, ...] | None:
    if names is None:
        return None
    if not isinstance(names, (list, tuple)) or not names or not all(isinstance(m, str) for m in names):
        raise InvalidSetting(f"{key} must be a list of metric names")
    return tuple(check_metric(m) for m in names)


def read_compare_settings(path: str | Path) -> CompareSettings:
    """The ``[compare]`` table of a suite file (see compare_settings_from_table). No table: the defaults."""
    path = Path(path)
    data = read_document(path, tomllib.loads, "TOML", "suite file", CannotCompare)
    return compare_settings_from_table(data.get("compare", {}), f"{path}: compare")
