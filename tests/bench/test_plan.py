"""Planning: every checkpoint x path x task becomes a case, runnable or n/a with its reason."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from loadbench.bench.plan import plan
from loadbench.bench.suite import CheckpointEntry, EnvironmentEntry, Suite, default_suite
from loadbench.loaders import UnsupportedTask

HUB_COMMIT = "0123456789abcdef0123456789abcdef01234567"  # main and tag v1 of conftest's hub_cache
HUB_OLDER = "fedcba9876543210fedcba9876543210fedcba98"


def test_default_plan_is_three_checkpoints_by_four_paths(builtin_cache: Path) -> None:
    cases = plan(default_suite().with_overrides(device="cpu"), builtin_cache)
    assert len(cases) == 3 * 4 * 2  # checkpoints x paths x page cache (warm, cold)
    assert {(c.checkpoint, c.task) for c in cases} == {
        ("tiny-llama", "text-generation"), ("tiny-bert", "text-classification"),
        ("tiny-t5", "text2text-generation"),
    }
    assert {c.cache for c in cases} == {"warm", "cold"}
    not_applicable = [c for c in cases if c.not_applicable]
    assert [(c.checkpoint, c.path) for c in not_applicable] == [("tiny-t5", "pipeline")] * 2
    assert "no pipeline for text2text-generation" in not_applicable[0].not_applicable


def test_all_tasks_and_feature_extraction_reason(builtin_cache: Path) -> None:
    suite = Suite(checkpoints=[CheckpointEntry(builtin="tiny-bert", tasks="all")], device="cpu")
    cases = plan(suite, builtin_cache)
    assert {c.task for c in cases} == {"text-classification", "feature-extraction"}
    task_fe = next(c for c in cases if c.path == "task" and c.task == "feature-extraction")
    assert "AutoModel" in task_fe.not_applicable


def test_dtype_device_and_cache_axes_multiply(builtin_cache: Path) -> None:
    suite = Suite(checkpoints=[CheckpointEntry(builtin="tiny-bert")], paths=["base"],
                  dtype=["float32", "bfloat16"], device=["cpu", "auto"], cache=["cold"])
    cases = plan(suite, builtin_cache)
    # "auto" is the CPU here: one device, not two spellings of it
    assert sorted((c.dtype, c.device, c.cache) for c in cases) == [
        ("bfloat16", "cpu", "cold"), ("float32", "cpu", "cold")]


def test_loading_options_multiply_and_are_a_case_key(builtin_cache: Path) -> None:
    suite = Suite(checkpoints=[CheckpointEntry(builtin="tiny-bert")], paths=["base", "task"], device="cpu",
                  cache=["warm"], options={"attn_implementation": ["eager", "sdpa"], "device_map": ["default", "cpu"]})
    cases = plan(suite, builtin_cache)
    assert len(cases) == 2 * 2 * 2
    assert {c.options for c in cases} == {"attn_implementation=eager", "attn_implementation=sdpa",
                                          "device_map=cpu, attn_implementation=eager",
                                          "device_map=cpu, attn_implementation=sdpa"}
    assert all(c.key()["options"] == c.options for c in cases)
    assert "device_map=cpu, attn_implementation=sdpa" in next(c.label for c in cases if "device_map" in c.options
                                                              and "sdpa" in c.options)


def test_an_option_this_transformers_lacks_is_not_applicable(builtin_cache: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from loadbench.loaders import options

    monkeypatch.setattr(options, "parallel_switch", lambda: None)
    suite = Suite(checkpoints=[CheckpointEntry(builtin="tiny-bert")], paths=["base"], device="cpu", cache=["warm"],
                  options={"parallel_loading": ["default", "on"]})
    reasons = {c.options: c.not_applicable for c in plan(suite, builtin_cache)}
    assert reasons["default"] is None
    assert "no parallel weight loading" in (reasons["parallel_loading=on"] or "")


def test_task_the_checkpoint_cannot_do(builtin_cache: Path) -> None:
    suite = Suite(checkpoints=[CheckpointEntry(builtin="tiny-bert", tasks=["text-generation"])], device="cpu")
    with pytest.raises(UnsupportedTask, match="tiny-bert: cannot do task 'text-generation'"):
        plan(suite, builtin_cache)


def test_two_directories_with_one_name_get_distinct_labels(builtin, tmp_path: Path) -> None:
    first = tmp_path / "a" / "model"
    second = tmp_path / "b" / "model"
    shutil.copytree(builtin("tiny-bert"), first)
    shutil.copytree(builtin("tiny-bert"), second)
    suite = Suite(checkpoints=[CheckpointEntry(path=str(first)), CheckpointEntry(path=str(second))],
                  paths=["base"], device="cpu")
    labels = list(dict.fromkeys(c.checkpoint for c in plan(suite)))
    assert labels == ["model", str(second.resolve())]


def test_cuda_where_there_is_none_is_refused_before_the_run(builtin) -> None:
    from loadbench.bench.plan import NoCuda

    builtin("tiny-bert")
    suite = Suite(checkpoints=[CheckpointEntry(builtin="tiny-bert")], device=["cpu", "cuda:1"])
    with pytest.raises(NoCuda, match="device cuda:1: no CUDA device where the samples run"):
        plan(suite, cuda_available=lambda: False)
    assert {c.device for c in plan(suite, cuda_available=lambda: True)} == {"cpu", "cuda:1"}


def test_a_run_over_environments_leaves_applicability_to_each_environments_worker(builtin_cache: Path) -> None:
    # transformers 4.x has the text2text pipeline that 5.x removed: only the worker can tell.
    suite = default_suite().with_overrides(device="cpu").model_copy(update={"environments": [
        EnvironmentEntry(name="old", requirements=["transformers==4.57.6"]),
        EnvironmentEntry(name="new", python=sys.executable)]})
    cases = plan(suite, builtin_cache)
    assert {c.env for c in cases} == {"old", "new"}
    assert [c for c in cases if c.not_applicable] == []


def test_a_user_path_whose_module_is_missing_is_refused_before_the_run(builtin_cache: Path) -> None:
    from loadbench.bench.plan import UnknownPath

    suite = Suite(checkpoints=[CheckpointEntry(builtin="tiny-bert")], paths=["base", "my_loadnig:load"],
                  device="cpu", cache=["warm"])
    with pytest.raises(UnknownPath, match="path 'my_loadnig:load': no module 'my_loadnig' here; check the spelling"):
        plan(suite, builtin_cache)


def test_planning_a_user_path_never_runs_its_package(builtin_cache: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The package's __init__.py, and the module, run only in a worker: planning reads their files."""
    from loadbench.bench.plan import UnknownPath

    package = tmp_path / "planned_pkg"
    package.mkdir()
    (package / "__init__.py").write_text(f"open({str(tmp_path / 'ran')!r}, 'w').write('package')\n")
    (package / "loader.py").write_text(f"open({str(tmp_path / 'ran')!r}, 'w').write('module')\n"
                                       "if True:\n    def load(checkpoint, task, device, dtype): ...\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    suite = Suite(checkpoints=[CheckpointEntry(builtin="tiny-bert")], paths=["planned_pkg.loader:load"],
                  device="cpu", cache=["warm"])
    assert [c.not_applicable for c in plan(suite, builtin_cache)] == [None]
    with pytest.raises(UnknownPath, match=r"path 'planned_pkg.loader:lod': .*loader.py defines no 'lod' at its top"):
        plan(suite.model_copy(update={"paths": ["planned_pkg.loader:lod"]}), builtin_cache)
    with pytest.raises(UnknownPath, match="no module 'planned_pkg.nope' here"):
        plan(suite.model_copy(update={"paths": ["planned_pkg.nope:load"]}), builtin_cache)
    assert not (tmp_path / "ran").exists() and "planned_pkg" not in sys.modules


