"""Four fast loaders as ``module:function`` paths: Run:ai Model Streamer, fastsafetensors, Tensorizer, InstantTensor.

Each reads the checkpoint's weights with its own library, then builds the transformers model
from those tensors with ``from_pretrained(None, config=…, state_dict=…)``: transformers maps
the names (prefixes, renamed keys, tied weights) exactly as it does for files, and keeps the
tensors it is given without a copy. So the only difference from the ``task`` path is who
reads the bytes.

How each library is read, and why:

- Run:ai Model Streamer and fastsafetensors read the safetensors into CPU memory, as both can.
- Tensorizer reads only its own format (``|TZR|`` files of headers and tensor bytes), never
  safetensors: :func:`tensorize` writes the weights once into that format, beside them, as the
  path's preparation before the timer; the timed load deserializes that file into CPU memory.
- InstantTensor reads safetensors into CUDA memory only (its ``safe_open`` refuses any other
  device), so its tensors are built into the model where they landed, by ``device_map``.

The read counts as the load's ``weights_s`` phase, as a ``from_pretrained`` read does.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

from loadbench.loaders.checkpoints.inspection import load_config, safetensors_files
from loadbench.loaders.common import LoadRequest, import_model_class, place, timed_phase
from loadbench.loaders.options import LOADER_THREADS_VARIABLE
from loadbench.loaders.tasks import TASKS

__all__ = [
    "load_with_runai_streamer",
    "load_with_fastsafetensors",
    "load_with_tensorizer",
    "load_with_instanttensor",
    "build_from_tensors",
    "tensorize",
    "tensorized_file",
    "TENSORIZED_DIR",
]

# A folder of the checkpoint's own: a cold sample evicts it with the weights and a warm one reads
# it in (both walk the whole directory), while the checkpoint's digest (its top-level files) stays.
TENSORIZED_DIR = ".loadbench-tensorizer"


def _runai_tensors(files: list[Path]) -> Iterator[tuple[str, Any]]:
    from runai_model_streamer import SafetensorsStreamer

    with SafetensorsStreamer() as streamer:
        streamer.stream_files([str(f) for f in files], device="cpu")
        yield from streamer.get_tensors()  # owned: they outlive the streamer


def _loader_threads() -> int | None:
    """The loader_threads option of the load under way (LoadOptions.applied sets it), or None: the library's own."""
    value = os.environ.get(LOADER_THREADS_VARIABLE)
    return int(value) if value else None


def _fastsafetensors_tensors(files: list[Path]) -> Iterator[tuple[str, Any]]:
    from fastsafetensors import SafeTensorsFileLoader

    # What fastsafe_open does, with its copy threads open to the loader_threads option (it
    # defaults to 16). nogds: no GPUDirect Storage here; the library still reads with O_DIRECT.
    threads = _loader_threads()
    loader = SafeTensorsFileLoader(None, "cpu", nogds=True, **({"max_threads": threads} if threads else {}))
    try:
        loader.add_filenames({0: [str(f) for f in files]})
        buffer = loader.copy_files_to_device()
        try:
            for name in list(buffer.key_to_rank_lidx):
                yield name, buffer.get_tensor_wrapped(name).get_raw()  # it holds its share: valid after the close
        finally:
            buffer.close()
    finally:
        loader.close()


def _tensorizer_tensors(checkpoint: Path, files: list[Path]) -> Iterator[tuple[str, Any]]:
    from tensorizer import TensorDeserializer

    source = tensorized_file(checkpoint)
    if not source.is_file():
        raise FileNotFoundError(f"{source}: no Tensorizer copy of the weights; tensorize({str(checkpoint)!r}) "
                                "writes it (the tensorizer path does, before the timer)")
    # Read in full on opening, by its concurrent readers; the tensors own their memory past the close.
    threads = _loader_threads()
    with TensorDeserializer(str(source), device="cpu", **({"num_readers": threads} if threads else {})) as tensors:
        for name, tensor in tensors.items():
            yield name, tensor.detach()  # handed out as Parameters: the model makes its own


def _instanttensor_tensors(device: str, files: list[Path]) -> Iterator[tuple[str, Any]]:
    import torch
    from instanttensor import safe_open

    target = torch.device(device)
    if target.type == "cuda" and target.index is None:
        target = torch.device("cuda", torch.cuda.current_device())  # its reader needs the index
    with safe_open([str(f) for f in files], framework="pt", device=target) as handle:
        yield from handle.tensors()  # copy=True (its default): each owns its memory past the close


