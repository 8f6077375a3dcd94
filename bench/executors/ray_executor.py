"""Samples on a Ray cluster: Ray places and watches the agents, loadbench only queues samples.

Placement is Ray's: each agent is an actor that claims resources on one node (by
default all of that node's CPUs and GPUs, so two samples never share a node; with the
suite's ``share_node`` one GPU each). Ray reports a lost node or a killed agent; the
sample that agent was measuring is recorded as ``node_lost`` and the rest of the queue
goes to the agents still alive.
"""

from __future__ import annotations

import socket
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from loadbench.bench.executors.base import Finished, Job
from loadbench.bench.sample.protocol import WorkerFailed, decode_outcome
from loadbench.bench.suite import Suite
from loadbench.errors import UserError
from loadbench.vocabulary import NODE_LOST

__all__ = ["RayExecutor", "RayUnavailable", "Slot", "slots_for"]

# An agent that cannot get its resources in this time is left out (the node is busy).
AGENT_START_TIMEOUT_S = 120.0
# Ray itself retries an unreachable head for minutes; a closed port should fail at once.
HEAD_PROBE_TIMEOUT_S = 5.0


class RayUnavailable(UserError):
    """Ray is not installed or the cluster cannot be reached."""


@dataclass(frozen=True)
class Slot:
    """Resources one agent claims on one node."""

    node_id: str  # Ray's node id
    address: str
    cpus: float
    gpus: float


