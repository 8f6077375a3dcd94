"""``loadbench`` on the command line: a thin shell over the Python API, one module per verb.

One error boundary: any input the user can fix ends in one line on stderr and exit 2;
``--verbose`` shows the traceback too.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from loadbench.bench.cli import bisect, ceiling, checkpoints, compare, env, history, report, run, tune
from loadbench.bench.cli.errors import EXIT_INCOMPLETE, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, cli_message
from loadbench.errors import UserError

__all__ = ["main", "EXIT_OK", "EXIT_INCOMPLETE", "EXIT_INTERRUPTED", "EXIT_USAGE"]

# The verbs in the order ``--help`` lists them.
VERBS = (run, report, checkpoints, compare, history, bisect, tune, env, ceiling)


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


class StdoutFailed(Exception):
    """Writing to standard output failed: a full disk (ENOSPC), a reader gone (EPIPE)."""

    def __init__(self, error: OSError) -> None:
        super().__init__(error.strerror or str(error))


class _Guarded:
    """Standard output (or its binary buffer) whose failed writes say so as StdoutFailed.

    So an OSError from printing is told apart from any other, in every verb at once.
    """

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, data: Any) -> int:
        try:
            return int(self._stream.write(data))
        except OSError as exc:
            raise StdoutFailed(exc) from None

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as exc:
            raise StdoutFailed(exc) from None

    @property
    def buffer(self) -> _Guarded:
        return _Guarded(self._stream.buffer)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _drop_stdout(stream: Any) -> None:
    """Point the failed stdout at /dev/null, so Python's own flush at exit does not fail again."""
    try:
        fd = stream.fileno()
    except (OSError, ValueError, AttributeError):  # not a file (a test's in-memory stream)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def _unusable_name(exc: OSError | RuntimeError) -> str | None:
    """A path given on the command line that the OS cannot look up at all, in one line; else None.

    A name longer than the filesystem allows, or a symbolic link that loops, can only come
    from what the user typed, wherever a verb first touches it.
    """
    if isinstance(exc, OSError) and exc.errno in (errno.ENAMETOOLONG, errno.ELOOP) and exc.filename:
        return f"{exc.filename}: {exc.strerror}; give another path"
    if isinstance(exc, RuntimeError) and str(exc).startswith("Symlink loop from "):  # pathlib, Python < 3.13
        path = str(exc).removeprefix("Symlink loop from ").strip("'")
        return f"{path}: a symbolic link that loops; give another path"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser, commands = _parser()
    args = parser.parse_args(argv)
    stdout = sys.stdout
    sys.stdout = _Guarded(stdout)
    try:
        code = commands[args.verb](args)
        sys.stdout.flush()  # what is buffered fails here, inside the boundary, not at exit
        return code
    except UserError as exc:
        if args.verbose:
            raise
        print(f"loadbench: error: {cli_message(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("loadbench: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (OSError, RuntimeError) as exc:
        if args.verbose or (message := _unusable_name(exc)) is None:
            raise
        print(f"loadbench: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except StdoutFailed as exc:
        _drop_stdout(stdout)
        print(f"loadbench: error: cannot write to standard output ({exc}); what it printed is cut short "
              "(redirect it to a file with room, or give --output where the verb has one)", file=sys.stderr)
        return EXIT_USAGE
    finally:
        sys.stdout = stdout


def entry() -> NoReturn:
    """The ``loadbench`` command: ``main()``, then an exit that skips the interpreter's teardown.

    A run leaves pandas, matplotlib and transformers' configuration code imported, and
    Python's own teardown of them took 1.2 s after the last line was printed (2-core VM).
    By then the command has written, flushed and closed what it wrote; what is still open
    (the zygote's socket, which ends the zygote) the OS closes.
    """
    code = main()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed or broken stream: nothing more can reach it
            pass
    logging.shutdown()
    os._exit(code)


if __name__ == "__main__":
    entry()
