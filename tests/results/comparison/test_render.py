"""The compare reports' three answers: a regression, an undecided gate, or no regression, each said as such.

Tables are built by hand here, so the words are checked against verdicts chosen on purpose,
not against whatever the statistics give for some samples.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import pytest

from loadbench.results.comparison.render import GateCounts, gate_counts, headline, render_json, render_markdown
from loadbench.results.comparison.render_paired import render_paired_json, render_paired_markdown
from loadbench.results.records.schema import CASE_KEYS

CASE = {"checkpoint": "tiny-llama", "path": "base", "task": "text-generation", "dtype": "auto", "device": "cpu",
        "options": "", "cache": "warm", "env": ""}
PATHS = ("base", "task", "custom", "pipeline")


def _row(path: str, verdict: str, change: float, low: float, high: float, *, metric: str = "load_s",
         gated: bool = True, threshold: float = 0.03) -> dict[str, Any]:
    """One row with every column either renderer reads; a paired row has ``gated``, ``pairs``, differences."""
    return {**{k: CASE.get(k, "") for k in CASE_KEYS}, "path": path, "machine": None, "metric": metric, "unit": "s",
            "direction": "lower", "family": "time", "gated": gated, "pairs": 10, "n_base": 10, "n_cand": 10,
            "n_failed_base": 0, "n_failed_cand": 0, "median_base": 0.2, "median_cand": 0.2 * (1 + change),
            "change": change, "ci_low": low, "ci_high": high, "difference": math.nan, "difference_low": math.nan,
            "difference_high": math.nan, "p_value": 0.5, "p_adjusted": 1.0, "threshold": threshold,
            "verdict": verdict, "reason": None}


def _table(rows: Sequence[Mapping[str, Any]], paired: bool = True) -> pd.DataFrame:
    table = pd.DataFrame(list(rows))
    return table if paired else table.drop(columns=["gated", "pairs", "reason"])


UNDECIDED = [_row("base", "inconclusive", 0.063, -0.27, 0.192), _row("task", "inconclusive", 0.07, -0.05, 0.2),
             _row("custom", "unchanged", 0.01, -0.02, 0.025), _row("pipeline", "improved", -0.2, -0.3, -0.1)]
CONTEXT = {"alpha": 0.05, "run_id": "r1", "baseline_env": "base", "candidate_env": "head"}


def test_the_headline_never_says_no_regression_while_a_gated_row_is_inconclusive() -> None:
    assert headline(_table(UNDECIDED)) == "⚠ inconclusive: 2 of 4 gated rows"
    regressed = [_row("base", "regressed", 0.2, 0.1, 0.3), *UNDECIDED[1:]]
    assert headline(_table(regressed)) == "❌ 1 regression · ⚠ 1 of 4 gated rows inconclusive"
    decided = [_row(p, "unchanged", 0.0, -0.02, 0.02) for p in PATHS]
    assert headline(_table(decided)).startswith("✅ no regression")
    # A diagnostic's doubt does not hold the gate; a failure counts as a regression.
    diagnostic = [*decided, _row("base", "inconclusive", 0.1, -0.2, 0.4, metric="weights_s", gated=False)]
    assert headline(_table(diagnostic)).startswith("✅ no regression")
    failed = [*decided, _row("task", "failed", math.nan, math.nan, math.nan, metric="first_forward_s")]
    assert gate_counts(_table(failed)) == GateCounts(gated=5, regressions=1, inconclusive=0)


def test_paired_markdown_lists_the_inconclusive_rows_with_interval_and_threshold_before_the_rest() -> None:
    text = render_paired_markdown(_table(UNDECIDED), **CONTEXT)
    assert text.startswith("## loadbench compare (paired): ⚠ inconclusive: 2 of 4 gated rows\n")
    assert "anytime-valid 95% confidence sequence for the median paired change" in text
    assert "otherwise inconclusive: more blocks would decide it (`loadbench run --until-decided`)" in text
    gate = text.split("### Gate")[1]
    assert gate.index("#### inconclusive (2)") < gate.index("#### improved (1)")
    assert "<summary>inconclusive" not in text  # listed, not folded
    line = next(line for line in gate.splitlines() if line.startswith("| base |"))
    assert "| -27.0% … +19.2% |" in line and line.endswith("| ±3% |")
    assert "<details><summary>unchanged (1)</summary>" in text


def test_unpaired_markdown_shows_the_interval_column_and_says_the_rule() -> None:
    text = render_markdown(_table(UNDECIDED, paired=False), alpha=0.01, baseline_runs=["a"], candidate_runs=["b"])
    assert text.startswith("## loadbench compare: ⚠ inconclusive: 2 of 4 gated rows\n")
    assert "two-sample Hodges–Lehmann interval" in text and "Bonferroni" in text
    assert text.index("### Inconclusive (2)") < text.index("### Improved (1)")
    assert "| metric | baseline | candidate | change | interval |" in text
    assert "| +6.3% | -27.0% … +19.2% |" in text and "<details><summary>Unchanged (1)</summary>" in text


@pytest.mark.parametrize("fail, code", [(True, 3), (False, 0)])
def test_json_counts_the_inconclusive_rows_says_the_rule_and_the_exit_the_flag_gives(fail: bool, code: int) -> None:
    paired = json.loads(render_paired_json(_table(UNDECIDED), **CONTEXT, fail_on_inconclusive=fail))
    unpaired = json.loads(render_json(_table(UNDECIDED, paired=False), alpha=0.01, fail_on_inconclusive=fail))
    for document, schema in ((paired, "loadbench-compare-paired/1"), (unpaired, "loadbench-compare/1")):
        assert document["schema"] == schema and document["exit_code"] == code
        assert document["counts"]["inconclusive"] == 2 and "too few samples" not in document["counts"]
        assert "inconclusive" in document["rule"] and "±threshold" in document["rule"]
    regressed = _table([_row("base", "regressed", 0.2, 0.1, 0.3), *UNDECIDED[1:]])
    assert json.loads(render_paired_json(regressed, **CONTEXT, fail_on_inconclusive=fail))["exit_code"] == 1
