"""Paths named ``module:function``: your own loading code, measured like the built-in four.

The function is called as ``function(checkpoint=Path, task=str, device=str, dtype=str)``
and returns the loaded transformers model, or ``(model, tokenizer)``. It is timed,
phased, measured and equivalence-checked exactly like ``base`` … ``pipeline``; a
tokenizer it does not return is loaded with ``AutoTokenizer`` inside the timed load,
as every built-in path does. Four such paths ship with loadbench, under short names,
each needing an optional extra (``SHIPPED``).
"""

from __future__ import annotations

import ast
import importlib
import os
import re
import sys
from dataclasses import dataclass
from importlib.machinery import ModuleSpec
from pathlib import Path

from loadbench.loaders.checkpoints.inspection import CheckpointInfo
from loadbench.loaders.common import (
    Loaded,
    LoadRequest,
    NotApplicable,
    ensure_pad_token,
    forward_tokens,
    generate_fixed,
    import_model_class,
)
from loadbench.loaders.tasks import Task

__all__ = ["SHIPPED", "UserPath", "is_user_path", "user_path"]

_TARGET = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")


@dataclass(frozen=True)
class UserPath:
    """A loading path given as ``module:function``."""

    name: str
    target: str  # module:function
    requires: str | None = None  # a module that must be importable for it to apply
    install: str | None = None  # the pip requirement that provides it
    reads_safetensors: bool = False  # it reads the weight files itself, and only safetensors
    devices: tuple[str, ...] | None = None  # the device types it can load onto ("cuda", ...); None: any
    # module:function called as function(checkpoint=Path) before the timer: one-time work the
    # loader needs (a copy of the weights in its own format), written into the checkpoint directory.
    prepare: str | None = None
    threads_knob: str | None = None  # what the loader_threads option sets in this loader; None: it has none

    @property
    def module(self) -> str:
        return self.target.partition(":")[0]

    @property
    def function(self) -> str:
        return self.target.partition(":")[2]

    def unserved_device(self, device: str | None) -> str | None:
        """Why it cannot load onto ``device`` (a library that serves some device types only), or None."""
        kind = device.partition(":")[0] if device is not None else None
        if kind is None or self.devices is None or kind in self.devices:
            return None
        return f"{self.name} loads onto {' or '.join(self.devices)} devices only, not {device!r}"

    def missing_module(self) -> str | None:
        """The module that must be importable for this path, when it is not (found without running it)."""
        needed = self.requires or self.module
        return needed if find_module_spec(needed) is None else None

    def missing_function(self) -> str | None:
        """Where the module's source plainly lacks the function: that file's path; else None.

        Read with ``ast``, never imported: user code runs only in workers. A module whose
        names cannot be told from its source (no source, ``__getattr__``, ``import *``) passes.
        """
        spec = find_module_spec(self.module)
        origin = spec.origin if spec is not None else None
        if origin is None or not origin.endswith(".py"):
            return None
        names = _top_level_names(Path(origin))
        return origin if names is not None and self.function not in names else None

    def not_applicable(self, info: CheckpointInfo, task: Task, device: str | None = None) -> str | None:
        """Why this case cannot run, or None; ``device`` None (not known here) passes its check.

        The device comes first: installing the library would not help there.
        """
        if (reason := self.unserved_device(device)) is not None:
            return reason
        if (needed := self.missing_module()) is not None:
            fix = f"pip install '{self.install}'" if self.install else "install it, or put it on PYTHONPATH"
            return f"{needed} is not installed where the load runs: {fix}"
        if self.reads_safetensors and info.remote_code:
            return "the checkpoint's architecture is its own code; this loader builds the classes transformers lists"
        if self.reads_safetensors and not all(f.endswith(".safetensors") for f in info.weight_files):
            return "this loader reads safetensors weights only; the checkpoint has pickle .bin weights"
        if self.prepare is not None and not os.access(info.path, os.W_OK):
            return (f"this loader first writes a copy of the weights in its own format into the checkpoint "
                    f"directory, and {info.path} is not writable")
        return None

    def preimport(self, info: CheckpointInfo, task: Task) -> None:
        """The function's module, the architecture's classes and the one-time preparation: not part of the load."""
        importlib.import_module(self.module)
        import_model_class(info.model_type, task.mapping)
        if self.prepare is not None:
            module, _, function = self.prepare.partition(":")
            getattr(importlib.import_module(module), function)(checkpoint=info.path)

    def load(self, request: LoadRequest, info: CheckpointInfo, task: Task) -> Loaded:
        if (reason := self.unserved_device(request.device)) is not None:
            raise NotApplicable(reason)  # where the case's device was not asked about before the load
        module, _, function = self.target.partition(":")
        load_model = getattr(importlib.import_module(module), function, None)
        if not callable(load_model):
            raise TypeError(f"path {self.name!r}: {module} has no function {function!r}")
        returned = load_model(checkpoint=request.checkpoint, task=request.task, device=request.device,
                              dtype=request.dtype)
        model, tokenizer = returned if isinstance(returned, tuple) else (returned, None)
        from transformers import AutoTokenizer, PreTrainedModel

        if not isinstance(model, PreTrainedModel):
            raise TypeError(f"path {self.name!r} returned {type(model).__name__}, not a transformers PreTrainedModel")
        if tokenizer is None:
            tokenizer = AutoTokenizer.from_pretrained(request.checkpoint, trust_remote_code=request.trust_remote_code)
        ensure_pad_token(tokenizer)
        model.eval()
        if task.generates:
            return Loaded(tokenizer, model, model.base_model, generate=generate_fixed(model, tokenizer))
        # A bare encoder-decoder (AutoModel, feature extraction) needs its one decoder token; heads build their own.
        bare = task.auto_class is None and info.is_encoder_decoder
        return Loaded(tokenizer, model, model.base_model, forward=forward_tokens(model, tokenizer, decoder_start=bare))


