"""The settings a tune tries: every loading knob this machine and its libraries offer, one at a time.

Each setting changes one thing from the default load (the checkpoint's task path with the
library's defaults): a switch, a thread count, a read mode, a placement, or who reads the
bytes (a shipped fast loader). One change at a time keeps the list short enough to
measure within minutes and makes each gain attributable; a knob that does not apply here
stays on the list with the reason, so the answer says what was not tried and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from loadbench.loaders import SHIPPED, TASKS, CheckpointInfo, path_not_applicable
from loadbench.loaders.options import LoadOptions, parallel_switch
from loadbench.vocabulary import DEFAULT_OPTIONS

__all__ = ["DEFAULT_SETTING", "Setting", "base_path", "candidates"]

DEFAULT_SETTING = DEFAULT_OPTIONS  # the name of the setting every other is measured against


@dataclass(frozen=True)
class Setting:
    """One way of loading: a path and its options, with the name the answer uses."""

    name: str
    path: str
    options: LoadOptions
    not_applicable: str | None = None

    @property
    def suite_entry(self) -> dict[str, Any]:
        """The ``[[settings]]`` table that measures it."""
        parsed = {name: value for name, value in vars(self.options).items() if value is not None}
        return {"path": self.path, "options": parsed}


def base_path(task: str) -> str:
    """The path a user would write for this task: its AutoModelFor<Task> class, or AutoModel where it has none."""
    return "task" if TASKS[task].auto_class is not None else "base"


def _option_values(device: str, cores: int) -> dict[str, list[Any]]:
    """The one-knob changes to try: each value differs from what the library does when left alone."""
    values: dict[str, list[Any]] = {}
    switch = parallel_switch()
    if switch == "async":  # 5.x: on by default, threads per tensor
        import transformers.core_model_loading as loading

        values["parallel_loading"] = [False]
        default_workers = int(loading.GLOBAL_WORKERS)
        values["loading_workers"] = [n for n in _thread_ladder(cores) if n != default_workers]
    elif switch == "threadpool":  # 4.53-4.57: off by default
        values["parallel_loading"] = [True]
        values["loading_workers"] = _thread_ladder(cores)
    values["safetensors_read"] = ["eager"]
    values["torch_threads"] = [n for n in dict.fromkeys((1, max(1, cores // 2))) if n != cores]
    # "auto" computes a placement (slow for large models, in reports); the others place by rule.
    values["device_map"] = ["auto", "cpu"] if device == "cpu" else ["auto", "sequential", device]
    return values


def _thread_ladder(cores: int) -> list[int]:
    """1, 2, 4 ... up to twice the cores (reads wait on the disk, so more threads than cores can pay), at most 16."""
    ladder, n = [], 1
    while n <= min(16, max(4, 2 * cores)):
        ladder.append(n)
        n *= 2
    return ladder


def _options_for(name: str, value: Any) -> LoadOptions:
    if name == "loading_workers" and parallel_switch() == "threadpool":
        return LoadOptions(parallel_loading=True, loading_workers=value)  # 4.x: workers act only when it is on
    return LoadOptions(**{name: value})


def candidates(info: CheckpointInfo, task: str, device: str, cores: int) -> list[Setting]:
    """The default first, then each option change, then each shipped fast loader (its threads at 1 and at the
    most the ladder tries, where it has a knob for them); n/a ones with the reason."""
    path = base_path(task)
    found = [Setting(DEFAULT_SETTING, path, LoadOptions())]
    if parallel_switch() is None:
        found.append(Setting("parallel_loading", path, LoadOptions(),
                             "this transformers has no parallel weight loading to switch (it came in 4.53)"))
    for name, values in _option_values(device, cores).items():
        for value in values:
            options = _options_for(name, value)
            found.append(Setting(options.text, path, options,
                                 path_not_applicable(path, info, TASKS[task], options, device)))
    for loader, shipped in SHIPPED.items():
        reason = path_not_applicable(loader, info, TASKS[task], LoadOptions(), device)
        found.append(Setting(loader, loader, LoadOptions(), reason))
        if shipped.threads_knob is None or reason is not None:
            continue  # a loader that cannot run here is listed once, with the reason
        for threads in dict.fromkeys((1, _thread_ladder(cores)[-1])):
            options = LoadOptions(loader_threads=threads)
            found.append(Setting(f"{loader}:{options.text}", loader, options,
                                 path_not_applicable(loader, info, TASKS[task], options, device)))
    return found
