"""Loading options: one canonical text per combination, parsed back the same; switches set and put back."""

from __future__ import annotations

import os

import pytest

from loadbench.loaders import options as options_module
from loadbench.loaders.options import OPTION_NAMES, LoadOptions, OptionError, combinations, parse_value


def test_text_is_canonical_and_parses_back() -> None:
    opts = LoadOptions(attn_implementation="eager", device_map="auto", parallel_loading=False, loading_workers=2,
                       safetensors_read="eager")
    assert opts.text == ("device_map=auto, attn_implementation=eager, parallel_loading=off, loading_workers=2, "
                         "safetensors_read=eager")
    assert LoadOptions.parse(opts.text) == opts
    assert LoadOptions().text == "default" and LoadOptions.parse("default") == LoadOptions()


@pytest.mark.parametrize(("name", "raw", "expected"), [
    ("parallel_loading", True, True), ("parallel_loading", "off", False), ("parallel_loading", "ON", True),
    ("loading_workers", 8, 8), ("loading_workers", "3", 3), ("safetensors_read", "mmap", "mmap"),
    ("device_map", "default", None), ("attn_implementation", "sdpa", "sdpa"),
])
def test_values_from_suites_and_command_lines(name: str, raw: object, expected: object) -> None:
    assert parse_value(name, raw) == expected


@pytest.mark.parametrize(("name", "raw", "words"), [
    ("devicemap", "auto", "unknown loading option 'devicemap'"),
    ("parallel_loading", "maybe", "not on or off"),
    ("loading_workers", "many", "not a whole number"),
    ("loading_workers", 0, "from 1 to 1024"),
    ("loading_workers", True, "from 1 to 1024"),
    ("safetensors_read", "lazy", "must be one of mmap, eager"),
    ("attn_implementation", "a,b", "must be a word"),
    ("device_map", 3, "must be a word"),
])
def test_bad_values_name_the_option(name: str, raw: object, words: str) -> None:
    with pytest.raises(OptionError, match=words):
        parse_value(name, raw)


def test_combinations_are_the_product_in_written_order() -> None:
    found = [o.text for o in combinations({"attn_implementation": ["eager", "sdpa"], "device_map": [None, "cpu"]})]
    assert found == ["attn_implementation=eager", "device_map=cpu, attn_implementation=eager",
                     "attn_implementation=sdpa", "device_map=cpu, attn_implementation=sdpa"]
    assert [o.text for o in combinations({})] == ["default"]


def test_model_kwargs() -> None:
    assert LoadOptions().model_kwargs() == {}
    assert LoadOptions(device_map="cpu", attn_implementation="eager", safetensors_read="eager").model_kwargs() == {
        "device_map": "cpu", "attn_implementation": "eager", "disable_mmap": True}
    assert LoadOptions(safetensors_read="mmap").model_kwargs() == {"disable_mmap": False}


def test_parallel_switches_are_set_for_the_load_and_put_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_DEACTIVATE_ASYNC_LOAD", "keep-me")
    monkeypatch.delenv("HF_ENABLE_PARALLEL_LOADING", raising=False)
    switch = options_module.parallel_switch()
    assert switch in ("async", "threadpool")  # the supported range has one or the other
    with LoadOptions(parallel_loading=False, loading_workers=3).applied():
        if switch == "async":
            import transformers.core_model_loading as loading

            assert os.environ["HF_DEACTIVATE_ASYNC_LOAD"] == "1" and loading.GLOBAL_WORKERS == 3
        else:
            assert os.environ["HF_ENABLE_PARALLEL_LOADING"] == "false"
            assert os.environ["HF_PARALLEL_LOADING_WORKERS"] == "3"
    assert os.environ["HF_DEACTIVATE_ASYNC_LOAD"] == "keep-me"
    assert "HF_ENABLE_PARALLEL_LOADING" not in os.environ
    if switch == "async":
        import transformers.core_model_loading as loading

        assert loading.GLOBAL_WORKERS != 3 or os.cpu_count() == 3


def test_not_applicable_names_the_missing_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    assert LoadOptions().not_applicable() is None
    monkeypatch.setattr(options_module, "parallel_switch", lambda: None)
    assert "no parallel weight loading" in (LoadOptions(parallel_loading=True).not_applicable() or "")
    monkeypatch.setattr(options_module, "_from_pretrained_takes", lambda keyword: False)
    # Without disable_mmap (4.x) safetensors are always memory-mapped: mmap is the default, eager impossible.
    assert "no switch to read safetensors into memory first" in (LoadOptions(safetensors_read="eager").not_applicable()
                                                                 or "")
    assert LoadOptions(safetensors_read="mmap").not_applicable() is None
    assert LoadOptions(safetensors_read="mmap").model_kwargs() == {}  # 4.x would take disable_mmap for the model
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "accelerate" else real(name, *a))
    assert "pip install 'loadbench[device-map]'" in (LoadOptions(device_map="cpu").not_applicable() or "")


def test_every_option_has_a_field() -> None:
    assert OPTION_NAMES == ("device_map", "attn_implementation", "parallel_loading", "loading_workers",
                            "safetensors_read", "torch_threads", "loader_threads")


def test_mmap_applies_on_the_oldest_transformers_and_eager_says_why_not(builtin, cli, tmp_path) -> None:
    """The real 4.46.3 environment, through the CLI: memory-mapped reads are its only way."""
    from loadbench.results.records.store import read_samples

    oldest = os.environ.get("LOADBENCH_OLDEST_ENV")
    if not oldest:
        pytest.skip("no transformers 4.46.3 environment: set LOADBENCH_OLDEST_ENV (tests/test_supported_versions.py)")
    builtin("tiny-bert")
    run = tmp_path / "run"
    result = cli("run", "--checkpoint", "tiny-bert", "--paths", "base", "--env", f"old={oldest}",
                 "--option", "safetensors_read=mmap,eager", "--repeats", "1", "--warmups", "0", "--cache", "warm",
                 "--no-progress", "--output", str(run))
    assert result.returncode == 0, result.stderr
    loads = {r["options"]: r for r in read_samples(run) if r["metric"] == "load_s"}
    assert loads["safetensors_read=mmap"]["status"] == "ok" and loads["safetensors_read=mmap"]["value"] > 0
    eager = loads["safetensors_read=eager"]
    assert eager["status"] == "not_applicable"
    assert eager["reason"].startswith("safetensors_read=eager: transformers 4.46.3 has no switch to read safetensors")


def test_torch_threads_hold_for_the_load_only() -> None:
    import torch

    before = torch.get_num_threads()
    wanted = 1 if before != 1 else 2
    with LoadOptions(torch_threads=wanted).applied():
        assert torch.get_num_threads() == wanted
    assert torch.get_num_threads() == before
    assert LoadOptions.parse(LoadOptions(torch_threads=3).text) == LoadOptions(torch_threads=3)
