"""The ``ceiling`` verb: what this machine's storage and memory allow, measured once and cached.

``bench/cli/main.py`` wires it in with ``register(verbs)`` and keeps the one error boundary.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

__all__ = ["register"]

Handler = Callable[[argparse.Namespace], int]


def register(verbs: argparse._SubParsersAction) -> dict[str, Handler]:
    ceiling = verbs.add_parser(
        "ceiling", help="this machine's cold read, memory and host-to-device rates (measured once, cached)")
    ceiling.add_argument("directory", nargs="?", type=Path, metavar="DIR",
                         help="a checkpoint directory: its filesystem's cold read rate is measured "
                              "(default: loadbench's cache, where the built-in checkpoints live)")
    ceiling.add_argument("--refresh", action="store_true", help="measure again and replace the cached rates")
    ceiling.add_argument("--json", action="store_true", help="print the rates as one JSON object")
    return {"ceiling": _cmd_ceiling}


def _cmd_ceiling(args: argparse.Namespace) -> int:
    from loadbench.bench import api

    found = api.ceiling(args.directory, refresh=args.refresh)
    if args.json:
        print(json.dumps(found.to_dict()))
        return 0
    for line in found.lines():
        print(line)
    return 0
