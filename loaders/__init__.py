"""The four loading paths, one registry, and what they need to know of a checkpoint.

Each path exposes the same functions: ``not_applicable(info, task)`` (a reason, or
None), ``preimport(info, task)`` (imports kept out of the timed load) and
``load(request, info, task) -> Loaded``. The four built-in ones are modules; a path
named ``module:function`` (or a shipped fast loader) is a :class:`UserPath`.
"""

from __future__ import annotations

from dataclasses import replace
from types import ModuleType
from typing import Any

from loadbench.loaders.checkpoints.inspection import CheckpointError, CheckpointInfo, inspect_checkpoint
from loadbench.loaders.common import Loaded, LoadRequest
from loadbench.loaders.options import LoadOptions
from loadbench.loaders.paths import base, custom, pipeline, task
from loadbench.loaders.paths.user_path import SHIPPED, UserPath, is_user_path, user_path
from loadbench.loaders.tasks import TASKS, Task, UnsupportedTask
from loadbench.vocabulary import PATH_NAMES

__all__ = [
    "PATHS",
    "SHIPPED",
    "UserPath",
    "is_user_path",
    "path_for",
    "path_not_applicable",
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


def path_for(name: str) -> Any:
    """The path a case names: one of the four, a shipped fast loader, or ``module:function``."""
    return PATHS[name] if name in PATHS else user_path(name)


def path_not_applicable(name: str, info: CheckpointInfo, task: Task, options: LoadOptions,
                        device: str | None = None) -> str | None:
    """Why this case cannot run, or None: the one answer the planner and the worker share.

    ``device``: the case's; a loader that serves some device types only (InstantTensor:
    CUDA) is not applicable on the others. None leaves that unjudged.
    """
    path = path_for(name)
    reason = path.not_applicable(info, task, device) if isinstance(path, UserPath) else path.not_applicable(info, task)
    if reason is not None:
        return reason
    if isinstance(path, UserPath):
        if options.loader_threads is not None and path.threads_knob is None:
            return f"loader_threads: {name} has no reading threads of its own to set"
        if replace(options, loader_threads=None) != LoadOptions():
            return (f"loading options ({options.text}) are from_pretrained arguments; a module:function path "
                    "takes none (a shipped fast loader takes loader_threads)")
        return None
    if options.loader_threads is not None:
        return ("loader_threads sets a fast loader's own reading threads; the from_pretrained paths read with "
                "transformers' (loading_workers)")
    return options.not_applicable()
