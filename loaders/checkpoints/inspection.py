"""Inspect a local checkpoint directory before anything is measured.

Every problem found here is the user's to fix, so each error is one line that names
the file or directory and says what to do; nothing is downloaded. The directory is
untrusted input: its files are read as data, and code shipped in it is never imported
here (it runs only in a worker, and only with ``--trust-remote-code``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from loadbench.errors import UserError
from loadbench.loaders.tasks import TASKS, primary_task, supported_tasks
from loadbench.results.records.documents import read_document

__all__ = [
    "CheckpointError", "CheckpointInfo", "RemoteConfig",
    "check_safetensors", "inspect_checkpoint", "load_config", "read_config", "safetensors_files",
]

_CONFIG = "config.json"
_SINGLE = "model.safetensors"
_INDEX = "model.safetensors.index.json"
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "spiece.model")
_PICKLE_ADVICE = (
    "which can run code when loaded; convert them to safetensors (save_pretrained), "
    "or pass `allow_bin_weights` if you trust them"
)
_RANDOM_WEIGHTS = "so the model would be measured with random weights; re-save the checkpoint"


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
    remote_code: bool = False  # its architecture's code ships in the directory, unknown to transformers

    @property
    def primary_task(self) -> str:
        return self.tasks[0]

    def weight_file_bytes(self) -> int:
        """The weight files' size on disk: what a load reads when nothing is cached."""
        return sum((self.path / name).stat().st_size for name in self.weight_files)


@dataclass(frozen=True)
class RemoteConfig:
    """An architecture whose code ships with the checkpoint, as config.json describes it.

    Building the real config object would import that code, which may do anything, in
    the process that plans the run; every fact planning needs is in config.json itself.
    """

    model_type: str
    architectures: list[str]
    is_encoder_decoder: bool
    auto_map: dict[str, Any] = field(default_factory=dict)


def _read_json(file: Path, what: str) -> Any:
    text = read_document(file, str, "JSON", what, CheckpointError)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CheckpointError(
            f"{file}: not valid JSON ({exc.msg} at line {exc.lineno}); fix or re-save the checkpoint"
        ) from None


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) and item for item in value)


# The keys inspection reads, and what transformers needs each to be: a wrong type here
# would otherwise surface as a traceback, or worse, as a silently wrong task.
_CONFIG_TYPES = {
    "model_type": (lambda v: isinstance(v, str) and bool(v), "a non-empty string"),
    "architectures": (lambda v: v is None or _is_str_list(v), "a list of class names"),
    "is_encoder_decoder": (lambda v: isinstance(v, bool), "true or false"),
    "auto_map": (lambda v: isinstance(v, dict) and all(isinstance(k, str) for k in v), "an object"),
}


def read_config(path: Path) -> dict[str, Any]:
    """config.json as a dict whose keys inspection relies on have the right types."""
    config_file = path / _CONFIG
    raw = _read_json(config_file, "checkpoint config file")
    if not isinstance(raw, dict):
        raise CheckpointError(
            f"{config_file}: not a JSON object ({type(raw).__name__}); re-save the checkpoint with save_pretrained()"
        )
    if "model_type" not in raw:
        raise CheckpointError(f"{config_file}: has no 'model_type'; re-save the checkpoint with save_pretrained()")
    for key, (valid, expected) in _CONFIG_TYPES.items():
        if key in raw and not valid(raw[key]):
            raise CheckpointError(
                f"{config_file}: '{key}' must be {expected}, not {json.dumps(raw[key])[:60]}; "
                "fix or re-save the checkpoint"
            )
    if raw.get("architectures") == []:
        # The class names the task the checkpoint was saved for; an empty list reads as a
        # broken save, and measuring it as plain feature extraction would be a silent guess.
        raise CheckpointError(
            f"{config_file}: 'architectures' is an empty list, so the task it was saved for cannot be told; "
            "write its class (e.g. [\"LlamaForCausalLM\"]), or delete the key to measure it as feature extraction"
        )
    return raw


