"""Python environments as an axis of a run: one agent process per environment, samples interleaved.

A run that names environments (``--env base=PATH``, ``[[environments]]``) measures every
case in each of them. Each environment gets an agent (bench/executors/env_agent.py) started with
its own interpreter, holding its own zygote, so a sample in ``head`` imports head's
libraries and ``base``'s imports base's. The runner hands this executor one block of
samples at a time (a case in every environment, back to back), so what the host does
meanwhile falls on both sides of a pair alike.
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from loadbench.bench.executors.base import Finished, Job
from loadbench.bench.fingerprint import local_cuda_available, node_id
from loadbench.bench.sample.protocol import OLDEST_PROTOCOL, PROTOCOL_VERSION, WorkerFailed, decode_outcome
from loadbench.bench.sample.zygote_channel import KILL_GRACE_S
from loadbench.errors import UserError
from loadbench.vocabulary import NODE_LOST

if TYPE_CHECKING:
    from loadbench.bench.suite import EnvironmentEntry, Suite

__all__ = ["EnvironmentsExecutor", "UnusableEnvironment", "check_environments_unchanged", "interpreter_of",
           "start_timeout_s"]

AGENT_MODULE = "loadbench.bench.executors.env_agent"
# Where releases before the bench/ rooms kept the agent. An environment with such a release
# still speaks the protocol (the handshake checks the version), so a base installed from an
# older commit can be compared with a head installed from a newer one.
LEGACY_AGENT_MODULES = ("loadbench.bench.env_agent",)
# Runs the first agent module the environment's loadbench has; with none, Python's own
# "No module named ..." line, which _why_it_ended reads.
_START_AGENT = (
    "import importlib.util, runpy, sys\n"
    "def found(name):\n"
    "    try:\n"
    "        return importlib.util.find_spec(name) is not None\n"
    "    except ModuleNotFoundError:\n"
    "        return False\n"
    f"names = {(AGENT_MODULE, *LEGACY_AGENT_MODULES)!r}\n"
    "name = next((n for n in names if found(n)), names[0])\n"
    "runpy.run_module(name, run_name='__main__', alter_sys=True)\n"
)
# How long an environment's interpreter may take to answer the handshake and to start its zygote
# (it imports torch and transformers: seconds, more on a cold disk). A setting: docs/ENVIRONMENTS.md.
TIMEOUT_VARIABLE = "LOADBENCH_ENV_TIMEOUT_S"
START_TIMEOUT_S = 300.0
WAITING_NOTICE_S = 5.0  # silent this long: say on stderr what the run is waiting for
WAITING_REPEAT_S = 30.0
# An agent enforces each sample's timeout itself; past this much more, the agent is taken for hung.
AGENT_GRACE_S = 60.0
# What the agent prints on stderr when its zygote (which imports torch and transformers) cannot start.
ZYGOTE_FAILED = "loadbench agent: its zygote ended while importing"


class UnusableEnvironment(UserError):
    """An environment cannot be used: no interpreter there, no loadbench, or another protocol."""


class EnvironmentChanged(UserError):
    """An environment of an interrupted run reports other versions than when the run started."""


def start_timeout_s() -> float:
    """How long an environment may take to start its agent and zygote: LOADBENCH_ENV_TIMEOUT_S, or 300 s."""
    text = os.environ.get(TIMEOUT_VARIABLE, "").strip()
    if not text:
        return START_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise UserError(f"{TIMEOUT_VARIABLE}={text!r}: not a number of seconds; give one above 0, e.g. 600")
    return value


# A line on stderr that ends a Python traceback: "ValueError: ...", "torch.OutOfMemoryError: ...".
_ERROR_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b(: .*)?$")


def _errors_in(lines: list[str]) -> list[str]:
    """The error line of each traceback on a process's stderr, first to last."""
    return [line.strip() for line in lines if _ERROR_LINE.match(line)]


def _versions(machine: dict[str, Any]) -> dict[str, Any]:
    """What an environment's fingerprint says it runs: its Python and its packages' versions."""
    return {"python": machine.get("python"), **(machine.get("packages") or {})}


