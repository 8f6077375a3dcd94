"""Workers forked from the zygote: fresh per sample, killed on timeout, crashes reported."""

from __future__ import annotations

import signal
import threading
import time

import psutil
import pytest

from loadbench.bench.probes.cpu_memory import WATCHER_MODULE
from loadbench.bench.sample.fork_protocol import CASE_NAME, SPARE_NAME
from loadbench.bench.sample.protocol import SampleRequest, WorkerFailed
from loadbench.bench.sample.spawn import Zygote


def _request(directory, path: str = "base", record_import: bool = False) -> SampleRequest:
    return SampleRequest(
        checkpoint_dir=str(directory), path=path, task="text-generation", device="cpu", dtype="auto",
        prompt="the river", batch_size=1, new_tokens=4, forward_iters=1, check_equivalence=False,
        record_import=record_import,
    )


def _workers() -> list[psutil.Process]:
    """The workers the zygotes forked (not the zygotes, their memory watcher, nor a spare)."""
    return [process for process in _grandchildren() if WATCHER_MODULE not in " ".join(process.cmdline())
            and process.name() not in (SPARE_NAME.decode(), CASE_NAME.decode())]


def _grandchildren() -> list[psutil.Process]:
    """Every process below the zygotes: the case zygotes, and what they and the first zygote forked."""
    return [process for child in psutil.Process().children() for process in child.children(recursive=True)
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE]


def test_each_sample_runs_in_a_fresh_process(zygote: Zygote, builtin) -> None:
    first = zygote.run(_request(builtin("tiny-llama")), timeout_s=120)
    second = zygote.run(_request(builtin("tiny-llama")), timeout_s=120)
    assert first.failures == second.failures == []
    assert first.info["pid"] != second.info["pid"]


def test_timeout_kills_the_worker(zygote: Zygote, builtin) -> None:
    zygote.run(_request(builtin("tiny-llama")), timeout_s=120)  # fork server up
    with pytest.raises(WorkerFailed) as caught:
        zygote.run(_request(builtin("tiny-llama")), timeout_s=0.05)
    assert caught.value.error_type == "timeout"
    assert "no result after 0.05 s" in str(caught.value)
    assert _workers() == []


def test_worker_killed_by_a_signal_is_reported(zygote: Zygote, builtin) -> None:
    zygote.run(_request(builtin("tiny-llama")), timeout_s=120)
    killed: list[int] = []

    def kill_first_worker() -> None:
        deadline = time.monotonic() + 60
        while not killed and time.monotonic() < deadline:
            for worker in _workers():
                worker.send_signal(signal.SIGKILL)
                killed.append(worker.pid)
            time.sleep(0.005)

    killer = threading.Thread(target=kill_first_worker)
    killer.start()
    with pytest.raises(WorkerFailed) as caught:
        zygote.run(_request(builtin("tiny-llama")), timeout_s=120)
    killer.join()
    assert killed
    assert caught.value.error_type == "crashed"
    assert "killed by SIGKILL" in str(caught.value)


def test_a_zygote_that_ended_is_replaced_before_the_next_sample(zygote: Zygote, builtin) -> None:
    from loadbench.bench.sample import spawn

    zygote.run(_request(builtin("tiny-llama")), timeout_s=120)
    ended = spawn._server().process
    ended.kill()
    ended.wait()
    # A case not seen before needs a case zygote, forked from the first one.
    reply = zygote.run(_request(builtin("tiny-llama"), "pipeline"), timeout_s=120)
    assert reply.failures == []
    assert spawn._server().process.pid != ended.pid


def test_a_sample_interrupted_mid_exchange_leaves_no_worker_and_the_next_one_runs(zygote: Zygote, builtin) -> None:
    import json

    def interrupt_at_the_partial_reply(data: bytes) -> bool:
        raise KeyboardInterrupt  # as Ctrl-C would, while the worker runs its workload

    with pytest.raises(KeyboardInterrupt):
        zygote.call(_child_main(), json.dumps(_request(builtin("tiny-llama")).to_dict()), 120,
                    interrupt_at_the_partial_reply)
    assert _workers() == []
    assert zygote.run(_request(builtin("tiny-llama")), timeout_s=120).failures == []


def _child_main():
    from loadbench.bench.sample.worker import child_main

    return child_main


def _spares() -> set[int]:
    return {p.pid for p in _grandchildren() if p.name() == SPARE_NAME.decode()}


def _new_spare(before: set[int]) -> psutil.Process:
    """The worker forked ahead, once it has named itself (a moment after the sample before it ended)."""
    deadline = time.monotonic() + 30
    while not (new := _spares() - before):
        assert time.monotonic() < deadline, "no spare was forked"
        time.sleep(0.01)
    [spare] = new
    return psutil.Process(spare)


def test_the_next_worker_is_forked_ahead_and_a_spare_killed_while_it_waits_is_replaced(zygote: Zygote,
                                                                                        builtin) -> None:
    before = _spares()
    first = zygote.run(_request(builtin("tiny-llama")), timeout_s=120)
    spare = _new_spare(before)
    before = _spares()
    second = zygote.run(_request(builtin("tiny-llama")), timeout_s=120)
    assert second.info["pid"] == spare.pid != first.info["pid"]  # the spare measured the next sample
    spare = _new_spare(before)
    spare.kill()
    deadline = time.monotonic() + 30
    while spare.status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:  # the zygote reaps it later
        time.sleep(0.01)
    third = zygote.run(_request(builtin("tiny-llama")), timeout_s=120)
    assert third.failures == [] and third.info["pid"] != spare.pid


def reply_then_kill_the_zygote(conn, payload: str, log_path: str | None) -> None:
    """A target (importable by name) whose zygote dies right after the reply is sent."""
    import os

    conn.send_bytes(b"measured")
    conn.close()
    os.kill(os.getppid(), signal.SIGKILL)


def test_a_reply_stands_when_the_zygote_dies_right_after_it(zygote: Zygote, builtin) -> None:
    from loadbench.bench.sample import spawn

    zygote.run(_request(builtin("tiny-llama")), timeout_s=120)
    before = spawn._server().process.pid
    assert zygote.call(reply_then_kill_the_zygote, "", 120) == b"measured"
    assert zygote.run(_request(builtin("tiny-llama")), timeout_s=120).failures == []
    assert spawn._server().process.pid != before



def test_the_worker_forked_ahead_is_the_next_samples_own(zygote: Zygote, builtin, tmp_path) -> None:
    """Told which sample comes next, the run forks its worker from that case's zygote, not the last one's."""
    import shutil

    from loadbench.bench.sample import spawn
    from loadbench.bench.sample.worker import import_key

    checkpoint = shutil.copytree(builtin("tiny-llama"), tmp_path / "llama")  # cases no zygote has seen
    base, task = _request(checkpoint, "base"), _request(checkpoint, "task")

    def spares_in(request: SampleRequest) -> list[int]:
        case = spawn._cases.get(import_key(request))
        assert case is not None
        return [p.pid for p in psutil.Process(case.pid).children() if p.name() == SPARE_NAME.decode()]

    zygote.run(task, timeout_s=120, then=base)
    time.sleep(0.5)
    assert spares_in(task) == []  # the next one is base's
    zygote.run(base, timeout_s=120, then=task)
    deadline = time.monotonic() + 30
    while not (spares := spares_in(task)):
        assert time.monotonic() < deadline, "no spare was forked in the next case's zygote"
        time.sleep(0.01)
    assert spares_in(base) == []
    assert zygote.run(task, timeout_s=120).info["pid"] in spares
