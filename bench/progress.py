"""The one live progress display of a run (stderr), so stdout stays the report."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from loadbench.bench.runner import Progress

__all__ = ["progress_display"]


@contextmanager
def progress_display(enabled: bool = True) -> Iterator[Progress | None]:
    """A rich progress bar with the current case, samples done/total and ETA.

    Only on a terminal: in CI logs and pipes a redrawn bar is noise.
    """
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.progress import Progress as RichProgress

    with RichProgress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
        console=Console(stderr=True), transient=False,
    ) as bar:
        task_id = bar.add_task("planning", total=None)

        def update(label: str, done: int, total: int) -> None:
            bar.update(task_id, description=label, completed=done, total=total)

        yield update
