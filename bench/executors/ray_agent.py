"""The part of a Ray run that lives on a node: one agent per slot, samples one at a time.

An agent is a Ray actor holding the node's resources; it never loads a model itself.
Each sample is measured, as locally, by a fresh fork of a zygote the agent starts on
its own node, so a long-lived Ray worker process never touches CUDA or a checkpoint.
Plain Python: Ray wraps it with ``ray.remote`` in the driver, so importing this module
needs no Ray.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from loadbench.bench.executors.local import LocalExecutor, worker_cpus
from loadbench.bench.fingerprint import node_id
from loadbench.bench.sample.protocol import SampleRequest, encode_outcome

__all__ = ["NodeAgent"]


class NodeAgent:
    """Measures samples on the node it was placed on, each in a fresh worker.

    The measuring itself is the local executor's, run on this node: the same zygote,
    threads and CPU pinning as a run on one machine.
    """

    def __init__(self, run_id: str, threads: int | None, pin_cpus: bool, ray_node_id: str) -> None:
        self._local = LocalExecutor(*worker_cpus(threads, pin_cpus))
        log_dir = Path(tempfile.gettempdir()) / f"loadbench-{run_id}"
        log_dir.mkdir(parents=True, exist_ok=True)
        log_path = str(log_dir / f"worker-{os.getpid()}.log")
        [machine] = self._local.start(run_id, log_path).values()
        self.machine = {**machine, "ray_node_id": ray_node_id,
                        "gpus_claimed": os.environ.get("CUDA_VISIBLE_DEVICES")}
        # The id leaves out the log's name (it holds this process's pid): the same node in
        # the same state keeps its id when a resumed run starts a new agent there.
        self.node = node_id(self.machine)
        self.machine["worker_log"] = log_path

    def describe(self) -> tuple[str, dict[str, Any]]:
        """This agent's node id and fingerprint, for run.json's ``nodes``."""
        return self.node, self.machine

    def measure(self, request: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        """One sample: ``{"reply": ...}`` or ``{"error_type": ..., "error": ...}``; never raises."""
        sample = SampleRequest.from_dict(request)
        if not Path(sample.checkpoint_dir).is_dir():
            if sample.builtin is None:
                return {"error_type": "CheckpointNotOnNode",
                        "error": f"{sample.checkpoint_dir} is not on node {self.machine['hostname']}; every "
                                 "node must see the checkpoints at the same path (shared storage)"}
            from loadbench.loaders.checkpoints.builtin import ensure_builtin

            sample = replace(sample, checkpoint_dir=str(ensure_builtin(sample.builtin)))
        return encode_outcome(lambda: self._local.measure(sample, timeout_s))
