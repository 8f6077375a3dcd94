"""What a checkpoint directory held when a run started, so --resume never pools two checkpoints.

A run keeps its checkpoints' absolute paths (a relative path would be read against
wherever --resume is started), and a digest of what each directory holds: config.json's
bytes and the name and size of every other file. A resume that finds a different digest
refuses: the records would pool two checkpoints under one label.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from loadbench.bench.suite import Suite
from loadbench.errors import UserError

__all__ = ["CheckpointChanged", "absolute_paths", "check_unchanged", "checkpoint_digest", "digests"]


class CheckpointChanged(UserError):
    """A checkpoint of the run is not what it was when the run started."""


def absolute_paths(suite: Suite) -> Suite:
    """The suite with every checkpoint and environment path made absolute, as the run will record it.

    An environment's path is made absolute without resolving links: a venv's bin/python is
    a link to the interpreter it was made from, and resolving it would leave the venv.
    """
    entries = [entry if entry.path is None
               else entry.model_copy(update={"path": str(Path(entry.path).expanduser().resolve())})
               for entry in suite.checkpoints]
    environments = [env if env.python is None
                    else env.model_copy(update={"python": str(Path(env.python).expanduser().absolute())})
                    for env in suite.environments]
    return suite.model_copy(update={"checkpoints": entries, "environments": environments})


def checkpoint_digest(directory: str | Path) -> str:
    """config.json's bytes and every other file's name and size: cheap, and enough to tell re-saves apart."""
    root = Path(directory)
    digest = hashlib.sha256()
    for path in sorted(p for p in root.iterdir() if p.is_file()):
        digest.update(path.name.encode("utf-8") + b"\0")
        if path.name == "config.json":
            digest.update(path.read_bytes())
        else:
            digest.update(str(path.stat().st_size).encode("ascii"))
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def digests(directories: Iterable[str]) -> dict[str, str]:
    """Directory → digest, for run.json's ``checkpoints``."""
    return {d: checkpoint_digest(d) for d in dict.fromkeys(directories)}


def check_unchanged(run_dir: Path, recorded: object, directories: Iterable[str]) -> None:
    """Refuse a resume whose checkpoints differ from the recorded ones (runs before this check have none)."""
    if not isinstance(recorded, dict):
        return
    now = digests(directories)
    for directory, digest in now.items():
        before = recorded.get(directory)
        if before is None:
            raise CheckpointChanged(f"{run_dir}: the run did not measure {directory} when it started; "
                                    "resume it where its checkpoints are, or start a new run")
        if before != digest:
            raise CheckpointChanged(f"{directory}: changed since {run_dir} started (config.json or the weight "
                                    "files differ); resuming would pool two checkpoints under one label: "
                                    "start a new run")
