"""The CI workflow users copy, run here end to end: its own steps, two environments, a real slowdown or none.

GitHub's part (checkout, installing base and head) is played by the test: two venvs layered
over this environment's packages, the head one with bench/studies/slowdown.py making transformers'
loading twice as slow. The measuring, comparing and failing steps are the workflow file's
own shell, run as GitHub runs it (bash -eo pipefail).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import yaml

from loadbench.bench.studies.slowdown import pth_line
from loadbench.bench.studies.validate_paired import make_layered_venv
from loadbench.results import read_run_info

WORKFLOW = Path(__file__).resolve().parents[1] / ".github" / "workflows" / "benchmark.yml"
LOCAL = ("Measure", "Compare", "Fail")  # the steps that are loadbench's, not GitHub's


def _bash(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)


def _run_steps(tmp_path: Path, head_lines: list[str], variables: dict[str, str]) -> tuple[Path, Path, Path, dict]:
    """The workflow's measuring and comparing steps, as GitHub runs them; returns the workspace and the files."""
    workflow = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    steps = [s for s in workflow["jobs"]["compare"]["steps"] if str(s.get("name", "")).startswith(LOCAL)]
    assert [s["name"].split()[0] for s in steps] == list(LOCAL)
    runner_temp, workspace = tmp_path / "runner", tmp_path / "workspace"
    # The job runs in a checkout, whose loadbench/ directory must not shadow the environments' loadbench.
    shutil.copytree(WORKFLOW.parents[2] / "loadbench", workspace / "loadbench")
    make_layered_venv(runner_temp / "venv-base")
    make_layered_venv(runner_temp / "venv-head", pth_lines=head_lines)
    suite = tmp_path / "suite.toml"
    suite.write_text('checkpoints = [{builtin = "tiny-llama"}]\npaths = ["base"]\ncache = ["warm"]\n'
                     "warmups = 0\nnew_tokens = 2\nforward_iters = 2\n", encoding="utf-8")
    outputs, summary = tmp_path / "github_output", tmp_path / "step_summary"
    env = {**os.environ, **{k: str(v) for k, v in workflow["env"].items() if "${{" not in str(v)},
           "SUITE_ARGS": str(suite), "RUNNER_TEMP": str(runner_temp),
           "GITHUB_OUTPUT": str(outputs), "GITHUB_STEP_SUMMARY": str(summary), **variables}
    measure, compare, fail = steps
    for step in (measure, compare):
        assert "${{" not in step["run"]  # nothing GitHub must fill in
        done = _bash(step["run"], workspace, env)
        assert done.returncode == 0, done.stderr
    return workspace, outputs, summary, {"fail": fail, "env": env}


def test_the_workflow_measures_both_sides_in_one_run_and_fails_on_a_real_slowdown(tmp_path: Path, builtin) -> None:
    builtin("tiny-llama")
    # Twice as slow: the first look (after 9 blocks, the fewest that can decide 2 time rows) catches it.
    workspace, outputs, summary, rest = _run_steps(tmp_path, [pth_line(1.0)],
                                                   {"REPEATS": "9", "MAX_REPEATS": "14"})
    assert outputs.read_text(encoding="utf-8").splitlines() == ["rc=1"]
    report = (workspace / "compare.md").read_text(encoding="utf-8")
    assert report.startswith("## loadbench compare (paired): ❌")
    assert "| `load_s` |" in report.split("### Diagnostics")[0] and "regressed (" in report
    assert summary.read_text(encoding="utf-8").startswith("## loadbench compare (paired): ❌")
    assert (workspace / "compare.json").is_file() and (workspace / "runs" / "paired" / "samples.jsonl").is_file()
    # The run stopped at the regression: the gate fails whatever more blocks would say.
    state = read_run_info(workspace / "runs" / "paired")["sequential"]
    assert state["regressed"] and {c["why"] for c in state["cases"].values()} == {"regression"}
    # The last step fails the job with compare's exit code, as GitHub would substitute it.
    failing = _bash(rest["fail"]["run"].replace("${{ steps.compare.outputs.rc }}", "1"), workspace, rest["env"])
    assert failing.returncode == 1


def test_the_workflow_fails_an_inconclusive_gate_with_3_unless_told_to_let_it_pass(tmp_path: Path, builtin) -> None:
    builtin("tiny-llama")
    # Two identical environments and a budget of 10 blocks (the fewest that bound the time rows'
    # intervals at all): their load times cannot be shown within ±3%.
    workspace, outputs, summary, rest = _run_steps(tmp_path, [], {"REPEATS": "3", "MAX_REPEATS": "10"})
    assert outputs.read_text(encoding="utf-8").splitlines() == ["rc=3"]
    report = (workspace / "compare.md").read_text(encoding="utf-8")
    assert report.startswith("## loadbench compare (paired): ⚠ inconclusive") and "no regression" not in report
    state = read_run_info(workspace / "runs" / "paired")["sequential"]
    assert {c["why"] for c in state["cases"].values()} == {"max_repeats"}
    failing = _bash(rest["fail"]["run"].replace("${{ steps.compare.outputs.rc }}", "3"), workspace, rest["env"])
    assert failing.returncode == 3
    # FAIL_ON_INCONCLUSIVE=false: the same run passes, and the summary still says it is inconclusive.
    compare = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))["jobs"]["compare"]["steps"]
    step = next(s for s in compare if str(s.get("name", "")).startswith("Compare"))
    outputs.write_text("", encoding="utf-8")
    done = _bash(step["run"], workspace, {**rest["env"], "FAIL_ON_INCONCLUSIVE": "false"})
    assert done.returncode == 0 and outputs.read_text(encoding="utf-8").splitlines() == ["rc=0"]
    assert (workspace / "compare.md").read_text(encoding="utf-8").startswith("## loadbench compare (paired): ⚠")


