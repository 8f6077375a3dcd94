"""``loadbench`` on the command line: a thin shell over the Python API, one module per verb.

One error boundary: any input the user can fix ends in one line on stderr and exit 2;
``--verbose`` shows the traceback too.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from loadbench.bench.cli import ceiling, checkpoints, compare, env, report, run
from loadbench.bench.cli.errors import EXIT_INCOMPLETE, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, cli_message
from loadbench.errors import UserError

__all__ = ["main", "EXIT_OK", "EXIT_INCOMPLETE", "EXIT_INTERRUPTED", "EXIT_USAGE"]

# The verbs in the order ``--help`` lists them.
VERBS = (run, report, checkpoints, compare, env, ceiling)


def _parser() -> tuple[argparse.ArgumentParser, dict[str, Callable[[argparse.Namespace], int]]]:
    parser = argparse.ArgumentParser(
        prog="loadbench",
        description="Benchmark the four ways of loading a Hugging Face model: "
                    "AutoModel, AutoModelFor<Task>, a custom PreTrainedModel, pipeline().",
    )
    parser.add_argument("--verbose", action="store_true", help="show tracebacks of errors")
    verbs = parser.add_subparsers(dest="verb", required=True)
    commands: dict[str, Callable[[argparse.Namespace], int]] = {}
    for verb in VERBS:
        commands.update(verb.register(verbs))
    return parser, commands


def main(argv: Sequence[str] | None = None) -> int:
    parser, commands = _parser()
    args = parser.parse_args(argv)
    try:
        return commands[args.verb](args)
    except UserError as exc:
        if args.verbose:
            raise
        print(f"loadbench: error: {cli_message(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("loadbench: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`loadbench report RUN | head`): not an error; keep Python's
        # own flush at exit from failing on the closed pipe.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
