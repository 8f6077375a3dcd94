"""The ``bisect`` verb: name the release or commit that changed a metric, a step table as it goes.

``bench/cli/main.py`` wires it in with ``register(verbs)`` and keeps the one error boundary.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from loadbench.bench.cli.errors import EXIT_INTERRUPTED
from loadbench.errors import UserError
from loadbench.vocabulary import CACHE_STATES, DTYPES

if TYPE_CHECKING:
    from loadbench.bench.bisect.driver import BisectResult, Step

__all__ = ["register"]

Handler = Callable[[argparse.Namespace], int]


def register(verbs: argparse._SubParsersAction) -> dict[str, Handler]:
    bisect = verbs.add_parser(
        "bisect", help="find the release (or commit) that changed a metric, paired step by step",
        description="loadbench bisect PACKAGE GOOD BAD walks the package index's releases of PACKAGE; "
                    "loadbench bisect --repo DIR GOOD BAD walks a git repository's commits. Exit 0: a release "
                    "named and confirmed; 1: GOOD and BAD do not differ; 3: not decided (the range left is named).")
    bisect.add_argument("versions", nargs="+", metavar="ARG",
                        help="a package and two of its releases, oldest first (with --repo: two commits)")
    bisect.add_argument("--repo", type=Path, metavar="DIR",
                        help="bisect this git repository's commits, each installed into its own environment")
    bisect.add_argument("--metric", default="load_s", help="the metric to follow (default load_s)")
    bisect.add_argument("--checkpoint", action="append", dest="checkpoints", metavar="DIR|NAME",
                        help="the checkpoint to load (one)")
    bisect.add_argument("--paths", nargs=1, metavar="PATH", help="the loading path (one; module:function for your own)")
    bisect.add_argument("--suite", type=Path, dest="suite_file", metavar="FILE",
                        help="a suite file holding one case (its settings apply to every step)")
    bisect.add_argument("--cache", nargs=1, choices=CACHE_STATES, help="page cache state (default warm)")
    bisect.add_argument("--device", nargs=1, metavar="DEVICE")
    bisect.add_argument("--dtype", nargs=1, choices=DTYPES)
    bisect.add_argument("--repeats", type=int, metavar="N",
                        help="blocks per step before its first look (default: the fewest that can decide)")
    bisect.add_argument("--max-repeats", type=int, metavar="N", help="blocks per step at most (default 60)")
    bisect.add_argument("--max-minutes", type=float, metavar="M", help="minutes of measuring per step at most")
    bisect.add_argument("--alpha", type=float, default=0.05,
                        help="false-alarm rate of the whole bisect (Bonferroni over its steps; default 0.05)")
    bisect.add_argument("--pre", action="store_true", help="walk pre-releases too")
    bisect.add_argument("--output", type=Path, metavar="DIR",
                        help="the bisect's directory (default runs/bisect-WHAT-GOOD-BAD); the same command "
                             "again continues it")
    bisect.add_argument("--history", type=Path, metavar="DIR",
                        help="file each step's run here (default: $LOADBENCH_HISTORY, else .loadbench/history)")
    bisect.add_argument("--no-history", action="store_true", help="file the step runs nowhere")
    bisect.add_argument("--format", choices=("text", "json"), default="text",
                        help="json: the result alone on stdout, for tools (the step table goes to stderr)")
    bisect.add_argument("--no-progress", action="store_true", help="no live progress display")
    return {"bisect": _cmd_bisect}


class UsageError(UserError):
    """Arguments that do not go together."""


def _percent(value: float) -> str:
    return "unbounded" if math.isnan(value) else f"{value * 100:+.1f}%"


_COLUMNS = f"{'step':<5} {'measured (baseline first)':<44} {'blocks':>6}  {'minutes':>7}  verdict"


def _row(step: Step) -> str:
    readings = "; ".join(f"{label} {_percent(r.change)} ({_percent(r.ci_low)} … {_percent(r.ci_high)})"
                         for label, r in step.readings.items())
    measured = " · ".join(step.labels)
    reused = " (found on disk)" if step.reused else ""
    return (f"{step.number:<5} {measured[:44]:<44} {step.blocks:>6}  {step.minutes:>7.1f}  "
            f"{step.kind}: {step.move}{reused} — {readings} vs {step.labels[0]} (±{step.threshold * 100:.3g}% counts)")


def _ending(result: BisectResult) -> str:
    if result.outcome in ("found", "unconfirmed"):
        subject = result.subjects.get(result.first_changed or "", "")
        head = "first changed" if result.outcome == "found" else "not confirmed"
        return (f"{head}: {result.target} {result.first_changed}{f' ({subject})' if subject else ''}, after "
                f"{result.previous}: {result.metric} {_percent(result.change or math.nan)} (interval "
                f"{_percent(result.ci_low if result.ci_low is not None else math.nan)} … "
                f"{_percent(result.ci_high if result.ci_high is not None else math.nan)})")
    low, high = result.open_range or ("?", "?")
    reasons = {"no_change": f"{result.metric} does not differ between {low} and {high}: nothing to bisect",
               "spread": f"the change is spread over the releases between {low} and {high}: no single one made it",
               "inconclusive": f"not decided within the budget; the change lies between {low} and {high} "
                               "(raise --max-repeats, or rerun to continue)"}
    return reasons[result.outcome]


def _cmd_bisect(args: argparse.Namespace) -> int:
    from loadbench.bench import api

    wanted = 2 if args.repo is not None else 3
    if len(args.versions) != wanted:
        shape = "--repo DIR GOOD BAD" if args.repo is not None else "PACKAGE GOOD BAD"
        raise UsageError(f"bisect takes {shape}; got {' '.join(args.versions)}")
    package, good, bad = (None, *args.versions) if args.repo is not None else args.versions
    table: TextIO = sys.stderr if args.format == "json" else sys.stdout

    def show(step: Step) -> None:
        if step.number == 1:
            print(_COLUMNS, file=table)
        print(_row(step), file=table, flush=True)

    try:
        result = api.bisect(good, bad, package=package, repo=args.repo, metric=args.metric, suite=args.suite_file,
                            checkpoints=args.checkpoints, output=args.output,
                            history=False if args.no_history else (args.history or True), alpha=args.alpha,
                            pre=args.pre, progress=not args.no_progress,
                            on_step=show,
                            paths=args.paths, cache=args.cache, device=args.device, dtype=args.dtype,
                            repeats=args.repeats, max_repeats=args.max_repeats, max_minutes=args.max_minutes)
    except KeyboardInterrupt:
        print("interrupted: every sample measured so far is kept; run the same command again to continue",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    print(f"{_ending(result)}\n{len(result.steps)} step(s), {result.environments_built} environment(s) built, "
          f"{result.minutes:.1f} min; runs in {result.output}", file=table)
    if args.format == "json":
        print(json.dumps(result.to_json(), indent=2))
    return result.exit_code
