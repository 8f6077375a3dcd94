"""The composite action (action.yml) as a user's repository runs it: every `run:` step in order, with bash.

A throwaway git repository holds a small package whose ``load(checkpoint, task, device,
dtype)`` loads a built-in checkpoint, and a suite naming ``lbactionpkg.loading:load``. The
action's steps run as GitHub runs them (bash -eo pipefail, a fresh GITHUB_OUTPUT per step,
``if:`` and ``${{ }}`` evaluated from the inputs, the event and earlier steps' outputs).
The one `uses:` step, setup-python, is played by putting this test's Python first on PATH;
its install step then finds torch and loadbench already there, as on a runner with a warm
cache, and installs nothing from the network.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml

ACTION = Path(__file__).resolve().parents[1] / "action.yml"
WORKFLOW = ACTION.parent / ".github" / "workflows" / "benchmark.yml"

Git = Callable[..., str]
UserPackage = Callable[..., None]
SUITE = ('checkpoints = [{builtin = "tiny-llama"}]\npaths = ["lbactionpkg.loading:load", "base"]\n'
         'cache = ["warm"]\nwarmups = 0\nnew_tokens = 2\nforward_iters = 2\n')

# ${{ ... }}: GitHub's expressions, as far as the action uses them.
_TOKEN = re.compile(r"\s*('[^']*'|&&|\|\||==|!=|[A-Za-z_][\w.-]*)")


def _evaluate(text: str, context: dict[str, Any]) -> Any:
    tokens = _TOKEN.findall(text)
    position = 0

    def atom() -> Any:
        nonlocal position
        token = tokens[position]
        position += 1
        if token.startswith("'"):
            return token[1:-1]
        value: Any = context
        for part in token.split("."):
            value = value.get(part, "") if isinstance(value, dict) else ""
        return value

    def comparison() -> Any:
        nonlocal position
        left = atom()
        if position < len(tokens) and tokens[position] in ("==", "!="):
            operator = tokens[position]
            position += 1
            equal = str(left).lower() == str(atom()).lower()
            return equal if operator == "==" else not equal
        return left

    def conjunction() -> Any:
        nonlocal position
        value = comparison()
        while position < len(tokens) and tokens[position] == "&&":
            position += 1
            right = comparison()
            value = right if value else value
        return value

    value = conjunction()
    while position < len(tokens) and tokens[position] == "||":
        position += 1
        right = conjunction()
        value = value or right
    assert position == len(tokens), text
    return value


def _substitute(text: str, context: dict[str, Any]) -> str:
    return re.sub(r"\$\{\{(.*?)\}\}", lambda m: str(_evaluate(m.group(1), context)), str(text))


def _run_action(workspace: Path, tmp: Path, inputs: dict[str, str], github: dict[str, Any],
                only: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Every step of the action (or those whose name starts with one of ``only``), in order, until one fails."""
    action = yaml.safe_load(ACTION.read_text(encoding="utf-8"))
    defaults = {name: str(spec.get("default", "")) for name, spec in action["inputs"].items()}
    context: dict[str, Any] = {"inputs": {**defaults, **inputs}, "github": github, "steps": {}}
    summary, ran = tmp / "summary.md", {}
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "RUNNER_TEMP": str(tmp / "runner"), "GITHUB_STEP_SUMMARY": str(summary)}
    (tmp / "runner").mkdir(exist_ok=True)
    for number, step in enumerate(action["runs"]["steps"]):
        if "uses" in step:
            assert step["uses"].startswith("actions/setup-python@"), step["uses"]  # played: this Python on PATH
            continue
        if ("if" in step and not _evaluate(step["if"], context)) or (only and step["name"].split()[0] not in only):
            continue
        assert "${{" not in step["run"], f"{step['name']}: a value goes in through env:, never into the script"
        output = tmp / f"output-{number}"
        output.write_text("")
        step_env = {**env, "GITHUB_OUTPUT": str(output),
                    **{k: _substitute(v, context) for k, v in step.get("env", {}).items()}}
        done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
                              cwd=workspace, env=step_env, capture_output=True, text=True, timeout=900)
        ran[step["name"].split()[0]] = done
        if "id" in step:
            lines = output.read_text(encoding="utf-8").splitlines()
            context["steps"][step["id"]] = {"outputs": dict(line.split("=", 1) for line in lines if "=" in line)}
        if done.returncode != 0:
            break
    outputs = {name: _substitute(spec["value"], context) for name, spec in action["outputs"].items()}
    return {"ran": ran, "outputs": outputs, "summary": summary.read_text(encoding="utf-8") if summary.exists() else ""}


