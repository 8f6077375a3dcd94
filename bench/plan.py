"""Turn a suite into cases: checkpoint x path x task, each runnable or n/a with a reason.

All input problems surface here, before the first sample, as one-line errors.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from loadbench.bench.fingerprint import local_cuda_available
from loadbench.bench.suite import CheckpointEntry, Suite
from loadbench.errors import UserError
from loadbench.loaders import (
    SHIPPED,
    TASKS,
    CheckpointInfo,
    UnsupportedTask,
    inspect_checkpoint,
    is_user_path,
    path_not_applicable,
)
from loadbench.loaders.checkpoints.builtin import ensure_builtin
from loadbench.loaders.checkpoints.hub import hub_label, resolve_hub
from loadbench.loaders.options import DEFAULT_OPTIONS, OptionError, parse_value
from loadbench.loaders.paths.user_path import user_path
from loadbench.results.records.schema import DEFAULT_ENV

__all__ = ["Case", "NoCuda", "plan", "resolve_device"]


class UnknownPath(UserError):
    """A ``module:function`` path whose module or function cannot be found: a typo more often than not."""


def _check_user_paths(names: list[str]) -> None:
    """Each ``module:function`` path's module is found and its function defined, without importing it.

    The user's code runs only in workers (as a checkpoint's own code does); what its files
    show is checked here, so that a typo is one line now rather than every sample failing.
    """
    for name in names:
        if not is_user_path(name) or name in SHIPPED:
            continue
        path = user_path(name)
        if missing := path.missing_module():
            raise UnknownPath(f"path {name!r}: no module {missing!r} here; check the spelling, install it, or put "
                              "its directory on PYTHONPATH")
        if source := path.missing_function():
            raise UnknownPath(f"path {name!r}: {source} defines no {path.function!r} at its top level; "
                              "check the function's name")


class NoCuda(UserError):
    """The suite asks for a CUDA device where there is none."""


# from_pretrained's placement strategies; any other device_map string must be a torch device.
_PLACEMENTS = ("auto", "balanced", "balanced_low_0", "sequential")


def _check_device_map(values: list[str], cuda_available: Callable[[], bool]) -> None:
    """device_map values transformers would refuse, or place on a CUDA device there is none of."""
    import torch

    for value in values:
        if value in _PLACEMENTS:
            continue
        try:
            device = torch.device(value)
        except (RuntimeError, ValueError):
            raise OptionError(f"loading option device_map: {value!r} is neither a device (cpu, cuda, cuda:N) nor "
                              f"a placement ({', '.join(_PLACEMENTS)}); fix `options`") from None
        if device.type == "cuda" and not cuda_available():
            raise NoCuda(f"loading option device_map={value}: no CUDA device where the samples run (this "
                         "machine's torch, or a Ray cluster's nodes, see none); use device_map=cpu or auto")


def _check_attention(values: list[str], cuda_available: Callable[[], bool]) -> None:
    """attn_implementation values this transformers does not know, or flash attention with no GPU to run on."""
    try:
        from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

        known = ["eager", *ALL_ATTENTION_FUNCTIONS.valid_keys()]
    except (ImportError, AttributeError):  # a transformers without the registry: the load decides
        return
    for value in values:
        name = value.removeprefix("paged|")
        if "/" in name:
            continue  # a kernel from the hub (org/repo[:function]): only the load can tell
        if name not in known:
            raise OptionError(f"loading option attn_implementation: {value!r} is not one this transformers knows; "
                              f"give one of {', '.join(known)}")
        if name.startswith("flash_attention") and not cuda_available():
            raise NoCuda(f"loading option attn_implementation={value}: flash attention runs on a GPU, and there is "
                         "no CUDA device where the samples run; use sdpa or eager")


def _check_options(suite: Suite, cuda_available: Callable[[], bool], here: bool) -> None:
    """Option values every sample would fail on, refused before the run (``here``: this transformers decides)."""
    given = {name: [v for v in (parse_value(name, raw) for raw in values) if v is not None]
             for name, values in suite.option_values().items()}
    _check_device_map([str(v) for v in given.get("device_map", [])], cuda_available)
    if here and given.get("attn_implementation"):
        _check_attention([str(v) for v in given["attn_implementation"]], cuda_available)


@dataclass(frozen=True)
class Case:
    """One cell of the comparison; its key fields are the records' case keys."""

    checkpoint: str  # label shown in tables
    checkpoint_dir: str
    path: str
    task: str
    dtype: str
    device: str
    cache: str
    not_applicable: str | None = None
    builtin: str | None = None  # a built-in's name: a remote node without the directory builds its own
    commit: str | None = None  # a hub checkpoint's resolved commit (the snapshot it loads)
    env: str = DEFAULT_ENV  # the Python environment it is measured in
    options: str = DEFAULT_OPTIONS  # loading options, as LoadOptions.text writes them

    def key(self) -> dict[str, str]:
        return {"checkpoint": self.checkpoint, "path": self.path, "task": self.task, "dtype": self.dtype,
                "device": self.device, "cache": self.cache, "options": self.options, "env": self.env}

    @property
    def label(self) -> str:
        extra = "".join(f" · {v}" for v, default in ((self.options, DEFAULT_OPTIONS), (self.env, DEFAULT_ENV))
                        if v != default)
        return f"{self.checkpoint} · {self.path} · {self.task} · {self.dtype} · {self.device} · {self.cache}{extra}"

    @property
    def block_key(self) -> tuple[str, ...]:
        """What the environments' samples of one block share: everything but the environment."""
        return tuple(v for k, v in self.key().items() if k != "env")


