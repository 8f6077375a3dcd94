"""The pytest plugin under pytester: a user's test benchmarks a load in one line, and
pytest-benchmark's JSON comes back into loadbench."""

from __future__ import annotations

import json
from importlib.metadata import distributions
from pathlib import Path

import pytest

from loadbench.bench.pytest_plugin import LoadBenchmark
from loadbench.results.records.benchjson import read_benchmark_json

pytest_plugins = ["pytester"]

USER_TESTS = '''
import os
import pytest

@pytest.mark.benchmark(group="mine")
def test_base_load(loadbench_load):
    result = loadbench_load(os.environ["LB_CHECKPOINT"], path="base", rounds=3, warmup_rounds=1)
    assert len(result.rounds) == 3
    assert result.median("load_s") > 0
    assert result.median("peak_rss_bytes") > 0
    assert result.case["path"] == "base"

def test_task_path_of_feature_extraction_is_skipped(loadbench_load):
    loadbench_load(os.environ["LB_CHECKPOINT"], path="task", task="feature-extraction")
'''


def _plugin_args() -> list[str]:
    # Installed, the entry point loads the plugin; from a bare checkout, name it. Every
    # distribution is searched, as pytest does: a stale egg-info may shadow the installed one.
    installed = any(ep.group == "pytest11" and ep.value == "loadbench.bench.pytest_plugin"
                    for dist in distributions() for ep in dist.entry_points)
    return [] if installed else ["-p", "loadbench.bench.pytest_plugin"]


def test_entry_point_is_declared() -> None:
    pyproject = (Path(__file__).parents[2] / "pyproject.toml").read_text(encoding="utf-8")
    assert '[project.entry-points.pytest11]\nloadbench = "loadbench.bench.pytest_plugin"' in pyproject


def test_load_benchmark_result() -> None:
    result = LoadBenchmark(case={"path": "base"}, rounds=({"load_s": 3.0}, {"load_s": 1.0, "x_s": 2.0},
                                                           {"load_s": 2.0}))
    assert result.values("load_s") == [3.0, 1.0, 2.0] and result.median("load_s") == 2.0
    with pytest.raises(KeyError, match="no round measured 'ttft_s'"):
        result.median("ttft_s")


def test_fixture_takes_a_hub_id_from_the_local_cache(hub_cache: Path) -> None:
    """Planned as ``loadbench run --checkpoint acme/tiny-llama`` plans it: the cached snapshot, nothing downloaded.

    (Before the pytester tests: pytester drops the modules a test imported, and torch cannot be imported twice.)
    """
    from loadbench.bench.pytest_plugin import _case

    suite, case = _case("acme/tiny-llama", "base", None, device=["cpu"])
    assert case.checkpoint == "acme/tiny-llama" and case.commit == "0123456789abcdef0123456789abcdef01234567"
    assert case.not_applicable is None and suite.checkpoints[0].repo == "acme/tiny-llama"


def test_fixture_benchmarks_a_load_in_fresh_workers(pytester: pytest.Pytester, builtin,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LB_CHECKPOINT", str(builtin("tiny-bert")))
    # The user's pytest runs without xdist; pytest-benchmark would take the variable this
    # session's xdist worker inherits for xdist's, and turn itself off (a single round).
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    pytester.makepyfile(test_user=USER_TESTS)
    report = pytester.path / "bench.json"
    result = pytester.runpytest_subprocess(*_plugin_args(), "-p", "no:cacheprovider", "-rs",
                                           f"--benchmark-json={report}", timeout=300)
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*SKIPPED*tiny-bert · task · feature-extraction*"])

    document = json.loads(report.read_text())
    assert document["machine_info"]["loadbench"]["cpu_model"]  # loadbench's fingerprint hook
    (bench,) = document["benchmarks"]
    assert bench["group"] == "mine"  # the user's marker options are kept
    assert bench["options"]["timer"] == "loadbench_worker_load_s"
    block = bench["extra_info"]["loadbench"]
    assert block["case"]["checkpoint"] == "tiny-bert" and block["case"]["path"] == "base"
    # pytest-benchmark's timings are exactly the workers' load_s, one per measured round.
    assert bench["stats"]["data"] == [r["load_s"] for r in block["rounds"]]
    assert bench["stats"]["rounds"] == 3
    assert bench["extra_info"]["peak_rss_bytes"] > 0 and "forward_tokens_per_s" in bench["extra_info"]

    df = read_benchmark_json(report)
    load_s = df[df["metric"] == "load_s"]
    assert load_s["value"].tolist() == bench["stats"]["data"]
    assert set(df["checkpoint"]) == {"tiny-bert"} and df["cpu_model"].notna().all()
    assert df["torch_version"].notna().all()


USER_MISTAKES = '''
import pytest
from loadbench import UserError

def test_mistakes_are_one_user_error_each(loadbench_load, tmp_path):
    with pytest.raises(UserError) as caught:
        loadbench_load("tiny-bert", path="fast")
    assert str(caught.value).startswith("loadbench_load: paths: Value error, 'fast' is not a path: give one of ")
    with pytest.raises(UserError) as caught:
        loadbench_load("tiny-bret")
    assert str(caught.value).startswith(
        "loadbench_load: checkpoint 'tiny-bret': no such directory, no built-in of that name (tiny-llama, ")
    assert str(caught.value).endswith("and not a hub id (org/name[@revision], taken from the local Hugging Face cache)")
    with pytest.raises(UserError) as caught:
        loadbench_load("tiny-bert", rounds=True)
    assert str(caught.value) == "loadbench_load(): `rounds` must be an int, not bool (True)"
    with pytest.raises(UserError) as caught:
        loadbench_load(tmp_path / "absent", path="base")
    assert "no such directory" in str(caught.value)
'''


def test_fixture_mistakes_are_one_user_error_each(pytester: pytest.Pytester, builtin_cache: Path) -> None:
    pytester.makepyfile(test_user=USER_MISTAKES)
    result = pytester.runpytest_subprocess(*_plugin_args(), "-p", "no:cacheprovider", timeout=300)
    result.assert_outcomes(passed=1)
