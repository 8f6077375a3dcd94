"""The ``history`` verb: file runs into a per-machine history, and show its trends and change points.

``bench/cli/main.py`` wires it in with ``register(verbs)`` and keeps the one error boundary.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

from loadbench.bench.cli.errors import EXIT_OK
from loadbench.bench.cli.notices import one_line_warnings

__all__ = ["register"]

Handler = Callable[[argparse.Namespace], int]
_HISTORY_HELP = "the history directory (default: $LOADBENCH_HISTORY, else .loadbench/history)"
_ANCHORED_HELP = ("only the anchored series: each later environment of a run over its first, block by block "
                  "(runs measured against a fixed reference; docs/HISTORY.md)")


def register(verbs: argparse._SubParsersAction) -> dict[str, Handler]:
    history = verbs.add_parser("history", help="keep runs in a history per machine; show trends and change points")
    actions = history.add_subparsers(dest="history_action", required=True)
    add = actions.add_parser("add", help="file finished runs into the history, in the order given")
    add.add_argument("runs", nargs="+", type=Path, metavar="RUN", help="run directories")
    add.add_argument("--history", type=Path, metavar="DIR", help=_HISTORY_HELP)
    add.add_argument("--label", action="append", metavar="LABEL",
                     help="the run's label (default: the checkout's commit, else the run id); once per run")
    show = actions.add_parser("show", help="per case and metric: the latest value, its trend, its change points")
    show.add_argument("--history", type=Path, metavar="DIR", help=_HISTORY_HELP)
    show.add_argument("--format", choices=("text", "json"), default="text")
    show.add_argument("--metric", action="append", metavar="METRIC",
                      help="a metric to track (repeat; default: the gated ones, as `compare` gates)")
    show.add_argument("--alpha", type=float, default=0.05,
                      help="false-alarm rate over the whole history (Bonferroni over its series; default 0.05)")
    show.add_argument("--fail-on-regression", action="store_true",
                      help="exit 1 when the newest run sits after a regressing change point (a nightly job)")
    show.add_argument("--since", metavar="LABEL",
                      help="with --fail-on-regression: only change points at or after this run's label count")
    show.add_argument("--anchored", action="store_true", help=_ANCHORED_HELP)
    page = actions.add_parser("report", help="write the history as a static HTML page: trends, samples, change points")
    page.add_argument("--output", type=Path, metavar="DIR", required=True, help="directory for index.html")
    page.add_argument("--history", type=Path, metavar="DIR", help=_HISTORY_HELP)
    page.add_argument("--metric", action="append", metavar="METRIC", help="as for `history show`")
    page.add_argument("--anchored", action="store_true", help=_ANCHORED_HELP)
    return {"history": _cmd_history}


def _cmd_history(args: argparse.Namespace) -> int:
    from loadbench.bench import api

    if args.history_action == "add":
        with one_line_warnings():
            added = api.history_add(args.runs, args.history, labels=args.label)
        for run in added:
            print(f"added {run.label} (run {run.run_id}) as run {run.number} of the history")
        return EXIT_OK
    if args.history_action == "report":
        page = api.history_report(args.output, args.history, metrics=args.metric, anchored=args.anchored)
        print(f"history page: {page}")
        return EXIT_OK
    found = api.history(args.history, metrics=args.metric, alpha=args.alpha, since=args.since,
                        anchored=args.anchored)
    print(json.dumps(found.as_dict(), indent=2, allow_nan=False) if args.format == "json" else found.text())
    return found.exit_code(args.fail_on_regression)
