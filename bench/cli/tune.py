"""The ``tune`` verb: measure the ways of loading one checkpoint here and recommend one for a goal.

``bench/cli/main.py`` wires it in with ``register(verbs)`` and keeps the one error boundary.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from loadbench.bench.cli.errors import EXIT_INTERRUPTED
from loadbench.vocabulary import CACHE_STATES, DTYPES

__all__ = ["register"]

Handler = Callable[[argparse.Namespace], int]


def register(verbs: argparse._SubParsersAction) -> dict[str, Handler]:
    tune = verbs.add_parser(
        "tune", help="which way of loading this checkpoint is best here: a Pareto front and a recommendation",
        description="loadbench tune CHECKPOINT measures the loading settings that apply on this machine (paths, "
                    "parallel loading and its workers, torch threads, mmap or eager reads, device_map, the fast "
                    "loaders), spends its samples by successive halving, and confirms the best against the default "
                    "in a paired run. Exit 0 with an answer (which may be: keep the default).")
    tune.add_argument("checkpoint", metavar="CHECKPOINT",
                      help="a checkpoint directory, a built-in name (loadbench checkpoints) or a hub id")
    tune.add_argument("--goal", default="fastest",
                      help="fastest (default), least-memory, or fastest-within-memory=SIZE (e.g. =4GiB)")
    tune.add_argument("--budget-minutes", type=float, default=10.0, metavar="M",
                      help="minutes the whole tune may take (default 10); the halving stops where the next rung "
                           "and the confirmation would not fit")
    tune.add_argument("--settings", nargs="+", metavar="NAME",
                      help="try only these settings (the default load is always one); names as the table shows")
    tune.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    tune.add_argument("--dtype", default="auto", choices=DTYPES)
    tune.add_argument("--cache", default="warm", choices=CACHE_STATES, help="page cache state (default warm)")
    tune.add_argument("--confirm-pairs", type=int, metavar="N",
                      help="paired rounds of the confirmation run, at least 6 (default: as many as the budget "
                           "leaves, up to 40)")
    tune.add_argument("--output", type=Path, metavar="DIR",
                      help="the tune's directory (default runs/tune-CHECKPOINT-CACHE-GOAL); the same command again "
                           "continues it")
    tune.add_argument("--format", choices=("text", "markdown", "json"), default="text",
                      help="json: the result alone on stdout, for tools")
    tune.add_argument("--trust-remote-code", action="store_true",
                      help="let the checkpoint run its own code (off unless given)")
    tune.add_argument("--download", action="store_true",
                      help="download a hub checkpoint missing from the local cache, before anything is timed")
    tune.add_argument("--no-progress", action="store_true", help="no live progress display")
    return {"tune": _cmd_tune}


def _text(result: object) -> str:
    from loadbench.bench.tune.report import table_rows

    rows = [("setting", "load time", "added memory", "n", "max|diff|", "front", "note"), *table_rows(result)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[-1] for row in rows]
    return "\n".join(line.rstrip() for line in lines)


def _cmd_tune(args: argparse.Namespace) -> int:
    from loadbench.bench.tune import tune
    from loadbench.bench.tune.report import render_markdown

    notes = sys.stderr if args.format == "json" else sys.stdout
    try:
        result = tune(args.checkpoint, device=args.device, dtype=args.dtype, cache=args.cache, goal=args.goal,
                      budget_minutes=args.budget_minutes, settings=args.settings, output=args.output,
                      confirm_pairs=args.confirm_pairs, progress=not args.no_progress,
                      on_step=lambda text: print(text, file=notes, flush=True),
                      trust_remote_code=args.trust_remote_code, download=args.download)
    except KeyboardInterrupt:
        print("interrupted: every sample measured so far is kept; run the same command again to continue",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    if args.format == "json":
        print(json.dumps(result.to_json(), indent=2))
    elif args.format == "markdown":
        print(render_markdown(result), end="")
    else:
        print(f"\n{_text(result)}\n\n{result.explanation}\n\n{result.code}\n\n"
              f"{result.minutes:.1f} of {result.budget_minutes:g} minutes; GPU: {result.gpu}\n"
              f"re-check: loadbench run {result.output / 'recommended.toml'}\n"
              f"report: {result.output / 'report.html'}")
    return 0