def check_environments_unchanged(run_dir: Path, recorded: object, now: dict[str, dict[str, Any]]) -> None:
    """Refuse a resume whose environments run other versions than when the run started.

    ``recorded`` is run.json's ``nodes``, ``now`` the fingerprints the agents just gave.
    Samples on two versions under one environment's name would be pooled as one.
    """
    if not isinstance(recorded, dict):
        return
    before = {m.get("environment"): _versions(m) for m in recorded.values()
              if isinstance(m, dict) and m.get("environment")}
    for machine in now.values():
        name = machine.get("environment")
        if name not in before:
            continue
        was, is_ = before[name], _versions(machine)
        changed = [f"{key} {was.get(key) or '(none)'} -> {is_.get(key) or '(none)'}"
                   for key in sorted(set(was) | set(is_)) if was.get(key) != is_.get(key)]
        if changed:
            raise EnvironmentChanged(
                f"environment {name!r} ({machine.get('python_executable')}): changed since {run_dir} started "
                f"({', '.join(changed)}); resuming would pool two library versions under one label: restore it, "
                "or start a new run")


def interpreter_of(entry: EnvironmentEntry) -> Path:
    """The Python interpreter an environment names: a venv directory's, or the file itself."""
    assert entry.python is not None, "an environment given as requirements is built first"
    return _interpreter_at(entry.name, entry.python)


def _interpreter_at(name: str, location: str) -> Path:
    given = Path(location).expanduser()
    where = f"environment {name!r} ({location})"
    if given.is_dir():
        for candidate in (given / "bin" / "python", given / "Scripts" / "python.exe"):
            if candidate.is_file():
                return candidate.absolute()
        raise UnusableEnvironment(f"{where}: no bin/python in that directory; give a virtual environment's "
                                "directory or a Python interpreter")
    if not given.is_file():
        raise UnusableEnvironment(f"{where}: no such file or directory; give a virtual environment's directory, "
                                  "a Python interpreter, or requirements with a version (transformers==4.57.6)")
    if not os.access(given, os.X_OK):
        raise UnusableEnvironment(f"{where}: not executable; give a Python interpreter")
    return given.absolute()