def resolve_device(device: str, cuda_available: Callable[[], bool] = local_cuda_available) -> str:
    """``auto`` becomes the first CUDA device when there is one, else the CPU.

    ``cuda_available`` asks whoever runs the samples: on a Ray cluster that is the
    cluster's GPUs, not this machine's.
    """
    if device != "auto":
        return "cuda:0" if device == "cuda" else device
    return "cuda:0" if cuda_available() else "cpu"


def _resolve(entry: CheckpointEntry, suite: Suite, cache_dir: Path | None,
             commits: Mapping[str, str]) -> tuple[str, CheckpointInfo, str | None]:
    """(label, checkpoint, the commit of a hub checkpoint)."""
    if entry.builtin is not None:
        directory = ensure_builtin(entry.builtin, cache_dir)
        return entry.builtin, inspect_checkpoint(directory, suite.trust_remote_code), None
    if entry.repo is not None:
        label = hub_label(entry.repo, entry.revision)
        # A resumed run loads the commit it started with, wherever the branch has moved since.
        hub = resolve_hub(entry.repo, commits.get(label, entry.revision), download=suite.download,
                          trust_remote_code=suite.trust_remote_code)
        info = inspect_checkpoint(hub.directory, suite.trust_remote_code, suite.allow_bin_weights)
        return label, info, hub.commit
    info = inspect_checkpoint(entry.path or "", suite.trust_remote_code, suite.allow_bin_weights)
    return info.path.name, info, None


def _tasks(entry: CheckpointEntry, info: CheckpointInfo, label: str) -> tuple[str, ...]:
    if entry.tasks == "primary":
        return (info.primary_task,)
    if entry.tasks == "all":
        return info.tasks
    for task in entry.tasks:
        if task not in info.tasks:
            raise UnsupportedTask(
                f"{label}: cannot do task {task!r} ({info.model_type} supports: {', '.join(info.tasks)}); "
                "drop it from the suite's tasks"
            )
    return tuple(entry.tasks)


def plan(suite: Suite, cache_dir: Path | None = None, *,
         cuda_available: Callable[[], bool] = local_cuda_available,
         commits: Mapping[str, str] | None = None) -> list[Case]:
    """Every case of the suite, in a stable order.

    (checkpoint, task, dtype, device, options, cache, path, environment). ``commits``
    (run.json's ``checkpoint_commits``) pins each hub checkpoint's label to a commit.
    """
    resolved: list[tuple[str, CheckpointInfo, tuple[str, ...], str | None, str | None]] = []
    labels: dict[str, str] = {}
    for entry in suite.checkpoints:
        label, info, commit = _resolve(entry, suite, cache_dir, commits or {})
        if labels.get(label, str(info.path)) != str(info.path):
            label = str(info.path)  # two different directories with one name: show the full path
        labels[label] = str(info.path)
        resolved.append((label, info, _tasks(entry, info, label), entry.builtin, commit))
    # Imports torch: only once the input is known good. Two spellings of one device
    # ("auto" and "cpu") would measure the same case twice.
    devices = list(dict.fromkeys(resolve_device(d, cuda_available) for d in suite.device))
    if any(d.startswith("cuda") for d in devices) and not cuda_available():
        # Every sample would fail; say so once, before anything is written.
        raise NoCuda(f"device {', '.join(d for d in devices if d.startswith('cuda'))}: no CUDA device where the "
                     "samples run (this machine's torch, or a Ray cluster's nodes, see none); use `device` cpu "
                     "or auto")
    envs = [entry.name for entry in suite.environments] or [DEFAULT_ENV]
    settings = suite.setting_pairs()
    # Whether a path applies can hang on the library version (a pipeline one release
    # removed): this interpreter can only answer for itself. In a run over environments
    # each sample's worker answers, in its own environment.
    judge_here = not suite.environments
    _check_options(suite, cuda_available, judge_here)
    if judge_here:
        _check_user_paths(list(dict.fromkeys(path for path, _ in settings)))
    return [
        Case(checkpoint=label, checkpoint_dir=str(info.path), path=path_name, task=task_name,
             dtype=dtype, device=device, cache=cache,
             not_applicable=(path_not_applicable(path_name, info, TASKS[task_name], options, device)
                             if judge_here else None),
             builtin=builtin, env=env, options=options.text, commit=commit)
        for label, info, tasks, builtin, commit in resolved
        for task_name in tasks
        for dtype in suite.dtype
        for device in devices
        for cache in suite.cache
        for path_name, options in settings
        for env in envs
    ]