_FAST = "loadbench.loaders.paths.fast_loaders"

# The fast loaders loadbench ships, by the name a suite gives them (fast_loaders.py says how each reads).
SHIPPED: dict[str, UserPath] = {
    "runai-streamer": UserPath("runai-streamer", f"{_FAST}:load_with_runai_streamer",
                               "runai_model_streamer", "loadbench[runai]", reads_safetensors=True,
                               threads_knob="RUNAI_STREAMER_CONCURRENCY"),
    "fastsafetensors": UserPath("fastsafetensors", f"{_FAST}:load_with_fastsafetensors",
                                "fastsafetensors", "loadbench[fastsafetensors]", reads_safetensors=True,
                                threads_knob="SafeTensorsFileLoader(max_threads=...)"),
    # Reads only its own format: the safetensors are converted once, before the timer.
    "tensorizer": UserPath("tensorizer", f"{_FAST}:load_with_tensorizer", "tensorizer", "loadbench[tensorizer]",
                           reads_safetensors=True, prepare=f"{_FAST}:tensorize",
                           threads_knob="TensorDeserializer(num_readers=...)"),
    # Its safe_open refuses any device but CUDA.
    "instanttensor": UserPath("instanttensor", f"{_FAST}:load_with_instanttensor", "instanttensor",
                              "loadbench[instanttensor]", reads_safetensors=True, devices=("cuda",)),
}


def is_user_path(name: str) -> bool:
    return name in SHIPPED or bool(_TARGET.match(name))


def user_path(name: str) -> UserPath:
    """The path a suite names: a shipped fast loader, or ``module:function``."""
    if name in SHIPPED:
        return SHIPPED[name]
    if not _TARGET.match(name):
        raise ValueError(f"{name!r} is not a path name or module:function")
    return UserPath(name, name)


def find_module_spec(name: str) -> ModuleSpec | None:
    """Where ``name`` would be imported from, asking the import system's finders level by level.

    ``importlib.util.find_spec("pkg.mod")`` imports ``pkg`` (runs its ``__init__.py``) to
    learn where ``mod`` is; here each level is found from its parent's search locations
    without executing anything, as the planning process must never run user code.
    """
    spec: ModuleSpec | None = None
    locations: list[str] | None = None
    parts = name.split(".")
    for depth in range(1, len(parts) + 1):
        if depth > 1 and locations is None:
            return None  # the parent is a module, not a package
        full = ".".join(parts[:depth])
        loaded = sys.modules.get(full)
        spec = getattr(loaded, "__spec__", None) if loaded is not None else _find(full, locations)
        if spec is None:
            return None
        search = spec.submodule_search_locations
        locations = list(search) if search is not None else None
    return spec


def _find(fullname: str, locations: list[str] | None) -> ModuleSpec | None:
    for finder in sys.meta_path:
        find_spec = getattr(finder, "find_spec", None)
        if find_spec is None:
            continue
        try:
            spec = find_spec(fullname, locations)
        except (ImportError, ValueError, OSError):
            continue
        if spec is not None:
            return spec
    return None


def _top_level_names(source_file: Path) -> set[str] | None:
    """The names a module's top level binds (defs, classes, assignments, imports), or None when unknowable."""
    try:
        tree = ast.parse(source_file.read_bytes(), str(source_file))
    except (OSError, SyntaxError, ValueError):
        return None  # the worker's import reports it, with Python's own message
    names: set[str] = set()
    statements: list[ast.stmt] = list(tree.body)
    while statements:
        node = statements.pop()
        if isinstance(node, ast.ImportFrom) and any(alias.name == "*" for alias in node.names):
            return None
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((alias.asname or alias.name).partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign | ast.For | ast.With):
            names.update(n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store))
        elif isinstance(node, ast.If | ast.Try | ast.TryStar):
            statements += [*node.body, *node.orelse, *getattr(node, "finalbody", []),
                           *(s for handler in getattr(node, "handlers", []) for s in handler.body)]
        elif isinstance(node, ast.Expr | ast.Pass | ast.Assert | ast.Delete | ast.Raise):
            continue
        else:
            names.update(n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store))
    if "__getattr__" in names or "globals" in {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}:
        return None  # names made at run time
    return names
