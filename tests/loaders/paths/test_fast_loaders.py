"""The shipped fast loaders: each builds exactly the model the task path builds, from tensors it read itself."""

from __future__ import annotations

import importlib
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

from loadbench.loaders import SHIPPED, TASKS, LoadRequest, inspect_checkpoint, path_for
from loadbench.loaders.common import set_phase_timer, timed_phase
from loadbench.loaders.paths.fast_loaders import (
    TENSORIZED_DIR,
    build_from_tensors,
    load_with_instanttensor,
    load_with_runai_streamer,
    load_with_tensorizer,
    tensorize,
    tensorized_file,
)

# instanttensor loads onto CUDA devices only: it is checked where there is one (the last test).
CPU_LOADERS = ["runai-streamer", "fastsafetensors", "tensorizer"]


def _loader(name: str) -> Any:
    module, _, function = SHIPPED[name].target.partition(":")
    return getattr(importlib.import_module(module), function)


def _prepared(name: str, source: Path, tmp_path: Path) -> Path:
    """The checkpoint the loader reads, after its preparation (as the worker runs it, before the timer).

    A loader that writes into the checkpoint gets a directory of its own, of hard links (a
    symlinked shard would point outside it): the built-ins are shared by the whole session,
    the installed MiniLM by every run.
    """
    if SHIPPED[name].prepare is None:
        return source
    copy = tmp_path / source.name
    copy.mkdir()
    for entry in source.iterdir():
        if entry.is_dir():
            (copy / entry.name).symlink_to(entry)
        else:
            _link_or_copy(entry, copy / entry.name)
    info = inspect_checkpoint(copy)
    SHIPPED[name].preimport(info, TASKS[info.primary_task])
    return copy


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system
        shutil.copy2(source, target)


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k].to(sb[k].dtype), sb[k]) for k in sa)


def _reference(info: Any, task: str) -> torch.nn.Module:
    path = path_for("task" if TASKS[task].auto_class else "base")
    return path.load(LoadRequest(info.path, task), info, TASKS[task]).model


@pytest.mark.parametrize("name", CPU_LOADERS)
@pytest.mark.parametrize(("checkpoint", "task"), [
    ("tiny-llama", "text-generation"), ("tiny-t5", "text2text-generation"), ("tiny-bert", "feature-extraction"),
    ("tiny-llama-sharded", "text-generation")])
def test_fast_loader_builds_the_task_paths_model(builtin, tmp_path: Path, name: str, checkpoint: str,
                                                 task: str) -> None:
    info = inspect_checkpoint(builtin(checkpoint))
    reference = _reference(info, task)
    model = _loader(name)(checkpoint=_prepared(name, info.path, tmp_path), task=task, device="cpu", dtype="auto")
    assert type(model) is type(reference)
    assert not model.training
    assert _same_weights(reference, model)