def _user_repository(repo: Path, git: Git, user_package: UserPackage, base_loader: bool,
                     head_busy_ms: int) -> tuple[str, str]:
    """Two commits of a user's repository: the base (with a loader or not yet) and the head; their hashes."""
    repo.mkdir(parents=True)
    git(repo, "init", "--quiet", "--initial-branch", "main")
    user_package(repo, "lbactionpkg", 0 if base_loader else None)
    (repo / "lbactionpkg" / "__init__.py").write_text("", encoding="utf-8")
    (repo / "benchmarks.toml").write_text(SUITE, encoding="utf-8")
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "-m", "base")
    base = git(repo, "rev-parse", "HEAD")
    user_package(repo, "lbactionpkg", head_busy_ms)
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "-m", "head")
    return base, git(repo, "rev-parse", "HEAD")


def _pull_request(workspace: Path, base: str, head: str) -> dict[str, Any]:
    return {"workspace": str(workspace), "event_name": "pull_request", "sha": head, "token": "",
            "action_path": str(ACTION.parent), "event": {"pull_request": {"base": {"sha": base}, "number": 7}}}


# The install step finds both already installed here (a warm runner): it runs, and fetches nothing.
LOCAL = {"torch": "torch==2.13.0", "loadbench": "loadbench", "suite": "benchmarks.toml"}


def test_a_slower_loader_in_the_pull_request_fails_the_job_with_1_and_the_summary_names_it(
        tmp_path: Path, builtin, git: Git, user_package: UserPackage) -> None:
    builtin("tiny-llama")
    workspace = tmp_path / "repo"
    base, head = _user_repository(workspace, git, user_package, base_loader=True, head_busy_ms=150)
    done = _run_action(workspace, tmp_path, {**LOCAL, "repeats": "9", "max-repeats": "14"},
                       _pull_request(workspace, base, head))
    assert list(done["ran"]) == ["Install", "Build", "Measure", "Compare", "Fail"], {
        k: v.stderr[-2000:] for k, v in done["ran"].items()}
    assert done["ran"]["Fail"].returncode == 1 and done["outputs"]["exit-code"] == "1"
    assert done["outputs"]["verdict"].startswith("loadbench compare (paired): ❌")
    assert done["summary"].startswith("## loadbench compare (paired): ❌")
    regressed = [line for line in done["summary"].split("### Diagnostics")[0].splitlines()
                 if "lbactionpkg.loading:load" in line and "| `load_s` |" in line]
    assert regressed, done["summary"]
    assert Path(done["outputs"]["json"]).is_file() and Path(done["outputs"]["markdown"]).is_file()
    # Both sides ran the same loadbench (this one), each with the repository built at its own commit.
    nodes = json.loads((workspace / "runs" / "paired" / "run.json").read_text(encoding="utf-8"))["nodes"].values()
    assert {node["packages"]["loadbench"] for node in nodes} == {metadata.version("loadbench")}
    assert sorted(Path(r.split("file://")[1]).parent.name for node in nodes for r in node["requirements"]) == sorted(
        [base, head])

    # history "true" on a push (the example's push job): the run filed into a new history branch, its page at
    # the top, pushed; the next push adds to that branch. The remote is a bare repository here.
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "init", "--quiet", "--bare", str(origin)], check=True)
    git(workspace, "remote", "add", "origin", str(origin))
    (tmp_path / "push1").mkdir()
    push = {**_pull_request(workspace, base, head), "event_name": "push", "event": {"before": base}}
    kept = _run_action(workspace, tmp_path / "push1", {**LOCAL, "history": "true"}, push, only=("File",))
    assert kept["ran"]["File"].returncode == 0, kept["ran"]["File"].stderr
    assert f"1 runs ({head[:12]} … {head[:12]})" in kept["summary"]
    (workspace / "README").write_text("a later commit\n")
    git(workspace, "add", "-A")
    git(workspace, "commit", "--quiet", "-m", "later")
    later = git(workspace, "rev-parse", "HEAD")
    # A new job: a fresh runner (the last one's worktrees gone) and checkout.
    for folder in (workspace / "runs", tmp_path / "runner", tmp_path / "push1" / "runner"):
        shutil.rmtree(folder)
    git(workspace, "worktree", "prune")
    (tmp_path / "push2").mkdir()
    again = _run_action(workspace, tmp_path / "push2",
                        {**LOCAL, "history": "true", "until-decided": "false", "repeats": "3",
                         "fail-on-inconclusive": "false"},
                        {**push, "sha": later, "event": {"before": head}}, only=("Build", "Measure", "Compare", "File"))
    assert again["ran"]["File"].returncode == 0, again["ran"]["File"].stderr
    listed = git(origin, "ls-tree", "-r", "--name-only", "loadbench-history").split()
    assert "index.html" in listed and sum("/runs/" in name for name in listed) == 2
    assert git(origin, "log", "--format=%s", "loadbench-history").splitlines() == [
        f"loadbench history: {later[:12]}", f"loadbench history: {head[:12]}"]
    assert f"2 runs ({head[:12]} … {later[:12]})" in again["summary"] and "head vs base" in again["summary"]


