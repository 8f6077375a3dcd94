"""The ``compare`` and ``baseline`` verbs: argument parsing over ``api.compare`` and ``api.baseline_*``.

``bench/cli/main.py`` wires them in with ``register(verbs)`` and keeps the one error boundary
(a UserError becomes one line and exit 2). ``compare`` returns 0 (no regression), 1 (a
regression) or 3 (a gated row inconclusive, unless --no-fail-on-inconclusive).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from loadbench.bench.cli.errors import cli_message
from loadbench.bench.cli.notices import one_line_warnings
from loadbench.errors import UserError

__all__ = ["register", "write_step_summary"]

Handler = Callable[[argparse.Namespace], int]


def _threshold(text: str) -> tuple[str, float]:
    from loadbench.results.comparison.settings import InvalidSetting, parse_threshold

    try:
        return parse_threshold(text)
    except InvalidSetting as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _metric(text: str) -> str:
    from loadbench.results.analysis.metrics import METRICS
    from loadbench.results.records.benchjson import PLAIN_METRIC

    if text not in METRICS and text != PLAIN_METRIC:
        raise argparse.ArgumentTypeError(f"{text!r} is not a metric loadbench records")
    return text


def _alpha(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"alpha must be a number between 0 and 1, got {text!r}")
    return value


def register(verbs: argparse._SubParsersAction) -> dict[str, Handler]:
    """Add ``compare`` and ``baseline`` to the CLI's subparsers; return their handlers by verb.

    Each subparser also gets ``handler`` as a default, so ``args.handler(args)`` works too.
    """
    from loadbench.bench.compare_inputs import BASELINE_PREFIX

    side = ("a run directory, a folder of runs, a pytest-benchmark --benchmark-json file, or "
            f"{BASELINE_PREFIX}NAME (a saved baseline of this machine); comma-separate several to pool them")
    cmp = verbs.add_parser(
        "compare", help="compare a run's environments (paired), or a candidate run with a baseline; exit 1 on a "
                        "regression, 3 when the samples cannot decide",
        description="One RUN measured with several environments (loadbench run --env ...): the candidate "
                    "environment against the baseline one, pair by pair (an anytime-valid confidence sequence "
                    "for the median paired change, Bonferroni over each metric family of the gate). BASELINE "
                    "and CANDIDATE: two runs measured apart, unpaired (a two-sample Hodges-Lehmann interval at "
                    "the Bonferroni level). A row is unchanged only when its interval lies within ±threshold; "
                    "otherwise, unless it shows a change that reaches the threshold, inconclusive. Exit 0: no "
                    "regression, 1: a regression, 2: cannot compare, 3: a gated row inconclusive (0 with "
                    "--no-fail-on-inconclusive).")
    cmp.add_argument("baseline", metavar="RUN|BASELINE", help="a run with environments, or: " + side)
    cmp.add_argument("candidate", metavar="CANDIDATE", nargs="?", help=side)
    cmp.add_argument("--baseline-env", metavar="NAME", help="paired: the baseline environment (default: the first)")
    cmp.add_argument("--candidate-env", metavar="NAME",
                     help="paired: the candidate environment (default: every other one, each against the baseline)")
    cmp.add_argument("--gate", action="append", type=_metric, metavar="METRIC",
                     help="paired: a metric whose regression fails the gate; repeatable (default: load_s, "
                          "first_forward_s, peak memory, tokens/s; the rest are diagnostics)")
    cmp.add_argument("--threshold", action="append", type=_threshold, default=[], metavar="NAME=PCT",
                     help="minimum change in percent for a metric (load_s=15) or a family (time, memory, "
                          "throughput, other); repeatable")
    cmp.add_argument("--alpha", type=_alpha, metavar="A",
                     help="chance of any false verdict per metric family (paired: in the gate) when nothing "
                          "changed (default 0.01 unpaired, 0.05 paired)")
    cmp.add_argument("--metric", action="append", dest="metrics", type=_metric, metavar="NAME",
                     help="compare only this metric; repeatable (fewer rows per family: smaller changes caught)")
    cmp.add_argument("--suite", type=Path, metavar="SUITE.toml",
                     help="read alpha and thresholds from its [compare] table")
    cmp.add_argument("--fail-on-inconclusive", action=argparse.BooleanOptionalAction, default=True,
                     help="exit 3 when a gated row is inconclusive (its interval neither within ±threshold nor "
                          "showing a change); --no-fail-on-inconclusive exits 0 then, and the report still says "
                          "it (default: fail)")
    cmp.add_argument("--format", choices=("markdown", "json"), default="markdown", help="what to print")
    cmp.add_argument("--json", type=Path, dest="json_out", metavar="PATH", help="also write the JSON report to PATH")
    cmp.add_argument("--allow-mismatch", action="store_true",
                     help="compare runs from different hardware or library versions; the report lists the differences")
    cmp.add_argument("--baselines", type=Path, metavar="DIR", help="baseline store (default $LOADBENCH_BASELINES "
                                                                   "or .loadbench/baselines)")
    cmp.set_defaults(handler=cmd_compare)

    base = verbs.add_parser("baseline", help="save and list named baselines, kept per machine")
    actions = base.add_subparsers(dest="baseline_action", required=True)
    save = actions.add_parser("save", help="store complete runs (pooled) as a named baseline of their machine")
    save.add_argument("runs", nargs="+", type=Path, metavar="RUN")
    save.add_argument("--name", default=None, help="baseline name (default: default)")
    save.add_argument("--baselines", type=Path, metavar="DIR", help="baseline store")
    listing = actions.add_parser("list", help="list saved baselines and their machines")
    listing.add_argument("--baselines", type=Path, metavar="DIR", help="baseline store")
    base.set_defaults(handler=cmd_baseline)
    return {"compare": cmd_compare, "baseline": cmd_baseline}


def write_step_summary(markdown: str, environ: Mapping[str, str] | None = None) -> Path | None:
    """Append the markdown to ``$GITHUB_STEP_SUMMARY`` when it is set; return that path."""
    target = (os.environ if environ is None else environ).get("GITHUB_STEP_SUMMARY")
    if not target:
        return None
    path = Path(target)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(markdown + "\n")
    return path


def cmd_compare(args: argparse.Namespace) -> int:
    from loadbench.bench import api

    try:
        with one_line_warnings():
            result = api.compare(args.baseline, args.candidate, thresholds=dict(args.threshold), alpha=args.alpha,
                                 metrics=args.metrics, suite=args.suite, allow_mismatch=args.allow_mismatch,
                                 baselines=args.baselines, baseline_env=args.baseline_env,
                                 candidate_env=args.candidate_env, gate=args.gate,
                                 fail_on_inconclusive=args.fail_on_inconclusive)
    except UserError as exc:
        # CI readers look at the job summary first: say there why nothing was compared.
        write_step_summary(f"## loadbench compare: ⚠ cannot compare\n\n{cli_message(exc)}\n")
        raise
    write_step_summary(result.markdown)
    if args.json_out is not None:
        args.json_out.write_text(result.json, encoding="utf-8")
    sys.stdout.write(result.json if args.format == "json" else result.markdown)
    return result.exit_code


def cmd_baseline(args: argparse.Namespace) -> int:
    from loadbench.bench import api

    if args.baseline_action == "save":
        directory = api.baseline_save(args.runs, args.name, args.baselines)
        print(f"saved baseline {directory.name!r} ({len(args.runs)} run{'s' if len(args.runs) > 1 else ''}) "
              f"for machine {directory.parent.name} in {directory}")
        return 0
    entries = api.baseline_list(args.baselines)
    if not entries:
        print("no baselines saved yet; `loadbench baseline save RUN --name NAME` saves one")
    for entry in entries:
        machine = f"{entry.machine.get('cpu_model')}, {entry.machine.get('cpu_count')} CPUs, " \
                  f"{entry.machine.get('gpus') or 'no GPU'}"
        print(f"{entry.name:16} {entry.machine_key:40} {len(entry.runs)} run(s)  {entry.saved_at or '?':25}  {machine}")
    return 0
