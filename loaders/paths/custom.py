"""Path ``custom``: a user-style ``PreTrainedModel`` subclass, backbone + ``nn.Linear`` head.

What bites here: the backbone attribute and ``base_model_prefix`` must both match the
checkpoint's key prefix (``model.``, ``bert.``, ``transformer.``), or ``from_pretrained``
leaves the backbone randomly initialised and only logs it. The load therefore fails
unless the only missing keys are the new head's.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from loadbench.loaders.checkpoints.inspection import CheckpointInfo
from loadbench.loaders.common import (
    Loaded,
    LoadRequest,
    decoder_start_ids,
    ensure_pad_token,
    forward_tokens,
    import_model_class,
    place,
)
from loadbench.loaders.tasks import Task

__all__ = [
    "NAME", "DESCRIPTION", "HEAD", "BackboneNotLoaded",
    "not_applicable", "preimport", "custom_class", "load",
]

NAME = "custom"
DESCRIPTION = "PreTrainedModel subclass: AutoModel backbone + nn.Linear head, via from_pretrained"
HEAD = "head"
NUM_OUTPUTS = 2


class BackboneNotLoaded(RuntimeError):
    """The checkpoint's weights did not all reach the custom model's backbone."""


def not_applicable(info: CheckpointInfo, task: Task) -> str | None:
    """A backbone + linear head runs forward passes for any task (it never generates),
    over a backbone class that transformers itself provides."""
    if info.remote_code:
        return (
            f"model_type {info.model_type!r} is defined by the checkpoint's own code, not in transformers' "
            "AutoModel table that the custom head model takes its backbone class from"
        )
    return None


def preimport(info: CheckpointInfo, task: Task) -> None:
    import_model_class(info.model_type)


@cache
def custom_class(config_class: type, attr: str | None = None) -> type:
    """The subclass a user would write for this architecture.

    ``attr`` names the backbone attribute differently from ``base_model_prefix``: the
    classic mistake. Only tests that prove the mistake is caught should pass it.
    """
    import torch
    from transformers import PreTrainedModel
    from transformers.models.auto.modeling_auto import MODEL_MAPPING

    backbone_class: Any = MODEL_MAPPING[config_class]
    prefix: str = backbone_class.base_model_prefix
    backbone_attr = attr or prefix

    class CustomHeadModel(PreTrainedModel):
        # Without these flags PreTrainedModel falls back to eager attention, which is
        # slower and not what the backbone alone would run.
        _supports_sdpa = backbone_class._supports_sdpa
        _supports_flash_attn = getattr(backbone_class, "_supports_flash_attn", False)
        _supports_flex_attn = getattr(backbone_class, "_supports_flex_attn", False)

        def __init__(self, config: Any) -> None:
            super().__init__(config)
            from transformers import AutoModel

            setattr(self, backbone_attr, AutoModel.from_config(config))
            setattr(self, HEAD, torch.nn.Linear(config.hidden_size, NUM_OUTPUTS))
            self.post_init()

        @property
        def backbone(self) -> Any:
            return getattr(self, backbone_attr)

        def forward(self, input_ids: Any, attention_mask: Any = None, **_: Any) -> Any:
            kwargs = {}
            if self.config.is_encoder_decoder:
                kwargs["decoder_input_ids"] = decoder_start_ids(self).expand(input_ids.shape[0], 1)
            hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
            return getattr(self, HEAD)(hidden.last_hidden_state[:, -1])

    CustomHeadModel.config_class = config_class
    CustomHeadModel.base_model_prefix = prefix
    return CustomHeadModel


def check_loading_info(model: Any, info: dict[str, Any]) -> None:
    """Fail unless every backbone weight came from the checkpoint."""
    prefix = model.base_model_prefix
    attr = next(name for name, module in model.named_children() if module is model.backbone)
    roots = {name for name, _ in model.backbone.named_children()}
    roots |= {name for name, _ in model.backbone.named_parameters(recurse=False)}

    def backbone_key(key: str) -> bool:
        return key.startswith((prefix + ".", attr + ".")) or key.split(".")[0] in roots

    missing = sorted(k for k in info.get("missing_keys", ()) if not k.startswith(HEAD + "."))
    unexpected = sorted(k for k in info.get("unexpected_keys", ()) if backbone_key(k))
    mismatched = sorted(str(k) for k in info.get("mismatched_keys", ()))
    for label, keys in (("missing from the checkpoint", missing),
                        ("in the checkpoint but unused", unexpected),
                        ("of mismatched shape", mismatched)):
        if keys:
            raise BackboneNotLoaded(
                f"backbone stayed partly random: {len(keys)} backbone keys {label} "
                f"(e.g. {keys[0]!r}); the backbone attribute ({attr!r}) and base_model_prefix "
                f"({prefix!r}) must both match the checkpoint's key prefix"
            )


def load(request: LoadRequest, info: CheckpointInfo, task: Task, attr: str | None = None) -> Loaded:
    from transformers import AutoConfig, AutoTokenizer

    tokenizer = ensure_pad_token(
        AutoTokenizer.from_pretrained(request.checkpoint, trust_remote_code=request.trust_remote_code)
    )
    config = AutoConfig.from_pretrained(request.checkpoint, trust_remote_code=request.trust_remote_code)
    cls: Any = custom_class(config.__class__, attr)
    model, loading_info = cls.from_pretrained(
        request.checkpoint, config=config, output_loading_info=True, **request.model_kwargs()
    )
    check_loading_info(model, loading_info)
    place(model, request)
    return Loaded(tokenizer, model, model.backbone, forward=forward_tokens(model, tokenizer))
