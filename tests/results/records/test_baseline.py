"""Named baselines stored per machine: layout, replacement, refusal of other hardware."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from loadbench.results import CorruptRun, RunWriter, Sample
from loadbench.results.comparison.comparability import CannotCompare
from loadbench.results.records.baseline import (
    BASELINES_ENV,
    BaselineError,
    NoBaseline,
    baselines_root,
    list_baselines,
    machine_key,
    resolve,
    save,
)

CASE = {"checkpoint": "tiny-bert", "path": "base", "task": "text-classification", "dtype": "auto",
        "device": "cpu", "cache": "warm"}
AMD = {"hostname": "ci-1", "cpu_model": "AMD EPYC 7B13", "cpu_count": 2, "gpus": "NVML unavailable: no driver",
       "packages": {"torch": "2.13.0+cpu", "transformers": "5.24.0"}}
H100 = {**AMD, "cpu_model": "Intel Xeon Platinum", "cpu_count": 16,
        "gpus": [{"name": "NVIDIA H100 80GB HBM3", "uuid": "GPU-1"}]}

MakeRun = Callable[..., Path]


@pytest.fixture
def make_run(tmp_path: Path) -> MakeRun:
    counter = iter(range(1000))

    def make(fingerprint: Mapping[str, object] = AMD, *, close: bool = True, samples: int = 3) -> Path:
        run_id = f"run{next(counter)}"
        writer = RunWriter.create(tmp_path / "runs" / run_id, {"run_id": run_id, "fingerprint": dict(fingerprint)})
        for i in range(samples):
            writer.append(Sample.ok(CASE, run_id, i, "load_s", 0.1 + i / 100))
        if close:
            writer.close()
        return writer.run_dir

    return make


def test_save_lays_out_machine_name_and_run(make_run: MakeRun, tmp_path: Path) -> None:
    root = tmp_path / "store"
    run = make_run()
    directory = save(run, "main", root)
    key = machine_key(AMD)
    assert directory == root / key / "main"
    assert json.loads((root / key / "machine.json").read_text()) == {
        "cpu_model": "AMD EPYC 7B13", "cpu_count": "2", "gpus": None}
    meta = json.loads((directory / "baseline.json").read_text())
    assert meta["name"] == "main" and meta["runs"] == ["run0"] and meta["machine_key"] == key
    assert (directory / "run0" / "run.json").is_file() and (directory / "run0" / "samples.jsonl").is_file()
    assert not list(root.glob(f"{key}/.*"))  # no staging left behind


def test_machine_key_is_readable_stable_and_hardware_only() -> None:
    key = machine_key(AMD)
    assert key.startswith("amd-epyc-7b13-2cpu-nogpu-") and len(key.rsplit("-", 1)[1]) == 10
    assert machine_key({"fingerprint": AMD}) == key  # a run.json works as well as flat fields
    assert machine_key({**AMD, "hostname": "other", "packages": {"torch": "2.14.0"}}) == key
    assert machine_key(H100).startswith("intel-xeon-platinum-16cpu-nvidia-h100-80gb-hbm3-")
    assert machine_key({**AMD, "cpu_count": 4}) != key


def test_resolve_finds_this_machines_baseline(make_run: MakeRun, tmp_path: Path) -> None:
    directory = save(make_run(), "main", tmp_path)
    assert resolve("main", {"fingerprint": AMD}, tmp_path) == directory
    assert resolve("main", {"cpu_model": "AMD EPYC 7B13", "cpu_count": "2", "gpus": None}, tmp_path) == directory


def test_a_baseline_from_other_hardware_is_never_used(make_run: MakeRun, tmp_path: Path) -> None:
    save(make_run(H100), "main", tmp_path)
    with pytest.raises(NoBaseline) as info:
        resolve("main", {"fingerprint": AMD}, tmp_path)
    message = str(info.value)
    assert "\n" not in message
    assert "no baseline 'main' for this machine (AMD EPYC 7B13, 2 CPUs, no GPU" in message
    assert f"exists only for other hardware: {machine_key(H100)} (Intel Xeon Platinum, 16 CPUs, NVIDIA H100" in message
    assert isinstance(info.value, CannotCompare)  # compare's exit 2
    with pytest.raises(NoBaseline, match="save one with `loadbench baseline save RUN --name nightly`"):
        resolve("nightly", {"fingerprint": AMD}, tmp_path)


def test_saving_again_replaces_and_several_runs_pool(make_run: MakeRun, tmp_path: Path) -> None:
    save(make_run(), "main", tmp_path)
    directory = save([make_run(), make_run()], "main", tmp_path)
    assert sorted(p.name for p in directory.iterdir() if p.is_dir()) == ["run1", "run2"]
    assert [b.runs for b in list_baselines(tmp_path)] == [("run1", "run2")]


def test_runs_that_cannot_be_baselines(make_run: MakeRun, tmp_path: Path) -> None:
    with pytest.raises(BaselineError, match="only a complete run"):
        save(make_run(close=False), "main", tmp_path)
    with pytest.raises(BaselineError, match="no measured samples"):
        save(make_run(samples=0), "main", tmp_path)
    with pytest.raises(BaselineError, match="different machines"):
        save([make_run(), make_run(H100)], "main", tmp_path)
    with pytest.raises(BaselineError, match="baseline name 'feature/x'"):
        save(make_run(), "feature/x", tmp_path)
    broken = make_run()
    (broken / "samples.jsonl").write_text("{not json\n{}\n")
    with pytest.raises(CorruptRun):
        save(broken, "main", tmp_path)
    assert list_baselines(tmp_path) == []


def test_root_defaults_to_env_then_cwd(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(BASELINES_ENV, raising=False)
    assert baselines_root() == Path(".loadbench/baselines")
    monkeypatch.setenv(BASELINES_ENV, str(tmp_path / "ci"))
    assert baselines_root() == tmp_path / "ci"
    assert baselines_root(tmp_path / "given") == tmp_path / "given"


def test_list_names_machines(make_run: MakeRun, tmp_path: Path) -> None:
    save(make_run(), "main", tmp_path)
    save(make_run(H100), "main", tmp_path)
    save(make_run(), "release", tmp_path)
    found = {(b.name, b.machine["cpu_model"]) for b in list_baselines(tmp_path)}
    assert found == {("main", "AMD EPYC 7B13"), ("main", "Intel Xeon Platinum"), ("release", "AMD EPYC 7B13")}


def _spread(tmp_path: Path, nodes: Mapping[str, Mapping[str, object]]) -> Path:
    run_id = "spread-" + "-".join(nodes)
    writer = RunWriter.create(tmp_path / "runs" / run_id, {"run_id": run_id, "fingerprint": dict(AMD),
                                                           "nodes": {k: dict(v) for k, v in nodes.items()}})
    for i, node in enumerate([*nodes] * 2):
        writer.append(Sample.ok(CASE, run_id, i, "load_s", 0.1, node=node))
    writer.close()
    return writer.run_dir


def test_a_run_spread_over_unlike_machines_is_no_baseline(tmp_path: Path) -> None:
    with pytest.raises(BaselineError, match="different machines") as info:
        save(_spread(tmp_path, {"amd": AMD, "h100": H100}), "main", tmp_path / "store")
    assert machine_key(AMD) in str(info.value) and machine_key(H100) in str(info.value)
    assert list_baselines(tmp_path / "store") == []


def test_a_run_spread_over_one_kind_of_machine_is_that_machines_baseline(tmp_path: Path) -> None:
    # The run's own fingerprint is an AMD box; every sample ran on H100 nodes: the baseline is theirs.
    run = _spread(tmp_path, {"h100-a": H100, "h100-b": {**H100, "hostname": "ci-9"}})
    directory = save(run, "main", tmp_path / "store")
    assert directory.parent.name == machine_key(H100)
    assert json.loads((directory.parent / "machine.json").read_text())["gpus"] == "NVIDIA H100 80GB HBM3"
