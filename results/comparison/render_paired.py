"""Present a ``compare_paired()`` table: the gate first, diagnostics folded away.

The same verdict vocabulary and JSON schema family as the unpaired compare; what it adds
is the interval: a reader sees not only that load_s went up 10% but that it went up
between 7% and 13%, and, where the blocks could not decide, how wide the doubt still is.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from loadbench.results.analysis.metrics import format_value
from loadbench.results.comparison.paired import CI_LEVEL, CONTENDED, PAIRED_THRESHOLDS
from loadbench.results.comparison.render import INCONCLUSIVE_NOTE, _capital, _p, _percent, _plain, headline
from loadbench.results.comparison.unpaired import VERDICTS, exit_code
from loadbench.results.records.schema import CASE_KEYS

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["PAIRED_JSON_SCHEMA", "paired_rule", "render_paired_json", "render_paired_markdown"]

PAIRED_JSON_SCHEMA = "loadbench-compare-paired/1"
_FOLDED = ("unchanged",)


def paired_rule(alpha: float) -> str:
    """The paired gate's verdict rule, in words (markdown and the JSON ``rule``)."""
    return (f"a gated row is regressed or improved when its anytime-valid {(1 - alpha) * 100:g}% confidence "
            "sequence for the median paired change (sign-based, Bonferroni-adjusted within each metric family "
            "of the gate) excludes no change and the median reaches the threshold; unchanged when the whole "
            "interval lies within ±threshold; otherwise inconclusive: more blocks would decide it "
            "(`loadbench run --until-decided`)")


def _columns(table: pd.DataFrame) -> tuple[list[str], dict[str, str]]:
    keys = [k for k in CASE_KEYS if k != "env" and k in table.columns]
    varying = [k for k in keys if table[k].nunique() > 1]
    constant = {k: str(table[k].iloc[0]) for k in keys if k not in varying and len(table)}
    return (varying or ["checkpoint"]), constant


def _signed(value: float, unit: str) -> str:
    text = format_value(value, unit)
    return text if value < 0 or math.isnan(value) else f"+{text}"


def _change_cells(r: Any) -> tuple[str, str]:
    """The change and its interval: a ratio in percent, or a difference in the metric's unit."""
    if not math.isnan(r.difference):
        low, high = _signed(r.difference_low, r.unit), _signed(r.difference_high, r.unit)
        return _signed(r.difference, r.unit), f"{low} … {high}"
    return _percent(r.change), f"{_percent(r.ci_low)} … {_percent(r.ci_high)}"


