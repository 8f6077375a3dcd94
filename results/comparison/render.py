"""Present a ``compare()`` table: markdown for people (and GitHub's job summary), JSON for tools.

Regressions come first, then the rows the samples could not decide, each with its interval
and threshold, and unchanged rows last, folded away: a reviewer should see in one glance
whether anything got worse, by how much, how sure the test is, and what it could not tell.
The headline has three answers, never "no regression" while a gated row is undecided.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loadbench.results.analysis.metrics import format_value
from loadbench.results.comparison.settings import DEFAULT_THRESHOLDS
from loadbench.results.comparison.unpaired import REGRESSION_VERDICTS, VERDICTS, exit_code
from loadbench.results.records.runinfo import Difference
from loadbench.results.records.schema import CASE_KEYS

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["INCONCLUSIVE_NOTE", "JSON_SCHEMA", "GateCounts", "gate_counts", "headline", "render_json",
           "render_markdown", "unpaired_rule"]

JSON_SCHEMA = "loadbench-compare/1"
_FOLDED = ("unchanged",)
_TITLES = {
    "regressed": "Regressed", "failed": "Failed (the candidate has failures the baseline did not)",
    "inconclusive": "Inconclusive",
    "improved": "Improved", "new": "New (no baseline samples)", "missing": "Missing (no candidate samples)",
    "not applicable": "Not applicable", "changed": "Changed (metrics with no better direction)",
    "unchanged": "Unchanged",
}
# Said under the inconclusive rows, so a reader sees why they are not "unchanged".
INCONCLUSIVE_NOTE = ("Each interval reaches past ±threshold without showing a change of that size: "
                     "neither a regression nor its absence is shown, and more samples would decide it.")


@dataclass(frozen=True)
class GateCounts:
    """What the gated rows of a table say: how many there are, regressed (or newly failing), undecided."""

    gated: int
    regressions: int
    inconclusive: int


def gate_counts(table: pd.DataFrame) -> GateCounts:
    """The gated rows' counts: every row of an unpaired table, the ``gated`` ones of a paired table."""
    rows = table[table["gated"].astype(bool)] if "gated" in table.columns else table
    verdicts = rows["verdict"]
    return GateCounts(len(rows), int(verdicts.isin(REGRESSION_VERDICTS).sum()),
                      int((verdicts == "inconclusive").sum()))


def headline(table: pd.DataFrame) -> str:
    """The three answers: ❌ regressions (and how many undecided), ⚠ inconclusive, ✅ no regression.

    Independent of whether inconclusive fails the job (``exit_code``): the words say what
    the samples show, the exit code what CI was told to do about it.
    """
    counts = gate_counts(table)
    undecided = f"{counts.inconclusive} of {counts.gated} gated row{'s' if counts.gated != 1 else ''}"
    if counts.regressions:
        title = f"❌ {counts.regressions} regression{'s' if counts.regressions != 1 else ''}"
        return title + (f" · ⚠ {undecided} inconclusive" if counts.inconclusive else "")
    if counts.inconclusive:
        return f"⚠ inconclusive: {undecided}"
    return "✅ no regression: every gated row within its threshold or better"


def unpaired_rule(alpha: float) -> str:
    """The verdict rule of the unpaired compare, in words (markdown and the JSON ``rule``)."""
    return (f"a row is regressed or improved when the two-sample Hodges–Lehmann interval for the change (the "
            f"median of all candidate/baseline sample ratios), at the Bonferroni level within each metric "
            f"family (α = {alpha:g} over the family's rows), excludes no change and the estimate reaches the "
            "threshold; unchanged when the whole interval lies within ±threshold; otherwise inconclusive: more "
            "repeats on each side would decide it")


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


def interval_text(low: float, high: float) -> str:
    """An interval of changes as a reader writes it: ``-27.0% … +19.2%``; ``—`` where there is none."""
    if low is None or high is None or math.isnan(low) or math.isnan(high):
        return "—"
    return f"{_percent(low)} … {_percent(high)}"


def _table(rows: pd.DataFrame, columns: list[str]) -> list[str]:
    head = [*columns, "metric", "baseline", "candidate", "change", "interval", "p (adjusted)", "n", "threshold"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows.itertuples(index=False):
        cells = [str(getattr(r, c)) for c in columns] + [
            f"`{r.metric}`", format_value(r.median_base, r.unit), format_value(r.median_cand, r.unit),
            _percent(r.change), interval_text(r.ci_low, r.ci_high), _p(r.p_adjusted), f"{r.n_base} vs {r.n_cand}",
            f"±{r.threshold * 100:g}%",
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
    columns, constant = _case_columns(table)
    lines = [f"## loadbench compare: {headline(table)}", ""]
    lines.append(f"Baseline {_runs_text(baseline_runs)} · candidate {_runs_text(candidate_runs)}"
                 + (" · " + ", ".join(f"{k} `{v}`" for k, v in constant.items()) if constant else ""))
    lines += ["", "**Unpaired**: two runs measured at different times, so whatever the machine did in between is "
                  "part of every change. To gate a change, measure both sides in one run "
                  "(`loadbench run --env base=… --env head=…`) and compare that run, pair by pair.",
              "", f"{_capital(unpaired_rule(alpha))}. Thresholds: {_thresholds_text(thresholds or {})}.", ""]
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
        if verdict == "inconclusive":
            lines += [INCONCLUSIVE_NOTE, ""]
        lines += _table(rows, columns)
        lines += ["", "</details>", ""] if verdict in _FOLDED else [""]
    return "\n".join(lines).rstrip() + "\n"


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


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
    fail_on_inconclusive: bool = True,
) -> str:
    """The comparison as one JSON document (``schema`` ``loadbench-compare/1``); NaN and ±inf are null.

    ``exit_code`` is the one the command ends with: ``fail_on_inconclusive`` says whether an
    inconclusive gated row gives 3 or 0; ``rule`` says in words how a verdict is reached.
    """
    rows = [{k: _plain(v) for k, v in row.items()} for row in table.to_dict(orient="records")]
    document = {
        "schema": JSON_SCHEMA,
        "design": "unpaired",
        "exit_code": exit_code(table, fail_on_inconclusive=fail_on_inconclusive),
        "rule": unpaired_rule(alpha),
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
