"""The executor seam: what the runner records when an executor loses or cannot run samples."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from loadbench.bench import api
from loadbench.bench.executors.base import ExecutorError, Finished, Job
from loadbench.bench.executors.factory import make_executor
from loadbench.bench.executors.local import LocalExecutor, worker_cpus
from loadbench.bench.executors.ray_executor import Slot, slots_for
from loadbench.bench.runner import run_suite
from loadbench.bench.sample.protocol import SampleReply, WorkerFailed
from loadbench.bench.suite import CheckpointEntry, Suite
from loadbench.results import load, read_run_info, read_samples
from loadbench.vocabulary import NODE_LOST

REPLY = SampleReply(metrics=[{"metric": "load_s", "value": 0.25}])


class ScriptedExecutor:
    """Answers every job with REPLY, except: loses job ``lose`` with its node, stops before ``stop_at``."""

    name = "scripted"
    settings: dict[str, Any] = {}
    on_this_machine = False
    in_this_process = False

    def __init__(self, lose: int | None = None, stop_at: int | None = None) -> None:
        self.lose, self.stop_at = lose, stop_at
        self.ran: list[Job] = []

    def start(self, run_id: str, log_path: str) -> dict[str, dict[str, Any]]:
        return {"node-a": {"hostname": "a", "cpu_model": "cpu", "cpu_count": 2, "gpus": []}}

    def cuda_available(self) -> bool:
        return False

    def run_fields(self) -> dict[str, Any]:
        return {}

    def run(self, jobs: Sequence[Job], started: Callable[[Job], None]) -> Iterator[Finished]:
        for job in jobs:
            if job.index == self.stop_at:
                return
            started(job)
            self.ran.append(job)
            if job.index == self.lose:
                yield Finished(job.index, "node-a", failure=WorkerFailed(NODE_LOST, "node went away"))
            else:
                yield Finished(job.index, "node-a", reply=REPLY)

    def close(self) -> None:
        pass


def _suite(builtin) -> Suite:
    builtin("tiny-bert")
    return Suite(checkpoints=[CheckpointEntry(builtin="tiny-bert")], paths=["base", "custom"], cache=["warm"],
                 repeats=3, warmups=0, seed=7)


def test_lost_and_unrun_samples_leave_the_run_open_and_resume_takes_exactly_them(builtin, tmp_path: Path) -> None:
    suite = _suite(builtin)
    outcome = run_suite(suite, tmp_path / "run", executor=ScriptedExecutor(lose=1, stop_at=4))
    assert (outcome.samples, outcome.lost) == (4, 1 + 2)  # job 1 lost, jobs 4 and 5 never ran
    assert read_run_info(outcome.run_dir)["status"] == "interrupted"
    assert all(r["node"] == "node-a" for r in read_samples(outcome.run_dir) if r["status"] != "not_applicable")

    again = ScriptedExecutor()
    resumed = api.resume(outcome.run_dir, executor=again, reports=False)
    assert len(again.ran) == 3 and resumed.lost == 0
    df = load(outcome.run_dir)
    ok = df[(df.metric == "load_s") & (df.status == "ok")]
    assert len(ok) == 6 and not (df.error_type == NODE_LOST).any()
    assert read_run_info(outcome.run_dir)["status"] == "complete"


def test_a_case_failure_is_not_retaken_by_resume(builtin, tmp_path: Path) -> None:
    class Failing(ScriptedExecutor):
        def run(self, jobs, started):
            for job in jobs:
                started(job)
                yield Finished(job.index, "node-a", failure=WorkerFailed("crashed", "worker killed by SIGKILL"))

    outcome = run_suite(_suite(builtin), tmp_path / "run", executor=Failing())
    assert outcome.lost == 0 and read_run_info(outcome.run_dir)["status"] == "complete"


def test_a_ray_run_resumes_only_with_an_executor(builtin, tmp_path: Path) -> None:
    outcome = run_suite(_suite(builtin), tmp_path / "run", executor=ScriptedExecutor(stop_at=2))
    with pytest.raises(ExecutorError, match="same executor"):
        api.resume(outcome.run_dir, reports=False)


def test_local_options_that_need_ray_are_refused() -> None:
    suite = Suite(checkpoints=[CheckpointEntry(builtin="tiny-bert")])
    with pytest.raises(ExecutorError, match="`max_parallel` needs the ray executor"):
        make_executor("local", suite, max_parallel=4)
    with pytest.raises(ExecutorError, match="give 1 or more"):
        make_executor("ray", suite, max_parallel=0)
    with pytest.raises(ExecutorError, match="`ray_address` needs the ray executor"):
        make_executor("local", suite, address="10.0.0.1:6379")
    assert isinstance(make_executor("local", suite), LocalExecutor)
    assert isinstance(make_executor(None, suite), LocalExecutor)  # the default
    with pytest.raises(ExecutorError, match="`executor` 'bogus': choose one of local, ray"):
        make_executor("bogus", suite)
    paired = suite.model_copy(update={"environments": [{"name": "a", "python": "python"}]})
    with pytest.raises(ExecutorError, match="a run over `environments` needs the local executor"):
        make_executor("ray", paired)


def test_worker_cpus_leaves_a_core_and_pins_to_the_last_ones() -> None:
    threads, cpus = worker_cpus(None, pin=True)
    allowed = sorted(__import__("os").sched_getaffinity(0))
    assert threads == max(1, len(allowed) - 1)
    assert cpus == allowed[-threads:]
    assert worker_cpus(1, pin=False) == (1, None)


def _node(node_id: str, cpus: float, gpus: float = 0, alive: bool = True) -> dict[str, Any]:
    resources = {"CPU": cpus, **({"GPU": gpus} if gpus else {})}
    return {"NodeID": node_id, "NodeManagerAddress": f"10.0.0.{node_id}", "Alive": alive, "Resources": resources}


def test_slots_claim_whole_nodes_by_default_and_skip_dead_or_cpu_less_ones() -> None:
    nodes = [_node("1", 0), _node("2", 8, 4), _node("3", 16), _node("4", 8, alive=False)]
    assert slots_for(nodes, share_node=False, need_gpu=False) == [
        Slot("3", "10.0.0.3", 16, 0), Slot("2", "10.0.0.2", 8, 4)]  # CPU-only nodes first
    assert slots_for(nodes, share_node=False, need_gpu=True)[0] == Slot("2", "10.0.0.2", 8, 4)


def test_shared_nodes_give_one_slot_per_gpu_never_a_shared_gpu() -> None:
    slots = slots_for([_node("2", 8, 4), _node("3", 16)], share_node=True, need_gpu=True)
    assert [s.gpus for s in slots] == [1.0, 1.0, 1.0, 1.0, 0]
    assert all(s.cpus == 2 for s in slots[:4])


def test_an_unreachable_ray_head_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port that was just free: nothing listens there now
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", "loadbench.bench.cli.main", "run", "--executor", "ray",
                             "--ray-address", f"127.0.0.1:{port}", "--output", str(out), "--no-progress"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"loadbench: error: cannot reach the Ray head at 127.0.0.1:{port} (Connection refused); "
        "start it with 'ray start --head' or check --ray-address"]
    assert not out.exists()


BAD_WORKER = '''
def send_garbage(conn, payload, log_path):
    """A worker that answers, but not with a result: a value that is not a number."""
    conn.send_bytes(b'{"metrics": [{"metric": "load_s", "value": "fast"}], "failures": [], '
                    b'"not_applicable": [], "info": {}}')
    conn.close()
'''


def _run_with_worker(builtin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str, name: str,
                     repeats: int) -> api.RunResult:
    """A run whose forks run ``name`` from ``source`` instead of the real worker."""
    import importlib

    # A module the fork server can import by name: each fork takes this process's sys.path.
    (tmp_path / f"loadbench_worker_{name}.py").write_text(source, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module(f"loadbench_worker_{name}")
    executor = LocalExecutor(*worker_cpus(None, pin=True), target=getattr(module, name))
    return api.run(_suite(builtin).with_overrides(repeats=repeats), output=tmp_path / "run", executor=executor,
                   reports=False)


def test_a_malformed_reply_is_that_samples_failure_on_the_local_executor(
        builtin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = _run_with_worker(builtin, tmp_path, monkeypatch, BAD_WORKER, "send_garbage", repeats=2)
    assert result.complete and result.samples == 4 and result.failed_samples == 4
    records = read_samples(result.run_dir)
    assert len(records) == 4 and {r["metric"] for r in records} == {"load_s"}
    assert {r["error_type"] for r in records} == {"bad_reply"}
    assert all("malformed metric in worker reply" in r["error"] for r in records)
    assert read_run_info(result.run_dir)["status"] == "complete"


DYING_WORKER = '''
import os, signal
from loadbench.bench.sample.protocol import SampleReply, encode_partial

def load_then_die(conn, payload, log_path):
    """A worker whose load was measured, then killed in its workload (as the OOM killer would)."""
    reply = SampleReply(info={"resident_dtype": "float32"})
    reply.ok("load_s", 0.25)
    conn.send_bytes(encode_partial(reply, "forward_tokens_per_s"))
    os.kill(os.getpid(), signal.SIGKILL)
'''


def test_a_worker_killed_in_its_workload_keeps_its_load_and_fails_the_workload(
        builtin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = _run_with_worker(builtin, tmp_path, monkeypatch, DYING_WORKER, "load_then_die", repeats=1)
    assert result.complete and result.failed_samples == 2
    records = read_samples(result.run_dir)
    by_metric = {(r["path"], r["metric"]): r for r in records}
    for path in ("base", "custom"):
        assert by_metric[(path, "load_s")]["status"] == "ok" and by_metric[(path, "load_s")]["value"] == 0.25
        failure = by_metric[(path, "forward_tokens_per_s")]
        assert failure["error_type"] == "crashed" and "SIGKILL" in failure["error"]
        # Its load, the failure, and the import its case's zygote timed (recorded on the first measured sample).
        assert failure["resident_dtype"] == "float32" and failure["sample_records"] == 3
        assert by_metric[(path, "import_s")]["status"] == "ok"
