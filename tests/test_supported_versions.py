"""The worker at both ends of the supported transformers range: every path of the default suite
loads and runs, or is not applicable with its reason; never a failure.

The newest end is the environment the tests run in (a fresh install takes the latest 5.x).
The oldest is an environment built from requirements before the tests, since building needs
the package index and tests never use the network: CI runs
``loadbench env build transformers==4.46.3`` and passes its directory in LOADBENCH_OLDEST_ENV.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from loadbench.bench import api
from loadbench.loaders.checkpoints.builtin import DEFAULT_BUILTINS

OLDEST = "4.46.3"
OLDEST_ENV = "LOADBENCH_OLDEST_ENV"


def _oldest() -> str:
    path = os.environ.get(OLDEST_ENV)
    if not path:
        pytest.skip(f"no environment with transformers {OLDEST}: build one with `loadbench env build "
                    f"transformers=={OLDEST}` and set {OLDEST_ENV} to the directory it prints (CI does)")
    return path


@pytest.mark.parametrize("end", ["oldest", "newest"])
def test_every_path_of_the_default_suite_runs_or_says_why_not(end: str, builtin_cache: Path,
                                                             tmp_path: Path) -> None:
    from importlib.metadata import version

    python = _oldest() if end == "oldest" else sys.prefix
    result = api.run(checkpoints=list(DEFAULT_BUILTINS), output=tmp_path / "run", repeats=1, warmups=0,
                     cache=["warm"], device="cpu", environments=[{"name": end, "python": python}], reports=False)
    frame = result.frame()
    measured = set(frame["transformers_version"].dropna())
    assert measured == ({OLDEST} if end == "oldest" else {version("transformers")})
    failed = frame[frame["status"] == "failed"]
    assert failed.empty, failed[["checkpoint", "path", "metric", "error"]].to_string()
    loads = frame[frame["metric"] == "load_s"].set_index(["checkpoint", "path"])
    assert (loads.drop(index=("tiny-t5", "pipeline"))["status"] == "ok").all()
    t5_pipeline = loads.loc[("tiny-t5", "pipeline")]
    if int(next(iter(measured)).split(".")[0]) < 5:
        assert t5_pipeline["status"] == "ok"  # 4.x still has the text2text pipeline
    else:
        assert t5_pipeline["status"] == "not_applicable" and "no pipeline" in t5_pipeline["reason"]
