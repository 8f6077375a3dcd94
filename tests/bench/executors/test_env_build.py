"""Environments built from requirements: built once, reused, layered on this one, and failing in one line.

Offline: the requirement is a wheel made here, so pip and uv need no index.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Callable
from pathlib import Path

import pytest

from loadbench.bench.cli.main import main
from loadbench.bench.executors import env_build
from loadbench.bench.executors.env_build import (
    BuildFailed,
    ensure_environment,
    environment_dir,
    find_uv,
    normalized_requirements,
    python_of,
    requirements_in,
)
from loadbench.bench.suite import EnvironmentEntry
from loadbench.results import load

INSTALLERS = ["pip", pytest.param("uv", marks=pytest.mark.skipif(find_uv() is None, reason="uv is not installed"))]


@pytest.mark.parametrize("installer", INSTALLERS)
def test_built_once_then_reused_and_layered_on_this_environment(make_wheel: Callable[..., Path], tmp_path: Path,
                                                                  installer: str) -> None:
    requirement = f"lbtestpkg @ {make_wheel(tmp_path).as_uri()}"
    said: list[str] = []
    tool = "pip" if installer == "pip" else find_uv()
    built = ensure_environment("t", [requirement], installer=tool, root=tmp_path / "envs", say=said.append)
    assert not built.reused and built.installed == {"lbtestpkg": "1.0"} and built.installer == installer
    assert "building into" in said[0] and "installing lbtestpkg 1.0" in said[1] and "built in" in said[2]
    # Its own package, and this environment's torch and loadbench through the layer: nothing fetched again;
    # but not what neither it nor loadbench's worker needs (mypy: a test tool here).
    shown = subprocess.run(
        [python_of(built.path), "-c", "import importlib.util as u, lbtestpkg, loadbench, torch; "
                                      "print(lbtestpkg.__file__); print(torch.__file__); "
                                      "print([n for n in ('mypy', 'lbtestpkg') if u.find_spec(n)])"],
        capture_output=True, text=True, check=True)
    own, torch_file, visible = shown.stdout.splitlines()
    assert own.startswith(str(built.path)) and visible == "['lbtestpkg']"
    assert Path(torch_file).resolve().is_relative_to(Path(sysconfig.get_paths()["purelib"]).resolve())
    assert "torch==" in " ".join(json.loads((built.path / env_build.MARKER).read_text())["from_base"])
    # Compiled at install, as pip does: workers write no .pyc, so a missing one is compiled inside each load.
    assert list((Path(own).parent / "__pycache__").glob("__init__.*.pyc"))

    said.clear()
    again = ensure_environment("t", [requirement], installer=tool, root=tmp_path / "envs", say=said.append)
    assert again.reused and again.path == built.path and said == [
        f"environment 't' ({requirement}): reusing {built.path} (built in {built.build_s:.1f} s)"]


def test_a_failed_build_names_the_requirement_and_the_reason_and_leaves_nothing(tmp_path: Path) -> None:
    missing = f"lbtestpkg @ {(tmp_path / 'gone' / 'lbtestpkg-1.0-py3-none-any.whl').as_uri()}"
    with pytest.raises(BuildFailed) as caught:
        ensure_environment("old", [missing], installer="pip", root=tmp_path / "envs", say=lambda _: None)
    message = str(caught.value)
    assert message.startswith(f"environment 'old' ({missing}): pip, resolving the requirements, failed: ")
    assert "\n" not in message and "No such file or directory" in message
    assert list((tmp_path / "envs").iterdir()) == []


def test_an_interrupted_build_is_never_taken_for_a_built_one(make_wheel: Callable[..., Path], tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    requirement = f"lbtestpkg @ {make_wheel(tmp_path).as_uri()}"

    def interrupted(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(env_build, "_install", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ensure_environment("t", [requirement], installer="pip", root=tmp_path / "envs", say=lambda _: None)
    assert list((tmp_path / "envs").iterdir()) == []
    monkeypatch.undo()
    built = ensure_environment("t", [requirement], installer="pip", root=tmp_path / "envs", say=lambda _: None)
    assert not built.reused and (built.path / env_build.MARKER).is_file()


def test_a_build_whose_base_is_gone_is_built_again(make_wheel: Callable[..., Path], tmp_path: Path) -> None:
    requirement = f"lbtestpkg @ {make_wheel(tmp_path).as_uri()}"
    built = ensure_environment("t", [requirement], installer="pip", root=tmp_path / "envs", say=lambda _: None)
    marker = built.path / env_build.MARKER
    marker.write_text(marker.read_text().replace(sysconfig.get_paths()["purelib"], str(tmp_path / "moved")))
    assert not ensure_environment("t", [requirement], installer="pip", root=tmp_path / "envs",
                                  say=lambda _: None).reused


def test_one_specification_one_build_whatever_its_spelling() -> None:
    one = environment_dir(normalized_requirements(["tokenizers>=0.22", "transformers==4.57.6"], "x"))
    same = environment_dir(normalized_requirements(["transformers == 4.57.6", "tokenizers >= 0.22"], "x"))
    other = environment_dir(normalized_requirements(["transformers==4.57.5"], "x"))
    assert one == same != other


@pytest.mark.parametrize(("spec", "expected"), [
    ("transformers==4.57.6", ["transformers==4.57.6"]),
    ("transformers==4.57.6 tokenizers>=0.22", ["transformers==4.57.6", "tokenizers>=0.22"]),
    ("transformers>=4.46,<4.47", ["transformers>=4.46,<4.47"]),
    ("pkg @ file:///w/pkg-1-py3-none-any.whl", ["pkg @ file:///w/pkg-1-py3-none-any.whl"]),
    (sys.prefix, None),  # an existing path is a path
    ("venv-base", None),  # a bare word: a mistyped venv is reported missing, not looked up on PyPI
    ("./.venv-head", None),
])
def test_env_spec_is_requirements_or_a_path(spec: str, expected: list[str] | None) -> None:
    assert requirements_in(spec) == expected


@pytest.mark.parametrize(("fields", "message"), [
    ({"name": "x"}, "give exactly one of 'python' or 'requirements'"),
    ({"name": "x", "python": "/v", "requirements": ["a==1"]}, "give exactly one of 'python' or 'requirements'"),
    ({"name": "x", "requirements": ["transformers=4"]}, "'transformers=4' is not a requirement"),
    ({"name": "x", "requirements": []}, "at least 1 item"),
])
def test_a_suites_environment_is_a_path_or_valid_requirements(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EnvironmentEntry(**fields)  # type: ignore[arg-type]


def test_run_with_an_unbuildable_environment_stops_before_anything_is_written(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = f"lbtestpkg @ {(tmp_path / 'lbtestpkg-1.0-py3-none-any.whl').as_uri()}"
    out = tmp_path / "run"
    code = main(["run", "--checkpoint", "tiny-llama", "--env", f"old={missing}", "--output", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and not out.exists()
    assert err[-1].startswith(f"loadbench: error: environment 'old' ({missing}): pip, resolving the requirements")


def test_env_build_and_list_on_the_command_line(make_wheel: Callable[..., Path], tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("LOADBENCH_CACHE_DIR", str(tmp_path / "cache"))
    requirement = f"lbtestpkg @ {make_wheel(tmp_path).as_uri()}"
    assert main(["env", "list"]) == 0
    assert "no environments built yet" in capsys.readouterr().out
    assert main(["env", "build", "--pip", requirement]) == 0
    path = capsys.readouterr().out.strip()
    assert Path(path).parent == tmp_path / "cache" / "envs" and python_of(Path(path)).exists()
    assert main(["env", "list"]) == 0
    listed = capsys.readouterr().out
    assert listed.startswith(f"{path}  {requirement}  (built in ") and "installed: lbtestpkg 1.0" in listed
    assert "stale" not in listed
    record = Path(path) / env_build.MARKER
    record.rename(record.with_suffix(".keep"))
    stale = Path(path).with_name("0" * 16)  # another key: what a build on another base looks like here
    Path(path).rename(stale)
    (stale / env_build.MARKER).write_text((stale / "loadbench_env.keep").read_text())
    assert main(["env", "list"]) == 0
    assert "stale: built on another base" in capsys.readouterr().out
    assert main(["env", "build", "transformers=4"]) == 2
    assert "is not a requirement" in capsys.readouterr().err


@pytest.mark.parametrize(("requirement", "message"), [
    ('transformers==4.57.6; python_version < "3"',
     f"'transformers==4.57.6; python_version < \"3\"' does not apply to this Python {sys.version.split()[0]} (its "
     "marker is false), so the environment would not hold it; drop the marker"),
    ("torch==1.0", "'torch==1.0' conflicts with loadbench, which needs torch>=2.4 (its worker runs in every "
                   "environment); ask for a torch release in that range"),
])
def test_a_requirement_the_environment_would_not_hold_is_refused_in_one_line(
        tmp_path: Path, requirement: str, message: str, cli) -> None:
    result = cli("env", "build", requirement, env={"LOADBENCH_CACHE_DIR": str(tmp_path)})
    assert result.returncode == 2 and result.stderr.strip() == f"loadbench: error: environment 'env': {message}"
    run = cli("run", "--env", f"x={requirement}", "--output", str(tmp_path / "run"),
              env={"LOADBENCH_CACHE_DIR": str(tmp_path)})
    [line] = run.stderr.strip().splitlines()  # checked with the run's options, which name where
    assert run.returncode == 2 and line.endswith(f"environment 'x': {message}")
    assert not (tmp_path / "envs").exists() and not (tmp_path / "run").exists()


# The user's own cache (read before the tests point LOADBENCH_CACHE_DIR at a scratch one): a release is
# downloaded and built once per machine, then reused by every later session.
SHARED_CACHE = os.environ.get("LOADBENCH_CACHE_DIR") or str(env_build.cache_root().parent)


@pytest.mark.parametrize("release", ["5.0.0"])
def test_a_release_that_failed_beside_the_drivers_packages_builds_and_runs(release: str, cli, builtin) -> None:
    """transformers 5.0.0 to 5.10.1 fail to import beside kernels 0.19 (which 5.25 installs in the driver).

    Uses the package index, once per machine (the build is cached): about 7 s and 120 MB to
    build, 0.4 s to find built; then one sample of tiny-llama in it, about 8 s.
    """
    builtin("tiny-llama")
    built = cli("env", "build", f"transformers=={release}", env={"LOADBENCH_CACHE_DIR": SHARED_CACHE})
    assert built.returncode == 0, built.stderr
    path = Path(built.stdout.strip())
    shown = subprocess.run([python_of(path), "-c", "import importlib.util as u, transformers; "
                            "print(transformers.__version__, u.find_spec('kernels') is None)"],
                           capture_output=True, text=True)
    assert shown.stdout.split() == [release, "True"], shown.stderr
    out = path.parent / f"run-{os.getpid()}"
    try:
        result = cli("run", "--checkpoint", "tiny-llama", "--path", "base", "--repeats", "1", "--warmups", "0", "--env",
                     f"x={path}", "--output", str(out), "--no-progress")
        assert result.returncode == 0, result.stderr
        loads = load(out).query("metric == 'load_s'")
        assert set(loads["transformers_version"]) == {release} and set(loads["status"]) <= {"ok", "not_applicable"}
    finally:
        shutil.rmtree(out, ignore_errors=True)
