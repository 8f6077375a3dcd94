"""The CI workflow users copy: its history job's own steps, run here as GitHub runs them (bash -eo pipefail).

Its pull request job is loadbench's action, whose every step tests/test_action.py runs as a
user's repository would. Here GitHub's part of the history job (checkout, setup-python,
installing the commit) is played by the test: a venv layered over this environment's
packages, and a bare repository as the remote the history branch is pushed to.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import yaml

from loadbench.bench.studies.validate_paired import make_layered_venv

WORKFLOW = Path(__file__).resolve().parents[1] / ".github" / "workflows" / "benchmark.yml"


def _bash(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)


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
    assert failing["env"]["RC"] == "${{ steps.history.outputs.rc }}"
    assert _bash(failing["run"], workspace, {**env, "RC": "1"}).returncode == 1
