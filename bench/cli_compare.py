"""The ``compare`` and ``baseline`` verbs: thin argparse shells over results.compare and results.baseline.

``bench/cli.py`` wires them in with ``register(verbs)`` and keeps the one error boundary:
the exceptions in ``user_errors()`` become one line and exit 2. A handler returns 0 (no
regression) or 1 (a regression).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["BASELINE_PREFIX", "register", "user_errors"]

BASELINE_PREFIX = "baseline:"
Handler = Callable[[argparse.Namespace], int]


def user_errors() -> tuple[type[BaseException], ...]:
    """What these verbs raise for input the user can fix: one line, exit 2."""
    from loadbench.results.baseline import BaselineError
    from loadbench.results.compare import CannotCompare
    from loadbench.results.frame import DuplicateRun
    from loadbench.results.schema import UnsupportedSchema
    from loadbench.results.store import CorruptRun, NotARun

    return (CannotCompare, BaselineError, DuplicateRun, UnsupportedSchema, CorruptRun, NotARun)


def _threshold(text: str) -> tuple[str, float]:
    from loadbench.results.compare import parse_threshold

    try:
        return parse_threshold(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _metric(text: str) -> str:
    from loadbench.results.benchjson import PLAIN_METRIC
    from loadbench.results.metrics import METRICS

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
    side = ("a run directory, a folder of runs, a pytest-benchmark --benchmark-json file, or "
            f"{BASELINE_PREFIX}NAME (a saved baseline of this machine); comma-separate several to pool them")
    cmp = verbs.add_parser(
        "compare", help="compare a candidate run with a baseline; exit 1 on a regression",
        description="Per case and metric: medians, relative change, a Mann-Whitney U test (Holm-corrected "
                    "per metric family) and a minimum change. Exit 0: no regression, 1: a regression, "
                    "2: cannot compare.")
    cmp.add_argument("baseline", metavar="BASELINE", help=side)
    cmp.add_argument("candidate", metavar="CANDIDATE", help=side)
    cmp.add_argument("--threshold", action="append", type=_threshold, default=[], metavar="NAME=PCT",
                     help="minimum change in percent for a metric (load_s=15) or a family (time, memory, "
                          "throughput, other); repeatable")
    cmp.add_argument("--alpha", type=_alpha, metavar="A",
                     help="chance of any false verdict per metric family when nothing changed (default 0.01)")
    cmp.add_argument("--metric", action="append", dest="metrics", type=_metric, metavar="NAME",
                     help="compare only this metric; repeatable (fewer rows per family: smaller changes caught)")
    cmp.add_argument("--suite", type=Path, metavar="SUITE.toml", help="read alpha and thresholds from its [compare] table")
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


def _machine(frame: pd.DataFrame) -> dict[str, Any]:
    """The hardware fields of a side's first run, to pick the baseline of the same machine."""
    import pandas as pd

    if frame.empty:
        return {}
    first = frame.iloc[0]
    return {k: (None if k not in frame.columns or pd.isna(first[k]) else str(first[k]))
            for k in ("cpu_model", "cpu_count", "gpus")}


def _this_machine() -> dict[str, Any]:
    from .fingerprint import fingerprint

    return {"fingerprint": fingerprint()}


def _read_side(spec: str, other: dict[str, Any] | None, root: Path | None) -> pd.DataFrame:
    from loadbench.results.baseline import resolve
    from loadbench.results.benchjson import read_results
    from loadbench.results.compare import CannotCompare

    items: list[str | Path] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            raise CannotCompare(f"{spec!r}: an empty item in the list")
        if part.startswith(BASELINE_PREFIX):
            items.append(resolve(part[len(BASELINE_PREFIX):], other or _this_machine(), root))
        else:
            items.append(Path(part))
    return read_results(items)


def _is_baseline(spec: str) -> bool:
    return all(p.strip().startswith(BASELINE_PREFIX) for p in spec.split(","))


def _settings(args: argparse.Namespace) -> tuple[float, dict[str, float], list[str] | None]:
    """Defaults, then the suite's [compare] table, then the command line."""
    from loadbench.results.compare import DEFAULT_ALPHA, read_compare_settings

    alpha, thresholds, metrics = DEFAULT_ALPHA, {}, None
    if args.suite is not None:
        settings = read_compare_settings(args.suite)
        alpha = settings.alpha if settings.alpha is not None else alpha
        thresholds.update(settings.thresholds)
        metrics = list(settings.metrics) if settings.metrics is not None else None
    thresholds.update(dict(args.threshold))
    metrics = args.metrics or metrics
    return (args.alpha if args.alpha is not None else alpha), thresholds, metrics


def cmd_compare(args: argparse.Namespace) -> int:
    from loadbench.results.compare import compare, exit_code, fingerprint_differences
    from loadbench.results.compare_render import render_json, render_markdown, write_step_summary

    try:
        alpha, thresholds, metrics = _settings(args)
        # A baseline name resolves against the machine the other side was measured on.
        if _is_baseline(args.baseline) and not _is_baseline(args.candidate):
            candidate = _read_side(args.candidate, None, args.baselines)
            baseline = _read_side(args.baseline, _machine(candidate), args.baselines)
        else:
            baseline = _read_side(args.baseline, None, args.baselines)
            candidate = _read_side(args.candidate, _machine(baseline), args.baselines)
        table = compare(baseline, candidate, thresholds=thresholds, alpha=alpha, metrics=metrics,
                        allow_mismatch=args.allow_mismatch)
    except user_errors() as exc:
        # CI readers look at the job summary first: say there why nothing was compared.
        write_step_summary(f"## loadbench compare: ⚠ cannot compare\n\n{exc}\n")
        raise
    _, differences = fingerprint_differences(baseline, candidate)
    context = dict(alpha=alpha, thresholds=thresholds, differences=differences,
                   baseline_runs=list(dict.fromkeys(baseline["run_id"])),
                   candidate_runs=list(dict.fromkeys(candidate["run_id"])))
    markdown = render_markdown(table, **context)
    document = render_json(table, **context)
    write_step_summary(markdown)
    if args.json_out is not None:
        args.json_out.write_text(document, encoding="utf-8")
    sys.stdout.write(document if args.format == "json" else markdown)
    return exit_code(table)


def cmd_baseline(args: argparse.Namespace) -> int:
    from loadbench.results.baseline import list_baselines, save

    if args.baseline_action == "save":
        directory = save(args.runs, args.name, args.baselines)
        print(f"saved baseline {directory.name!r} ({len(args.runs)} run{'s' if len(args.runs) > 1 else ''}) "
              f"for machine {directory.parent.name} in {directory}")
        return 0
    entries = list_baselines(args.baselines)
    if not entries:
        print("no baselines saved yet; `loadbench baseline save RUN --name NAME` saves one")
    for entry in entries:
        machine = f"{entry.machine.get('cpu_model')}, {entry.machine.get('cpu_count')} CPUs, " \
                  f"{entry.machine.get('gpus') or 'no GPU'}"
        print(f"{entry.name:16} {entry.machine_key:40} {len(entry.runs)} run(s)  {entry.saved_at or '?':25}  {machine}")
    return 0
