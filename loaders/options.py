"""Loading options: the knobs people turn besides the path, as axes of a suite.

A case carries its options as one canonical text (``attn_implementation=sdpa, device_map=auto``,
or ``default`` when none is set), which is a case key in every record and table; the worker
parses the same text back. Which switches exist depends on the installed transformers, so
whether an option applies is asked where the load runs, by looking for the switch itself
(a keyword of ``from_pretrained``, a loader function), never by a version number.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from typing import Any

from loadbench.errors import UserError
from loadbench.vocabulary import DEFAULT_OPTIONS

__all__ = ["DEFAULT_OPTIONS", "LOADER_THREADS_VARIABLE", "OPTION_NAMES", "LoadOptions", "OptionError", "combinations",
           "parallel_switch", "parse_value"]



class OptionError(UserError):
    """An option name or value that cannot be used; the message names it."""


@dataclass(frozen=True)
class LoadOptions:
    """One combination of loading options; None leaves the library's default."""

    device_map: str | None = None  # from_pretrained(device_map=...): "auto", "cpu", "cuda:0", ...
    attn_implementation: str | None = None  # "eager", "sdpa", "flash_attention_2", ...
    parallel_loading: bool | None = None  # transformers' threaded weight loading, on or off
    loading_workers: int | None = None  # its thread count
    safetensors_read: str | None = None  # "mmap" (memory-mapped) or "eager" (read into memory first)
    torch_threads: int | None = None  # torch's intra-op threads during the load (casts and copies run on them)
    loader_threads: int | None = None  # a shipped fast loader's own reading threads (its knob, not transformers')

    @property
    def text(self) -> str:
        """The canonical form, a case key: fields in declaration order, ``default`` when none is set."""
        parts = [f"{name}={_show(value)}" for name, value in self._set()]
        return ", ".join(parts) or DEFAULT_OPTIONS

    @classmethod
    def parse(cls, text: str) -> LoadOptions:
        if text == DEFAULT_OPTIONS:
            return cls()
        values: dict[str, Any] = {}
        for part in text.split(","):
            name, sep, raw = part.strip().partition("=")
            if not sep:
                raise OptionError(f"loading option {part.strip()!r}: expected NAME=VALUE")
            values[name] = parse_value(name, raw)
        return cls(**values)

    def _set(self) -> list[tuple[str, Any]]:
        return [(f.name, getattr(self, f.name)) for f in fields(self) if getattr(self, f.name) is not None]

    def model_kwargs(self) -> dict[str, Any]:
        """What goes to ``from_pretrained`` (the environment switches are set by :meth:`applied`)."""
        kwargs: dict[str, Any] = {}
        if self.device_map is not None:
            kwargs["device_map"] = self.device_map
        if self.attn_implementation is not None:
            kwargs["attn_implementation"] = self.attn_implementation
        if self.safetensors_read is not None and _from_pretrained_takes("disable_mmap"):
            # Without the switch (4.x) the read is memory-mapped anyway: "mmap" is the default, passed as nothing.
            kwargs["disable_mmap"] = self.safetensors_read == "eager"
        return kwargs

    def not_applicable(self) -> str | None:
        """Why the installed transformers has no such switch, or None."""
        import importlib.util

        import transformers

        installed = f"transformers {transformers.__version__}"  # not importlib.metadata: 4 ms a worker
        if self.device_map is not None and importlib.util.find_spec("accelerate") is None:
            return "device_map needs accelerate, which is not installed: pip install 'loadbench[device-map]'"
        if self.safetensors_read == "eager" and not _from_pretrained_takes("disable_mmap"):
            # "mmap" applies: it is what such a release always does, so both ends of a sweep have the row.
            return (f"safetensors_read=eager: {installed} has no switch to read safetensors into memory first "
                    "(from_pretrained's disable_mmap, added in 5.x); it always memory-maps them, "
                    "which safetensors_read=mmap measures")
        if (self.parallel_loading is not None or self.loading_workers is not None) and parallel_switch() is None:
            return f"{installed} has no parallel weight loading to switch (HF_ENABLE_PARALLEL_LOADING came in 4.53)"
        return None

    @contextmanager
    def applied(self) -> Iterator[None]:
        """The environment switches, set for the load and put back after it."""
        switch = parallel_switch() if self.parallel_loading is not None or self.loading_workers is not None else None
        saved_env = {k: os.environ.get(k) for k in _SWITCH_VARIABLES}
        saved_workers = None
        saved_threads = None
        try:
            if self.loader_threads is not None:
                # The fast loaders read it (loaders/paths/fast_loaders.py); Run:ai's streamer reads its own.
                os.environ[LOADER_THREADS_VARIABLE] = str(self.loader_threads)
                os.environ["RUNAI_STREAMER_CONCURRENCY"] = str(self.loader_threads)
            if self.torch_threads is not None:
                import torch

                saved_threads = torch.get_num_threads()
                torch.set_num_threads(self.torch_threads)
            if switch == "threadpool":  # 4.53–4.57: off by default, threads per shard file
                if self.parallel_loading is not None:
                    os.environ["HF_ENABLE_PARALLEL_LOADING"] = "true" if self.parallel_loading else "false"
                if self.loading_workers is not None:
                    os.environ["HF_PARALLEL_LOADING_WORKERS"] = str(self.loading_workers)
            elif switch == "async":  # 5.x: on by default, threads per tensor
                if self.parallel_loading is not None:
                    os.environ.pop("HF_DEACTIVATE_ASYNC_LOAD", None)
                    if not self.parallel_loading:
                        os.environ["HF_DEACTIVATE_ASYNC_LOAD"] = "1"
                if self.loading_workers is not None:
                    # A module constant, read at each load: the only way 5.x offers to set it.
                    import transformers.core_model_loading as loading

                    saved_workers = loading.GLOBAL_WORKERS
                    loading.GLOBAL_WORKERS = self.loading_workers
            yield
        finally:
            for key, value in saved_env.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            if saved_workers is not None:
                import transformers.core_model_loading as loading

                loading.GLOBAL_WORKERS = saved_workers
            if saved_threads is not None:
                import torch

                torch.set_num_threads(saved_threads)

    def without_placement(self) -> LoadOptions:
        """These options minus device_map: how a reference model is loaded to compare with."""
        return replace(self, device_map=None)


