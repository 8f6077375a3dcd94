"""The ``checkpoints`` verb: build the built-in tiny checkpoints and list where they are.

``bench/cli/main.py`` wires it in with ``register(verbs)`` and keeps the one error boundary.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from loadbench.bench.cli.errors import EXIT_OK

__all__ = ["register"]

Handler = Callable[[argparse.Namespace], int]


def register(verbs: argparse._SubParsersAction) -> dict[str, Handler]:
    checkpoints = verbs.add_parser("checkpoints", help="build and list the built-in tiny checkpoints")
    checkpoints.add_argument("--all", action="store_true", help="build every built-in, not only the default ones "
                                  "(the size ladder included: about 1 GB)")
    return {"checkpoints": _cmd_checkpoints}


def _cmd_checkpoints(args: argparse.Namespace) -> int:
    from loadbench.bench import api

    for entry in api.checkpoints(all=args.all):
        marker = "default" if entry.default else "extra"
        status = "built" if entry.built else "not built"
        print(f"{entry.name:20} {marker:8} {status:10} {entry.architecture:34} {entry.directory}")
    return EXIT_OK
