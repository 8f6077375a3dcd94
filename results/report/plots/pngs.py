"""A report's figures drawn as PNG on two cores: every other one in a forked child.

The HTML report's figures are most of the seconds after a run's last sample (about 2 of
the 3.5 s of the default suite on a 2-core machine), and matplotlib holds the GIL while it
draws, so threads would not help. A fork starts with the figures' data already in its
memory: only the PNG bytes come back. Where a fork cannot help or does not work (one
usable core, no ``os.fork``, a fork refused, a child that fails), the figures are drawn
here, one after another; the page is the same either way.
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import time
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from loadbench.results.report.plots.panels import png_bytes

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["GRACE_S", "Builder", "draw_pngs"]

Builder = Callable[[], "Figure | None"]  # None: nothing to draw (no such metric in the run)
# How long past the child's expected time (5x this process's share) it may take before it is
# taken for stuck, killed, and its figures drawn here.
GRACE_S = 10.0


def draw_pngs(builders: Sequence[Builder]) -> list[bytes | None]:
    """Each builder's figure as PNG bytes (None where it built none), in order."""
    if len(builders) < 2 or not _fork_helps():
        return [_png(build) for build in builders]
    import matplotlib.figure  # noqa: F401  (imported once, before the fork, not in both processes)

    mine, theirs = builders[0::2], builders[1::2]
    try:
        drawn = _forked(theirs, lambda: [_png(build) for build in mine])
    except OSError:  # no fork (a process limit; memory under strict overcommit): drawn here instead
        return [_png(build) for build in builders]
    theirs_drawn = drawn[1] if drawn[1] is not None else [_png(build) for build in theirs]
    return [(drawn[0] if index % 2 == 0 else theirs_drawn)[index // 2] for index in range(len(builders))]


def _png(build: Builder) -> bytes | None:
    figure = build()
    return None if figure is None else png_bytes(figure)


def _fork_helps() -> bool:
    if not hasattr(os, "fork"):
        return False
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return cores > 1


def _forked(theirs: Sequence[Builder], draw_mine: Callable[[], list[bytes | None]]
            ) -> tuple[list[bytes | None], list[bytes | None] | None]:
    """Draws ``theirs`` in a child while ``draw_mine`` runs here; the child's PNGs, or None if it failed."""
    read_end, write_end = os.pipe()
    try:
        with warnings.catch_warnings():
            # Python 3.12+ warns before forking a process with threads. Here they are numpy's and
            # pyarrow's idle pools, which the child (drawing with matplotlib only) never uses.
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
    except OSError:
        os.close(read_end)
        os.close(write_end)
        raise
    if pid == 0:  # the child: draw, send, and leave without running any of the parent's exit code
        code = 1
        try:
            os.close(read_end)
            payload = pickle.dumps([_png(build) for build in theirs])
            with os.fdopen(write_end, "wb") as pipe:
                pipe.write(payload)
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    started = time.monotonic()
    data: bytes | None = None
    try:
        mine = draw_mine()
        # The child draws as much as this process did; one that takes far longer is stuck.
        data = _read_until_eof(read_end, deadline=time.monotonic() + 5 * (time.monotonic() - started) + GRACE_S)
    finally:
        os.close(read_end)
        _reap(pid, kill=data is None)  # stuck, or interrupted here (Ctrl-C): the child goes
    # The child writes only once every figure is drawn, so a whole pickle is a whole answer.
    try:
        found = pickle.loads(data) if data else None  # our own child's bytes
    except (pickle.UnpicklingError, EOFError, ValueError):
        found = None
    return mine, found if isinstance(found, list) and len(found) == len(theirs) else None


def _reap(pid: int, kill: bool) -> None:
    """Wait for the child, killed first if asked; a process that ignores SIGCHLD has it reaped already."""
    try:
        if kill:
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def _read_until_eof(fd: int, deadline: float) -> bytes | None:
    """All the pipe holds once its writer has closed it; None if that is not before ``deadline``."""
    chunks: list[bytes] = []
    while (left := deadline - time.monotonic()) > 0:
        if select.select([fd], [], [], left)[0]:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    return None
