"""Small probes a worker wraps around its load and workload: clocks, peak RSS, token steps.

Each probe is a context manager or a small object with one reading; none of them
imports torch at module level.
"""

from __future__ import annotations

import resource
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from loadbench.bench.probes.proc_status import read_status_bytes

__all__ = ["HOST_PROBE_ITERATIONS", "fixed_loop", "host_probe_s", "peak_rss_bytes", "sync", "StepClock"]

HOST_PROBE_ITERATIONS = 50_000  # ~5 ms on the 2-core VM: short next to a load, long next to the clock


def fixed_loop(iterations: int) -> int:
    """The same pure-Python work every time: its wall time is the speed of the core it runs on."""
    total = 0
    for i in range(iterations):
        total += i * i
    return total


def host_probe_s(iterations: int = HOST_PROBE_ITERATIONS) -> float:
    """Seconds the fixed loop takes now: taken just before a load, outside its timer.

    Plotted over a run it shows when the machine itself got slower or faster, which no
    comparison of loading code can tell apart from a change in the code.
    """
    started = time.perf_counter()
    fixed_loop(iterations)
    return time.perf_counter() - started


def peak_rss_bytes() -> int:
    """The kernel's high-water mark of this process's resident memory: exact, no sampling.

    Linux: VmHWM, which starts afresh in each process; ru_maxrss can carry a parent's
    peak into a child. Elsewhere ru_maxrss.
    """
    hwm = read_status_bytes(("VmHWM",)).get("VmHWM")
    if hwm is not None:
        return hwm
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(maxrss if sys.platform == "darwin" else maxrss * 1024)


def sync(device: str) -> None:
    """Wait for queued GPU work, so a clock read after it covers that work."""
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize(device)


@dataclass
class StepClock:
    """A generation streamer that timestamps each decoding step.

    ``generate`` hands the streamer the prompt first, then one tensor per new-token step;
    counting steps here counts generated tokens the same way for every path.
    """

    device: str = "cpu"
    started: float = 0.0
    steps: list[float] = field(default_factory=list)
    _prompt_seen: bool = False

    def start(self) -> None:
        self.started = time.perf_counter()
        self.steps.clear()
        self._prompt_seen = False

    def put(self, value: Any) -> None:
        if not self._prompt_seen:
            self._prompt_seen = True
            return
        sync(self.device)
        self.steps.append(time.perf_counter())

    def end(self) -> None:
        pass

    @property
    def new_tokens(self) -> int:
        return len(self.steps)

    @property
    def ttft_s(self) -> float:
        return self.steps[0] - self.started

    def decode_tokens_per_s(self, batch_size: int) -> float:
        """Tokens per second after the first, which carries the prefill."""
        if len(self.steps) < 2:
            raise ValueError("decode rate needs at least 2 generated tokens")
        return batch_size * (len(self.steps) - 1) / (self.steps[-1] - self.steps[0])