@pytest.mark.parametrize("name", CPU_LOADERS)
def test_loader_threads_set_the_loaders_own_threads_and_change_nothing_it_builds(
        builtin, tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from loadbench.loaders.options import LoadOptions

    seen: list[Any] = []
    if name == "fastsafetensors":
        import fastsafetensors

        real = fastsafetensors.SafeTensorsFileLoader
        monkeypatch.setattr(fastsafetensors, "SafeTensorsFileLoader",
                            lambda *a, **kw: seen.append(kw.get("max_threads")) or real(*a, **kw))
    elif name == "tensorizer":
        import tensorizer

        real_deserializer = tensorizer.TensorDeserializer
        monkeypatch.setattr(tensorizer, "TensorDeserializer",
                            lambda *a, **kw: seen.append(kw.get("num_readers")) or real_deserializer(*a, **kw))
    info = inspect_checkpoint(builtin("tiny-llama"))
    checkpoint = _prepared(name, info.path, tmp_path)
    with LoadOptions(loader_threads=3).applied():
        if name == "runai-streamer":
            seen.append(int(os.environ["RUNAI_STREAMER_CONCURRENCY"]))  # the streamer reads its own variable
        model = _loader(name)(checkpoint=checkpoint, task="text-generation", device="cpu", dtype="auto")
    assert seen == [3]
    assert "RUNAI_STREAMER_CONCURRENCY" not in os.environ  # put back after the load
    assert _same_weights(_reference(info, "text-generation"), model)


@pytest.mark.parametrize("name", CPU_LOADERS)
def test_fast_loader_honours_the_dtype_on_real_weights(minilm_dir, tmp_path: Path, name: str) -> None:
    info = inspect_checkpoint(minilm_dir)
    reference = path_for("base").load(LoadRequest(info.path, "feature-extraction"), info,
                                      TASKS["feature-extraction"]).model
    checkpoint = _prepared(name, info.path, tmp_path)
    model = _loader(name)(checkpoint=checkpoint, task="feature-extraction", device="cpu", dtype="bfloat16")
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


def test_tensorizer_reads_its_own_copy_written_once_inside_the_checkpoint(builtin, tmp_path: Path) -> None:
    from loadbench.bench.identity import checkpoint_digest
    from loadbench.bench.probes.page_cache import warm

    checkpoint = shutil.copytree(builtin("tiny-bert"), tmp_path / "tiny-bert")
    digest = checkpoint_digest(checkpoint)
    with pytest.raises(FileNotFoundError, match="no Tensorizer copy of the weights; tensorize"):
        load_with_tensorizer(checkpoint=checkpoint, task="feature-extraction", device="cpu", dtype="auto")
    written = tensorize(checkpoint)
    assert written == tensorized_file(checkpoint) and written.parent == checkpoint / TENSORIZED_DIR
    stamp = written.stat().st_mtime_ns
    assert tensorize(checkpoint) == written and written.stat().st_mtime_ns == stamp  # once
    # A resume sees the same checkpoint; a warm sample reads the copy in, as a cold one evicts it.
    assert checkpoint_digest(checkpoint) == digest
    assert warm(checkpoint) == sum(p.stat().st_size for p in checkpoint.rglob("*") if p.is_file())
    # Weights saved again: a new copy, the old one gone.
    weights = checkpoint / "model.safetensors"
    os.utime(weights, ns=(stamp + 10**9, stamp + 10**9))
    again = tensorize(checkpoint)
    assert again != written and list((checkpoint / TENSORIZED_DIR).iterdir()) == [again]


def test_tensors_already_on_the_device_are_built_into_the_model_there(builtin) -> None:
    """How InstantTensor's CUDA tensors are used, shown with CPU tensors: device_map keeps them, dtype applies."""
    from safetensors.torch import load_file

    info = inspect_checkpoint(builtin("tiny-llama-sharded"))

    def read(files: list[Path]) -> Any:
        for file in files:
            yield from load_file(file).items()

    model = build_from_tensors(info.path, "text-generation", "cpu", "bfloat16", read, on_device=True)
    assert next(model.parameters()).dtype == torch.bfloat16 and not model.training
    assert _same_weights(_reference(info, "text-generation"), model)


def test_instanttensor_refuses_a_cpu_device(builtin) -> None:
    pytest.importorskip("instanttensor", reason="not installed: pip install 'loadbench[instanttensor]'")
    with pytest.raises(ValueError, match="only supports CUDA devices"):
        load_with_instanttensor(checkpoint=builtin("tiny-llama"), task="text-generation", device="cpu", dtype="auto")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
@pytest.mark.parametrize("name", [*CPU_LOADERS, "instanttensor"])
def test_fast_loader_builds_the_task_paths_model_on_cuda(builtin, tmp_path: Path, name: str) -> None:
    pytest.importorskip(SHIPPED[name].requires or SHIPPED[name].module)
    info = inspect_checkpoint(builtin("tiny-llama"))
    reference = path_for("task").load(LoadRequest(info.path, "text-generation", "cuda:0"), info,
                                      TASKS["text-generation"]).model
    model = _loader(name)(checkpoint=_prepared(name, info.path, tmp_path), task="text-generation",
                          device="cuda:0", dtype="auto")
    assert next(model.parameters()).device == torch.device("cuda:0")
    assert _same_weights(reference, model)