def test_a_loader_missing_at_the_base_is_not_applicable_there_and_an_undecided_gate_is_3_unless_let_pass(
        tmp_path: Path, builtin, git: Git, user_package: UserPackage) -> None:
    builtin("tiny-llama")
    workspace = tmp_path / "repo"
    base, head = _user_repository(workspace, git, user_package, base_loader=False, head_busy_ms=0)
    # The built-in `base` path is the same code on both sides: 9 blocks cannot show it within ±3%.
    done = _run_action(workspace, tmp_path, {**LOCAL, "repeats": "9", "max-repeats": "9"},
                       _pull_request(workspace, base, head))
    assert done["ran"]["Measure"].returncode == 0, done["ran"]["Measure"].stderr[-2000:]
    assert done["outputs"]["exit-code"] == "3" and done["ran"]["Fail"].returncode == 3
    # The loader's rows say why there is nothing to compare, with the reason the base gave.
    gate = done["summary"].split("### Diagnostics")[0]
    assert "not applicable" in gate and "- lbactionpkg.loading:load (`load_s`, `load_cpu_s`" in gate, gate
    assert "in base: lbactionpkg.loading is not installed where the load runs" in gate
    # fail-on-inconclusive "false": the same run passes, and the summary still says it is inconclusive.
    (tmp_path / "again").mkdir()
    again = _run_action(workspace, tmp_path / "again", {**LOCAL, "fail-on-inconclusive": "false"},
                        _pull_request(workspace, base, head), only=("Compare", "Fail"))
    assert again["outputs"]["exit-code"] == "0" and again["ran"]["Fail"].returncode == 0
    assert again["outputs"]["verdict"].startswith("loadbench compare (paired): ⚠ inconclusive")


@pytest.mark.parametrize(("expression", "value"), [
    ("inputs.base-ref || github.event.pull_request.base.sha || github.event.before", "abc"),
    ("inputs.comment == 'true' && github.event_name == 'pull_request'", False),
    ("inputs.history == 'true' && github.event_name == 'push'", True),
])
def test_the_expressions_are_read_as_github_reads_them(expression: str, value: Any) -> None:
    context = {"inputs": {"base-ref": "", "comment": "false", "history": "true"},
               "github": {"event_name": "push", "event": {"pull_request": {"base": {"sha": "abc"}}}}}
    assert _evaluate(expression, context) == value


def test_the_example_workflow_uses_the_action_for_pull_requests_and_for_pushes_to_main() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    action_inputs = set(yaml.safe_load(ACTION.read_text(encoding="utf-8"))["inputs"])
    assert "main" in workflow[True]["push"]["branches"] and "pull_request" in workflow[True]
    for job, condition in (("compare", "github.event_name != 'push'"), ("history", "github.event_name == 'push'")):
        assert workflow["jobs"][job]["if"] == condition
        used = next(step for step in workflow["jobs"][job]["steps"] if step.get("uses") == "./")
        assert set(used["with"]) <= action_inputs
    history = next(step for step in workflow["jobs"]["history"]["steps"] if step.get("uses") == "./")["with"]
    assert history["history"] == "true" and workflow["jobs"]["history"]["permissions"] == {"contents": "write"}
