"""--until-decided: looks that judge as compare does, rounds only for undecided cases, budgets, resume."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import pytest

from loadbench.bench import api
from loadbench.bench.sequential import look, summary_lines
from loadbench.bench.suite import Suite, SuiteError, suite_from_dict
from loadbench.results import RunWriter, Sample, load, read_run_info

CASE = {"checkpoint": "tiny-llama", "task": "text-generation", "dtype": "float32", "device": "cpu",
        "cache": "warm", "options": "default"}
TWO_ENVS = [{"name": "base", "python": sys.executable}, {"name": "head", "python": sys.executable}]


def _suite(**fields: object) -> Suite:
    return suite_from_dict({"checkpoints": [{"builtin": "tiny-llama"}], "paths": ["base"], "cache": "warm",
                            "device": "cpu", "new_tokens": 2, "forward_iters": 1, "warmups": 0, "seed": 11,
                            "environments": TWO_ENVS, **fields}, "sequential-suite")


def _frame(tmp_path: Path, pairs: dict[str, tuple[float, float]], n: int):
    """A paired run: for each path, n blocks of load_s with head = base × ratio × noise of the given spread."""
    rng = random.Random(3)
    writer = RunWriter.create(tmp_path / "run", {"run_id": "r1", "suite": {"name": "t"}})
    for path, (ratio, spread) in pairs.items():
        for i in range(n):
            base = 0.1 * (1 + rng.gauss(0, 0.02))
            for env, value in (("base", base), ("head", base * ratio * (1 + rng.gauss(0, spread)))):
                writer.append(Sample.ok({**CASE, "path": path, "env": env}, "r1", i, "load_s", value, block=i))
    writer.close("complete")
    return load(tmp_path / "run")


def test_a_look_leaves_only_the_cases_with_an_inconclusive_gated_row(tmp_path: Path) -> None:
    # base: identical and tight (decided unchanged); task: 20% slower (regressed); custom: noise
    # far wider than the 3% threshold (inconclusive after 30 blocks).
    frame = _frame(tmp_path, {"base": (1.0, 0.001), "task": (1.2, 0.01), "custom": (1.0, 0.3)}, 30)
    found = look(frame, _suite())
    assert [key[1] for key in found.undecided] == ["custom"]
    assert "custom load_s in head" in found.undecided[next(iter(found.undecided))][0]
    assert len(found.regressed) == 1 and "task load_s in head" in found.regressed[0]


def test_until_decided_needs_environments_and_its_budgets_need_it() -> None:
    with pytest.raises(SuiteError, match="until_decided .* give two or more environments"):
        suite_from_dict({"checkpoints": [{"builtin": "tiny-llama"}], "until_decided": True}, "s")
    with pytest.raises(SuiteError, match="max_minutes is a budget of until_decided"):
        _suite(max_minutes=5)
    with pytest.raises(SuiteError, match=r"max_repeats \(3\) is below repeats \(5\)"):
        _suite(until_decided=True, repeats=5, max_repeats=3)
    with pytest.raises(SuiteError, match="max_minutes"):
        _suite(until_decided=True, max_minutes=0)


@pytest.fixture(scope="module")
def sequential_run(builtin_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real run of two identical environments with until_decided: 2 blocks, then rounds up to 5."""
    suite = _suite(until_decided=True, repeats=2, max_repeats=5)
    result = api.run(suite, output=tmp_path_factory.mktemp("sequential") / "run", cache_dir=builtin_cache,
                     reports=False)
    assert result.complete and not result.failed_samples
    return result.run_dir


def test_rounds_go_on_for_undecided_cases_until_the_budget_and_the_run_says_why(sequential_run: Path) -> None:
    state = read_run_info(sequential_run)["sequential"]
    (label, stop), = state["cases"].items()
    # Two identical environments cannot be shown within ±3% in 5 blocks: inconclusive at the budget.
    assert stop["why"] == "max_repeats" and stop["blocks"] == 5 and stop["inconclusive"]
    assert state["looks"] == 4 and len(state["timeline"]) == 4  # after blocks 2, 3, 4 and 5
    frame = load(sequential_run)
    loads = frame[frame["metric"] == "load_s"]
    assert sorted(loads.groupby("env")["repeat"].apply(sorted).to_dict().items()) == [
        ("base", [0, 1, 2, 3, 4]), ("head", [0, 1, 2, 3, 4])]
    # Every block pairs one sample of each environment, and block numbers never repeat.
    assert (loads.groupby("block")["env"].apply(sorted) == pd_list(["base", "head"])).all()
    lines = summary_lines(state)
    assert lines[0].startswith("until decided: 1 case(s), 5-5 blocks each") and "1 max repeats" in lines[0]
    assert "still inconclusive at max repeats (5 blocks): " + label in lines[1]


def pd_list(values: list[str]) -> object:
    class Equal:
        def __eq__(self, other: object) -> bool:
            return list(other) == values  # type: ignore[call-overload]

    return Equal()


def test_an_interrupted_sequential_run_resumes_the_same_plan(sequential_run: Path, tmp_path: Path) -> None:
    copy = tmp_path / "run"
    copy.mkdir()
    for name in ("run.json", "samples.jsonl"):
        (copy / name).write_bytes((sequential_run / name).read_bytes())
    samples = copy / "samples.jsonl"
    lines = samples.read_text(encoding="utf-8").splitlines(keepends=True)
    last = json.loads(lines[-1])
    samples.write_text("".join(lines[:-last["sample_records"]]), encoding="utf-8")  # the last sample never ran
    info = json.loads((copy / "run.json").read_text(encoding="utf-8"))
    (copy / "run.json").write_text(json.dumps({**info, "status": "interrupted"}), encoding="utf-8")
    result = api.resume(copy, reports=False)
    assert (result.samples, result.failed_samples) == (1, 0)
    resumed = load(copy)
    loads = resumed[resumed["metric"] == "load_s"].iloc[-1]
    assert (loads["env"], loads["block"], loads["repeat"]) == (last["env"], last["block"], last["repeat"])
    after = read_run_info(copy)
    assert after["status"] == "complete"
    assert after["sequential"]["cases"] == info["sequential"]["cases"]
    assert after["sequential"]["timeline"][:4] == info["sequential"]["timeline"]


def test_max_minutes_ends_the_run_with_what_is_decided_and_lists_the_rest(cli, builtin, tmp_path: Path) -> None:
    builtin("tiny-llama")
    out = cli("run", "--checkpoint", "tiny-llama", "--paths", "base", "--cache", "warm", "--device", "cpu",
                  "--env", f"base={sys.executable}", "--env", f"head={sys.executable}", "--repeats", "2",
                  "--warmups", "0", "--new-tokens", "2", "--until-decided", "--max-minutes", "0.0001",
                  "--no-progress", "--output", str(tmp_path / "run"))
    assert out.returncode == 0, out.stderr
    # The budget was spent before the first look (after the 2 fixed blocks): the run ends there.
    assert "1 max minutes" in out.stdout and "still inconclusive at max minutes (2 blocks)" in out.stdout
    state = read_run_info(tmp_path / "run")["sequential"]
    assert state["looks"] == 1 and next(iter(state["cases"].values()))["why"] == "max_minutes"


def test_resume_refuses_to_change_the_sequential_plan(cli, tmp_path: Path) -> None:
    out = cli("run", "--resume", str(tmp_path), "--max-repeats", "9")
    assert out.returncode == 2 and "drop --max-repeats" in out.stderr
