"""Writing a file so that a crash or a signal leaves the old content or the new, never half.

run.json is replaced whole (a temporary file, fsync, rename, fsync of the directory), and
the short writes that must not be cut by Ctrl-C, SIGTERM or SIGHUP hold those signals back.
"""

from __future__ import annotations

import json
import os
import signal
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["signals_held", "write_json_atomic", "write_text_atomic"]


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Replace path with data so that readers see the old file or the new one, never half."""
    write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n")


def write_text_atomic(path: Path, text: str) -> None:
    """Replace path with text so that readers see the old file or the new one, never half."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp makes the file private (0600); the run's other files are made as open() makes
        # them, so another CI step that reads the samples must be able to read run.json too.
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _umask() -> int:
    """This process's umask, read without changing it where /proc allows (other threads may create files)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; not possible on every platform.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


_HELD = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextmanager
def signals_held() -> Iterator[None]:
    """Hold Ctrl-C, SIGTERM and SIGHUP back for a short write; they arrive right after it.

    In the main thread, their Python handlers are swapped for one that only notes them,
    and what was noted is raised again once the write is done. A signal mask is not
    enough there: it holds signals back from the calling thread only, a signal sent to the
    process is delivered to any thread that does not block it (a library's thread pool),
    and Python then runs its handler in the main thread, mid-write: a run lost a sample
    it had written that way, cut back off by the failed write's cleanup. Elsewhere, and for
    a handler Python did not install, the mask is what there is.
    """
    if threading.current_thread() is not threading.main_thread():
        with _masked(_HELD):
            yield
        return
    noted: list[int] = []

    def note(signum: int, frame: Any) -> None:
        noted.append(signum)

    swapped = {sig: signal.signal(sig, note) for sig in _HELD if signal.getsignal(sig) is not None}
    try:
        with _masked(tuple(sig for sig in _HELD if sig not in swapped)):
            yield
    finally:
        for sig, handler in swapped.items():
            signal.signal(sig, handler)
        for signum in dict.fromkeys(noted):
            signal.raise_signal(signum)


@contextmanager
def _masked(signals: tuple[int, ...]) -> Iterator[None]:
    """Block ``signals`` for this thread while the block runs."""
    if not signals:
        yield
        return
    try:
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    except (AttributeError, OSError, ValueError):  # no POSIX signal masks here
        yield
        return
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