def slots_for(nodes: list[dict[str, Any]], share_node: bool, need_gpu: bool) -> list[Slot]:
    """Where agents go, from ``ray.nodes()``: one per node, or one per GPU when nodes are shared.

    A node without CPUs in Ray's resources (a head started with --num-cpus=0) runs no
    samples. GPU nodes come first when some samples need a GPU, last otherwise, so a
    ``--max-parallel`` limit leaves GPU nodes free for others when they are not needed.
    """
    slots: list[Slot] = []
    for node in nodes:
        resources = node.get("Resources") or {}
        cpus, gpus = float(resources.get("CPU", 0)), float(resources.get("GPU", 0))
        if not node.get("Alive") or cpus < 1:
            continue
        if share_node and gpus >= 2:
            slots += [Slot(node["NodeID"], node.get("NodeManagerAddress", "?"), cpus // gpus, 1.0)
                      for _ in range(int(gpus))]
        else:
            slots.append(Slot(node["NodeID"], node.get("NodeManagerAddress", "?"), cpus, gpus))
    return sorted(slots, key=lambda s: (s.gpus > 0) != need_gpu)


def _probe_head(address: str | None) -> None:
    """Refuse a ``host:port`` nothing listens on, before Ray spends minutes retrying it."""
    if address is None or address == "auto" or "://" in address:
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise RayUnavailable(f"`ray_address` {address}: give the head as host:port (e.g. 10.0.0.5:6379) or 'auto'")
    try:
        socket.create_connection((host, int(port)), timeout=HEAD_PROBE_TIMEOUT_S).close()
    except OSError as exc:
        raise RayUnavailable(f"cannot reach the Ray head at {address} ({exc.strerror or exc}); start it with "
                             "'ray start --head' or check `ray_address`") from None


@dataclass
class _Agent:
    handle: Any
    slot: Slot
    node: str = ""  # loadbench's node id, from the agent's fingerprint

    def can_run(self, job: Job) -> bool:
        return self.slot.gpus > 0 or not job.request.device.startswith("cuda")


class RayExecutor:
    """Runs jobs on the agents of a Ray cluster, at most ``max_parallel`` at once."""

    name = "ray"
    on_this_machine = False
    in_this_process = False

    def __init__(self, suite: Suite, *, address: str | None = None, max_parallel: int | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise RayUnavailable("the ray executor needs Ray: install the ray extra "
                                 "(pip install -e '.[ray]' in a loadbench checkout)") from None
        self._ray = ray
        self._suite = suite
        self._address, self._max_parallel = address, max_parallel
        # Recorded in run.json, so --resume can reach the same cluster the same way.
        self.settings: dict[str, Any] = {"address": address, "max_parallel": max_parallel,
                                         "share_node": suite.share_node}
        self._agents: list[_Agent] = []
        self._lost: list[_Agent] = []
        self._connected = False

    def _connect(self) -> None:
        if self._connected:
            return
        address = self._address
        _probe_head(address)
        try:
            self._ray.init(address=address, log_to_driver=False, configure_logging=False,
                           include_dashboard=False, ignore_reinit_error=True)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = address or "a local Ray"
            raise RayUnavailable(f"cannot reach the Ray cluster at {where} ({str(exc).splitlines()[0]}); "
                                 "check `ray_address` (host:port of the head, or 'auto')") from None
        self._connected = True

    def run_fields(self) -> dict[str, Any]:
        return {}

    def cuda_available(self) -> bool:
        self._connect()
        return float(self._ray.cluster_resources().get("GPU", 0)) > 0

    def start(self, run_id: str, log_path: str) -> dict[str, dict[str, Any]]:
        """Place the agents and read each node's fingerprint; busy nodes are left out."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        from loadbench.bench.executors.ray_agent import NodeAgent

        self._connect()
        ray = self._ray
        slots = slots_for(ray.nodes(), self._suite.share_node, need_gpu=self._need_gpu())
        slots = slots[:self._max_parallel] if self._max_parallel else slots
        if not slots:
            raise RayUnavailable("the Ray cluster has no live node with CPUs to run samples on")
        if self._need_gpu() and not any(slot.gpus for slot in slots):
            raise RayUnavailable("the suite asks for a cuda device, but no node of the Ray cluster offers a GPU "
                                 "('ray status' lists them); use `device` cpu or add GPU nodes")
        agent_class = ray.remote(NodeAgent)
        agents = [_Agent(agent_class.options(
            num_cpus=slot.cpus, num_gpus=slot.gpus, max_restarts=0, max_concurrency=1,
            scheduling_strategy=NodeAffinitySchedulingStrategy(slot.node_id, soft=False),
        ).remote(run_id, self._suite.threads, self._suite.pin_cpus, slot.node_id), slot) for slot in slots]
        described = {agent.handle.describe.remote(): agent for agent in agents}
        ready, pending = ray.wait(list(described), num_returns=len(described), timeout=AGENT_START_TIMEOUT_S)
        nodes: dict[str, dict[str, Any]] = {}
        for ref in ready:
            agent = described[ref]
            try:
                agent.node, nodes[agent.node] = ray.get(ref)
            except ray.exceptions.RayError:
                continue  # the node went away while starting: its slot is simply not used
            self._agents.append(agent)
        for ref in pending:
            ray.kill(described[ref].handle)
        if not self._agents:
            raise RayUnavailable(f"no Ray agent started within {AGENT_START_TIMEOUT_S:g} s: "
                                 "the cluster's nodes are busy or cannot import loadbench")
        return nodes

    def _need_gpu(self) -> bool:
        # "auto" means a GPU only where the cluster has one, so it never needs one.
        return any(d.startswith("cuda") for d in self._suite.device)

    def run(self, jobs: Sequence[Job], started: Callable[[Job], None]) -> Iterator[Finished]:
        ray = self._ray
        queue = deque(jobs)
        idle = list(self._agents)
        running: dict[Any, tuple[_Agent, Job]] = {}
        while queue or running:
            for agent in list(idle):
                job = next((j for j in queue if agent.can_run(j)), None)
                if job is None:
                    continue
                queue.remove(job)
                idle.remove(agent)
                started(job)
                running[agent.handle.measure.remote(job.request.to_dict(), job.timeout_s)] = (agent, job)
            if not running:
                return  # what is left needs a node no longer there: the runner counts it unrun
            (ref,), _ = ray.wait(list(running), num_returns=1)
            agent, job = running.pop(ref)
            try:
                answer = ray.get(ref)
            except ray.exceptions.RayTaskError as exc:  # the agent's own code raised: not the node's fault
                idle.append(agent)
                yield Finished(job.index, agent.node, failure=WorkerFailed(type(exc.cause).__name__, str(exc.cause)))
                continue
            except ray.exceptions.RayError as exc:  # actor or node died (or unreachable): no more samples
                self._agents.remove(agent)
                self._lost.append(agent)  # killed at close, in case it was only unreachable
                message = f"Ray lost the agent on {agent.slot.address} mid-sample: {str(exc).strip().splitlines()[0]}"
                yield Finished(job.index, agent.node, failure=WorkerFailed(NODE_LOST, message))
                continue
            idle.append(agent)
            yield _finished(job, agent.node, answer)

    def close(self) -> None:
        for agent in self._agents + self._lost:
            try:
                self._ray.kill(agent.handle)
            except Exception:  # already dead, or the cluster is gone: nothing left to release
                pass
        self._agents, self._lost = [], []
        if self._connected:
            self._ray.shutdown()
            self._connected = False


def _finished(job: Job, node: str, answer: dict[str, Any]) -> Finished:
    """An agent's answer as the local executor gives it: a checked reply, or why there is none."""
    try:
        return Finished(job.index, node, reply=decode_outcome(answer))
    except WorkerFailed as exc:
        return Finished(job.index, node, failure=exc)
