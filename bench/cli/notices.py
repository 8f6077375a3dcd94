"""loadbench's own warnings on the command line: one line each, as errors are, never Python's format.

Python shows a warning with the file and source line that raised it, which tells a user of
the command nothing; ``loadbench: warning: MESSAGE`` says what happened to their run.
Warnings of other libraries keep Python's format.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

__all__ = ["one_line_warnings"]


@contextmanager
def one_line_warnings() -> Iterator[None]:
    """Within the block, each of loadbench's own warnings is printed once, as one line on stderr."""
    from loadbench.results import TruncatedRunWarning

    ours = (TruncatedRunWarning,)
    with warnings.catch_warnings():
        shown = warnings.showwarning

        def show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                 file: TextIO | None = None, line: str | None = None) -> Any:
            if not issubclass(category, ours):
                return shown(message, category, filename, lineno, file, line)
            print(f"loadbench: warning: {' '.join(str(message).split())}", file=sys.stderr)
            return None

        warnings.showwarning = show
        for category in ours:
            warnings.simplefilter("always", category)
        yield
