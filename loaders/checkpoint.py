"""Inspect a local checkpoint directory before anything is measured.

Every problem found here is the user's to fix, so each error is one line that names
the directory and says what to do; nothing is downloaded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadbench.errors import UserError

from .tasks import supported_tasks

__all__ = ["CheckpointError", "CheckpointInfo", "check_safetensors", "inspect_checkpoint", "load_config"]

_SINGLE = "model.safetensors"
_INDEX = "model.safetensors.index.json"
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "spiece.model")


class CheckpointError(UserError):
    """The directory cannot be benchmarked as it is."""


@dataclass(frozen=True)
class CheckpointInfo:
    """What the harness needs to know of a checkpoint to plan its cases."""

    path: Path
    model_type: str
    architectures: tuple[str, ...]
    is_encoder_decoder: bool
    tasks: tuple[str, ...]  # supported, the primary task first
    weight_files: tuple[str, ...]
    sharded: bool

    @property
    def primary_task(self) -> str:
        return self.tasks[0]


def load_config(path: Path, trust_remote_code: bool = False) -> Any:
    """Load the transformers config offline, turning its failures into one-line errors."""
    config_file = path / "config.json"
    try:
        raw = json.loads(config_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CheckpointError(
            f"{config_file}: not valid JSON ({exc.msg} at line {exc.lineno}); fix or re-save the checkpoint"
        ) from None
    if not isinstance(raw, dict) or "model_type" not in raw:
        raise CheckpointError(
            f"{config_file}: has no 'model_type'; re-save the checkpoint with save_pretrained()"
        )
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
    except (ValueError, KeyError) as exc:
        if raw.get("auto_map") and not trust_remote_code:
            raise CheckpointError(
                f"{path}: model_type {raw['model_type']!r} needs the checkpoint's own code; "
                "pass --trust-remote-code if you trust it"
            ) from None
        raise CheckpointError(
            f"{path}: unknown architecture {raw['model_type']!r} for this transformers "
            f"version ({_first_line(exc)}); upgrade transformers or pick another checkpoint"
        ) from None


_HEADER_LIMIT = 100 * 2**20  # safetensors refuses larger headers too


def check_safetensors(file: Path) -> None:
    """Catch a truncated or corrupt safetensors file before a worker trips on it.

    Reads only the header: its declared tensor extents must end exactly at the end of
    the file (a copy cut short, or bytes appended, both show).
    """
    size = file.stat().st_size
    with open(file, "rb") as handle:
        prefix = handle.read(8)
        header_size = int.from_bytes(prefix, "little") if len(prefix) == 8 else -1
        header = handle.read(header_size) if 0 < header_size <= _HEADER_LIMIT else b""
    try:
        tensors = json.loads(header)
        end = max((int(t["data_offsets"][1]) for k, t in tensors.items() if k != "__metadata__"), default=0)
    except (ValueError, KeyError, TypeError, IndexError, AttributeError):
        raise CheckpointError(
            f"{file}: not a readable safetensors file (bad header); re-download or re-save it"
        ) from None
    if 8 + header_size + end != size:
        raise CheckpointError(
            f"{file}: truncated or corrupt ({size} bytes, its header describes {8 + header_size + end}); "
            "re-download or re-save it"
        )


def _weight_files(path: Path, allow_bin: bool) -> tuple[tuple[str, ...], bool]:
    index_file = path / _INDEX
    if index_file.is_file():
        try:
            weight_map = json.loads(index_file.read_text(encoding="utf-8"))["weight_map"]
            shards = tuple(sorted(set(weight_map.values())))
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
            raise CheckpointError(
                f"{index_file}: not a valid shard index (needs a 'weight_map'); re-save the checkpoint"
            ) from None
        missing = [s for s in shards if not (path / s).is_file()]
        if missing:
            raise CheckpointError(
                f"{path}: shard {missing[0]} named in {_INDEX} is missing; copy it or re-save the checkpoint"
            )
        return shards, True
    if (path / _SINGLE).is_file():
        return (_SINGLE,), False
    bins = tuple(sorted(p.name for p in path.glob("pytorch_model*.bin")))
    if bins and allow_bin:
        return bins, len(bins) > 1  # transformers reads them with torch.load(weights_only=True)
    if bins:
        raise CheckpointError(
            f"{path}: only pickle .bin weights, which can run code when loaded; convert them to "
            "safetensors (save_pretrained), or pass --allow-bin-weights if you trust them"
        )
    raise CheckpointError(f"{path}: no {_SINGLE} or {_INDEX}; is this a checkpoint directory?")


def inspect_checkpoint(
    path: str | Path, trust_remote_code: bool = False, allow_bin: bool = False
) -> CheckpointInfo:
    """Validate ``path`` and read what its cases depend on."""
    path = Path(path).expanduser()
    if not path.exists():
        raise CheckpointError(f"{path}: no such directory; give the path of a local checkpoint directory")
    if not path.is_dir():
        raise CheckpointError(f"{path}: not a directory; give the checkpoint's directory, not a file in it")
    if not (path / "config.json").is_file():
        raise CheckpointError(
            f"{path}: no config.json, so not a transformers checkpoint; point at the directory save_pretrained() wrote"
        )
    config = load_config(path, trust_remote_code)
    weight_files, sharded = _weight_files(path, allow_bin)
    for name in weight_files:
        if name.endswith(".safetensors"):
            check_safetensors(path / name)
    if not any((path / name).is_file() for name in _TOKENIZER_FILES):
        raise CheckpointError(
            f"{path}: no tokenizer files (tokenizer.json or tokenizer_config.json); "
            "save the tokenizer into the checkpoint directory too"
        )
    tasks = supported_tasks(config)
    if not tasks:
        raise CheckpointError(
            f"{path}: model_type {config.model_type!r} serves none of the text tasks loadbench measures"
        )
    return CheckpointInfo(
        path=path.resolve(),
        model_type=config.model_type,
        architectures=tuple(getattr(config, "architectures", None) or ()),
        is_encoder_decoder=bool(getattr(config, "is_encoder_decoder", False)),
        tasks=tasks,
        weight_files=weight_files,
        sharded=sharded,
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
