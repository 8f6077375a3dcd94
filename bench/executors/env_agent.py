"""The part of a run that lives in another Python environment: its own zygote, one sample at a time.

Started by the driver (bench/executors/environments.py) as ``PYTHON -m loadbench.bench.executors.env_agent``
with that environment's interpreter, so every worker forked for it imports that
environment's torch, transformers and loadbench. It never loads a model itself: like the
Ray agent, it holds a local executor whose zygote forks a fresh worker per sample.

It speaks JSON lines on its stdin and on a copy of its original stdout; anything a
library prints goes to stderr instead, so it cannot garble an answer. First it says
which protocol it speaks; then it answers ``start`` with its fingerprint and each
``measure`` with an outcome (protocol.encode_outcome); end of input ends it.
"""

from __future__ import annotations

import json
import os
import sys
from functools import partial
from typing import TYPE_CHECKING, Any, TextIO

from loadbench.bench.sample.protocol import PROTOCOL_VERSION, SampleRequest, encode_outcome

if TYPE_CHECKING:
    from loadbench.bench.executors.local import LocalExecutor

__all__ = ["main"]


def _send(out: TextIO, message: dict[str, Any]) -> None:
    out.write(json.dumps(message, allow_nan=False) + "\n")
    out.flush()


def _loadbench_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("loadbench")
    except PackageNotFoundError:
        return None


def _start(message: dict[str, Any]) -> tuple[LocalExecutor, dict[str, Any]]:
    """The agent's local executor, its zygote started; or end here, saying so, when the zygote cannot start.

    Its imports failed (their error is on stderr above): the driver then stops the run
    before measuring, instead of losing every sample.
    """
    from loadbench.bench.executors.base import ExecutorError
    from loadbench.bench.executors.local import LocalExecutor, worker_cpus

    local = LocalExecutor(*worker_cpus(message["threads"], message["pin_cpus"]))
    try:
        [machine] = local.start(message["run_id"], message["log_path"]).values()
    except ExecutorError as exc:
        from loadbench.bench.executors.environments import ZYGOTE_FAILED

        print(f"{ZYGOTE_FAILED} torch and transformers ({exc})", file=sys.stderr, flush=True)
        sys.exit(3)
    return local, machine


def main() -> int:
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # from here on a stray print() lands in the log, not in an answer
    _send(out, {"protocol": PROTOCOL_VERSION, "loadbench": _loadbench_version(), "python": sys.executable})
    from loadbench.bench.sample.spawn import Zygote

    Zygote().warm_up()  # its imports take seconds: begun now, while the driver plans the run
    local = None
    for line in sys.stdin:
        message = json.loads(line)
        if message["op"] == "start":
            local, machine = _start(message)
            _send(out, {"machine": {**machine, "python_executable": sys.executable}})
        elif message["op"] == "measure" and local is not None:
            _send(out, encode_outcome(partial(local.measure, SampleRequest.from_dict(message["request"]),
                                              float(message["timeout_s"]))))
        else:
            _send(out, {"error_type": "bad_request", "error": f"agent cannot {message.get('op')!r} now"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
