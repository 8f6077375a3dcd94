"""Environments as an axis of a run: interpreters, agents, the one-line errors, and blocks of samples."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from loadbench.bench import api
from loadbench.bench.executors.environments import UnusableEnvironment, interpreter_of
from loadbench.bench.executors.factory import make_executor
from loadbench.bench.plan import Case
from loadbench.bench.runner import _order, run_suite
from loadbench.bench.sample.protocol import OLDEST_PROTOCOL, PROTOCOL_VERSION
from loadbench.bench.sample.translate import Round
from loadbench.bench.studies.validate_paired import make_layered_venv
from loadbench.bench.suite import EnvironmentEntry, Suite, SuiteError, load_suite, suite_from_dict
from loadbench.results import load, read_run_info


def _script(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture(scope="module")
def layered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv that sees this environment's packages (loadbench included) through a .pth file."""
    return make_layered_venv(tmp_path_factory.mktemp("envs") / "layered")


def test_a_venv_directory_or_an_interpreter_names_a_python(tmp_path: Path, layered: Path) -> None:
    assert interpreter_of(EnvironmentEntry(name="a", python=str(layered))) == layered / "bin" / "python"
    assert interpreter_of(EnvironmentEntry(name="a", python=sys.executable)) == Path(sys.executable).absolute()


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "missing", "no such file or directory; give a virtual environment's directory"),
    (lambda p: p, "no bin/python in that directory"),
    (lambda p: _script(p / "python", "#!/bin/sh\n").chmod(0o644) or p / "python", "not executable"),
])
def test_an_unusable_path_is_one_line_naming_the_environment(tmp_path: Path, make, message: str) -> None:
    path = make(tmp_path)
    with pytest.raises(UnusableEnvironment, match=f"environment 'head' \\({path}\\): {message}"):
        interpreter_of(EnvironmentEntry(name="head", python=str(path)))


def test_suite_environments_are_distinct_and_relative_to_the_file(tmp_path: Path) -> None:
    with pytest.raises(SuiteError, match="environment name is given twice: a;"):
        suite_from_dict({"checkpoints": [{"builtin": "tiny-llama"}], "environments": [
            {"name": "a", "python": "x"}, {"name": "a", "python": "y"}]}, "s.toml")
    with pytest.raises(SuiteError, match="environments.0.name"):
        suite_from_dict({"checkpoints": [{"builtin": "tiny-llama"}],
                         "environments": [{"name": "no spaces", "python": "x"}]}, "s.toml")
    (tmp_path / "s.toml").write_text('checkpoints = [{builtin = "tiny-llama"}]\n[[environments]]\n'
                                     'name = "base"\npython = "venvs/base"\n', encoding="utf-8")
    suite = load_suite(tmp_path / "s.toml")
    assert suite.environments[0].python == str(tmp_path / "venvs" / "base")


def _case(path: str, env: str) -> Case:
    return Case("tiny-llama", "/x", path, "text-generation", "auto", "cpu", "warm", env=env)


def test_each_block_holds_a_case_in_every_environment_back_to_back() -> None:
    cases = [_case(p, e) for p in ("base", "task", "custom") for e in ("base", "head")]
    rounds = [Round(0, True), Round(0, False), Round(1, False)]
    order = _order(cases, rounds, seed=11)
    assert len(order) == 18 and order == _order(cases, rounds, seed=11)
    for start in range(0, 18, 2):
        (r1, c1, b1), (r2, c2, b2) = order[start], order[start + 1]
        assert b1 == b2 == start // 2 and r1 == r2 and c1.block_key == c2.block_key and {c1.env, c2.env} == {
            "base", "head"}
    firsts = [order[i][1].env for i in range(0, 18, 2)]
    assert set(firsts) == {"base", "head"}  # which side goes first is drawn, not fixed


def test_one_environment_has_no_blocks() -> None:
    order = _order([_case("base", "default"), _case("task", "default")], [Round(0, False)], seed=1)
    assert [block for _, _, block in order] == [None, None]


def test_a_run_with_two_environments_records_env_block_and_each_fingerprint(
        tmp_path: Path, builtin, layered: Path) -> None:
    builtin("tiny-llama")
    suite = Suite(checkpoints=[{"builtin": "tiny-llama"}], paths=["base", "task"], cache=["warm"], repeats=2,
                  warmups=0, new_tokens=2, forward_iters=1, seed=3,
                  environments=[{"name": "base", "python": sys.executable}, {"name": "head", "python": str(layered)}])
    outcome = run_suite(suite, tmp_path / "run", executor=make_executor(None, suite))
    assert (outcome.samples, outcome.failed_samples, outcome.lost) == (8, 0, 0)
    frame = load(tmp_path / "run")
    loads = frame[frame["metric"] == "load_s"]
    assert sorted(loads.groupby("env").size().items()) == [("base", 4), ("head", 4)]
    assert all(sorted(envs) == ["base", "head"] for _, envs in loads.groupby("block")["env"])
    assert (frame[frame["metric"] == "host_probe_s"]["value"] > 0).all()
    nodes = read_run_info(tmp_path / "run")["nodes"]
    by_env = {fp["environment"]: fp for fp in nodes.values()}
    assert set(by_env) == {"base", "head"}
    assert by_env["head"]["python_executable"] == str(layered / "bin" / "python")
    assert by_env["base"]["packages"]["transformers"] == by_env["head"]["packages"]["transformers"]


