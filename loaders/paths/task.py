"""Path ``task``: ``AutoModelFor<Task>``, the class transformers picks for the task."""

from __future__ import annotations

from loadbench.loaders.checkpoints.inspection import CheckpointInfo
from loadbench.loaders.common import (
    Loaded,
    LoadRequest,
    ensure_pad_token,
    forward_tokens,
    generate_fixed,
    import_model_class,
    place,
)
from loadbench.loaders.tasks import Task

__all__ = ["NAME", "DESCRIPTION", "not_applicable", "preimport", "load"]

NAME = "task"
DESCRIPTION = "AutoModelFor<Task>.from_pretrained + AutoTokenizer"


def not_applicable(info: CheckpointInfo, task: Task) -> str | None:
    if task.auto_class is None:
        return (
            f"{task.name} has no AutoModelFor<Task> class: its model is AutoModel, "
            "which the base path measures"
        )
    return None


def preimport(info: CheckpointInfo, task: Task) -> None:
    import_model_class(info.model_type, task.mapping)


def load(request: LoadRequest, info: CheckpointInfo, task: Task) -> Loaded:
    import transformers

    auto_class = getattr(transformers, task.auto_class or "AutoModel")
    tokenizer = ensure_pad_token(
        transformers.AutoTokenizer.from_pretrained(
            request.checkpoint, trust_remote_code=request.trust_remote_code
        )
    )
    model = auto_class.from_pretrained(request.checkpoint, **request.model_kwargs())
    place(model, request)
    if task.generates:
        return Loaded(tokenizer, model, model, generate=generate_fixed(model, tokenizer))
    return Loaded(tokenizer, model, model, forward=forward_tokens(model, tokenizer))
