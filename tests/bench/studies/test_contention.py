"""The contention generator: one schedule per seed, a process that stops cleanly, bad input refused."""

from __future__ import annotations

import os
import re
import signal
import statistics
import subprocess
import sys
import time
from itertools import islice

import pytest

from loadbench.bench.studies.contention import MODULE, contention, parse_cpus, schedule


def _first(duty: float, seed: int, stream: int = 0, count: int = 200) -> list[tuple[float, float]]:
    return list(islice(schedule(duty, seed, 50.0, stream), count))


def test_a_seed_names_one_schedule() -> None:
    assert _first(0.3, 1) == _first(0.3, 1)
    assert _first(0.3, 1) != _first(0.3, 2)
    assert _first(0.3, 1, stream=0) != _first(0.3, 1, stream=1)  # each core of a generator its own bursts


@pytest.mark.parametrize("duty", [0.1, 0.3, 0.5, 0.9])
def test_the_schedule_keeps_the_duty_and_is_not_periodic(duty: float) -> None:
    bursts = _first(duty, 7, count=5000)
    busy = sum(b for b, _ in bursts)
    idle = sum(i for _, i in bursts)
    assert busy / (busy + idle) == pytest.approx(duty, abs=0.03)
    assert sum(b for b, _ in bursts) / len(bursts) == pytest.approx(0.050, rel=0.1)
    lengths = [b for b, _ in bursts]
    assert statistics.stdev(lengths) / statistics.mean(lengths) == pytest.approx(1.0, abs=0.1)  # exponential


def test_full_duty_never_idles() -> None:
    assert all(idle == 0 for _, idle in _first(1.0, 3))


def test_cpus_are_parsed_and_checked_against_those_allowed() -> None:
    assert parse_cpus("1, 0,1", [0, 1]) == [1, 0]
    with pytest.raises(ValueError, match="CPU 7 is not one"):
        parse_cpus("7", [0, 1])
    with pytest.raises(ValueError, match="'x' is not a CPU number"):
        parse_cpus("0,x", [0, 1])


def test_the_generator_runs_and_stops_on_sigterm_with_its_busy_fraction() -> None:
    with contention(0.5, seed=1, burst_ms=20) as generator:
        assert generator.started.startswith("contention: busy work on CPUs")
        assert "seed 1" in generator.started
        time.sleep(1.0)  # let it work a while: stopped before its first burst it was busy 0% of the time
        assert generator.process.poll() is None  # still running: only SIGTERM ends it
    assert generator.process.returncode == 0
    fraction = generator.busy_fraction
    assert fraction is not None and 0 < fraction <= 1


def test_the_command_stops_on_sigint_with_exit_0() -> None:
    process = subprocess.Popen([sys.executable, "-m", MODULE, "--duty", "1", "--seed", "2"],
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    assert "for 100% of the time" in process.stdout.readline()
    time.sleep(1.0)
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=30)
    assert process.returncode == 0
    found = re.search(r"busy fraction ([0-9.]+)", out)
    assert found is not None and 0 < float(found.group(1)) <= 1


@pytest.mark.parametrize(("args", "message"), [
    (["--duty", "0", "--seed", "1"], "--duty 0: give a fraction of the time in (0, 1]"),
    (["--duty", "1.5", "--seed", "1"], "--duty 1.5: give a fraction"),
    (["--duty", "nan", "--seed", "1"], "--duty nan: give a fraction"),
    (["--duty", "0.3", "--seed", "1", "--burst-ms", "-5"], "--burst-ms -5: give a positive mean burst length"),
    (["--duty", "0.3", "--seed", "1", "--minutes", "0"], "--minutes 0: give a positive duration"),
    (["--duty", "0.3", "--seed", "1", "--cpus", "4096"], "--cpus '4096': CPU 4096 is not one this process may use"),
    (["--duty", "0.3", "--seed", "1", "--cpus", "one"], "'one' is not a CPU number"),
    (["--seed", "1"], "required: --duty"),
])
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    done = subprocess.run([sys.executable, "-m", MODULE, *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1 and message in done.stderr


def test_the_context_manager_says_why_it_could_not_start() -> None:
    with pytest.raises(RuntimeError, match="--duty 2: give a fraction"), contention(2.0, seed=1):
        pass


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="no CPU affinity on this system")
def test_a_timed_run_ends_by_itself() -> None:
    done = subprocess.run([sys.executable, "-m", MODULE, "--duty", "0.5", "--seed", "3", "--minutes", "0.01"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    found = re.search(r"busy fraction ([0-9.]+)", done.stdout)
    assert found is not None and 0 < float(found.group(1)) <= 1
