"""Does measuring until decided keep its false-alarm rate, catch real slowdowns, and at what cost?

Replayed on real blocks:

    python -m loadbench.bench.studies.validate_sequential RUN [--comparisons 30] [--start-every 3]
        [--repeats 5] [--max-repeats 60] [--variant gate|wall-only|cpu-only|drop-contended] [--output FILE.jsonl]

RUN is a run of validate_paired's environments (``base``, ``same``, ``slowN``; its
``prepare`` step makes them), measured with or without the contention generator. Each
comparison starts at a round of RUN and replays ``--until-decided`` on the blocks from
there with the runner's own decision (bench.sequential.look after every round: a case
stops when its gated rows are decided, the comparison when a gated row regressed or at
``--max-repeats``): ``same`` against ``base`` is the A/A, each ``slowN`` a real slowdown.
Comparisons start every ``--start-every`` rounds, so neighbours share blocks (disjoint ones
would need ``comparisons × max-repeats`` rounds); each is what a CI job starting at that
round would have seen. Variants: ``gate`` is the default gate (``load_s`` and
``load_cpu_s``); ``wall-only`` and ``cpu-only`` gate one of the two; ``drop-contended`` skips
a block whose probe says its core was contended and takes the next (as measuring it again
would). ``legacy`` in the output is the design this replaced:
15 fixed blocks, Wilcoxon with Holm's correction, on the same starting rounds.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadbench.bench.studies.scripts import append_record, machine_info

__all__ = ["Replay", "main", "replay_run"]

BENCHMARK = "validate_sequential"
VARIANTS = ("gate", "wall-only", "cpu-only", "drop-contended")
LEGACY_BLOCKS = 15


@dataclass
class Replay:
    """One replayed comparison: its answer, the blocks it took, and whether its headline could mislead."""

    outcome: str  # "regressed", "no regression" or "inconclusive"
    blocks: dict[str, int] = field(default_factory=dict)  # per case, blocks taken (dropped ones included)
    misleading: int = 0  # "no regression" with a gated row whose interval reaches past its threshold


def _gate(variant: str) -> list[str]:
    """The gated metrics: the default gate (load_s and load_cpu_s), or one of the two alone."""
    from loadbench.results.comparison.paired import GATE_METRICS

    if variant == "wall-only":
        return [m for m in GATE_METRICS if m != "load_cpu_s"]
    if variant == "cpu-only":
        return [m for m in GATE_METRICS if m != "load_s"]
    return list(GATE_METRICS)


def _suite(candidate: str, variant: str) -> Any:
    from loadbench.bench.suite import suite_from_dict

    return suite_from_dict({"checkpoints": [{"builtin": "tiny-llama"}],
                            "environments": [{"name": "base", "python": sys.executable},
                                             {"name": candidate, "python": sys.executable}],
                            "compare": {}},
                           "validate_sequential")


class _Blocks:
    """The run's gated records, indexed by case and round, for fast windows."""

    def __init__(self, frame: Any, envs: Sequence[str], gate: Sequence[str]) -> None:
        import numpy as np

        from loadbench.results.comparison.paired import CONTENDED

        keys = ["checkpoint", "path", "task", "dtype", "device", "cache", "options"]
        measured = frame[~frame["warmup"].astype(bool) & frame["env"].isin(list(envs))]
        self.frame = measured[measured["metric"].isin(list(gate))].reset_index(drop=True)
        self.cases = [tuple(k) for k in self.frame[keys].drop_duplicates().itertuples(index=False)]
        self.rounds = sorted(int(r) for r in self.frame["repeat"].unique())
        case_ids = self.frame[keys].apply(tuple, axis=1).map({c: i for i, c in enumerate(self.cases)})
        self.index: dict[tuple[int, int], Any] = {
            (int(c), int(r)): np.asarray(rows) for (c, r), rows in
            self.frame.groupby([case_ids, self.frame["repeat"]]).indices.items()}
        probes = measured[(measured["metric"] == "host_probe_s") & (measured["status"] == "ok")]
        limit = CONTENDED * float(probes["value"].median()) if len(probes) else math.inf
        contended = probes[probes["value"] > limit]
        self.contended = {(tuple(r[k] for k in keys), int(r["repeat"])) for _, r in contended.iterrows()}

    def window(self, taken: dict[int, list[int]]) -> Any:
        import numpy as np

        parts = [self.index[(c, r)] for c, rounds in taken.items() for r in rounds if (c, r) in self.index]
        return self.frame.iloc[np.concatenate(parts)] if parts else self.frame.iloc[:0]


