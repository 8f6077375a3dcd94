"""``compare``: read both sides (runs, pytest-benchmark files, saved baselines), judge, render.

A side is a comma-separated list of run directories, folders of runs,
``--benchmark-json`` files or ``baseline:NAME``; a baseline name resolves against the
machine that the other side was measured on, so CI compares like with like. The
statistics are results.compare's; this module only gathers what it needs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from loadbench.results.records.runinfo import Difference

__all__ = ["BASELINE_PREFIX", "CompareResult", "compare", "worst_exit"]

BASELINE_PREFIX = "baseline:"


@dataclass(frozen=True)
class CompareResult:
    """A comparison: one row per case x metric with its verdict, and the rendered reports."""

    table: pd.DataFrame
    # 0 no regression, 1 a regression, 3 a gated row inconclusive (when that fails: fail_on_inconclusive);
    # cannot compare raises CannotCompare.
    exit_code: int
    markdown: str
    json: str
    differences: list[Difference]
    baseline_runs: list[str]
    candidate_runs: list[str]

    @property
    def regressions(self) -> pd.DataFrame:
        """The rows that fail the gate (a paired table's diagnostics never do)."""
        from loadbench.results.comparison.unpaired import REGRESSION_VERDICTS

        table = self.table[self.table["gated"].astype(bool)] if "gated" in self.table.columns else self.table
        return table[table["verdict"].isin(REGRESSION_VERDICTS)]


def _machine(frame: pd.DataFrame) -> dict[str, Any]:
    """The hardware fields of a side's first run, to pick the baseline of the same machine."""
    import pandas as pd

    if frame.empty:
        return {}
    first = frame.iloc[0]
    return {k: (None if k not in frame.columns or pd.isna(first[k]) else str(first[k]))
            for k in ("cpu_model", "cpu_count", "gpus")}


def _this_machine() -> dict[str, Any]:
    from loadbench.bench.fingerprint import fingerprint

    return {"fingerprint": fingerprint()}


def _parts(spec: str | Path | Sequence[str | Path]) -> list[str]:
    from loadbench.results.comparison.unpaired import CannotCompare

    items = [spec] if isinstance(spec, (str, Path)) else list(spec)
    parts = [p.strip() for item in items for p in str(item).split(",")]
    if not parts or any(not p for p in parts):
        raise CannotCompare(f"{spec!r}: an empty item in the list")
    return parts


def _is_baseline(parts: list[str]) -> bool:
    return all(p.startswith(BASELINE_PREFIX) for p in parts)


def _read_side(parts: list[str], other: dict[str, Any] | None, root: Path | None) -> pd.DataFrame:
    from loadbench.results.records.baseline import resolve
    from loadbench.results.records.benchjson import read_results

    items: list[str | Path] = [
        resolve(p[len(BASELINE_PREFIX):], other or _this_machine(), root) if p.startswith(BASELINE_PREFIX)
        else Path(p) for p in parts]
    return read_results(items)


def _settings(suite: str | Path | None, alpha: float | None, thresholds: Mapping[str, float] | Sequence[str],
              metrics: Sequence[str] | None, default_alpha: float | None = None, gate: Sequence[str] | None = None,
              ) -> tuple[float, dict[str, float], list[str] | None, Sequence[str] | None]:
    """Defaults, then the suite's [compare] table, then the caller's values (alpha, thresholds, metrics, gate)."""
    from loadbench.results.comparison.unpaired import (
        DEFAULT_ALPHA,
        parse_threshold,
        read_compare_settings,
    )

    chosen_alpha, chosen, chosen_metrics, chosen_gate = default_alpha or DEFAULT_ALPHA, {}, None, None
    if suite is not None:
        settings = read_compare_settings(suite)
        chosen_alpha = settings.alpha if settings.alpha is not None else chosen_alpha
        chosen.update(settings.thresholds)
        chosen_metrics = list(settings.metrics) if settings.metrics is not None else None
        chosen_gate = settings.gate
    chosen.update(dict(thresholds) if isinstance(thresholds, Mapping) else dict(map(parse_threshold, thresholds)))
    return ((alpha if alpha is not None else chosen_alpha), chosen, (list(metrics) if metrics else chosen_metrics),
            gate if gate is not None else chosen_gate)


def compare(baseline: str | Path | Sequence[str | Path], candidate: str | Path | Sequence[str | Path] | None = None,
            *, thresholds: Mapping[str, float] | Sequence[str] = (), alpha: float | None = None,
            metrics: Sequence[str] | None = None, suite: str | Path | None = None, allow_mismatch: bool = False,
            baselines: str | Path | None = None, baseline_env: str | None = None,
            candidate_env: str | None = None, gate: Sequence[str] | None = None,
            fail_on_inconclusive: bool = True) -> CompareResult:
    """Compare a candidate with a baseline: verdicts per case and metric (docs/REGRESSIONS.md).

    With one run and no ``candidate``, the run's environments are compared pair by pair
    (``baseline_env``, default its first; ``candidate_env``, default its second; ``gate``:
    the metrics that can fail it, default the headline ones). With two sides, unpaired.
    ``thresholds``: fractions by metric or family (``{"load_s": 0.15}``) or ``"NAME=PCT"``
    strings; ``suite``: a suite file whose ``[compare]`` table gives alpha, thresholds and
    metrics (the explicit arguments win). The result holds the verdicts and their
    markdown and JSON renderings; writing them for CI is the caller's. Raises
    CannotCompare (a UserError) when the sides cannot be compared.
    """
    from loadbench.results.comparison.render import render_json, render_markdown
    from loadbench.results.comparison.unpaired import CannotCompare, exit_code, fingerprint_differences
    from loadbench.results.comparison.unpaired import compare as judge

    if candidate is None:
        return _paired(baseline, thresholds=thresholds, alpha=alpha, metrics=metrics, suite=suite,
                       baseline_env=baseline_env, candidate_env=candidate_env, gate=gate,
                       fail_on_inconclusive=fail_on_inconclusive)
    if baseline_env is not None or candidate_env is not None or gate is not None:
        raise CannotCompare("`baseline_env`, `candidate_env` and `gate` compare the environments of one run: "
                            "give one run directory")
    root = Path(baselines) if baselines is not None else None
    chosen_alpha, chosen, chosen_metrics, _ = _settings(suite, alpha, thresholds, metrics)
    base_parts, cand_parts = _parts(baseline), _parts(candidate)
    if _is_baseline(base_parts) and not _is_baseline(cand_parts):
        cand = _read_side(cand_parts, None, root)
        base = _read_side(base_parts, _machine(cand), root)
    else:
        base = _read_side(base_parts, None, root)
        cand = _read_side(cand_parts, _machine(base), root)
    table = judge(base, cand, thresholds=chosen, alpha=chosen_alpha, metrics=chosen_metrics,
                  allow_mismatch=allow_mismatch)
    _, differences = fingerprint_differences(base, cand)
    context = dict(alpha=chosen_alpha, thresholds=chosen, differences=differences,
                   baseline_runs=list(dict.fromkeys(base["run_id"])),
                   candidate_runs=list(dict.fromkeys(cand["run_id"])))
    markdown = render_markdown(table, **context)
    document = render_json(table, **context, fail_on_inconclusive=fail_on_inconclusive)
    return CompareResult(table, exit_code(table, fail_on_inconclusive=fail_on_inconclusive), markdown, document,
                         differences,
                         context["baseline_runs"], context["candidate_runs"])


def _paired(run: str | Path | Sequence[str | Path], *, thresholds: Mapping[str, float] | Sequence[str],
            alpha: float | None, metrics: Sequence[str] | None, suite: str | Path | None,
            baseline_env: str | None, candidate_env: str | None,
            gate: Sequence[str] | None, fail_on_inconclusive: bool) -> CompareResult:
    """One run's environments, pair by pair (results/comparison/paired.py).

    Without ``candidate_env``, every environment other than the baseline is compared with
    it, so a run of three environments never leaves one out unsaid.
    """
    from loadbench.results import load
    from loadbench.results.comparison.paired import DEFAULT_PAIRED_ALPHA
    from loadbench.results.comparison.unpaired import CannotCompare

    parts = _parts(run)
    if len(parts) != 1 or _is_baseline(parts):
        raise CannotCompare(f"{run}: a paired compare takes one run directory measured with several "
                            "environments; to compare two runs, give a baseline and a candidate")
    chosen_alpha, chosen, chosen_metrics, gate = _settings(suite, alpha, thresholds, metrics, DEFAULT_PAIRED_ALPHA,
                                                           gate)
    frame = load(Path(parts[0]))
    base_env, candidates = _given_order(Path(parts[0]), frame, baseline_env, candidate_env)
    results = [_one_pair(frame, base_env, cand, chosen_alpha, chosen, chosen_metrics, gate, fail_on_inconclusive)
               for cand in (candidates or [None])]
    return results[0] if len(results) == 1 else _many(results)


def _one_pair(frame: pd.DataFrame, baseline_env: str | None, candidate_env: str | None, alpha: float,
              thresholds: dict[str, float], metrics: list[str] | None, gate: Sequence[str] | None,
              fail_on_inconclusive: bool = True) -> CompareResult:
    """The candidate environment against the baseline one: one paired table and its renderings."""
    from loadbench.results.comparison.paired import GATE_METRICS, compare_paired, contended_share, environments_of
    from loadbench.results.comparison.render_paired import render_paired_json, render_paired_markdown
    from loadbench.results.comparison.unpaired import exit_code

    table = compare_paired(frame, baseline_env=baseline_env, candidate_env=candidate_env,
                           thresholds=thresholds, alpha=alpha, metrics=metrics, gate=gate)
    envs = environments_of(frame)
    base_env = baseline_env or envs[0]
    cand_env = candidate_env or next(e for e in envs if e != base_env)
    run_id = str(frame["run_id"].iloc[0])
    context = dict(alpha=alpha, run_id=run_id, baseline_env=base_env, candidate_env=cand_env,
                   thresholds=thresholds, contended=contended_share(frame, [base_env, cand_env]))
    markdown = render_paired_markdown(table, **context)
    document = render_paired_json(table, **context, gate=list(gate or GATE_METRICS),
                                  fail_on_inconclusive=fail_on_inconclusive)
    return CompareResult(table, exit_code(table, fail_on_inconclusive=fail_on_inconclusive), markdown, document, [],
                         [f"{run_id}:{base_env}"], [f"{run_id}:{cand_env}"])


def worst_exit(codes: Sequence[int]) -> int:
    """The exit code of several comparisons: a regression (1) over an inconclusive gate (3) over none (0)."""
    return next((code for code in (1, 3) if code in codes), max(codes, default=0))


def _many(results: list[CompareResult]) -> CompareResult:
    """Several candidate environments against one baseline: one report naming each, the worst exit code."""
    import json

    import pandas as pd

    from loadbench.results.comparison.render import gate_counts

    documents = [json.loads(r.json) for r in results]
    base, cands = documents[0]["baseline_env"], [d["candidate_env"] for d in documents]
    code = worst_exit([r.exit_code for r in results])
    counts = [gate_counts(r.table) for r in results]
    regressed = [f"`{c}`" for n, c in zip(counts, cands) if n.regressions]
    undecided = [f"`{c}` ({n.inconclusive} of {n.gated} gated row{'s' if n.gated != 1 else ''})"
                 for n, c in zip(counts, cands) if n.inconclusive]
    inconclusive = f"⚠ inconclusive in {', '.join(undecided)}" if undecided else ""
    if regressed:
        title = f"❌ a regression in {', '.join(regressed)}" + (f" · {inconclusive}" if inconclusive else "")
    else:
        title = inconclusive or "✅ no regression: every gated row within its threshold or better"
    head = [f"## loadbench compare (paired), {len(cands)} environments against `{base}`: {title}", "",
            f"Run `{documents[0]['run_id']}` has environments `{base}`, " + ", ".join(f"`{c}`" for c in cands)
            + f": each is compared with `{base}` (choose one with --candidate-env, another baseline with "
              "--baseline-env).", ""]
    body = ["#" + line if line.startswith("#") else line for r in results for line in r.markdown.splitlines()]
    document = {"schema": "loadbench-compare-paired-set/1", "design": "paired", "exit_code": code,
                "rule": documents[0]["rule"],
                "run_id": documents[0]["run_id"], "baseline_env": base, "candidate_envs": cands,
                "comparisons": documents}
    table = pd.concat([r.table.assign(candidate_env=c) for r, c in zip(results, cands)], ignore_index=True)
    return CompareResult(table, code, "\n".join(head + body) + "\n",
                         json.dumps(document, indent=2, ensure_ascii=False) + "\n", [],
                         results[0].baseline_runs, [run for r in results for run in r.candidate_runs])


def _given_order(run_dir: Path, frame: pd.DataFrame, baseline_env: str | None,
                 candidate_env: str | None) -> tuple[str | None, list[str | None]]:
    """The baseline (default: the first environment as the run named them, not as sampled) and the candidates.

    The candidate given, or else every other environment, in the run's order.
    """
    from loadbench.results import read_run_info
    from loadbench.results.comparison.paired import environments_of
    from loadbench.results.records.runinfo import named_environments

    named = named_environments(read_run_info(run_dir))
    present = environments_of(frame)
    given = [n for n in named if n in present] + [e for e in present if e not in named]  # named ones first
    if baseline_env is None and given:
        baseline_env = given[0]
    if candidate_env is not None:
        return baseline_env, [candidate_env]
    return baseline_env, [n for n in given if n != baseline_env]
