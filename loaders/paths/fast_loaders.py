"""Two fast loaders as ``module:function`` paths: Run:ai Model Streamer and fastsafetensors.

Each reads the checkpoint's safetensors with its own library (to CPU memory, as both can),
then builds the transformers model from those tensors with ``from_pretrained(None,
config=…, state_dict=…)``: transformers maps the names (prefixes, renamed keys, tied
weights) exactly as it does for files, and keeps the tensors it is given without a copy.
So the only difference from the ``task`` path is who reads the bytes.

The read counts as the load's ``weights_s`` phase, as a ``from_pretrained`` read does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from loadbench.loaders.checkpoints.inspection import load_config, safetensors_files
from loadbench.loaders.common import LoadRequest, import_model_class, place, timed_phase
from loadbench.loaders.tasks import TASKS

__all__ = ["load_with_runai_streamer", "load_with_fastsafetensors", "build_from_tensors"]


def _runai_tensors(files: list[Path]) -> Iterator[tuple[str, Any]]:
    from runai_model_streamer import SafetensorsStreamer

    with SafetensorsStreamer() as streamer:
        streamer.stream_files([str(f) for f in files], device="cpu")
        yield from streamer.get_tensors()  # owned: they outlive the streamer


def _fastsafetensors_tensors(files: list[Path]) -> Iterator[tuple[str, Any]]:
    from fastsafetensors import fastsafe_open

    # nogds: no GPUDirect Storage here; the library still reads with its own threads and O_DIRECT.
    with fastsafe_open(filenames=[str(f) for f in files], nogds=True, device="cpu") as handle:
        for name in handle.keys():
            yield name, handle.get_tensor(name)  # it holds its share of the buffer: valid after the close


def build_from_tensors(checkpoint: Path, task: str, device: str, dtype: str,
                       read: Callable[[list[Path]], Iterator[tuple[str, Any]]]) -> Any:
    """The task's model for ``checkpoint``, its weights the tensors ``read`` yields."""
    config = load_config(checkpoint)
    model_class: Any = import_model_class(config.model_type, TASKS[task].mapping)
    if model_class is None:
        raise TypeError(f"transformers has no {task} class for model type {config.model_type!r}")
    with timed_phase("weights_s"):
        state_dict = dict(read(safetensors_files(checkpoint)))
    request = LoadRequest(checkpoint, task, device, dtype)
    kwargs = request.model_kwargs()
    del kwargs["trust_remote_code"]  # a class transformers lists: nothing to trust
    model = model_class.from_pretrained(None, config=config, state_dict=state_dict, **kwargs)
    return place(model, request)


def load_with_runai_streamer(checkpoint: Path, task: str, device: str, dtype: str) -> Any:
    """Run:ai Model Streamer: concurrent reads into CPU memory, tensors handed over as they land."""
    return build_from_tensors(checkpoint, task, device, dtype, _runai_tensors)


def load_with_fastsafetensors(checkpoint: Path, task: str, device: str, dtype: str) -> Any:
    """fastsafetensors: the files read into one buffer (O_DIRECT), tensors cut from it."""
    return build_from_tensors(checkpoint, task, device, dtype, _fastsafetensors_tensors)