def test_shipped_fast_loaders_are_planned_like_the_four(builtin_cache: Path) -> None:
    suite = Suite(checkpoints=[CheckpointEntry(builtin="tiny-bert")],
                  paths=["base", "runai-streamer", "fastsafetensors", "tensorizer"],
                  device="cpu", cache=["warm"], options={"attn_implementation": ["default", "eager"]})
    reasons = {(c.path, c.options): c.not_applicable for c in plan(suite, builtin_cache)}
    assert reasons[("runai-streamer", "default")] is None and reasons[("fastsafetensors", "default")] is None
    assert reasons[("tensorizer", "default")] is None
    assert "takes none" in (reasons[("fastsafetensors", "attn_implementation=eager")] or "")
    assert reasons[("base", "attn_implementation=eager")] is None


def test_a_fast_loader_that_cannot_serve_the_device_is_planned_not_applicable(builtin_cache: Path) -> None:
    suite = Suite(checkpoints=[CheckpointEntry(builtin="tiny-bert")], paths=["instanttensor"], device="cpu",
                  cache=["warm"])
    (case,) = plan(suite, builtin_cache)
    assert case.not_applicable == "instanttensor loads onto cuda devices only, not 'cpu'"


def test_a_hub_checkpoint_is_labelled_by_its_id_and_carries_its_commit(hub_cache: Path) -> None:
    suite = Suite(checkpoints=[CheckpointEntry(repo="acme/tiny-llama")], paths=["base"], cache=["warm"], device="cpu")
    (case,) = plan(suite)
    assert (case.checkpoint, case.commit) == ("acme/tiny-llama", HUB_COMMIT)
    assert Path(case.checkpoint_dir) == hub_cache / "models--acme--tiny-llama" / "snapshots" / HUB_COMMIT
    assert "commit" not in case.key()  # recorded beside the case, not part of what it is


def test_a_resume_loads_the_commit_its_run_started_with(hub_cache: Path) -> None:
    # main has moved on since (a new `hf download`): the run's samples stay with the weights it began with.
    (hub_cache / "models--acme--tiny-llama" / "refs" / "main").write_text(HUB_OLDER)
    suite = Suite(checkpoints=[CheckpointEntry(repo="acme/tiny-llama")], paths=["base"], cache=["warm"], device="cpu")
    assert plan(suite)[0].commit == HUB_OLDER
    (case,) = plan(suite, commits={"acme/tiny-llama": HUB_COMMIT})
    assert (case.checkpoint, case.commit) == ("acme/tiny-llama", HUB_COMMIT)
    assert Path(case.checkpoint_dir).name == HUB_COMMIT


def test_a_settings_list_plans_just_its_pairs(builtin_cache: Path) -> None:
    from loadbench.bench.suite import SettingEntry

    suite = Suite(checkpoints=[CheckpointEntry(builtin="tiny-llama")], device="cpu", cache=["warm", "cold"],
                  settings=[SettingEntry(), SettingEntry(options={"torch_threads": 1}),
                            SettingEntry(path="runai-streamer")])
    cases = plan(suite, builtin_cache)
    assert sorted((c.cache, c.path, c.options) for c in cases) == sorted(
        (cache, path, options) for cache in ("warm", "cold")
        for path, options in (("task", "default"), ("task", "torch_threads=1"), ("runai-streamer", "default")))
    assert all(c.not_applicable is None for c in cases)