def build_from_tensors(checkpoint: Path, task: str, device: str, dtype: str,
                       read: Callable[[list[Path]], Iterator[tuple[str, Any]]], *, on_device: bool = False) -> Any:
    """The task's model for ``checkpoint``, its weights the tensors ``read`` yields.

    ``on_device``: they are already on ``device``. transformers then places the model there
    by ``device_map`` and keeps them; without one it would copy every weight to the CPU,
    and the model would be moved back.
    """
    config = load_config(checkpoint)
    model_class: Any = import_model_class(config.model_type, TASKS[task].mapping)
    if model_class is None:
        raise TypeError(f"transformers has no {task} class for model type {config.model_type!r}")
    with timed_phase("weights_s"):
        state_dict = dict(read(safetensors_files(checkpoint)))
    request = LoadRequest(checkpoint, task, device, dtype)
    kwargs = request.model_kwargs()
    del kwargs["trust_remote_code"]  # a class transformers lists: nothing to trust
    if on_device:
        kwargs["device_map"] = {"": device}
    model = model_class.from_pretrained(None, config=config, state_dict=state_dict, **kwargs)
    return place(model, request)


def load_with_runai_streamer(checkpoint: Path, task: str, device: str, dtype: str) -> Any:
    """Run:ai Model Streamer: concurrent reads into CPU memory, tensors handed over as they land."""
    return build_from_tensors(checkpoint, task, device, dtype, _runai_tensors)


def load_with_fastsafetensors(checkpoint: Path, task: str, device: str, dtype: str) -> Any:
    """fastsafetensors: the files read into one buffer (O_DIRECT), tensors cut from it."""
    return build_from_tensors(checkpoint, task, device, dtype, _fastsafetensors_tensors)


def load_with_tensorizer(checkpoint: Path, task: str, device: str, dtype: str) -> Any:
    """Tensorizer: its own copy of the weights (see :func:`tensorize`) read by concurrent readers into CPU memory."""
    return build_from_tensors(checkpoint, task, device, dtype, partial(_tensorizer_tensors, checkpoint))


def load_with_instanttensor(checkpoint: Path, task: str, device: str, dtype: str) -> Any:
    """InstantTensor: the files read through a GPU buffer into CUDA memory, the model built there."""
    return build_from_tensors(checkpoint, task, device, dtype, partial(_instanttensor_tensors, device),
                              on_device=True)


def tensorized_file(checkpoint: Path) -> Path:
    """Where the checkpoint's Tensorizer copy lives: named for the weight files (sizes, times) it is made from."""
    digest = hashlib.sha256()
    for file in safetensors_files(checkpoint):
        stat = file.stat()
        digest.update(f"{file.name}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
    return checkpoint / TENSORIZED_DIR / f"model-{digest.hexdigest()[:16]}.tensors"


def tensorize(checkpoint: Path) -> Path:
    """Write the checkpoint's safetensors once into Tensorizer's format, beside them; nothing when done already.

    Tensorizer cannot read safetensors: this is the conversion its users make once, ahead of
    their loads, so it is the tensorizer path's preparation, never part of a timed load.
    """
    target = tensorized_file(checkpoint)
    if target.is_file():
        return target
    target.parent.mkdir(exist_ok=True)
    for stale in target.parent.glob("model-*.tensors"):  # made from weights since re-saved
        stale.unlink(missing_ok=True)
    partial_file = target.with_name(f"{target.name}.{os.getpid()}.partial")
    try:
        _write_tensorized(safetensors_files(checkpoint), partial_file)
        os.replace(partial_file, target)  # never seen half-written; racing writers write the same bytes
    finally:
        partial_file.unlink(missing_ok=True)
    return target


def _write_tensorized(files: list[Path], target: Path) -> None:
    from safetensors import safe_open
    from tensorizer import TensorSerializer
    from tensorizer.serialization import TensorType

    serializer = TensorSerializer(str(target))
    try:
        for file in files:
            with safe_open(str(file), framework="pt") as handle:
                for name in handle.keys():  # tensor by tensor: never the whole checkpoint in memory
                    serializer.write_tensor(0, name, TensorType.STATE_DICT, handle.get_tensor(name))
    finally:
        serializer.close()
