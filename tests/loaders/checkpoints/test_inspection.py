"""inspect_checkpoint refuses, with one line naming the file, what a load would get wrong.

Every case is a real file: shards written with torch.save and safetensors, indexes that
point outside the directory, non-UTF-8 bytes, a directory where a file should be.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from loadbench.loaders import PATHS, TASKS
from loadbench.loaders.checkpoints.inspection import CheckpointError, inspect_checkpoint

INDEX = "model.safetensors.index.json"


def _copy(builtin: Any, name: str, dest: Path) -> Path:
    shutil.copytree(builtin(name), dest)
    return dest


def _refused(path: Path, *needles: str, **flags: bool) -> str:
    with pytest.raises(CheckpointError) as caught:
        inspect_checkpoint(path, **flags)
    message = str(caught.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, message
    return message


def _edit_config(ckpt: Path, **changes: Any) -> Path:
    config = json.loads((ckpt / "config.json").read_text())
    config.update(changes)
    (ckpt / "config.json").write_text(json.dumps(config))
    return ckpt / "config.json"


def _write_index(ckpt: Path, index: Any) -> Path:
    (ckpt / INDEX).write_text(json.dumps(index))
    return ckpt / INDEX


def _split(ckpt: Path, second: str) -> dict[str, str]:
    """Re-save tiny-llama's weights as two shards: a safetensors one and ``second``
    (a .bin name is written with torch.save), with an index naming both."""
    import torch
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(ckpt / "model.safetensors"))
    (ckpt / "model.safetensors").unlink()
    names = sorted(tensors)
    first, rest = names[: len(names) // 2], names[len(names) // 2:]
    save_file({k: tensors[k] for k in first}, str(ckpt / "model-00001-of-00002.safetensors"))
    if second.endswith(".bin"):
        torch.save({k: tensors[k] for k in rest}, ckpt / second)
    else:
        save_file({k: tensors[k] for k in rest}, str(ckpt / second))
    weight_map = {k: "model-00001-of-00002.safetensors" for k in first} | {k: second for k in rest}
    _write_index(ckpt, {"metadata": {}, "weight_map": weight_map})
    return weight_map


def test_index_naming_a_pickle_shard_is_refused_unless_allowed(builtin, tmp_path: Path) -> None:
    ckpt = _copy(builtin, "tiny-llama", tmp_path / "mixed")
    _split(ckpt, "pytorch_model-00002-of-00002.bin")
    _refused(ckpt, str(ckpt / INDEX), "'pytorch_model-00002-of-00002.bin' is pickle weights",
             "can run code when loaded", "`allow_bin_weights`")
    info = inspect_checkpoint(ckpt, allow_bin=True)
    assert info.sharded and "pytorch_model-00002-of-00002.bin" in info.weight_files


@pytest.mark.parametrize("allow_bin", [False, True])
def test_index_naming_a_file_outside_the_directory_is_always_refused(
        builtin, tmp_path: Path, allow_bin: bool) -> None:
    ckpt = _copy(builtin, "tiny-llama", tmp_path / "escape")
    weight_map = _split(ckpt, "model-00002-of-00002.safetensors")
    shutil.move(ckpt / "model-00002-of-00002.safetensors", tmp_path / "outside.safetensors")
    (ckpt / "inside.safetensors").symlink_to(tmp_path / "outside.safetensors")
    (ckpt / "sub").symlink_to(tmp_path, target_is_directory=True)
    for name in ("../outside.safetensors", "/etc/hostname", str(tmp_path / "outside.safetensors"),
                 "inside.safetensors", "sub/outside.safetensors", "a/../../outside.safetensors"):
        _write_index(ckpt, {"weight_map": {k: name if "00002" in v else v for k, v in weight_map.items()}})
        _refused(ckpt, str(ckpt / INDEX), f"shard {name!r} is outside the checkpoint directory",
                 allow_bin=allow_bin)


def test_hub_cache_snapshot_whose_shards_link_into_blobs_is_accepted(builtin, tmp_path: Path) -> None:
    """The layout huggingface_hub downloads to: every file of a snapshot links to ../../blobs."""
    repo = tmp_path / "models--someone--tiny"
    snapshot = _copy(builtin, "tiny-llama-sharded", repo / "snapshots" / "0123abc")
    (repo / "blobs").mkdir()
    for shard in sorted(snapshot.glob("model-*.safetensors")):
        blob = repo / "blobs" / f"blob-{shard.name}"
        shutil.move(shard, blob)
        shard.symlink_to(Path("../../blobs") / blob.name)
    assert inspect_checkpoint(snapshot).sharded


@pytest.mark.parametrize(("index", "needle"), [
    ({"weight_map": {}}, "its 'weight_map' names no tensors, so the model would be measured with random weights"),
    ({"weight_map": []}, "not a valid shard index"),
    ({"weight_map": {"lm_head.weight": 3}}, "not a valid shard index"),
    ({"metadata": {}}, "not a valid shard index"),
    (["weight_map"], "not a valid shard index"),
])
def test_index_with_no_usable_weight_map_is_refused(builtin, tmp_path: Path, index: Any, needle: str) -> None:
    ckpt = _copy(builtin, "tiny-llama-sharded", tmp_path / "index")
    _write_index(ckpt, index)
    _refused(ckpt, str(ckpt / INDEX), needle)


def test_index_that_is_not_json_text_is_refused(builtin, tmp_path: Path) -> None:
    ckpt = _copy(builtin, "tiny-llama-sharded", tmp_path / "index")
    (ckpt / INDEX).write_bytes(b'{"weight_map": {"a": "model-\xff.safetensors"}}')
    _refused(ckpt, str(ckpt / INDEX), "not UTF-8")
    (ckpt / INDEX).write_text('{"weight_map": ')
    _refused(ckpt, str(ckpt / INDEX), "not valid JSON")
    (ckpt / INDEX).unlink()
    (ckpt / INDEX).mkdir()
    _refused(ckpt, str(ckpt / INDEX), "is a directory")


@pytest.mark.parametrize("metadata", [None, {"format": "pt"}])
def test_safetensors_file_without_tensors_is_refused(builtin, tmp_path: Path, metadata: Any) -> None:
    from safetensors.torch import save_file

    ckpt = _copy(builtin, "tiny-llama", tmp_path / "empty")
    save_file({}, str(ckpt / "model.safetensors"), metadata=metadata)
    _refused(ckpt, str(ckpt / "model.safetensors"), "holds no tensors", "random weights")


def test_a_shard_without_tensors_is_refused(builtin, tmp_path: Path) -> None:
    from safetensors.torch import save_file

    ckpt = _copy(builtin, "tiny-llama-sharded", tmp_path / "empty-shard")
    shard = sorted(ckpt.glob("model-*.safetensors"))[-1]
    save_file({}, str(shard))
    _refused(ckpt, str(shard), "holds no tensors")


@pytest.mark.parametrize(("changes", "needle"), [
    ({"model_type": 5}, "'model_type' must be a non-empty string, not 5"),
    ({"model_type": ""}, "'model_type' must be a non-empty string"),
    ({"architectures": "LlamaForCausalLM"}, "'architectures' must be a list of class names"),
    ({"architectures": [5]}, "'architectures' must be a list of class names, not [5]"),
    ({"is_encoder_decoder": "yes"}, "'is_encoder_decoder' must be true or false"),
    ({"auto_map": ["configuration_x.XConfig"]}, "'auto_map' must be an object"),
    ({"hidden_size": "big"}, "transformers cannot read it (Validation error for field 'hidden_size'"),
])
def test_config_with_wrong_types_is_refused(builtin, tmp_path: Path, changes: dict[str, Any], needle: str) -> None:
    config = _edit_config(_copy(builtin, "tiny-llama", tmp_path / "typed"), **changes)
    _refused(config.parent, str(config), needle)


def test_config_that_is_not_a_json_object_or_not_text_is_refused(builtin, tmp_path: Path) -> None:
    ckpt = _copy(builtin, "tiny-llama", tmp_path / "config")
    config = ckpt / "config.json"
    config.write_text("[1, 2]")
    _refused(ckpt, str(config), "not a JSON object (list)")
    config.write_bytes(b'{"model_type": "llama\xff"}')
    _refused(ckpt, str(config), "not UTF-8 text")
    config.unlink()
    config.mkdir()
    _refused(ckpt, str(config), "is a directory")


def _remote_code_checkpoint(builtin: Any, dest: Path, sentinel: Path, model_type: str = "x-llama") -> Path:
    """tiny-llama re-declared by its own code: importing that code leaves a file in ``sentinel``."""
    ckpt = _copy(builtin, "tiny-llama", dest)
    (ckpt / "configuration_x.py").write_text(
        "import os\nfrom transformers import LlamaConfig\n\n"
        f"open(os.path.join({str(sentinel)!r}, f'imported-{{os.getpid()}}'), 'w').close()\n\n\n"
        f"class XConfig(LlamaConfig):\n    model_type = {model_type!r}\n"
    )
    _edit_config(ckpt, model_type=model_type, architectures=["XForCausalLM"], auto_map={
        "AutoConfig": "configuration_x.XConfig", "AutoModelForCausalLM": "modeling_x.XForCausalLM"})
    return ckpt


def test_remote_code_checkpoint_is_planned_from_config_json_alone(builtin, tmp_path: Path) -> None:
    import sys

    sentinel = tmp_path / "sentinel"
    sentinel.mkdir()
    ckpt = _remote_code_checkpoint(builtin, tmp_path / "remote", sentinel)
    _refused(ckpt, "needs the checkpoint's own code", "`trust_remote_code`")
    info = inspect_checkpoint(ckpt, trust_remote_code=True)
    assert (info.model_type, info.tasks, info.remote_code) == ("x-llama", ("text-generation",), True)
    assert PATHS["custom"].not_applicable(info, TASKS["text-generation"])  # a reason, not a failure
    _edit_config(ckpt, auto_map={"AutoConfig": "configuration_x.XConfig", "AutoModel": "modeling_x.XModel",
                                 "AutoModelForCausalLM": "modeling_x.XForCausalLM"})
    assert inspect_checkpoint(ckpt, trust_remote_code=True).tasks == ("text-generation", "feature-extraction")
    _edit_config(ckpt, auto_map={"AutoConfig": "configuration_x.XConfig"})
    _refused(ckpt, "its auto_map names none of the classes loadbench loads", trust_remote_code=True)
    assert not list(sentinel.iterdir())
    assert not [name for name in sys.modules if "configuration_x" in name]


def test_known_architecture_with_an_auto_map_does_not_import_its_code(builtin, tmp_path: Path) -> None:
    """transformers' AutoConfig would import auto_map's config class under trust_remote_code=True."""
    sentinel = tmp_path / "sentinel"
    sentinel.mkdir()
    ckpt = _remote_code_checkpoint(builtin, tmp_path / "remote-llama", sentinel, model_type="llama")
    info = inspect_checkpoint(ckpt, trust_remote_code=True)
    assert (info.model_type, info.remote_code, info.primary_task) == ("llama", False, "text-generation")
    assert not list(sentinel.iterdir())


def test_an_empty_architectures_list_is_refused_not_guessed(builtin, tmp_path: Path) -> None:
    ckpt = _copy(builtin, "tiny-bert", tmp_path / "no-class")
    _edit_config(ckpt, architectures=[])
    message = _refused(ckpt)
    assert message == (f"{ckpt / 'config.json'}: 'architectures' is an empty list, so the task it was saved for "
                       "cannot be told; write its class (e.g. [\"LlamaForCausalLM\"]), or delete the key to measure "
                       "it as feature extraction")


def test_a_snapshot_whose_blob_is_gone_says_it_is_incomplete(hub_cache: Path) -> None:
    snapshot = hub_cache / "models--acme--tiny-llama" / "snapshots" / "0123456789abcdef0123456789abcdef01234567"  # main
    (snapshot / "model.safetensors").resolve().unlink()  # the blob, as a pruned or interrupted cache leaves it
    assert _refused(snapshot) == (
        f"{snapshot}: an incomplete snapshot in the Hugging Face cache: model.safetensors links to a blob that is "
        "gone; complete it with `hf download acme/tiny-llama --revision 0123456789abcdef0123456789abcdef01234567`")


def test_a_dangling_or_looping_link_is_named_as_such(builtin, tmp_path: Path) -> None:
    ckpt = _copy(builtin, "tiny-bert", tmp_path / "linked")
    (ckpt / "model.safetensors").rename(tmp_path / "elsewhere.safetensors")
    (ckpt / "model.safetensors").symlink_to(tmp_path / "gone.safetensors")
    assert _refused(ckpt) == (f"{ckpt / 'model.safetensors'}: a symbolic link to a file that is gone; copy the file "
                              "in, or re-save the checkpoint")
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    assert _refused(loop) == (f"{loop}: a symbolic link to nothing (its target is gone, or it loops); give the "
                              "checkpoint's directory itself")