def _replay(blocks: _Blocks, candidate: str, start: int, repeats: int, max_repeats: int, variant: str) -> Replay:
    from loadbench.bench.sequential import look
    from loadbench.results.comparison.paired import compare_paired

    suite, gate = _suite(candidate, variant), _gate(variant)
    rounds = blocks.rounds[start:]
    taken: dict[int, list[int]] = {c: [] for c in range(len(blocks.cases))}
    cursor = dict.fromkeys(taken, 0)
    spent = dict.fromkeys(taken, 0)

    def give(case: int) -> bool:
        """One more block for ``case``; False when the run has none left."""
        while cursor[case] < len(rounds):
            chosen = rounds[cursor[case]]
            cursor[case] += 1
            spent[case] += 1
            if variant == "drop-contended" and (blocks.cases[case], chosen) in blocks.contended:
                continue
            taken[case].append(chosen)
            return True
        return False

    live = list(taken)
    for case in live:
        for _ in range(repeats):
            give(case)
    outcome = "inconclusive"
    while True:
        frame = blocks.window(taken)
        found = look(frame, suite, gate=gate)
        undecided = {i for i, c in enumerate(blocks.cases) if tuple(str(v) for v in c) in found.undecided}
        live = [c for c in live if c in undecided]
        if found.regressed:
            outcome = "regressed"
            break
        if not live:
            outcome = "no regression"
            break
        if max(len(taken[c]) for c in live) >= max_repeats or not all([give(c) for c in live]):
            break
    result = Replay(outcome, {" · ".join(map(str, blocks.cases[c][:2])): spent[c] for c in taken})
    if outcome == "no regression":
        table = compare_paired(blocks.window(taken), baseline_env="base", candidate_env=candidate, gate=gate)
        gated = table[table["gated"].astype(bool)]
        past = (gated["ci_low"] < -gated["threshold"]) | (gated["ci_high"] > gated["threshold"])
        result.misleading = int((past & gated["verdict"].isin(["unchanged", "inconclusive"])).sum())
    return result


def _legacy(blocks: _Blocks, candidate: str, start: int) -> bool:
    """The replaced design on 15 fixed blocks: Wilcoxon, Holm within each gated family, HL effect ≥ threshold."""
    import numpy as np

    from loadbench.results.comparison.paired import GATE_METRICS, PAIRED_THRESHOLDS
    from loadbench.results.comparison.settings import family_of
    from loadbench.results.comparison.stats import holm, one_sided_signed_rank_test, walsh_interval

    rounds = blocks.rounds[start:start + LEGACY_BLOCKS]
    frame = blocks.window({c: rounds for c in range(len(blocks.cases))})
    # That design gated wall time only: load_cpu_s joined the gate with the sequential one.
    frame = frame[(frame["status"] == "ok") & frame["metric"].isin([m for m in GATE_METRICS if m != "load_cpu_s"])]
    families: dict[str, list[tuple[float, int, float, float, str]]] = {}
    for (metric, *_), group in frame.groupby(["metric", "checkpoint", "path"]):
        paired = group.pivot_table(index="block", columns="env", values="value")
        if "base" not in paired or candidate not in paired:
            continue
        b, c = paired["base"].to_numpy(), paired[candidate].to_numpy()
        keep = np.isfinite(b) & np.isfinite(c)
        b, c = b[keep], c[keep]
        if not len(b):
            continue
        d = np.log(c) - np.log(b) if (b > 0).all() and (c > 0).all() else (c - b) / (abs(np.median(b)) or 1)
        p, sign = one_sided_signed_rank_test(d)
        estimate = walsh_interval(d)[0]
        family = family_of(str(group["unit"].iloc[0]))
        threshold = PAIRED_THRESHOLDS.get(str(metric), PAIRED_THRESHOLDS[family])
        direction = str(group["direction"].iloc[0])
        families.setdefault(family, []).append((p, sign, estimate, threshold, direction))
    for members in families.values():
        for (_, sign, estimate, threshold, direction), adjusted in zip(members, holm([m[0] for m in members])):
            effect = math.expm1(estimate) if sign > 0 else -math.expm1(estimate)
            worse = (sign > 0) == (direction == "lower")
            if adjusted <= 0.05 and effect >= threshold and worse and direction != "none":
                return True
    return False


