"""The four loading paths, one registry, and what they need to know of a checkpoint.

Each path module exposes the same functions: ``not_applicable(info, task)`` (a reason,
or None), ``preimport(info, task)`` (imports kept out of the timed load) and
``load(request, info, task) -> Loaded``.
"""

from __future__ import annotations

from types import ModuleType

from loadbench.vocabulary import PATH_NAMES

from . import base, custom, pipeline, task
from .checkpoint import CheckpointError, CheckpointInfo, inspect_checkpoint
from .common import Loaded, LoadRequest
from .tasks import TASKS, Task, UnsupportedTask

__all__ = [
    "PATHS",
    "CheckpointError",
    "CheckpointInfo",
    "inspect_checkpoint",
    "Loaded",
    "LoadRequest",
    "TASKS",
    "Task",
    "UnsupportedTask",
]

# Keyed by loadbench.vocabulary.PATH_NAMES, the names every layer uses.
PATHS: dict[str, ModuleType] = dict(zip(PATH_NAMES, (base, task, custom, pipeline), strict=True))
