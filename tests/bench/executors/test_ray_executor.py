"""A real Ray cluster on this machine (a head and a worker node, CPUs only) running real suites."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from ray.cluster_utils import Cluster

from loadbench.results import CASE_KEYS, load, read_run_info

NODE_ARGS = {"num_cpus": 1, "object_store_memory": 80 * 1024 * 1024}


@pytest.fixture(scope="module")
def ray_cluster(builtin_cache: Path) -> Iterator[str]:
    """Two Ray nodes, each its own raylet: samples may run on either."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    cluster = Cluster(initialize_head=True, head_node_args={**NODE_ARGS, "include_dashboard": False})
    cluster.add_node(**NODE_ARGS)
    cluster.wait_for_nodes()
    try:
        yield cluster.address
    finally:
        cluster.shutdown()


def _suite(tmp_path: Path, repeats: int, paths: str) -> Path:
    suite = tmp_path / "suite.toml"
    suite.write_text(f'repeats = {repeats}\nwarmups = 0\ncache = "warm"\npaths = {paths}\nforward_iters = 2\n'
                     '[[checkpoints]]\nbuiltin = "tiny-bert"\n')
    return suite


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "loadbench.bench.cli.main", *args, "--no-progress"]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_cli(*args), capture_output=True, text=True, timeout=600)


def _cases(out: Path) -> set[tuple[str, ...]]:
    df = load(out)
    return {tuple(str(row[k]) for k in (*CASE_KEYS, "repeat", "metric", "status")) for _, row in df.iterrows()}


def _record_fields(out: Path) -> set[tuple[str, ...]]:
    lines = (out / "samples.jsonl").read_text().splitlines()
    return {tuple(json.loads(line)) for line in lines}


def test_ray_run_has_the_local_runs_cases_and_record_schema(ray_cluster: str, builtin, cli, tmp_path: Path) -> None:
    builtin("tiny-bert")
    suite = _suite(tmp_path, 2, '["base", "task", "custom", "pipeline"]')
    local = cli("run", str(suite), "--output", str(tmp_path / "local"), "--no-progress")
    remote = _run("run", str(suite), "--executor", "ray", "--ray-address", ray_cluster,
                  "--output", str(tmp_path / "ray"))
    assert local.returncode == 0, local.stderr
    assert remote.returncode == 0, remote.stderr

    assert _cases(tmp_path / "ray") == _cases(tmp_path / "local")
    assert _record_fields(tmp_path / "ray") == _record_fields(tmp_path / "local")
    info = read_run_info(tmp_path / "ray")
    assert info["executor"]["name"] == "ray" and info["status"] == "complete"
    # One agent per Ray node, each fingerprinted where it runs; every sample names its node.
    ray_nodes = {fp["ray_node_id"] for fp in info["nodes"].values()}
    assert len(info["nodes"]) == 2 and len(ray_nodes) == 2
    measured = load(tmp_path / "ray")
    measured = measured[measured.status != "not_applicable"]
    assert set(measured["node"]) <= set(info["nodes"])
    # Both nodes are this machine: one hardware, so the summary is not split by node.
    assert measured["machine"].nunique() == 1


def _agents() -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        title = " ".join(process.info["cmdline"] or []) or process.info["name"] or ""
        if title.startswith("ray::NodeAgent"):
            found.append(process)
    return found


def test_a_killed_ray_worker_costs_its_sample_and_resume_measures_it(ray_cluster: str, builtin,
                                                                     tmp_path: Path) -> None:
    builtin("tiny-bert")
    repeats = 4
    out = tmp_path / "run"
    process = subprocess.Popen(_cli("run", str(_suite(tmp_path, repeats, '["base", "custom"]')), "--executor", "ray",
                                    "--ray-address", ray_cluster, "--output", str(out)),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    samples = out / "samples.jsonl"
    deadline = time.monotonic() + 300
    while not (samples.exists() and '"metric": "load_s"' in samples.read_text()):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.05)
    agents = _agents()
    assert len(agents) == 2
    agents[0].send_signal(signal.SIGKILL)
    stdout, stderr = process.communicate(timeout=600)

    assert process.returncode == 3, stderr
    assert f"loadbench run --resume {out}" in stderr
    assert read_run_info(out)["status"] == "interrupted"
    lost = load(out).query("error_type == 'node_lost'")
    assert len(lost) == 1 and "Ray lost the agent" in lost["error"].iloc[0]

    resumed = _run("run", "--resume", str(out))  # the run's own executor and address
    assert resumed.returncode == 0, resumed.stderr
    df = load(out)
    ok = df[(df.metric == "load_s") & (df.status == "ok")]
    assert (ok.groupby(["path", "repeat"]).size() == 1).all() and len(ok) == 2 * repeats
    assert not (df.error_type == "node_lost").any()  # measured again: the loss is superseded
    assert '"node_lost"' in samples.read_text()  # but the history is kept on disk
    assert read_run_info(out)["status"] == "complete"


def test_max_parallel_caps_the_agents_and_the_run_names_a_measuring_node(ray_cluster: str, builtin,
                                                                        tmp_path: Path) -> None:
    builtin("tiny-bert")
    out = tmp_path / "run"
    result = _run("run", str(_suite(tmp_path, 1, '["base", "custom"]')), "--executor", "ray",
                  "--ray-address", ray_cluster, "--max-parallel", "1", "--output", str(out))
    assert result.returncode == 0, result.stderr
    info = read_run_info(out)
    [(node, machine)] = info["nodes"].items()
    assert info["executor"]["max_parallel"] == 1
    assert info["fingerprint"] == machine and "ray_node_id" in info["fingerprint"]
    assert info["driver"]["hostname"]  # the coordinating machine is kept apart from the measuring one
    assert info["git_commit"] == info["driver"]["git_commit"]
    df = load(out)
    assert set(df[df.status == "ok"]["node"]) == {node}


def test_cuda_on_a_cluster_without_gpus_is_refused_before_anything_runs(ray_cluster: str, builtin,
                                                                        tmp_path: Path) -> None:
    builtin("tiny-bert")
    out = tmp_path / "run"
    result = _run("run", str(_suite(tmp_path, 1, '["base"]')), "--executor", "ray", "--ray-address", ray_cluster,
                  "--device", "cuda", "--output", str(out))
    assert result.returncode == 2
    assert "no CUDA device where the samples run" in result.stderr and len(result.stderr.splitlines()) == 1
    assert not out.exists()