def replay_run(run_dir: Path, comparisons: int, start_every: int, repeats: int, max_repeats: int,
               variant: str) -> dict[str, Any]:
    """Every candidate of the run, replayed from ``comparisons`` starting rounds."""
    import numpy as np

    from loadbench.results import load, read_run_info
    from loadbench.results.comparison.paired import contended_share, environments_of

    frame = load(run_dir)
    envs = environments_of(frame)
    blocks = _Blocks(frame, envs, [*_gate(variant), "load_s"])
    info = read_run_info(run_dir)
    samples = int((frame["metric"] == "load_s").sum())
    wall = _seconds(info)
    # What one block of a two-environment comparison costs here: two of the run's samples.
    per_block = 2 * wall / samples if samples and wall else math.nan
    starts = [s for s in range(0, len(blocks.rounds), start_every)][:comparisons]
    out: dict[str, Any] = {"run": str(run_dir), "variant": variant, "repeats": repeats, "max_repeats": max_repeats,
                           "start_every": start_every, "rounds": len(blocks.rounds), "cases": len(blocks.cases),
                           "contended_share": contended_share(frame, envs), "seconds_per_block": per_block,
                           "candidates": {}}
    for candidate in [e for e in envs if e != "base"]:
        replays = [_replay(blocks, candidate, s, repeats, max_repeats, variant) for s in starts]
        per_case = [n for r in replays for n in r.blocks.values()]
        totals = [sum(r.blocks.values()) for r in replays]
        legacy = [_legacy(blocks, candidate, s) for s in starts if s + LEGACY_BLOCKS <= len(blocks.rounds)]
        ratios = _median_ratio(blocks.frame, candidate)
        out["candidates"][candidate] = {
            "comparisons": len(replays),
            "regressed": sum(r.outcome == "regressed" for r in replays),
            "no_regression": sum(r.outcome == "no regression" for r in replays),
            "inconclusive": sum(r.outcome == "inconclusive" for r in replays),
            "misleading": sum(r.misleading for r in replays),
            "mean_blocks_per_case": float(np.mean(per_case)),
            "max_blocks_per_case": int(max(per_case)),
            "mean_minutes": float(np.mean(totals)) * per_block / 60,
            "legacy_regressed": sum(legacy), "legacy_comparisons": len(legacy),
            "legacy_minutes": LEGACY_BLOCKS * len(blocks.cases) * per_block / 60,
            "load_ratio": ratios,
        }
    return out


def _seconds(info: dict[str, Any]) -> float:
    from datetime import datetime

    try:
        started, finished = (datetime.fromisoformat(info[k]) for k in ("started_at", "finished_at"))
        return (finished - started).total_seconds()
    except (KeyError, TypeError, ValueError):
        return math.nan


def _median_ratio(frame: Any, candidate: str) -> float:
    import numpy as np

    rows = frame[(frame["metric"] == "load_s") & (frame["status"] == "ok")]
    paired = rows.pivot_table(index=["block"], columns="env", values="value")
    if "base" not in paired or candidate not in paired:
        return math.nan
    return float(np.exp(np.nanmedian(np.log(paired[candidate] / paired["base"]))))


def _print(result: dict[str, Any]) -> None:
    print(f"{result['run']}: variant {result['variant']}, {result['cases']} cases, {result['rounds']} rounds, "
          f"{result['contended_share']:.0%} of blocks contended; --repeats {result['repeats']} "
          f"--max-repeats {result['max_repeats']}, a comparison starting every {result['start_every']} rounds")
    print(f"{'candidate':10} {'ratio':>7} {'regressed':>10} {'no regr.':>9} {'inconcl.':>9} {'mislead':>8} "
          f"{'blocks/case':>12} {'max':>4} {'min/cmp':>8} {'legacy 15':>10} {'legacy min':>10}")
    for name, c in result["candidates"].items():
        print(f"{name:10} {c['load_ratio']:7.3f} {c['regressed']:>5}/{c['comparisons']:<4} {c['no_regression']:>9} "
              f"{c['inconclusive']:>9} {c['misleading']:>8} {c['mean_blocks_per_case']:12.1f} "
              f"{c['max_blocks_per_case']:>4} {c['mean_minutes']:8.2f} "
              f"{c['legacy_regressed']:>5}/{c['legacy_comparisons']:<4} {c['legacy_minutes']:10.2f}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadbench.bench.studies.validate_sequential",
                                     description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a finished run of validate_paired's environments")
    parser.add_argument("--comparisons", type=int, default=30)
    parser.add_argument("--start-every", type=int, default=1, metavar="ROUNDS")
    parser.add_argument("--repeats", type=int, default=5, help="blocks before the first look")
    parser.add_argument("--max-repeats", type=int, default=60, help="blocks per case at most")
    parser.add_argument("--variant", choices=VARIANTS, default="gate")
    parser.add_argument("--output", type=Path, metavar="FILE.jsonl", help="append the figures as one JSON record")
    args = parser.parse_args(argv)
    for name in ("comparisons", "start_every", "repeats", "max_repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    result = replay_run(args.run, args.comparisons, args.start_every, args.repeats, args.max_repeats, args.variant)
    _print(result)
    append_record(args.output, {"benchmark": BENCHMARK, **machine_info(), **result})
    return 0


if __name__ == "__main__":
    sys.exit(main())
