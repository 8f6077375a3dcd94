"""Path ``base``: ``AutoModel`` + ``AutoTokenizer``, the backbone without a head.

It is the reference the other paths' hidden states are compared with.
"""

from __future__ import annotations

from loadbench.loaders.checkpoints.inspection import CheckpointInfo
from loadbench.loaders.common import Loaded, LoadRequest, ensure_pad_token, forward_tokens, import_model_class, place
from loadbench.loaders.tasks import Task

__all__ = ["NAME", "DESCRIPTION", "not_applicable", "preimport", "load"]

NAME = "base"
DESCRIPTION = "AutoModel.from_pretrained + AutoTokenizer (backbone, no head)"


def not_applicable(info: CheckpointInfo, task: Task) -> str | None:
    """Every architecture has a backbone, so ``base`` serves every task."""
    return None


def preimport(info: CheckpointInfo, task: Task) -> None:
    """Import the architecture's modeling code, which transformers imports lazily."""
    import_model_class(info.model_type)


def load(request: LoadRequest, info: CheckpointInfo, task: Task) -> Loaded:
    from transformers import AutoModel, AutoTokenizer

    tokenizer = ensure_pad_token(
        AutoTokenizer.from_pretrained(request.checkpoint, trust_remote_code=request.trust_remote_code)
    )
    model = AutoModel.from_pretrained(request.checkpoint, **request.model_kwargs())
    place(model, request)
    return Loaded(
        tokenizer=tokenizer,
        model=model,
        backbone=model,
        forward=forward_tokens(model, tokenizer, decoder_start=info.is_encoder_decoder),
    )