def test_an_interrupted_run_with_environments_resumes_in_the_environment_each_sample_lacks(
        tmp_path: Path, builtin, layered: Path) -> None:
    builtin("tiny-llama")
    suite = Suite(checkpoints=[{"builtin": "tiny-llama"}], paths=["base"], cache=["warm"], repeats=2, warmups=0,
                  new_tokens=2, forward_iters=1, seed=5,
                  environments=[{"name": "base", "python": sys.executable}, {"name": "head", "python": str(layered)}])
    run_suite(suite, tmp_path / "run", executor=make_executor(None, suite))
    samples, info = tmp_path / "run" / "samples.jsonl", tmp_path / "run" / "run.json"
    lines = samples.read_text(encoding="utf-8").splitlines(keepends=True)
    last = json.loads(lines[-1])
    samples.write_text("".join(lines[:-last["sample_records"]]), encoding="utf-8")  # the last sample never ran
    info.write_text(json.dumps({**json.loads(info.read_text(encoding="utf-8")), "status": "interrupted"}),
                    encoding="utf-8")
    result = api.resume(tmp_path / "run", reports=False)
    assert (result.samples, result.failed_samples) == (1, 0)
    frame = load(tmp_path / "run")
    loads = frame[frame["metric"] == "load_s"]
    assert sorted(loads.groupby("env").size().items()) == [("base", 2), ("head", 2)]
    resumed = loads.iloc[-1]
    assert (resumed["env"], resumed["block"]) == (last["env"], last["block"])
    assert read_run_info(tmp_path / "run")["status"] == "complete"


def test_an_environment_without_loadbench_stops_the_run_before_anything_is_measured(cli, tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    result = cli("run", "--env", f"base={sys.executable}", "--env", f"bare={bare}", "--output", str(tmp_path / "run"),
                 "--no-progress")
    assert result.returncode == 2
    *notices, error = result.stderr.strip().splitlines()
    assert error == (f"loadbench: error: environment 'bare' ({bare / 'bin' / 'python'}): loadbench is not installed "
                     "there; install this version of loadbench into it")
    # On a loaded machine the other environment may say first that it is still starting (after 5 s).
    assert all(" waiting for " in line and "LOADBENCH_ENV_TIMEOUT_S" in line for line in notices), notices
    assert not (tmp_path / "run").exists()


def test_an_agent_of_another_protocol_is_refused_naming_both_versions(cli, tmp_path: Path) -> None:
    other = _script(tmp_path / "python", "#!/bin/sh\necho '{\"protocol\": 999, \"loadbench\": \"9.9\"}'\n"
                                         "cat > /dev/null\n")
    result = cli("run", "--env", f"new={other}", "--output", str(tmp_path / "run"), "--no-progress")
    assert result.returncode == 2
    assert "environment 'new'" in result.stderr
    assert (f"its loadbench 9.9 speaks worker protocol 999, this one {OLDEST_PROTOCOL} to {PROTOCOL_VERSION}"
            in result.stderr)
    assert not (tmp_path / "run").exists()


def test_an_agent_that_dies_loses_its_sample_and_the_run_goes_on(tmp_path: Path, builtin) -> None:
    builtin("tiny-llama")
    # Answers the handshake like a real agent, then dies on its first sample.
    agent = tmp_path / "agent.py"
    agent.write_text(
        "import json, sys\n"
        f"print(json.dumps({{'protocol': {PROTOCOL_VERSION}, 'loadbench': 'x'}}), flush=True)\n"
        "for line in sys.stdin:\n"
        "    op = json.loads(line)['op']\n"
        "    if op == 'start':\n"
        "        print(json.dumps({'machine': {'hostname': 'h', 'python_executable': 'fake'}}), flush=True)\n"
        "    else:\n"
        "        sys.exit(3)\n", encoding="utf-8")
    fake = _script(tmp_path / "python", f"#!/bin/sh\nexec {sys.executable} {agent}\n")
    suite = Suite(checkpoints=[{"builtin": "tiny-llama"}], paths=["base"], cache=["warm"], repeats=2, warmups=0,
                  new_tokens=2, forward_iters=1,
                  environments=[{"name": "base", "python": sys.executable}, {"name": "dying", "python": str(fake)}])
    outcome = run_suite(suite, tmp_path / "run", executor=make_executor(None, suite))
    assert outcome.samples == 4 and outcome.lost == 2
    frame = load(tmp_path / "run")
    dying = frame[(frame["env"] == "dying")]
    assert set(dying["error_type"]) == {"node_lost"} and dying["error"].str.contains("exit code 3").all()
    assert (frame[(frame["env"] == "base") & (frame["metric"] == "load_s")]["status"] == "ok").all()
    assert read_run_info(tmp_path / "run")["status"] == "interrupted"  # lost samples: open to --resume


def test_env_option_needs_name_and_path(cli) -> None:
    result = cli("run", "--env", "justapath")
    assert result.returncode == 2 and "'justapath': give NAME=PATH" in result.stderr


def test_an_environment_with_the_agent_where_older_releases_kept_it_still_starts(tmp_path: Path) -> None:
    """A base installed from a commit before the bench/ rooms has loadbench/bench/env_agent.py."""
    from loadbench.bench.executors.environments import _START_AGENT, LEGACY_AGENT_MODULES

    old = tmp_path / "old"
    agent = old.joinpath(*LEGACY_AGENT_MODULES[0].split(".")).with_suffix(".py")
    agent.parent.mkdir(parents=True)
    for package in (old / "loadbench", old / "loadbench" / "bench"):
        (package / "__init__.py").write_text("")
    agent.write_text("if __name__ == '__main__':\n    print('legacy agent')\n")
    bare = sys._base_executable  # the interpreter under this venv: no loadbench of its own to find first
    done = subprocess.run([bare, "-P", "-c", _START_AGENT], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(old)})
    assert (done.returncode, done.stdout) == (0, "legacy agent\n"), done.stderr
    (agent.parent / "env_agent.py").unlink()  # neither place: Python's own line, which the driver reads
    done = subprocess.run([bare, "-P", "-c", _START_AGENT], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(old)})
    assert done.returncode == 1 and "No module named" in done.stderr and "env_agent" in done.stderr


