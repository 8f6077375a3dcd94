"""The custom path must hold the checkpoint's weights, or fail loudly."""

from __future__ import annotations

import pytest
import torch

from loadbench.loaders import TASKS, LoadRequest, inspect_checkpoint
from loadbench.loaders.equivalence import compare_with_base
from loadbench.loaders.paths import custom


@pytest.mark.parametrize("checkpoint", ["tiny-llama", "tiny-gpt2", "tiny-t5", "tiny-distilbert", "tiny-bart"])
def test_backbone_attr_not_matching_prefix_fails(builtin, checkpoint: str) -> None:
    """The classic mistake: ``self.backbone = AutoModel...`` with the class's default prefix."""
    info = inspect_checkpoint(builtin(checkpoint))
    task = TASKS[info.primary_task]
    with pytest.raises(custom.BackboneNotLoaded, match="backbone stayed partly random"):
        custom.load(LoadRequest(info.path, task.name), info, task, attr="encoder_backbone")


def test_right_prefix_backbone_holds_checkpoint_tensors(builtin) -> None:
    from safetensors.torch import load_file

    info = inspect_checkpoint(builtin("tiny-llama"))
    task = TASKS["text-generation"]
    loaded = custom.load(LoadRequest(info.path, task.name), info, task)
    saved = load_file(str(info.path / "model.safetensors"))
    own = loaded.model.state_dict()
    backbone_keys = [k for k in saved if k.startswith("model.")]
    assert backbone_keys
    for key in backbone_keys:
        assert torch.equal(own[key], saved[key]), key


def test_random_backbone_is_caught_by_equivalence_too(builtin) -> None:
    info = inspect_checkpoint(builtin("tiny-bert"))
    task = TASKS["text-classification"]
    request = LoadRequest(info.path, task.name)
    loaded = custom.load(request, info, task)
    with torch.no_grad():
        for param in loaded.backbone.parameters():
            param.normal_()
    eq = compare_with_base(request, loaded.backbone, loaded.tokenizer, ["the river"])
    assert not eq.ok


def test_sharded_checkpoint_loads_into_custom(builtin) -> None:
    info = inspect_checkpoint(builtin("tiny-llama-sharded"))
    assert info.sharded and len(info.weight_files) >= 2
    task = TASKS["text-generation"]
    loaded = custom.load(LoadRequest(info.path, task.name), info, task)
    assert compare_with_base(LoadRequest(info.path, task.name), loaded.backbone, loaded.tokenizer, ["a"]).ok
