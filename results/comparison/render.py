"""Present a ``compare()`` table: markdown for people (and GitHub's job summary), JSON for tools.

Regressions come first and unchanged rows last, folded away: a reviewer should see in
one glance whether anything got worse, by how much, and how sure the test is.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from loadbench.results.analysis.metrics import format_value
from loadbench.results.comparison.settings import DEFAULT_THRESHOLDS
from loadbench.results.comparison.unpaired import REGRESSION_VERDICTS, VERDICTS, exit_code
from loadbench.results.records.runinfo import Difference
from loadbench.results.records.schema import CASE_KEYS

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["JSON_SCHEMA", "render_json", "render_markdown"]

JSON_SCHEMA = "loadbench-compare/1"
_FOLDED = ("too few samples", "unchanged")
_TITLES = {
    "regressed": "Regressed", "failed": "Failed (the candidate has failures the baseline did not)",
    "improved": "Improved", "new": "New (no baseline samples)", "missing": "Missing (no candidate samples)",
    "too few samples": "Too few samples to test", "changed": "Changed (metrics with no better direction)",
    "unchanged": "Unchanged",
}


def _percent(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if math.isinf(value):
        return "+∞" if value > 0 else "−∞"
    return f"{value * 100:+.1f}%"


def _p(value: float) -> str:
    if value is None or math.isnan(value):
        return "—"
    return f"{value:.2g}" if value >= 0.001 else f"{value:.1e}"


def _thresholds_text(thresholds: Mapping[str, float]) -> str:
    families = {**DEFAULT_THRESHOLDS, **{k: v for k, v in thresholds.items() if k in DEFAULT_THRESHOLDS}}
    text = " · ".join(f"{k} {v * 100:g}%" for k, v in families.items())
    metrics = {k: v for k, v in thresholds.items() if k not in DEFAULT_THRESHOLDS}
    if metrics:
        text += " (" + ", ".join(f"{k} {v * 100:g}%" for k, v in metrics.items()) + ")"
    return text


def _runs_text(runs: Sequence[str]) -> str:
    if not runs:
        return "—"
    shown = ", ".join(f"`{r}`" for r in runs[:3])
    return shown + (f" (+{len(runs) - 3} more)" if len(runs) > 3 else "")


def _case_columns(table: pd.DataFrame) -> tuple[list[str], dict[str, str]]:
    """Case keys that vary across rows (shown per row) and those that do not (said once).

    The machine is shown only where rows differ by it; said once, its long key would
    only repeat what the fingerprint check already established.
    """
    varying = [k for k in CASE_KEYS if table[k].nunique() > 1]
    if "machine" in table.columns and table["machine"].nunique() > 1:
        varying.append("machine")
    constant = {k: str(table[k].iloc[0]) for k in CASE_KEYS if k not in varying and len(table)}
    return (varying or ["checkpoint"]), constant


def _table(rows: pd.DataFrame, columns: list[str]) -> list[str]:
    head = [*columns, "metric", "baseline", "candidate", "change", "p (Holm)", "n", "threshold"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows.itertuples(index=False):
        cells = [str(getattr(r, c)) for c in columns] + [
            f"`{r.metric}`", format_value(r.median_base, r.unit), format_value(r.median_cand, r.unit),
            _percent(r.change), _p(r.p_adjusted), f"{r.n_base} vs {r.n_cand}", f"{r.threshold * 100:g}%",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def render_markdown(
    table: pd.DataFrame,
    *,
    alpha: float,
    thresholds: Mapping[str, float] | None = None,
    baseline_runs: Sequence[str] = (),
    candidate_runs: Sequence[str] = (),
    differences: Sequence[Difference] = (),
) -> str:
    """The comparison as GitHub-flavoured markdown: verdict line, settings, regressions first."""
    counts = table["verdict"].value_counts()
    bad = int(counts.reindex(list(REGRESSION_VERDICTS)).fillna(0).sum())
    title = (f"❌ {bad} regression{'s' if bad != 1 else ''}" if exit_code(table)
             else "✅ no regression")
    columns, constant = _case_columns(table)
    lines = [f"## loadbench compare: {title}", ""]
    lines.append(f"Baseline {_runs_text(baseline_runs)} · candidate {_runs_text(candidate_runs)}"
                 + (" · " + ", ".join(f"{k} `{v}`" for k, v in constant.items()) if constant else ""))
    lines += ["", "**Unpaired**: two runs measured at different times, so whatever the machine did in between is "
                  "part of every change. To gate a change, measure both sides in one run "
                  "(`loadbench run --env base=… --env head=…`) and compare that run, pair by pair.",
              "", f"A row is regressed or improved when a one-sided Mann–Whitney U test, Holm-corrected "
                  f"within each metric family, is significant at α = {alpha:g} **and** the change (Hodges–Lehmann: "
                  f"the median of all candidate/baseline sample ratios) reaches the threshold: "
                  f"{_thresholds_text(thresholds or {})}.", ""]
    if differences:
        run_ids = [*baseline_runs, *candidate_runs]
        lines.append("> **⚠ The runs' fingerprints differ; compared anyway (`--allow-mismatch`):**")
        lines += [f"> - {d.describe(run_ids)}" for d in differences]
        lines.append("")
    lines += [" · ".join(f"{int(counts[v])} {v}" for v in VERDICTS if v in counts.index), ""]
    for verdict in VERDICTS:
        rows = table[table["verdict"] == verdict]
        if rows.empty:
            continue
        heading = f"{_TITLES[verdict]} ({len(rows)})"
        if verdict in _FOLDED:
            lines += [f"<details><summary>{heading}</summary>", ""]
        else:
            lines += [f"### {heading}", ""]
        lines += _table(rows, columns)
        lines += ["", "</details>", ""] if verdict in _FOLDED else [""]
    return "\n".join(lines).rstrip() + "\n"


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()  # numpy scalars
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def render_json(
    table: pd.DataFrame,
    *,
    alpha: float,
    thresholds: Mapping[str, float] | None = None,
    baseline_runs: Sequence[str] = (),
    candidate_runs: Sequence[str] = (),
    differences: Sequence[Difference] = (),
) -> str:
    """The comparison as one JSON document (``schema`` ``loadbench-compare/1``); NaN and ±inf are null."""
    rows = [{k: _plain(v) for k, v in row.items()} for row in table.to_dict(orient="records")]
    document = {
        "schema": JSON_SCHEMA,
        "design": "unpaired",
        "exit_code": exit_code(table),
        "alpha": alpha,
        "thresholds": {**DEFAULT_THRESHOLDS, **(thresholds or {})},
        "baseline_runs": list(baseline_runs),
        "candidate_runs": list(candidate_runs),
        "differences": [{"field": d.field, "values": list(d.values),
                         "labels": list(d.labels or [*baseline_runs, *candidate_runs])} for d in differences],
        "counts": {v: int((table["verdict"] == v).sum()) for v in VERDICTS},
        "rows": rows,
    }
    return json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
