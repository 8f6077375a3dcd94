"""The profile counts as measured work what the records timed: import, load, first forward, the workload."""

from __future__ import annotations

import pandas as pd
import pytest

from loadbench.bench.studies.profile_run import measured_work_s


def _sample(repeat: int, metrics: dict[str, float], path: str) -> list[dict]:
    keys = {"run_id": "r", "checkpoint": "c", "path": path, "task": "t", "cache": "warm", "options": "default",
            "env": "default", "repeat": repeat, "warmup": False, "batch_size": 2, "status": "ok"}
    return [{**keys, "metric": m, "value": v} for m, v in metrics.items()]


def test_the_workload_time_is_recovered_from_its_rates() -> None:
    generation = {"import_s": 0.1, "load_s": 0.5, "first_forward_s": 0.05, "new_tokens": 16.0,
                  "e2e_tokens_per_s": 64.0}  # 2 x 16 tokens at 64 tok/s: 0.5 s
    forward = {"import_s": 0.2, "load_s": 0.3, "first_forward_s": 0.01, "prompt_tokens": 8.0,
               "forward_tokens_per_s": 160.0}  # 2 x 8 tokens x 10 calls at 160 tok/s: 1.0 s
    frame = pd.DataFrame(_sample(0, generation, "task") + _sample(0, forward, "base")
                         + [{**_sample(1, {"load_s": 9.0}, "task")[0], "status": "failed"}])
    assert measured_work_s(frame, forward_iters=10) == pytest.approx(0.65 + 0.5 + 0.51 + 1.0)