def _fake_agent(tmp_path: Path, versions: Path) -> Path:
    """An interpreter whose agent answers the handshake with the versions in ``versions``, then dies on a sample."""
    agent = tmp_path / "agent.py"
    agent.write_text(
        "import json, sys\n"
        f"print(json.dumps({{'protocol': {PROTOCOL_VERSION}, 'loadbench': 'x'}}), flush=True)\n"
        "for line in sys.stdin:\n"
        "    if json.loads(line)['op'] == 'start':\n"
        f"        packages = json.loads(open({str(versions)!r}).read())\n"
        "        print(json.dumps({'machine': {'hostname': 'h', 'python': '3.11.7', 'packages': packages,\n"
        "                                      'python_executable': 'fake'}}), flush=True)\n"
        "    else:\n"
        "        sys.exit(3)\n", encoding="utf-8")
    return _script(tmp_path / "python", f"#!/bin/sh\nexec {sys.executable} {agent}\n")


def test_a_resume_whose_environment_changed_in_place_is_refused_and_leaves_the_run_as_it_was(
        cli, tmp_path: Path, builtin) -> None:
    builtin("tiny-llama")
    versions = tmp_path / "versions.json"
    versions.write_text(json.dumps({"transformers": "4.57.6", "torch": "2.13.0"}))
    fake, run = _fake_agent(tmp_path, versions), tmp_path / "run"
    first = cli("run", "--checkpoint", "tiny-llama", "--path", "base", "--repeats", "1", "--env", f"x={fake}",
                "--output", str(run), "--no-progress")
    assert first.returncode == 3 and read_run_info(run)["status"] == "interrupted", first.stderr  # samples lost
    versions.write_text(json.dumps({"transformers": "5.25.0", "torch": "2.13.0"}))  # pip install -U, in place
    before = {name: (run / name).read_bytes() for name in ("run.json", "samples.jsonl")}
    resumed = cli("run", "--resume", str(run), "--no-progress")
    assert resumed.returncode == 2
    assert resumed.stderr.strip().splitlines() == [
        f"loadbench: error: environment 'x' (fake): changed since {run} started (transformers 4.57.6 -> 5.25.0); "
        "resuming would pool two library versions under one label: restore it, or start a new run"]
    assert {name: (run / name).read_bytes() for name in before} == before
    versions.write_text(json.dumps({"transformers": "4.57.6", "torch": "2.13.0"}))  # restored: resume goes on
    assert "changed since" not in cli("run", "--resume", str(run), "--no-progress").stderr