def _rows(rows: pd.DataFrame, columns: list[str]) -> list[str]:
    head = [*columns, "metric", "baseline", "candidate", "change", f"{CI_LEVEL:.0%} CI", "p (adjusted)", "pairs",
            "threshold"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows.itertuples(index=False):
        cells = [str(getattr(r, c)) for c in columns] + [
            f"`{r.metric}`", format_value(r.median_base, r.unit), format_value(r.median_cand, r.unit),
            *_change_cells(r), _p(r.p_adjusted),
            str(r.pairs), f"±{r.threshold * 100:g}%",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _section(table: pd.DataFrame, columns: list[str], fold_all: bool) -> list[str]:
    lines: list[str] = []
    for verdict in VERDICTS:
        rows = table[table["verdict"] == verdict]
        if rows.empty:
            continue
        heading = f"{verdict} ({len(rows)})"
        if verdict == "not applicable":
            # No numbers to show: which case, and why one environment cannot serve it; a line per case.
            cases: dict[tuple[str, str], list[str]] = {}
            for r in rows.itertuples(index=False):
                cases.setdefault((", ".join(str(getattr(r, c)) for c in columns), str(r.reason)), []).append(r.metric)
            listed = [f"- {case} ({', '.join(f'`{m}`' for m in metrics)}): {reason}"
                      for (case, reason), metrics in cases.items()]
            lines += ([f"<details><summary>{heading}</summary>", "", *listed, "", "</details>", ""] if fold_all
                      else [f"#### {heading}", "", *listed, ""])
            continue
        if fold_all or verdict in _FOLDED:
            lines += [f"<details><summary>{heading}</summary>", "", *_rows(rows, columns), "", "</details>", ""]
        else:
            note = [INCONCLUSIVE_NOTE, ""] if verdict == "inconclusive" else []
            lines += [f"#### {heading}", "", *note, *_rows(rows, columns), ""]
    return lines


def _limits_text(thresholds: Mapping[str, float] | None) -> str:
    limits = {**PAIRED_THRESHOLDS, **(thresholds or {})}
    return " · ".join(f"{k} {v * 100:g}%" for k, v in limits.items())


def render_paired_markdown(table: pd.DataFrame, *, alpha: float, run_id: str, baseline_env: str,
                           candidate_env: str, thresholds: Mapping[str, float] | None = None,
                           contended: float = math.nan) -> str:
    """The paired comparison as GitHub-flavoured markdown: verdict line, design, gate, diagnostics."""
    gated = table[table["gated"].astype(bool)]
    columns, constant = _columns(table)
    lines = [f"## loadbench compare (paired): {headline(table)}", "",
             f"Run `{run_id}`: environment `{candidate_env}` against `{baseline_env}`"
             + (" · " + ", ".join(f"{k} `{v}`" for k, v in constant.items()) if constant else ""), "",
             "Paired: both environments were measured in one run, a case's samples back to back in a random "
             "order (one block each), so the host's drift falls on both sides of a pair alike. "
             f"{_capital(paired_rule(alpha))}. Thresholds: " + _limits_text(thresholds) + ".", ""]
    if contended > 0.10:
        lines += [f"> **⚠ The host was contended in {contended:.0%} of the blocks** (a sample's `host_probe_s` over "
                  f"{CONTENDED:g}× the run's median: another process had its core). Pairs there are noisier, so "
                  "this comparison is less sensitive than on a quiet host; the HTML report plots the probe over "
                  "the run.", ""]
    counts = gated["verdict"].value_counts()
    lines += ["### Gate (" + " · ".join(f"{int(counts[v])} {v}" for v in VERDICTS if v in counts.index) + ")", ""]
    lines += _section(gated, columns, fold_all=False)
    diagnostics = table[~table["gated"].astype(bool)]
    if not diagnostics.empty:
        moved = diagnostics[diagnostics["verdict"].isin(("regressed", "improved", "changed", "failed"))]
        lines += [f"### Diagnostics, not gated ({len(diagnostics)} rows, {len(moved)} moved)", ""]
        lines += _section(diagnostics, columns, fold_all=True)
    return "\n".join(lines).rstrip() + "\n"


def render_paired_json(table: pd.DataFrame, *, alpha: float, run_id: str, baseline_env: str, candidate_env: str,
                       thresholds: Mapping[str, float] | None = None, gate: Sequence[str] = (),
                       contended: float = math.nan, fail_on_inconclusive: bool = True) -> str:
    """The paired comparison as one JSON document (``schema`` ``loadbench-compare-paired/1``).

    ``exit_code`` is the one the command ends with (``fail_on_inconclusive``: an
    inconclusive gated row gives 3, else 0); ``rule`` says in words how a verdict is reached.
    """
    rows = [{k: _plain(v) for k, v in row.items()} for row in table.to_dict(orient="records")]
    document = {
        "schema": PAIRED_JSON_SCHEMA,
        "design": "paired",
        "exit_code": exit_code(table, fail_on_inconclusive=fail_on_inconclusive),
        "rule": paired_rule(alpha),
        "alpha": alpha,
        "ci_level": CI_LEVEL,
        "thresholds": {**PAIRED_THRESHOLDS, **(thresholds or {})},
        "run_id": run_id,
        "baseline_env": baseline_env,
        "candidate_env": candidate_env,
        "gate": list(gate),
        "contended_share": None if math.isnan(contended) else contended,
        "counts": {v: int((table["verdict"] == v).sum()) for v in VERDICTS},
        "rows": rows,
    }
    return json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
