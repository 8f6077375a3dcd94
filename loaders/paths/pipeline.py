"""Path ``pipeline``: ``transformers.pipeline(task, model=dir)``, the one-liner."""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import version
from typing import Any

from loadbench.loaders.checkpoints.inspection import CheckpointInfo
from loadbench.loaders.common import (
    Loaded,
    LoadRequest,
    NotApplicable,
    dtype_keyword,
    ensure_pad_token,
    generation_kwargs,
    import_model_class,
    torch_dtype,
)
from loadbench.loaders.tasks import Task
from loadbench.vocabulary import release

__all__ = ["NAME", "DESCRIPTION", "not_applicable", "preimport", "load"]

NAME = "pipeline"
DESCRIPTION = "transformers.pipeline(task, model=dir)"


def not_applicable(info: CheckpointInfo, task: Task) -> str | None:
    """Whether the transformers installed here has a pipeline for the task (asked where the load runs)."""
    installed = version("transformers")
    if task.pipeline_task is None:
        return f"transformers {installed} has no pipeline for {task.name}"
    if task.pipeline_removed_in is not None and (release(installed) or (0, 0))[0] >= task.pipeline_removed_in:
        return (
            f"transformers {installed} has no pipeline for {task.name} "
            f"(v{task.pipeline_removed_in} removed text2text, summarization and translation pipelines); "
            "the task path measures it through generate()"
        )
    return None


def preimport(info: CheckpointInfo, task: Task) -> None:
    import transformers.pipelines  # noqa: F401  (heavy, and not part of a load)

    import_model_class(info.model_type, task.mapping)


def _generate(pipe: Any, task: Task) -> Callable[[list[str], int, Any], None]:
    # Only the text-generation pipeline echoes the prompt (4.x's text2text one rejects the flag).
    echo = {"return_full_text": False} if task.pipeline_task == "text-generation" else {}

    def run(prompts: list[str], new_tokens: int, streamer: Any) -> None:
        import torch

        with torch.inference_mode():
            pipe(prompts, streamer=streamer, **echo, **generation_kwargs(pipe.tokenizer, new_tokens))

    return run


def _forward(pipe: Any) -> Callable[[list[str]], None]:
    def run(prompts: list[str]) -> None:
        import torch

        with torch.inference_mode():
            pipe(prompts)

    return run


def load(request: LoadRequest, info: CheckpointInfo, task: Task) -> Loaded:
    from transformers import pipeline

    if (reason := not_applicable(info, task)) is not None:
        raise NotApplicable(reason)
    # transformers types pipeline() per literal task name; this one is chosen at run time.
    make_pipeline: Callable[..., Any] = pipeline
    options = request.options
    # pipeline() takes device_map itself and refuses it beside a device; what only the
    # model's from_pretrained knows goes through model_kwargs.
    placement = {"device_map": options.device_map} if options.device_map is not None else {"device": request.device}
    model_only = {k: v for k, v in options.model_kwargs().items() if k != "device_map"}
    pipe = make_pipeline(
        task.pipeline_task,
        model=str(request.checkpoint),
        **placement,
        **{dtype_keyword(): torch_dtype(request.dtype)},
        trust_remote_code=request.trust_remote_code,
        **({"model_kwargs": model_only} if model_only else {}),
    )
    ensure_pad_token(pipe.tokenizer)
    pipe.model.eval()
    if task.generates:
        return Loaded(pipe.tokenizer, pipe.model, pipe.model, generate=_generate(pipe, task))
    return Loaded(pipe.tokenizer, pipe.model, pipe.model, forward=_forward(pipe))
