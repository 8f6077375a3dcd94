"""Suite files: the documented example parses; mistakes name the key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from loadbench.bench.suite import Suite, SuiteError, default_suite, load_suite

EXAMPLE = Path(__file__).parents[2] / "examples" / "suite.toml"


def test_documented_example_parses() -> None:
    suite = load_suite(EXAMPLE)
    assert suite.name == "example"
    assert [c.builtin for c in suite.checkpoints] == ["tiny-llama", "tiny-bert"]
    assert suite.checkpoints[1].tasks == "all"
    assert suite.repeats == 3 and suite.new_tokens == 16


def test_default_suite_is_the_three_builtins_through_four_paths() -> None:
    suite = default_suite()
    assert [c.builtin for c in suite.checkpoints] == ["tiny-llama", "tiny-bert", "tiny-t5"]
    assert suite.paths == ["base", "task", "custom", "pipeline"]


@pytest.mark.parametrize(("text", "message"), [
    ('repeat = 3\n[[checkpoints]]\nbuiltin = "tiny-llama"\n', "repeat: Extra inputs are not permitted"),
    ('repeats = "many"\n[[checkpoints]]\nbuiltin = "tiny-llama"\n', "repeats: Input should be a valid integer"),
    ('paths = ["base", "fast"]\n[[checkpoints]]\nbuiltin = "tiny-llama"\n', "paths: Value error, 'fast' is not a path"),
    ('device = "gpu"\n[[checkpoints]]\nbuiltin = "tiny-llama"\n', "device: Value error, 'gpu' must be auto, cpu"),
    ('[[checkpoints]]\nbuiltin = "a"\npath = "b"\n', "give exactly one of 'path', 'builtin' or 'repo'"),
    ('[[checkpoints]]\nbuiltin = "a"\nrevision = "v1"\n', "'revision' goes with 'repo'"),
    ('[[checkpoints]]\nrepo = "acme/x@v1"\n', "repo 'acme/x@v1': give the revision as revision = 'v1'"),
    ('[[checkpoints]]\nrepo = "acme"\n', "checkpoint 'acme': not a hub id; write it as org/name"),
    ("checkpoints = []\n", "checkpoints: List should have at least 1 item"),
    ("repeats = \n", "not valid TOML"),
])
def test_mistakes_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    suite_file = tmp_path / "suite.toml"
    suite_file.write_text(text)
    with pytest.raises(SuiteError) as caught:
        load_suite(suite_file)
    assert message in str(caught.value)
    assert str(suite_file) in str(caught.value)
    assert "\n" not in str(caught.value)


def test_relative_checkpoint_paths_are_relative_to_the_suite_file(tmp_path: Path) -> None:
    (tmp_path / "suites").mkdir()
    suite_file = tmp_path / "suites" / "s.toml"
    suite_file.write_text('[[checkpoints]]\npath = "../models/m"\n')
    assert load_suite(suite_file).checkpoints[0].path == str((tmp_path / "models" / "m").resolve())


def test_missing_suite_file(tmp_path: Path) -> None:
    with pytest.raises(SuiteError, match="no such suite file"):
        load_suite(tmp_path / "nope.toml")


def test_overrides_are_validated() -> None:
    suite = default_suite()
    assert suite.with_overrides(repeats=7, device=None).repeats == 7
    with pytest.raises(SuiteError, match="options: repeats"):
        suite.with_overrides(repeats=0)


@pytest.mark.parametrize("changes, message", [
    ({"paths": []}, "paths: Value error, give at least one value"),
    ({"paths": ["base", "base"]}, "paths: Value error, values repeat"),
    ({"repeats": 10**9}, "repeats: Input should be less than or equal to 100000"),
    ({"timeout_s": float("inf")}, "timeout_s: Input should be a finite number"),
    ({"cv_threshold": float("nan")}, "cv_threshold: Input should be a finite number"),
    ({"batch_size": 10**7}, "batch_size: Input should be less than or equal to 65536"),
    ({"options": {"devicemap": ["auto"]}}, "options: Value error, unknown loading option 'devicemap'"),
    ({"options": {"attn_implementation": []}}, "loading option attn_implementation: give at least one value"),
    ({"options": {"parallel_loading": [True, "on"]}}, "loading option parallel_loading: values repeat"),
    ({"options": {"loading_workers": [0]}}, "must be a thread count from 1 to 1024"),
    ({"options": {"safetensors_read": "lazy"}}, "must be one of mmap, eager"),
])
def test_options_out_of_range_or_repeated_name_the_key(changes: dict, message: str) -> None:
    from loadbench.bench.suite import default_suite

    with pytest.raises(SuiteError) as caught:
        default_suite().with_overrides(**changes)
    assert message in str(caught.value)


def test_a_checkpoint_listed_twice_is_refused(tmp_path: Path) -> None:
    suite = tmp_path / "s.toml"
    suite.write_text('[[checkpoints]]\nbuiltin = "tiny-bert"\n[[checkpoints]]\nbuiltin = "tiny-bert"\n')
    with pytest.raises(SuiteError, match="a checkpoint is listed twice"):
        load_suite(suite)


@pytest.mark.parametrize("key", ["trust_remote_code", "allow_bin_weights"])
def test_a_suite_file_cannot_turn_on_code_or_pickle_by_itself(tmp_path: Path, key: str) -> None:
    suite = tmp_path / "s.toml"
    suite.write_text(f'{key} = true\n[[checkpoints]]\nbuiltin = "tiny-bert"\n')
    with pytest.raises(SuiteError, match=f"a suite file cannot turn it on: pass `{key}` if you trust them"):
        load_suite(suite)
    assert getattr(load_suite(suite, allow={key: True}), key) is True


def test_option_axes_from_a_suite_file(tmp_path: Path) -> None:
    suite_file = tmp_path / "suite.toml"
    suite_file.write_text('[[checkpoints]]\nbuiltin = "tiny-llama"\n[options]\ndevice_map = ["default", "auto"]\n'
                          'parallel_loading = [true, false]\nattn_implementation = "eager"\n', encoding="utf-8")
    suite = load_suite(suite_file)
    assert [o.text for o in suite.option_combinations()] == [
        "attn_implementation=eager, parallel_loading=on", "attn_implementation=eager, parallel_loading=off",
        "device_map=auto, attn_implementation=eager, parallel_loading=on",
        "device_map=auto, attn_implementation=eager, parallel_loading=off"]
    # run.json keeps the suite as data: it must read back as the same suite.
    again = type(suite)(**suite.model_dump())
    assert again.option_combinations() == suite.option_combinations()
    assert [o.text for o in default_suite().option_combinations()] == ["default"]


def test_settings_name_each_case_whole(tmp_path: Path) -> None:
    suite = tmp_path / "s.toml"
    suite.write_text('[[checkpoints]]\nbuiltin = "tiny-bert"\n[[settings]]\npath = "task"\n'
                     '[[settings]]\noptions = {torch_threads = 1, safetensors_read = "eager"}\n'
                     '[[settings]]\npath = "runai-streamer"\n')
    loaded = load_suite(suite)
    assert [(path, options.text) for path, options in loaded.setting_pairs()] == [
        ("task", "default"), ("task", "safetensors_read=eager, torch_threads=1"), ("runai-streamer", "default")]
    # run.json keeps the suite as model_dump(): it must read back the same.
    assert Suite(**loaded.model_dump()).setting_pairs() == loaded.setting_pairs()


@pytest.mark.parametrize(("top", "bottom", "message"), [
    ('paths = ["task"]\n', "", "drop paths and [options]"),
    ("", "[options]\ntorch_threads = [1]\n", "drop paths and [options]"),
    ("", '[[settings]]\npath = "task"\noptions = {}\n', "a setting is listed twice"),
    ("", '[[settings]]\npath = "fast"\n', "'fast' is not a path"),
    ("", "[[settings]]\noptions = {torch_threads = 0}\n", "must be a thread count from 1 to 1024"),
    ("", "[[settings]]\noptions = {nope = 1}\n", "unknown loading option 'nope'"),
])
def test_a_settings_list_that_cannot_be_measured_names_why(tmp_path: Path, top: str, bottom: str,
                                                           message: str) -> None:
    suite = tmp_path / "s.toml"
    suite.write_text(f'{top}[[checkpoints]]\nbuiltin = "tiny-bert"\n[[settings]]\npath = "task"\n{bottom}')
    with pytest.raises(SuiteError, match=re.escape(message)):
        load_suite(suite)