class _Agent:
    """One environment's agent process, as the driver sees it."""

    def __init__(self, entry: EnvironmentEntry, location: str) -> None:
        self.entry = entry
        self.python = _interpreter_at(entry.name, location)  # checked again at each restart
        self.node = ""
        self._ended = False  # its stdout is closed: nothing more will come
        self._protocol = PROTOCOL_VERSION  # what its hello says it speaks
        self._pending = b""  # what it wrote on stdout past the last whole line
        self._noise: list[str] = []  # what it printed on stdout that is not the protocol (a banner)
        self._stderr: IO[bytes] = tempfile.TemporaryFile()
        self._process = subprocess.Popen(
            # -P: the driver's working directory (a checkout, say) must not shadow the environment's loadbench.
            [str(self.python), "-P", "-c", _START_AGENT], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self._stderr, env=_agent_environment(), start_new_session=True)

    def _where(self) -> str:
        return f"environment {self.entry.name!r} ({self.python})"

    def _why_it_ended(self) -> str:
        """Why it stopped answering, from its exit and the errors on its stderr (its zygote's too)."""
        try:
            self._process.wait(KILL_GRACE_S)
        except subprocess.TimeoutExpired:
            self._kill()
            return "it stopped answering" + self._banner()
        self._stderr.seek(0)
        lines = [ln for ln in self._stderr.read().decode("utf-8", "replace").splitlines() if ln.strip()]
        last = lines[-1].strip() if lines else f"exit code {self._process.returncode}"
        if "No module named 'loadbench'" in last:
            return "loadbench is not installed there; install this version of loadbench into it"
        if "No module named" in last and "env_agent" in last:
            return (f"its loadbench is older than environments (worker protocol {PROTOCOL_VERSION}); install this "
                    "version of loadbench into it")
        errors = _errors_in(lines)
        if errors and any(ZYGOTE_FAILED in line for line in lines):
            return (f"its zygote cannot import the environment's libraries: {errors[0].rstrip('.')}; every sample "
                    "there would fail the same way (so would a --resume): repair or rebuild that environment")
        shown = last if not errors or errors[0] == errors[-1] else f"{errors[-1]} (after {errors[0]})"
        return f"its agent ended: {shown}" + self._banner()

    def _banner(self) -> str:
        if not self._noise:
            return ""
        return f"; before that it printed {len(self._noise)} line(s) that are not the protocol: {self._noise[0]!r}"

    def _wait_message(self, what: str, timeout_s: float) -> dict[str, Any]:
        """Its next message, saying on stderr what the run is waiting for while it stays silent."""
        started = time.monotonic()
        notice_at = started + min(WAITING_NOTICE_S, timeout_s / 2)
        while True:
            left = started + timeout_s - time.monotonic()
            if left <= 0:
                self._kill()
                raise UnusableEnvironment(
                    f"{self._where()}: no answer within {timeout_s:g} s while {what}; check that "
                    f"`{self.python} -c pass` runs, or allow longer with {TIMEOUT_VARIABLE}=SECONDS" + self._banner())
            message = self._read(min(left, max(0.0, notice_at - time.monotonic())))
            if message is not None:
                return message
            if self._ended or not self.alive:
                raise UnusableEnvironment(f"{self._where()}: {self._why_it_ended()}")
            if time.monotonic() >= notice_at:
                print(f"loadbench: {self._where()}: {what}, {time.monotonic() - started:.0f} s so far (gives up "
                      f"after {timeout_s:g} s; {TIMEOUT_VARIABLE})", file=sys.stderr, flush=True)
                notice_at += WAITING_REPEAT_S

    def _read(self, timeout_s: float) -> dict[str, Any] | None:
        """The agent's next message; None when it ended or said nothing in time.

        Lines that are not the protocol (a wrapper's banner, a conda activation message) are
        skipped, and kept to report if the handshake then fails.
        """
        assert self._process.stdout is not None
        deadline = time.monotonic() + timeout_s
        while True:
            line = self._next_line(deadline)
            if line is None:
                return None
            try:
                message = json.loads(line)
            except ValueError:
                message = None
            if isinstance(message, dict):
                return message
            if len(self._noise) < 20:
                self._noise.append(line.decode("utf-8", "replace").strip()[:200])

    def _next_line(self, deadline: float) -> bytes | None:
        """Its next line on stdout, read from the descriptor itself: a buffered reader could hold
        a second line (a banner and the handshake arrive together) that select() does not see."""
        assert self._process.stdout is not None
        while b"\n" not in self._pending:
            ready, _, _ = select.select([self._process.stdout], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                return None
            chunk = os.read(self._process.stdout.fileno(), 1 << 16)
            if not chunk:
                self._ended = True
                if self._pending.strip() and len(self._noise) < 20:
                    self._noise.append(self._pending.decode("utf-8", "replace").strip()[:200])
                return None
            self._pending += chunk
        line, self._pending = self._pending.split(b"\n", 1)
        return line

    def _write(self, message: dict[str, Any]) -> bool:
        assert self._process.stdin is not None
        try:
            self._process.stdin.write(json.dumps(message).encode("utf-8") + b"\n")
            self._process.stdin.flush()
            return True
        except (BrokenPipeError, OSError):
            return False

    def start(self, run_id: str, log_path: str, threads: int | None, pin_cpus: bool) -> dict[str, Any]:
        """Check the agent speaks this protocol; start its zygote; return its fingerprint."""
        self.ask_to_start(run_id, log_path, threads, pin_cpus)
        return self.started()

    def ask_to_start(self, run_id: str, log_path: str, threads: int | None, pin_cpus: bool) -> None:
        """The first half of ``start``: check the protocol and send ``start``, not waiting for the zygote.

        The run asks every environment first, so their zygotes import side by side.
        """
        timeout_s = start_timeout_s()
        hello = self._wait_message("waiting for its interpreter to start loadbench's agent", timeout_s)
        protocol = hello.get("protocol")
        if not (isinstance(protocol, int) and OLDEST_PROTOCOL <= protocol <= PROTOCOL_VERSION):
            raise UnusableEnvironment(
                f"{self._where()}: its loadbench {hello.get('loadbench') or '(unknown version)'} speaks worker "
                f"protocol {protocol}, this one {OLDEST_PROTOCOL} to {PROTOCOL_VERSION}; install the same loadbench "
                "there")
        self._protocol = protocol
        sent = self._write({"op": "start", "run_id": run_id, "log_path": str(Path(log_path).absolute()),
                            "threads": threads,
                            "pin_cpus": pin_cpus})
        if not sent:
            raise UnusableEnvironment(f"{self._where()}: {self._why_it_ended()}")

    def started(self) -> dict[str, Any]:
        """The second half of ``start``: the fingerprint, once its zygote has imported."""
        answer = self._wait_message("waiting for its zygote to import torch and transformers", start_timeout_s())
        if not isinstance(answer.get("machine"), dict):
            raise UnusableEnvironment(f"{self._where()}: {self._why_it_ended()}")
        machine = {**answer["machine"], "environment": self.entry.name,
                   **({"requirements": self.entry.requirements} if self.entry.requirements else {})}
        self.node = node_id(machine)
        return machine

    def measure(self, job: Job) -> Finished:
        sent = self._write({"op": "measure", "request": job.request.to_dict(self._protocol),
                            "timeout_s": job.timeout_s})
        answer = self._read(job.timeout_s + AGENT_GRACE_S) if sent else None
        if answer is None:
            try:
                self._process.wait(1.0)  # it has just closed its end, or it hangs
                why = self._why_it_ended()
            except subprocess.TimeoutExpired:
                why = f"its agent gave no answer within {job.timeout_s + AGENT_GRACE_S:g} s"
            self.close()
            return Finished(job.index, self.node, failure=WorkerFailed(NODE_LOST, f"{self._where()}: {why}"))
        try:
            return Finished(job.index, self.node, reply=decode_outcome(answer))
        except WorkerFailed as exc:
            return Finished(job.index, self.node, failure=exc)

    @property
    def alive(self) -> bool:
        return self._process.poll() is None

    def close(self) -> None:
        if self._process.stdin is not None and not self._process.stdin.closed:
            try:
                self._process.stdin.close()  # end of input: the agent returns
            except OSError:
                pass
        try:
            self._process.wait(KILL_GRACE_S)
        except subprocess.TimeoutExpired:
            self._kill()
        self._stderr.close()

    def _kill(self) -> None:
        """Busy in a sample, or hung: the agent, its zygote and the worker share its session's group."""
        try:
            os.killpg(self._process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self._process.wait()


def _location(entry: EnvironmentEntry) -> str:
    """Where the entry's interpreter is: its ``python``, or the environment built from its requirements."""
    if entry.requirements is None:
        assert entry.python is not None  # the suite's validator allows exactly one of the two
        return entry.python
    from loadbench.bench.executors.env_build import ensure_environment

    return str(ensure_environment(entry.name, entry.requirements).path)


def _agent_environment() -> dict[str, str]:
    # The driver's own virtual environment must not leak into another's interpreter.
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME", "__PYVENV_LAUNCHER__")}


class EnvironmentsExecutor:
    """This machine, one sample at a time, each in the agent of the environment its job names."""

    name = "local"
    settings: dict[str, Any] = {}
    on_this_machine = True
    in_this_process = False  # each environment's agent has its own interpreter and fingerprint

    def __init__(self, suite: Suite) -> None:
        self._suite = suite
        self._entries = {entry.name: entry for entry in suite.environments}
        # Environments given as requirements are built (or found built) first: a failed build
        # stops the run before anything is written.
        self._locations = {name: _location(entry) for name, entry in self._entries.items()}
        # Started now: their imports take seconds, done while the run is planned.
        self._agents = {name: _Agent(entry, self._locations[name]) for name, entry in self._entries.items()}
        self._run: tuple[str, str] | None = None
        self._machines: dict[str, dict[str, Any]] = {}  # each environment's fingerprint when the run started

    def run_fields(self) -> dict[str, Any]:
        return {}

    def cuda_available(self) -> bool:
        return local_cuda_available()

    def start(self, run_id: str, log_path: str) -> dict[str, dict[str, Any]]:
        self._run = (run_id, log_path)
        for agent in self._agents.values():
            agent.ask_to_start(run_id, log_path, self._suite.threads, self._suite.pin_cpus)
        nodes = {}
        for name, agent in self._agents.items():
            machine = agent.started()
            nodes[agent.node] = self._machines[name] = machine
        return nodes

    def _agent(self, env: str) -> _Agent:
        """The environment's agent; a fresh one after a lost one, which must run the same versions.

        Raises UnusableEnvironment when it cannot start again, or now runs other versions.
        """
        agent = self._agents[env]
        if not agent.alive and self._run is not None:
            # A lost agent loses one sample; the next one gets a fresh agent.
            agent = self._agents[env] = _Agent(self._entries[env], self._locations[env])
            machine = agent.start(*self._run, self._suite.threads, self._suite.pin_cpus)
            try:
                check_environments_unchanged(Path(self._run[1]).parent, {env: self._machines.get(env, {})},
                                             {agent.node: machine})
            except EnvironmentChanged as exc:
                agent.close()
                raise UnusableEnvironment(str(exc)) from None
        return agent

    def run(self, jobs: Sequence[Job], started: Callable[[Job], None]) -> Iterator[Finished]:
        for job in jobs:
            started(job)
            if job.env not in self._agents:
                yield Finished(job.index, "", failure=WorkerFailed(
                    "unknown_environment", f"no environment {job.env!r} in this run"))
                continue
            try:
                agent = self._agent(job.env)
            except UnusableEnvironment as exc:
                yield Finished(job.index, "", failure=WorkerFailed(NODE_LOST, str(exc)))
                continue
            yield agent.measure(job)

    def close(self) -> None:
        for agent in self._agents.values():
            agent.close()

