"""One real tune of a tiny checkpoint, interrupted in its paired run and continued: the answer and its files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from loadbench.bench.tune import TuneError, tune

SETTINGS = ["safetensors_read=eager", "device_map=auto"]  # there whatever the cores (accelerate: a test extra)


@pytest.fixture(scope="module")
def tuned(builtin, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A tune whose confirmation is cut by Ctrl-C after 3 samples, then the same call again."""
    from loadbench.bench import api

    output = tmp_path_factory.mktemp("tune") / "tiny-llama"
    real_run = api.run
    calls: list[str] = []

    def run(suite: Any, **kwargs: Any) -> Any:
        calls.append(str(kwargs["output"]))
        if len(calls) == 2:  # the paired run: interrupt it as a Ctrl-C would, mid-run
            def progress(label: str, done: int, total: int) -> None:
                if done >= 3:
                    raise KeyboardInterrupt

            kwargs["progress"] = progress
        return real_run(suite, **kwargs)

    arguments = dict(settings=SETTINGS, output=output, confirm_pairs=6, budget_minutes=10)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(api, "run", run)
        with pytest.raises(KeyboardInterrupt):
            tune(builtin("tiny-llama"), **arguments)
    rung_samples = (output / "rung-0" / "samples.jsonl").read_bytes()
    interrupted = json.loads((output / "tune.json").read_text())
    result = tune(builtin("tiny-llama"), **arguments)
    return {"result": result, "output": output, "calls": calls, "rung_samples": rung_samples,
            "interrupted": interrupted, "arguments": arguments}


def test_an_interrupted_tune_keeps_its_samples_and_the_same_call_continues(tuned) -> None:
    output = tuned["output"]
    assert [Path(c).name for c in tuned["calls"]] == ["rung-0", "confirm"]
    assert [s.get("done", False) for s in tuned["interrupted"]["steps"]] == [True, False]
    assert (output / "rung-0" / "samples.jsonl").read_bytes() == tuned["rung_samples"]  # not measured again
    state = json.loads((output / "tune.json").read_text())
    assert all(step["done"] for step in state["steps"])
    assert json.loads((output / "confirm" / "run.json").read_text())["status"] == "complete"
    assert state["spent_s"] >= tuned["interrupted"]["spent_s"]
    # The paired run goes on with the contender it started with, whatever the samples since say.
    assert tuned["result"].confirmation.contender == tuned["interrupted"]["steps"][1]["settings"][1]


def test_the_answer_is_equivalence_checked_paired_and_on_its_front(tuned) -> None:
    answer = tuned["result"].to_json()
    measured = [row for row in answer["settings"] if row["load_s"] is not None]
    assert {row["setting"] for row in measured} == {"default", *SETTINGS}
    assert all(row["max_abs_diff"] == 0.0 for row in measured)  # every setting loads the same model
    assert answer["front"] and all(row["on_front"] == (row["setting"] in answer["front"]) for row in measured)
    confirmation = answer["confirmation"]
    assert confirmation["pairs"] == 6 and confirmation["contender"] in SETTINGS
    assert answer["ci_low"] <= answer["gain"] <= answer["ci_high"]
    if answer["recommended"] != "default":
        assert answer["ci_low"] > 0 and answer["recommended"] == confirmation["contender"]
    else:
        assert answer["ci_low"] <= 0
    assert answer["gpu"].startswith("not measured: the device is cpu")
    assert json.loads((tuned["output"] / "result.json").read_text()) == json.loads(json.dumps(answer))


def test_the_recommended_suite_re_measures_default_and_contender(tuned) -> None:
    from loadbench.bench.plan import plan
    from loadbench.bench.suite import load_suite

    suite = load_suite(tuned["output"] / "recommended.toml")
    cases = plan(suite)
    contender = tuned["result"].confirmation.contender
    assert [c.options for c in cases] == ["default", contender] and {c.path for c in cases} == {"task"}
    assert suite.repeats == 6 and suite.device == ["cpu"]


def test_the_report_draws_the_front_and_lists_every_setting(tuned) -> None:
    html = (tuned["output"] / "report.html").read_text()
    assert 'src="data:image/png;base64,' in html
    for name in ("default", *SETTINGS):
        assert f'data-setting="{name}"' in html
    markdown = (tuned["output"] / "report.md").read_text()
    assert tuned["result"].explanation in markdown and "```python" in markdown


def test_the_cli_prints_a_finished_tune_as_json_and_refuses_another_goal_in_its_directory(tuned, cli) -> None:
    args = ["tune", "tiny-llama", "--output", str(tuned["output"]), "--confirm-pairs", "6", "--settings",
            *SETTINGS, "--no-progress"]
    done = cli(*args, "--format", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["recommended"] == tuned["result"].recommended
    other = cli(*args, "--goal", "least-memory")
    assert other.returncode == 2 and "holds a tune of something else (goal was 'fastest'" in other.stderr
    assert len(other.stderr.strip().splitlines()) == 1


def test_a_tune_refuses_a_directory_of_other_files(builtin, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(TuneError, match="holds files but no tune.json"):
        tune(builtin("tiny-llama"), output=tmp_path, settings=SETTINGS)


def test_a_budget_spent_mid_rung_ends_it_there_and_the_answer_says_so(builtin, tmp_path: Path) -> None:
    # 0.3 s: spent before the first sample ends, however fast the harness (its rung is never budget-checked before)
    result = tune(builtin("tiny-llama"), settings=SETTINGS, output=tmp_path / "t", budget_minutes=0.005)
    assert result.stopped is not None and result.stopped.startswith("the budget ended rung-0 after ")
    assert result.confirmation is None and result.recommended == "default"
    assert result.explanation.startswith("keep the default: ") and "budget" in result.explanation
    state = json.loads((tmp_path / "t" / "tune.json").read_text())
    assert state["steps"][0]["cut_by_budget"] and state["steps"][0]["done"]
    again = tune(builtin("tiny-llama"), settings=SETTINGS, output=tmp_path / "t", budget_minutes=0.05)
    assert again.stopped == result.stopped  # a rerun does not measure the rest of a rung the budget ended
