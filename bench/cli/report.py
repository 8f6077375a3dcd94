"""The ``report`` verb: one or more runs as markdown, HTML, or data for other tools.

``bench/cli/main.py`` wires it in with ``register(verbs)`` and keeps the one error boundary.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from loadbench.bench.cli.errors import EXIT_OK
from loadbench.bench.cli.notices import one_line_warnings

__all__ = ["register"]

Handler = Callable[[argparse.Namespace], int]


def register(verbs: argparse._SubParsersAction) -> dict[str, Handler]:
    report = verbs.add_parser("report", help="report one or more runs: markdown, html, csv, parquet or json")
    report.add_argument("runs", nargs="+", type=Path, metavar="RUN",
                        help="run directories; with several, the first is the baseline they are compared to")
    report.add_argument("--format", choices=("markdown", "html", "csv", "parquet", "json"), default="markdown",
                        help="markdown (default): PR comment or CI summary; html: one self-contained file with "
                             "plots; csv/parquet/json: data for other tools")
    report.add_argument("--output", type=Path, metavar="PATH",
                        help="file or directory to write, '-' for stdout (default: stdout for markdown, csv and "
                             "json; RUN/report.html or .parquet for one run, ./loadbench-report.* for several)")
    report.add_argument("--what", choices=("records", "summary"),
                        help="csv, parquet, json: the tidy records or the per-case summary "
                             "(default: records for csv and parquet, summary for json)")
    return {"report": _cmd_report}


def _cmd_report(args: argparse.Namespace) -> int:
    from loadbench.bench import api

    with one_line_warnings():
        result = api.report(args.runs, format=args.format, output=args.output, what=args.what)
    if result.path is not None:
        print(f"report: {result.path}")
    elif isinstance(result.content, bytes):
        sys.stdout.flush()
        sys.stdout.buffer.write(result.content)
    else:
        sys.stdout.write(result.content or "")
    return EXIT_OK