def load_config(path: Path, trust_remote_code: bool = False) -> Any:
    """The checkpoint's config, read offline and without running any of its code.

    An architecture transformers knows gets its real config class (which validates every
    field); one known only from the checkpoint's own code gets a :class:`RemoteConfig`.
    """
    raw = read_config(path)
    model_type = raw["model_type"]
    from transformers import AutoConfig
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    if model_type not in CONFIG_MAPPING:
        if not raw.get("auto_map"):
            from importlib.metadata import version

            raise CheckpointError(
                f"{path}: unknown architecture {model_type!r} for this transformers version "
                f"({version('transformers')}); upgrade transformers or pick another checkpoint"
            )
        if not trust_remote_code:
            raise CheckpointError(
                f"{path}: model_type {model_type!r} needs the checkpoint's own code; "
                "pass `trust_remote_code` if you trust it"
            )
        return RemoteConfig(model_type, list(raw.get("architectures") or []),
                            raw.get("is_encoder_decoder", False), raw["auto_map"])
    try:
        # Never trust_remote_code here: with it, an auto_map entry for AutoConfig would
        # import the checkpoint's code even for an architecture transformers knows.
        return AutoConfig.from_pretrained(path, trust_remote_code=False)
    except Exception as exc:  # transformers' config classes raise many types for a bad field
        raise CheckpointError(
            f"{path / _CONFIG}: transformers cannot read it ({_one_line(exc)}); fix or re-save the checkpoint"
        ) from None


def _tasks(config: Any) -> tuple[str, ...]:
    """Tasks the config serves, the primary one first.

    The checkpoint's own code serves exactly the auto classes its auto_map names
    (``AutoModelForCausalLM`` -> text-generation, ``AutoModel`` -> feature-extraction).
    """
    if not isinstance(config, RemoteConfig):
        return supported_tasks(config)
    found = [t.name for t in TASKS.values() if (t.auto_class or "AutoModel") in config.auto_map]
    first = primary_task(config)
    return tuple(sorted(found, key=lambda name: name != first))


_HEADER_LIMIT = 100 * 2**20  # safetensors refuses larger headers too


def check_safetensors(file: Path) -> None:
    """Catch a truncated, corrupt or empty safetensors file before a worker trips on it.

    Reads only the header: its declared tensor extents must end exactly at the end of
    the file (a copy cut short, or bytes appended, both show), and it must hold a tensor
    (from_pretrained would fill an empty one's model with random weights and only log it).
    """
    size = file.stat().st_size
    with open(file, "rb") as handle:
        prefix = handle.read(8)
        header_size = int.from_bytes(prefix, "little") if len(prefix) == 8 else -1
        header = handle.read(header_size) if 0 < header_size <= _HEADER_LIMIT else b""
    try:
        tensors = {k: t for k, t in json.loads(header).items() if k != "__metadata__"}
        end = max((int(t["data_offsets"][1]) for t in tensors.values()), default=0)
    except (ValueError, KeyError, TypeError, IndexError, AttributeError):
        raise CheckpointError(
            f"{file}: not a readable safetensors file (bad header); re-download or re-save it"
        ) from None
    if 8 + header_size + end != size:
        raise CheckpointError(
            f"{file}: truncated or corrupt ({size} bytes, its header describes {8 + header_size + end}); "
            "re-download or re-save it"
        )
    if not tensors:
        raise CheckpointError(f"{file}: holds no tensors, {_RANDOM_WEIGHTS}")


def _outside(root: Path, shard: str) -> bool:
    """Whether a shard name reaches outside ``root`` (``root`` resolved), symlinks followed.

    The one exception is the Hugging Face hub cache, where every file of a snapshot is a
    symlink into the repository's ``blobs`` folder.
    """
    name = PurePosixPath(shard)
    if not shard or "\0" in shard or "\\" in shard or name.is_absolute() or ".." in name.parts:
        return True
    target = (root / shard).resolve()
    blobs = root.parent.parent / "blobs" if root.parent.name == "snapshots" else None
    return not (target.is_relative_to(root) or (blobs is not None and target.is_relative_to(blobs)))


def _index_shards(path: Path, allow_bin: bool) -> tuple[str, ...]:
    """The shard files an index names, refused where a load would read outside ``path``,
    unpickle without consent, or find no weights."""
    index_file = path / _INDEX
    index = _read_json(index_file, "shard index")
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in weight_map.items()
    ):
        raise CheckpointError(
            f"{index_file}: not a valid shard index (needs a 'weight_map' of tensor names to shard files); "
            "re-save the checkpoint"
        )
    if not weight_map:
        raise CheckpointError(f"{index_file}: its 'weight_map' names no tensors, {_RANDOM_WEIGHTS}")
    shards = tuple(sorted(set(weight_map.values())))
    root = path.resolve()
    for shard in shards:
        if _outside(root, shard):
            raise CheckpointError(
                f"{index_file}: shard {shard!r} is outside the checkpoint directory; refusing to read it "
                "(a shard index may name only files in its own directory)"
            )
    pickled = [s for s in shards if not s.endswith(".safetensors")]
    if pickled and not allow_bin:
        raise CheckpointError(f"{index_file}: shard {pickled[0]!r} is pickle weights, {_PICKLE_ADVICE}")
    missing = [s for s in shards if not (path / s).is_file()]
    if missing:
        raise CheckpointError(
            f"{path}: shard {missing[0]} named in {_INDEX} is missing; copy it or re-save the checkpoint"
        )
    return shards


