"""Paths named module:function: found, applicable or not with the fix, and held to the paths' contract."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from loadbench.loaders import (
    SHIPPED,
    TASKS,
    LoadRequest,
    inspect_checkpoint,
    is_user_path,
    path_for,
    path_not_applicable,
)
from loadbench.loaders.common import NotApplicable
from loadbench.loaders.options import LoadOptions
from loadbench.loaders.paths.user_path import UserPath, user_path

USER_MODULE = """
from transformers import AutoModelForCausalLM, AutoTokenizer


def model_only(checkpoint, task, device, dtype):
    return AutoModelForCausalLM.from_pretrained(checkpoint).to(device)


def with_tokenizer(checkpoint, task, device, dtype):
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    tokenizer.marked_by_user_code = True
    return model_only(checkpoint, task, device, dtype), tokenizer


def not_a_model(checkpoint, task, device, dtype):
    return {"weights": 1}
"""


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "my_loading.py").write_text(textwrap.dedent(USER_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "my_loading"
    sys.modules.pop("my_loading", None)


@pytest.mark.parametrize(("name", "expected"), [
    ("base", False), ("runai-streamer", True), ("fastsafetensors", True), ("tensorizer", True),
    ("instanttensor", True), ("pkg.mod:load", True),
    ("mod:load", True), ("mod:", False), (":load", False), ("mod.load", False), ("1mod:load", False),
    ("mod:load:x", False), ("mod :load", False)])
def test_what_names_a_user_path(name: str, expected: bool) -> None:
    assert is_user_path(name) is expected


def test_a_bad_name_is_refused() -> None:
    with pytest.raises(ValueError, match="'mod.load' is not a path name or module:function"):
        user_path("mod.load")


def test_user_function_is_loaded_and_held_to_the_paths_contract(builtin, user_module: str) -> None:
    info = inspect_checkpoint(builtin("tiny-llama"))
    task = TASKS["text-generation"]
    request = LoadRequest(info.path, task.name)

    plain = path_for(f"{user_module}:model_only")
    assert plain.not_applicable(info, task) is None
    plain.preimport(info, task)
    loaded = plain.load(request, info, task)
    assert loaded.generate is not None and loaded.forward is None
    assert loaded.tokenizer.pad_token is not None  # loaded for it, as the built-in paths do
    assert not loaded.model.training

    own = path_for(f"{user_module}:with_tokenizer").load(request, info, task)
    assert own.tokenizer.marked_by_user_code

    with pytest.raises(TypeError, match="returned dict, not a transformers PreTrainedModel"):
        path_for(f"{user_module}:not_a_model").load(request, info, task)
    with pytest.raises(TypeError, match="has no function 'absent'"):
        path_for(f"{user_module}:absent").load(request, info, task)


def test_a_missing_module_is_not_applicable_with_the_install_that_fixes_it(builtin) -> None:
    info = inspect_checkpoint(builtin("tiny-llama"))
    task = TASKS["text-generation"]
    missing = UserPath("streamer", "no_such_module_here:load", "no_such_module_here", "loadbench[streamer]")
    assert missing.missing_module() == "no_such_module_here"
    assert missing.not_applicable(info, task) == ("no_such_module_here is not installed where the load runs: "
                                                  "pip install 'loadbench[streamer]'")
    assert "put it on PYTHONPATH" in (user_path("no_such_module_here:load").not_applicable(info, task) or "")


def test_shipped_loaders_name_their_extra_and_read_safetensors_only(builtin, tmp_path: Path) -> None:
    assert {p.install for p in SHIPPED.values()} == {"loadbench[runai]", "loadbench[fastsafetensors]",
                                                     "loadbench[tensorizer]", "loadbench[instanttensor]"}
    import torch

    checkpoint = tmp_path / "bin-weights"
    checkpoint.mkdir()
    source = builtin("tiny-bert")
    for file in source.iterdir():
        if file.suffix != ".safetensors":
            (checkpoint / file.name).write_bytes(file.read_bytes())
    from safetensors.torch import load_file

    torch.save(load_file(source / "model.safetensors"), checkpoint / "pytorch_model.bin")
    info = inspect_checkpoint(checkpoint, allow_bin=True)
    for path in SHIPPED.values():
        # One not installed here (instanttensor stays out of the test extra) says that first.
        expected = "safetensors weights only" if path.missing_module() is None else "is not installed"
        assert expected in (path.not_applicable(info, TASKS["feature-extraction"]) or "")


def test_a_loader_that_serves_some_devices_is_not_applicable_on_the_others(builtin) -> None:
    info = inspect_checkpoint(builtin("tiny-llama"))
    task = TASKS["text-generation"]
    cuda_only = UserPath("gpu-reader", "no_such_module_here:load", "no_such_module_here", "loadbench[gpu]",
                         devices=("cuda",))
    # The device first: installing the library would not help there.
    assert cuda_only.not_applicable(info, task, "cpu") == "gpu-reader loads onto cuda devices only, not 'cpu'"
    assert "pip install 'loadbench[gpu]'" in (cuda_only.not_applicable(info, task, "cuda:0") or "")
    assert "pip install 'loadbench[gpu]'" in (cuda_only.not_applicable(info, task) or "")  # no device: not judged
    assert (path_not_applicable("instanttensor", info, task, LoadOptions(), device="cpu")
            == "instanttensor loads onto cuda devices only, not 'cpu'")
    assert path_not_applicable("tensorizer", info, task, LoadOptions(), device="cpu") is None
    assert path_not_applicable("task", info, task, LoadOptions(), device="cpu") is None
    with pytest.raises(NotApplicable, match="cuda devices only, not 'cpu'"):  # a caller that did not ask
        SHIPPED["instanttensor"].load(LoadRequest(info.path, task.name, "cpu"), info, task)


def test_a_loader_that_writes_its_own_copy_needs_a_writable_checkpoint(builtin, monkeypatch) -> None:
    info = inspect_checkpoint(builtin("tiny-llama"))
    task = TASKS["text-generation"]
    assert SHIPPED["tensorizer"].not_applicable(info, task) is None
    # Not by chmod: root may write anyway.
    monkeypatch.setattr("loadbench.loaders.paths.user_path.os.access", lambda path, mode: False)
    assert f"{info.path} is not writable" in (SHIPPED["tensorizer"].not_applicable(info, task) or "")
    assert SHIPPED["fastsafetensors"].not_applicable(info, task) is None  # it writes nothing


def test_loading_options_do_not_apply_to_a_user_path(builtin) -> None:
    info = inspect_checkpoint(builtin("tiny-llama"))
    task = TASKS["text-generation"]
    eager = LoadOptions.parse("safetensors_read=eager")
    assert "a module:function path takes none" in (path_not_applicable("runai-streamer", info, task, eager) or "")
    assert path_not_applicable("runai-streamer", info, task, LoadOptions()) is None
    assert path_not_applicable("task", info, task, eager) is None


def test_loader_threads_apply_to_a_fast_loader_with_threads_of_its_own_only(builtin,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from loadbench.loaders.paths.user_path import UserPath

    monkeypatch.setattr(UserPath, "missing_module", lambda self: None)  # instanttensor need not be installed
    info = inspect_checkpoint(builtin("tiny-llama"))
    task = TASKS["text-generation"]
    threads = LoadOptions(loader_threads=4)
    for name in ("runai-streamer", "fastsafetensors", "tensorizer"):
        assert path_not_applicable(name, info, task, threads, "cpu") is None
    assert "has no reading threads of its own" in (path_not_applicable("instanttensor", info, task, threads) or "")
    assert "(loading_workers)" in (path_not_applicable("task", info, task, threads) or "")
    both = LoadOptions(loader_threads=4, torch_threads=1)
    assert "takes none (a shipped fast loader takes loader_threads)" in (
        path_not_applicable("runai-streamer", info, task, both) or "")


@pytest.mark.parametrize(("source", "missing"), [
    ("def load(checkpoint, task, device, dtype): ...\n", False),
    ("async def load(): ...\n", False),
    ("from os.path import join as load\n", False),
    ("load = lambda **kw: None\n", False),
    ("try:\n    from fast import load\nexcept ImportError:\n    def load(**kw): ...\n", False),
    ("def __getattr__(name): ...\n", False),  # names made at run time: the worker tells
    ("from elsewhere import *\n", False),
    ("def loader(**kw): ...\nclass Load: ...\n", True),
    ("def outer():\n    def load(): ...\n", True),  # not at the top level
])
def test_a_missing_function_is_found_in_the_source_without_importing_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str, missing: bool) -> None:
    (tmp_path / "read_not_run.py").write_text("raise SystemExit('imported')\n" + source)
    monkeypatch.syspath_prepend(str(tmp_path))
    found = user_path("read_not_run:load").missing_function()
    assert found == (str(tmp_path / "read_not_run.py") if missing else None)
    assert "read_not_run" not in sys.modules
