"""The tasks a checkpoint can be benchmarked on, detected from its config alone.

Detection reads transformers' own auto-class tables, so a new architecture that
transformers supports is supported here without a list of ours to keep in sync.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from loadbench.errors import UserError
from loadbench.vocabulary import TASK_NAMES

__all__ = ["Task", "TASKS", "supported_tasks", "primary_task", "UnsupportedTask"]


class UnsupportedTask(UserError):
    """A task was asked for that the checkpoint cannot do."""


@dataclass(frozen=True)
class Task:
    """What a task runs and which auto classes serve it.

    ``generates`` decides the workload: generation tasks decode a fixed number of
    tokens; the others run forward passes over the prompt.
    """

    name: str
    generates: bool
    auto_class: str | None  # the AutoModelFor<Task> class, None where AutoModel is it
    mapping: str  # the name of transformers' auto table that lists its model types
    pipeline_task: str | None  # pipeline()'s name for it, None where no transformers has one
    description: str
    pipeline_removed_in: int | None = None  # the transformers major version that dropped that pipeline


TASKS: dict[str, Task] = {
    task.name: task
    for task in (
        Task(
            "text-generation", True, "AutoModelForCausalLM",
            "MODEL_FOR_CAUSAL_LM_MAPPING_NAMES", "text-generation",
            "causal LM generation",
        ),
        Task(
            "text2text-generation", True, "AutoModelForSeq2SeqLM",
            "MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES", "text2text-generation",
            "seq2seq generation", pipeline_removed_in=5,
        ),
        Task(
            "text-classification", False, "AutoModelForSequenceClassification",
            "MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES", "text-classification",
            "sequence classification",
        ),
        Task(
            "feature-extraction", False, None,
            "MODEL_MAPPING_NAMES", "feature-extraction",
            "hidden states of the backbone",
        ),
    )
}
if tuple(TASKS) != TASK_NAMES:
    raise ImportError("loaders.tasks.TASKS must implement exactly loadbench.vocabulary.TASK_NAMES, in order")


def _listed(mapping: str, model_type: str) -> bool:
    from transformers.models.auto import modeling_auto

    return model_type in getattr(modeling_auto, mapping)


def supported_tasks(config: Any) -> tuple[str, ...]:
    """Tasks this config can serve, the checkpoint's own (primary) task first.

    Encoders such as BERT are listed in the causal-LM table too (``BertLMHeadModel``),
    but nobody generates with them: masked-LM model types are not offered
    text-generation.
    """
    model_type = config.model_type
    encoder_decoder = bool(getattr(config, "is_encoder_decoder", False))
    found = []
    for task in TASKS.values():
        if not _listed(task.mapping, model_type):
            continue
        if task.name == "text-generation" and (
            encoder_decoder or _listed("MODEL_FOR_MASKED_LM_MAPPING_NAMES", model_type)
        ):
            continue
        found.append(task.name)
    first = primary_task(config)
    if first in found:
        found.remove(first)
        found.insert(0, first)
    return tuple(found)


def primary_task(config: Any) -> str:
    """The task the checkpoint was saved for, judged by its architecture's class name."""
    architectures = getattr(config, "architectures", None) or []
    name = architectures[0] if architectures else ""
    if name.endswith("ForConditionalGeneration") and getattr(config, "is_encoder_decoder", False):
        return "text2text-generation"
    if name.endswith(("ForCausalLM", "LMHeadModel")):
        return "text-generation"
    if name.endswith("ForSequenceClassification"):
        return "text-classification"
    return "feature-extraction"
