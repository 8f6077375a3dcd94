"""Each loading path on each built-in architecture: loads, runs its workload, agrees with base."""

from __future__ import annotations

import pytest

from loadbench.bench.probes.clocks import StepClock
from loadbench.loaders import PATHS, TASKS, LoadRequest, inspect_checkpoint
from loadbench.loaders.checkpoints.builtin import BUILTIN, LADDER
from loadbench.loaders.common import attn_implementation, resident_dtype
from loadbench.loaders.equivalence import compare_with_base

PROMPT = "the river runs past the old mill"


# Every task these serve; the others are measured on their primary task. (transformers'
# own pipelines cannot run T5 feature extraction or classification: a run records that
# as a failed case, see tests/bench/test_runner.py.)
ALL_TASKS = {"tiny-llama", "tiny-bert", "tiny-distilbert", "tiny-qwen2"}


def _cases():
    for name in BUILTIN:
        if name in LADDER:  # the size ladder is for measuring, not for checking every path's plumbing again
            continue
        for path in PATHS:
            yield pytest.param(name, path, id=f"{name}-{path}")


@pytest.mark.parametrize(("checkpoint", "path_name"), list(_cases()))
def test_path_loads_runs_and_matches_base(builtin, checkpoint: str, path_name: str) -> None:
    info = inspect_checkpoint(builtin(checkpoint))
    path = PATHS[path_name]
    for task_name in info.tasks if checkpoint in ALL_TASKS else info.tasks[:1]:
        task = TASKS[task_name]
        reason = path.not_applicable(info, task)
        if reason is not None:
            assert (path_name, task_name) in {("task", "feature-extraction"), ("pipeline", "text2text-generation")}
            assert len(reason) > 20
            continue
        path.preimport(info, task)
        request = LoadRequest(info.path, task_name)
        loaded = path.load(request, info, task)
        assert resident_dtype(loaded.model) == "float32"
        assert attn_implementation(loaded.model) in {"sdpa", "eager"}
        if task.generates and path_name in {"task", "pipeline"}:
            assert loaded.forward is None
            clock = StepClock()
            clock.start()
            loaded.generate([PROMPT], 5, clock)
            assert clock.new_tokens == 5
            assert clock.decode_tokens_per_s(1) > 0
        else:
            assert loaded.generate is None
            loaded.forward([PROMPT, PROMPT + " again"])
        if path_name != "base":
            eq = compare_with_base(request, loaded.backbone, loaded.tokenizer, [PROMPT])
            assert eq.ok, eq
            assert eq.max_abs_diff < 1e-5


def test_custom_path_uses_same_attention_as_base(builtin) -> None:
    info = inspect_checkpoint(builtin("tiny-llama"))
    task = TASKS["text-generation"]
    request = LoadRequest(info.path, task.name)
    base = PATHS["base"].load(request, info, task)
    custom = PATHS["custom"].load(request, info, task)
    assert attn_implementation(custom.model) == attn_implementation(base.model) == "sdpa"


def test_every_path_on_real_pretrained_weights(minilm_dir) -> None:
    info = inspect_checkpoint(minilm_dir)
    assert info.tasks == ("feature-extraction", "text-classification")
    task = TASKS["text-classification"]
    request = LoadRequest(info.path, task.name)
    for name in ("task", "custom", "pipeline"):
        loaded = PATHS[name].load(request, info, task)
        eq = compare_with_base(request, loaded.backbone, loaded.tokenizer, [PROMPT])
        # Real weights: hidden states are far from zero, and every path must reproduce them.
        assert eq.scale > 1.0
        assert eq.max_abs_diff < 1e-5, name
