"""The shipped fast loaders: each builds exactly the model the task path builds, from tensors it read itself."""

from __future__ import annotations

import pytest
import torch

from loadbench.loaders import TASKS, LoadRequest, inspect_checkpoint, path_for
from loadbench.loaders.common import set_phase_timer, timed_phase
from loadbench.loaders.paths.fast_loaders import load_with_fastsafetensors, load_with_runai_streamer

LOADERS = [pytest.param(load_with_runai_streamer, id="runai-streamer"),
           pytest.param(load_with_fastsafetensors, id="fastsafetensors")]


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k].to(sb[k].dtype), sb[k]) for k in sa)


@pytest.mark.parametrize("load", LOADERS)
@pytest.mark.parametrize(("checkpoint", "task"), [
    ("tiny-llama", "text-generation"), ("tiny-t5", "text2text-generation"), ("tiny-bert", "feature-extraction"),
    ("tiny-llama-sharded", "text-generation")])
def test_fast_loader_builds_the_task_paths_model(builtin, load, checkpoint: str, task: str) -> None:
    info = inspect_checkpoint(builtin(checkpoint))
    reference = path_for("task" if TASKS[task].auto_class else "base").load(LoadRequest(info.path, task), info,
                                                                            TASKS[task]).model
    model = load(checkpoint=info.path, task=task, device="cpu", dtype="auto")
    assert type(model) is type(reference)
    assert not model.training
    assert _same_weights(reference, model)


@pytest.mark.parametrize("load", LOADERS)
def test_fast_loader_honours_the_dtype_on_real_weights(minilm_dir, load) -> None:
    info = inspect_checkpoint(minilm_dir)
    reference = path_for("base").load(LoadRequest(info.path, "feature-extraction"), info,
                                      TASKS["feature-extraction"]).model
    model = load(checkpoint=info.path, task="feature-extraction", device="cpu", dtype="bfloat16")
    assert next(model.parameters()).dtype == torch.bfloat16
    assert _same_weights(reference, model)


def test_the_read_counts_as_a_phase_only_where_a_timer_is_set(builtin) -> None:
    seen: list[str] = []

    class Recording:
        def __init__(self, name: str) -> None:
            seen.append(name)

        def __enter__(self) -> None:
            return None

        def __exit__(self, *exc: object) -> None:
            return None

    with timed_phase("weights_s"):  # no timer: nothing happens
        pass
    set_phase_timer(Recording)
    try:
        load_with_runai_streamer(checkpoint=builtin("tiny-llama"), task="text-generation", device="cpu", dtype="auto")
    finally:
        from contextlib import nullcontext

        set_phase_timer(lambda name: nullcontext())
    assert seen == ["weights_s"]
