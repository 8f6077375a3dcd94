"""The ``env`` verb: build environments from requirements ahead of a run, and list the built ones.

``bench/cli/main.py`` wires it in with ``register(verbs)`` and keeps the one error boundary (a
UserError, such as a failed build, becomes one line and exit 2).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

__all__ = ["register"]

Handler = Callable[[argparse.Namespace], int]


def register(verbs: argparse._SubParsersAction) -> dict[str, Handler]:
    env = verbs.add_parser("env", help="build Python environments from requirements (for --env), list them")
    actions = env.add_subparsers(dest="env_action", required=True)
    build = actions.add_parser("build", help="build (once) the environment that --env NAME=REQUIREMENTS would use; "
                                             "print its directory")
    build.add_argument("requirements", nargs="+", metavar="REQUIREMENT", help="e.g. transformers==4.57.6")
    build.add_argument("--pip", action="store_true", help="install with pip even where uv is installed")
    actions.add_parser("list", help="the environments built so far, with what each was built from")
    return {"env": _cmd_env}


def _cmd_env(args: argparse.Namespace) -> int:
    from loadbench.bench import api

    if args.env_action == "build":
        built = api.build_environment(args.requirements, installer="pip" if args.pip else None)
        print(built.path)
        return 0
    found = api.environments()
    if not found:
        print("no environments built yet: loadbench env build REQUIREMENT..., or run with --env NAME=REQUIREMENT")
    for record in found:
        installed = ", ".join(f"{name} {version}" for name, version in record.get("installed", {}).items())
        stale = "" if record.get("current") else "; stale: built on another base, not used (delete it at will)"
        print(f"{record['path']}  {' '.join(record.get('requirements', []))}  "
              f"(built in {record.get('build_s', 0):.1f} s by {record.get('installer')}; "
              f"installed: {installed or 'nothing beyond the base'}{stale})")
    return 0