def test_an_interpreter_that_never_answers_says_what_it_waits_for_then_gives_up_in_one_line(
        cli, tmp_path: Path) -> None:
    silent = _script(tmp_path / "python", "#!/bin/sh\nsleep 60\n")
    result = cli("run", "--env", f"x={silent}", "--output", str(tmp_path / "run"), "--no-progress",
                 env={"LOADBENCH_ENV_TIMEOUT_S": "2"})
    assert result.returncode == 2 and not (tmp_path / "run").exists()
    *waiting, last = result.stderr.strip().splitlines()
    assert waiting == [f"loadbench: environment 'x' ({silent}): waiting for its interpreter to start loadbench's "
                       "agent, 1 s so far (gives up after 2 s; LOADBENCH_ENV_TIMEOUT_S)"]
    assert last == (f"loadbench: error: environment 'x' ({silent}): no answer within 2 s while waiting for its "
                    f"interpreter to start loadbench's agent; check that `{silent} -c pass` runs, or allow longer "
                    "with LOADBENCH_ENV_TIMEOUT_S=SECONDS")
    bad = cli("run", "--env", f"x={silent}", "--output", str(tmp_path / "run"), env={"LOADBENCH_ENV_TIMEOUT_S": "x"})
    assert bad.returncode == 2 and bad.stderr.strip() == (
        "loadbench: error: LOADBENCH_ENV_TIMEOUT_S='x': not a number of seconds; give one above 0, e.g. 600")


def test_an_interpreter_that_prints_a_banner_first_still_runs_and_a_failing_one_shows_it(
        cli, tmp_path: Path, builtin) -> None:
    builtin("tiny-llama")
    # The banner and the handshake reach the driver in one write, as they may from any wrapper.
    wrapper = _script(tmp_path / "python", f'#!/bin/sh\n{sys.executable} "$@" | {{ read -r hello; '
                                           'printf "conda: environment activated\\n%s\\n" "$hello"; exec cat; }\n')
    result = cli("run", "--checkpoint", "tiny-llama", "--path", "base", "--repeats", "1", "--warmups", "0",
                 "--env", f"x={wrapper}", "--output", str(tmp_path / "run"), "--no-progress")
    assert result.returncode == 0, result.stderr
    assert (load(tmp_path / "run").query("metric == 'load_s'")["status"] == "ok").all()
    broken = _script(tmp_path / "broken", "#!/bin/sh\necho 'Welcome!'\necho 'no such python' >&2\nexit 1\n")
    result = cli("run", "--env", f"x={broken}", "--output", str(tmp_path / "run2"), "--no-progress")
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        f"loadbench: error: environment 'x' ({broken}): its agent ended: no such python; before that it printed "
        "1 line(s) that are not the protocol: 'Welcome!'"]


def test_an_environment_whose_libraries_fail_to_import_stops_the_run_with_their_error(
        cli, tmp_path: Path) -> None:
    """As transformers 5.0.0 did beside kernels 0.19: the zygote's real error, not the agent's EOFError."""
    env = make_layered_venv(tmp_path / "broken")
    [site] = (env / "lib").glob("python*/site-packages")
    (site / "transformers").mkdir()
    (site / "transformers" / "__init__.py").write_text(
        "raise ValueError('Either a revision or a version must be specified.')\n")
    result = cli("run", "--env", f"x={env}", "--output", str(tmp_path / "run"), "--no-progress")
    assert result.returncode == 2 and not (tmp_path / "run").exists()
    assert result.stderr.strip().splitlines()[-1] == (
        f"loadbench: error: environment 'x' ({env / 'bin' / 'python'}): its zygote cannot import the environment's "
        "libraries: ValueError: Either a revision or a version must be specified; every sample there would fail "
        "the same way (so would a --resume): repair or rebuild that environment")


def test_an_agent_restarted_mid_run_on_other_versions_loses_its_sample_saying_so(tmp_path: Path, builtin) -> None:
    builtin("tiny-llama")
    versions = tmp_path / "versions.json"
    versions.write_text(json.dumps({"transformers": "4.57.6"}))
    fake = _fake_agent(tmp_path, versions)
    # Its first sample upgrades it in place before it dies: the fresh agent for the next one runs 5.25.0.
    agent = tmp_path / "agent.py"
    agent.write_text(agent.read_text().replace(
        "        sys.exit(3)\n", f"        open({str(versions)!r}, 'w').write('{{\"transformers\": \"5.25.0\"}}')\n"
                                "        sys.exit(3)\n"))
    suite = Suite(checkpoints=[{"builtin": "tiny-llama"}], paths=["base"], cache=["warm"], repeats=2, warmups=0,
                  new_tokens=2, forward_iters=1, environments=[{"name": "x", "python": str(fake)}])
    run_suite(suite, tmp_path / "run", executor=make_executor(None, suite))
    errors = list(load(tmp_path / "run").query("metric == 'load_s'")["error"])
    assert errors[0].endswith("its agent ended: exit code 3")
    assert f"environment 'x' (fake): changed since {tmp_path / 'run'} started (transformers 4.57.6 -> 5.25.0)" in (
        errors[1])