LOADER_THREADS_VARIABLE = "LOADBENCH_LOADER_THREADS"
_SWITCH_VARIABLES = ("HF_ENABLE_PARALLEL_LOADING", "HF_PARALLEL_LOADING_WORKERS", "HF_DEACTIVATE_ASYNC_LOAD",
                     LOADER_THREADS_VARIABLE, "RUNAI_STREAMER_CONCURRENCY")
OPTION_NAMES: tuple[str, ...] = tuple(f.name for f in fields(LoadOptions))
_CHOICES = {"safetensors_read": ("mmap", "eager")}
_BOOLEANS = {"on": True, "true": True, "1": True, "off": False, "false": False, "0": False}


def parse_value(name: str, raw: object) -> Any:
    """A value for option ``name`` from a suite (str, bool, int) or a command line (str).

    ``default`` (any option) leaves the library's default: None.
    """
    if name not in OPTION_NAMES:
        raise OptionError(f"unknown loading option {name!r}; known: {', '.join(OPTION_NAMES)}")
    if raw == DEFAULT_OPTIONS:
        return None
    text = str(raw).strip().lower() if isinstance(raw, bool | str) else raw
    if name == "parallel_loading":
        if isinstance(raw, bool):
            return raw
        if text not in _BOOLEANS:
            raise OptionError(f"loading option parallel_loading: {raw!r} is not on or off")
        return _BOOLEANS[str(text)]
    if name in ("loading_workers", "torch_threads", "loader_threads"):
        try:
            workers = int(str(raw)) if not isinstance(raw, bool) else 0  # true is not a thread count
        except ValueError:
            raise OptionError(f"loading option {name}: {raw!r} is not a whole number") from None
        if not 1 <= workers <= 1024:
            raise OptionError(f"loading option {name}: {raw!r} must be a thread count from 1 to 1024")
        return workers
    if not isinstance(raw, str) or not raw.strip() or any(c in raw for c in ",= \t\n"):
        raise OptionError(f"loading option {name}: {raw!r} must be a word (no spaces, commas or '=')")
    if name in _CHOICES and raw not in _CHOICES[name]:
        raise OptionError(f"loading option {name}: {raw!r} must be one of {', '.join(_CHOICES[name])}")
    return raw


def _show(value: Any) -> str:
    return ("on" if value else "off") if isinstance(value, bool) else str(value)


def _from_pretrained_takes(keyword: str) -> bool:
    from transformers import PreTrainedModel

    return keyword in inspect.signature(PreTrainedModel.from_pretrained).parameters


def parallel_switch() -> str | None:
    """Which parallel loading the installed transformers has: ``async`` (5.x), ``threadpool`` (4.53+) or None."""
    import importlib.util

    if importlib.util.find_spec("transformers.core_model_loading") is not None:
        import transformers.core_model_loading as loading

        if hasattr(loading, "GLOBAL_WORKERS"):
            return "async"
    import transformers.modeling_utils as modeling

    return "threadpool" if hasattr(modeling, "load_shard_files_with_threadpool") else None


def combinations(axes: dict[str, list[Any]]) -> list[LoadOptions]:
    """Every combination of the axes' values (each already parsed), in the order written."""
    import itertools

    names = list(axes)
    return [LoadOptions(**dict(zip(names, values))) for values in itertools.product(*(axes[n] for n in names))]
