"""The code that loads a model the way a setting does: what a user copies out of the answer."""

from __future__ import annotations

from loadbench.bench.tune.candidates import Setting
from loadbench.loaders import SHIPPED, TASKS
from loadbench.loaders.options import LOADER_THREADS_VARIABLE, LoadOptions, parallel_switch

__all__ = ["usage"]


def _switches(options: LoadOptions) -> list[str]:
    """Lines to run before the load, for the switches that are not from_pretrained keywords."""
    lines: list[str] = []
    switch = parallel_switch()
    if options.parallel_loading is not None:
        if switch == "async":
            lines.append(f'os.environ["HF_DEACTIVATE_ASYNC_LOAD"] = "{0 if options.parallel_loading else 1}"')
        else:
            lines.append(f'os.environ["HF_ENABLE_PARALLEL_LOADING"] = "{str(options.parallel_loading).lower()}"')
    if options.loading_workers is not None:
        if switch == "async":
            lines += ["import transformers.core_model_loading",
                      f"transformers.core_model_loading.GLOBAL_WORKERS = {options.loading_workers}"]
        else:
            lines.append(f'os.environ["HF_PARALLEL_LOADING_WORKERS"] = "{options.loading_workers}"')
    if options.torch_threads is not None:
        lines.append(f"torch.set_num_threads({options.torch_threads})  # for the load; set it back after")
    return lines


def usage(setting: Setting, checkpoint: str, task: str, device: str, dtype: str) -> str:
    """Python that loads ``checkpoint`` as ``setting`` does."""
    if setting.path in SHIPPED:
        shipped = SHIPPED[setting.path]
        threads = setting.options.loader_threads
        knob = ([f'os.environ["{LOADER_THREADS_VARIABLE}"] = "{threads}"  # its {shipped.threads_knob}']
                if threads is not None else [])
        imports = ["import os", ""] if knob else []
        return "\n".join([*imports, f"from {shipped.module} import {shipped.function}", "", *knob,
                          f"model = {shipped.function}({checkpoint!r}, task={task!r}, device={device!r}, "
                          f"dtype={dtype!r})"])
    auto_class = TASKS[task].auto_class or "AutoModel"
    kwargs = {**({} if dtype == "auto" else {"dtype": f"torch.{dtype}"}), **setting.options.model_kwargs()}
    arguments = "".join(f", {k}={v if k == 'dtype' else repr(v)}" for k, v in kwargs.items())
    switches = _switches(setting.options)
    needs_torch = "dtype" in kwargs or setting.options.torch_threads is not None
    imports = ["import os"] * any("os.environ" in line for line in switches) + ["import torch"] * needs_torch
    lines = [*imports, "import transformers", "", *switches,
             f"model = transformers.{auto_class}.from_pretrained({checkpoint!r}{arguments})"]
    if setting.options.device_map is None and device != "cpu":
        lines.append(f"model.to({device!r})")
    return "\n".join(lines)