def test_the_history_job_files_each_push_into_a_branch_and_writes_its_page(tmp_path: Path, builtin) -> None:
    """Two pushes to main, the history job's own steps each time; the remote is a bare repository here."""
    builtin("tiny-llama")
    workflow = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    job = workflow["jobs"]["history"]
    assert job["if"] == "github.event_name == 'push'" and "main" in workflow[True]["push"]["branches"]
    local = [s for s in job["steps"] if "run" in s and not s["name"].startswith("Install")]
    assert [s["name"].split()[0] for s in local] == ["Check", "Measure", "File", "Keep", "Fail"]
    origin, workspace, runner_temp = tmp_path / "origin.git", tmp_path / "workspace", tmp_path / "runner"
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run(["git", "init", "--quiet", "--bare", str(origin)], check=True)
    subprocess.run(["git", "clone", "--quiet", str(origin), str(workspace)], check=True, capture_output=True)
    shutil.copytree(WORKFLOW.parents[2] / "loadbench", workspace / "loadbench")  # a checkout, as in the PR job
    subprocess.run([*git, "-C", str(workspace), "add", "-A"], check=True)
    subprocess.run([*git, "-C", str(workspace), "commit", "--quiet", "-m", "main"], check=True)
    subprocess.run(["git", "-C", str(workspace), "push", "--quiet", "origin", "HEAD:main"], check=True,
                   capture_output=True)
    make_layered_venv(runner_temp / "venv")
    make_layered_venv(runner_temp / "venv-reference")  # what the install step makes of HISTORY_REFERENCE
    suite = tmp_path / "suite.toml"
    suite.write_text('checkpoints = [{builtin = "tiny-llama"}]\npaths = ["base"]\ncache = ["warm"]\n'
                     "warmups = 0\nnew_tokens = 2\nforward_iters = 2\n", encoding="utf-8")
    # The first push without a reference, the second measured against one: both ways of the measuring step.
    for push, (sha, reference) in enumerate((("a" * 40, ""), ("b" * 40, "v1.0")), start=1):
        if runner_temp.joinpath("history").exists():  # each job starts on a fresh runner
            subprocess.run(["git", "-C", str(workspace), "worktree", "remove", "--force",
                            str(runner_temp / "history")], check=True)
        shutil.rmtree(workspace / "runs", ignore_errors=True)
        outputs, summary = tmp_path / f"output{push}", tmp_path / f"summary{push}"
        env = {**os.environ, **{k: str(v) for k, v in workflow["env"].items() if "${{" not in str(v)},
               "SUITE_ARGS": str(suite), "HISTORY_REPEATS": "2", "RUNNER_TEMP": str(runner_temp),
               "GITHUB_SHA": sha, "GITHUB_OUTPUT": str(outputs), "GITHUB_STEP_SUMMARY": str(summary),
               "HISTORY_REFERENCE": reference}
        for step in local[:-1]:
            assert "${{" not in step["run"]
            done = _bash(step["run"], workspace, env)
            assert done.returncode == 0, f"{step['name']}: {done.stderr}"
        assert outputs.read_text(encoding="utf-8").splitlines() == ["rc=0"]
        assert summary.read_text(encoding="utf-8").startswith("```text\n")
    # The branch on the remote holds both runs, under their commits, and the page at its top.
    listed = subprocess.run(["git", "-C", str(origin), "ls-tree", "-r", "--name-only", "loadbench-history"],
                            check=True, capture_output=True, text=True).stdout.split()
    runs = sorted(name for name in listed if name.endswith(".json") and "/runs/" in name)
    assert "index.html" in listed and len(runs) == 2
    log = subprocess.run(["git", "-C", str(origin), "log", "--format=%s", "loadbench-history"], check=True,
                         capture_output=True, text=True).stdout.split("\n")
    assert log[:2] == ["loadbench history: bbbbbbbbbbbb", "loadbench history: aaaaaaaaaaaa"]
    second = json.loads(subprocess.run(["git", "-C", str(origin), "show", f"loadbench-history:{runs[1]}"],
                                       check=True, capture_output=True, text=True).stdout)
    assert {s["case"]["env"] for s in second["series"]} == {"reference", "head", "head vs reference"}
    shown = (tmp_path / "summary2").read_text(encoding="utf-8")
    assert "2 runs (aaaaaaaaaaaa … bbbbbbbbbbbb)" in shown and "change point(s) in" in shown
    failing = local[-1]
    assert _bash(failing["run"].replace("${{ steps.history.outputs.rc }}", "1"), workspace, env).returncode == 1
