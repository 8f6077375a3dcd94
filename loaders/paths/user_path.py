"""Paths named ``module:function``: your own loading code, measured like the built-in four.

The function is called as ``function(checkpoint=Path, task=str, device=str, dtype=str)``
and returns the loaded transformers model, or ``(model, tokenizer)``. It is timed,
phased, measured and equivalence-checked exactly like ``base`` … ``pipeline``; a
tokenizer it does not return is loaded with ``AutoTokenizer`` inside the timed load,
as every built-in path does. Two such paths ship with loadbench, under short names,
each needing an optional extra (``SHIPPED``).
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from dataclasses import dataclass

from loadbench.loaders.checkpoints.inspection import CheckpointInfo
from loadbench.loaders.common import (
    Loaded,
    LoadRequest,
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

    @property
    def module(self) -> str:
        return self.target.partition(":")[0]

    def missing_module(self) -> str | None:
        """The module that must be importable for this path, when it is not."""
        needed = self.requires or self.module
        return needed if _missing(needed) else None

    def not_applicable(self, info: CheckpointInfo, task: Task) -> str | None:
        if (needed := self.missing_module()) is not None:
            fix = f"pip install '{self.install}'" if self.install else "install it, or put it on PYTHONPATH"
            return f"{needed} is not installed where the load runs: {fix}"
        if self.reads_safetensors and info.remote_code:
            return "the checkpoint's architecture is its own code; this loader builds the classes transformers lists"
        if self.reads_safetensors and not all(f.endswith(".safetensors") for f in info.weight_files):
            return "this loader reads safetensors weights only; the checkpoint has pickle .bin weights"
        return None

    def preimport(self, info: CheckpointInfo, task: Task) -> None:
        """The function's module and the architecture's classes: imports, not part of the load."""
        importlib.import_module(self.module)
        import_model_class(info.model_type, task.mapping)

    def load(self, request: LoadRequest, info: CheckpointInfo, task: Task) -> Loaded:
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


# The fast loaders loadbench ships, by the name a suite gives them.
SHIPPED: dict[str, UserPath] = {
    "runai-streamer": UserPath("runai-streamer", "loadbench.loaders.paths.fast_loaders:load_with_runai_streamer",
                               "runai_model_streamer", "loadbench[runai]", reads_safetensors=True),
    "fastsafetensors": UserPath("fastsafetensors", "loadbench.loaders.paths.fast_loaders:load_with_fastsafetensors",
                                "fastsafetensors", "loadbench[fastsafetensors]", reads_safetensors=True),
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


def _missing(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is None
    except (ImportError, ValueError):  # a parent package that is not there, or not a package
        return True