def _weight_files(path: Path, allow_bin: bool) -> tuple[tuple[str, ...], bool]:
    if (path / _INDEX).exists():
        return _index_shards(path, allow_bin), True
    if (path / _SINGLE).is_file():
        return (_SINGLE,), False
    bins = tuple(sorted(p.name for p in path.glob("pytorch_model*.bin")))
    if bins and allow_bin:
        return bins, len(bins) > 1  # transformers reads them with torch.load(weights_only=True)
    if bins:
        raise CheckpointError(f"{path}: only pickle .bin weights, {_PICKLE_ADVICE}")
    raise CheckpointError(f"{path}: no {_SINGLE} or {_INDEX}; is this a checkpoint directory?")


def safetensors_files(path: Path) -> list[Path]:
    """The checkpoint's safetensors weight files, for loaders that read them themselves."""
    names, _ = _weight_files(path, allow_bin=False)
    return [path / name for name in names]


def inspect_checkpoint(
    path: str | Path, trust_remote_code: bool = False, allow_bin: bool = False
) -> CheckpointInfo:
    """Validate ``path`` and read what its cases depend on, without running its code."""
    path = Path(path).expanduser()
    if not path.exists():
        if path.is_symlink():
            raise CheckpointError(f"{path}: a symbolic link to nothing (its target is gone, or it loops); "
                                  "give the checkpoint's directory itself")
        raise CheckpointError(f"{path}: no such directory; give the path of a local checkpoint directory")
    if not path.is_dir():
        raise CheckpointError(f"{path}: not a directory; give the checkpoint's directory, not a file in it")
    _check_links(path)
    if not (path / _CONFIG).exists():
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
    tasks = _tasks(config)
    if not tasks and isinstance(config, RemoteConfig):
        classes = ", ".join(sorted({t.auto_class or "AutoModel" for t in TASKS.values()}))
        raise CheckpointError(
            f"{path / _CONFIG}: its auto_map names none of the classes loadbench loads ({classes}), "
            "so its own code serves none of the text tasks loadbench measures"
        )
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
        remote_code=isinstance(config, RemoteConfig),
    )


def _hub_snapshot(path: Path) -> tuple[str, str] | None:
    """(repo id, commit) when ``path`` is a hub cache's snapshot: ``models--org--name/snapshots/COMMIT``."""
    repo_dir = path.parent.parent
    if path.parent.name != "snapshots" or not repo_dir.name.startswith("models--"):
        return None
    return repo_dir.name.removeprefix("models--").replace("--", "/"), path.name


def _check_links(path: Path) -> None:
    """A file that is a symbolic link to nothing, named as such (not as a file that was never there).

    In a hub cache every file of a snapshot links to a blob: one gone means the snapshot is
    incomplete, and huggingface_hub fetches exactly what is missing.
    """
    try:
        gone = sorted(entry.name for entry in path.iterdir() if entry.is_symlink() and not entry.exists())
    except OSError:
        return  # an unreadable directory: the checks that follow name it
    if not gone:
        return
    if (hub := _hub_snapshot(path)) is not None:
        repo, commit = hub
        raise CheckpointError(
            f"{path}: an incomplete snapshot in the Hugging Face cache: {gone[0]} links to a blob that is gone; "
            f"complete it with `hf download {repo} --revision {commit}`"
        )
    if gone[0] in (_CONFIG, _SINGLE, _INDEX, *_TOKENIZER_FILES) or gone[0].endswith((".safetensors", ".bin")):
        raise CheckpointError(
            f"{path / gone[0]}: a symbolic link to a file that is gone; copy the file in, or re-save the checkpoint"
        )


def _one_line(exc: BaseException) -> str:
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return (text[:200] + "...") if len(text) > 200 else text or type(exc).__name__
