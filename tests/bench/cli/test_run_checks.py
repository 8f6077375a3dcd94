"""What ``loadbench run`` checks before the first sample, and how a run that measured nothing ends.

Each test runs the real command (in this process, or as the console script where the
process itself matters: a closed pipe, a full device) and reads what a user sees.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

from loadbench.results import read_run_info

QUICK = ("--repeats", "1", "--warmups", "0", "--cache", "warm", "--no-progress")

USER_PACKAGE_INIT = """
import os, pathlib
# Every import of this package leaves a file named for the process that ran it.
pathlib.Path(__file__).parent.parent.joinpath("imported-by", str(os.getpid())).write_text("")
"""

USER_LOADER = """
from transformers import AutoModelForSequenceClassification


def load(checkpoint, task, device, dtype):
    return AutoModelForSequenceClassification.from_pretrained(checkpoint)


def broken(checkpoint, task, device, dtype):
    raise RuntimeError("this loader is broken")
"""


@pytest.fixture
def user_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``userpkg.loader`` on sys.path; ``imported-by/`` collects the pid of every process that imports it."""
    root = tmp_path / "src"
    (root / "userpkg").mkdir(parents=True)
    (root / "imported-by").mkdir()
    (root / "userpkg" / "__init__.py").write_text(textwrap.dedent(USER_PACKAGE_INIT))
    (root / "userpkg" / "loader.py").write_text(textwrap.dedent(USER_LOADER))
    monkeypatch.syspath_prepend(str(root))
    yield root / "imported-by"
    for name in ("userpkg", "userpkg.loader"):
        sys.modules.pop(name, None)


def _one_line(result: subprocess.CompletedProcess[str], code: int = 2) -> str:
    assert result.returncode == code, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    return result.stderr.removeprefix("loadbench: error: ").rstrip("\n")


def test_a_user_path_runs_its_package_only_in_workers(builtin, user_package: Path, tmp_path: Path, cli) -> None:
    result = cli("run", "--checkpoint", str(builtin("tiny-bert")), "--paths", "userpkg.loader:load", *QUICK,
                 "--output", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr
    importers = {int(p.name) for p in user_package.iterdir()}
    assert importers and os.getpid() not in importers  # the sample's worker imported it; planning did not
    assert "userpkg" not in sys.modules


def test_a_user_path_whose_function_is_missing_is_refused_before_the_run(builtin, user_package: Path,
                                                                         tmp_path: Path, cli) -> None:
    result = cli("run", "--checkpoint", str(builtin("tiny-bert")), "--paths", "userpkg.loader:lod", *QUICK,
                 "--output", str(tmp_path / "run"))
    source = user_package.parent / "userpkg" / "loader.py"
    assert _one_line(result) == (f"path 'userpkg.loader:lod': {source} defines no 'lod' at its top level; "
                                 "check the function's name")
    assert not (tmp_path / "run").exists() and not list(user_package.iterdir())


@pytest.mark.parametrize(("option", "message"), [
    ("device_map=gpu", "loading option device_map: 'gpu' is neither a device (cpu, cuda, cuda:N) nor a placement "
                       "(auto, balanced, balanced_low_0, sequential); fix --option"),
    ("device_map=cuda:0", "loading option device_map=cuda:0: no CUDA device where the samples run"),
    ("attn_implementation=fast", "loading option attn_implementation: 'fast' is not one this transformers knows; "
                                 "give one of eager, "),
    ("attn_implementation=flash_attention_2", "loading option attn_implementation=flash_attention_2: flash attention "
                                              "runs on a GPU, and there is no CUDA device where the samples run"),
])
def test_an_option_every_sample_would_fail_on_is_refused_before_the_run(builtin, tmp_path: Path, cli,
                                                                        option: str, message: str) -> None:
    from loadbench.bench.fingerprint import local_cuda_available

    if local_cuda_available() and "CUDA" in message:
        pytest.skip("this machine has CUDA")
    result = cli("run", "--checkpoint", str(builtin("tiny-bert")), "--paths", "base", "--option", option, *QUICK,
                 "--output", str(tmp_path / "run"))
    assert _one_line(result).startswith(message)
    assert not (tmp_path / "run").exists()


def test_a_run_whose_every_sample_failed_exits_1(builtin, user_package: Path, tmp_path: Path, cli) -> None:
    result = cli("run", "--checkpoint", str(builtin("tiny-bert")), "--paths", "userpkg.loader:broken", *QUICK,
                 "--output", str(tmp_path / "run"))
    assert result.returncode == 1, result.stderr
    assert result.stderr == (f"failed: every sample of every case failed, so nothing was measured; each error is in "
                             f"the table above and in {tmp_path / 'run'}/samples.jsonl\n")
    assert "RuntimeError: this loader is broken" in result.stdout
    assert read_run_info(tmp_path / "run")["status"] == "complete"


def test_a_symlink_loop_and_a_name_too_long_are_one_line(tmp_path: Path, builtin, cli) -> None:
    loop = tmp_path / "loop"
    loop.symlink_to(tmp_path / "back")
    (tmp_path / "back").symlink_to(loop)
    assert _one_line(cli("run", "--checkpoint", str(loop))) == (
        f"--checkpoint {loop}: a symbolic link that loops; give the checkpoint's directory itself")
    long = tmp_path / ("x" * 300)
    assert _one_line(cli("run", "--checkpoint", str(builtin("tiny-bert")), "--output", str(long))) == (
        f"{long}: cannot write the run directory (File name too long); choose another --output")
    for args in (("run", "--checkpoint", str(long)), ("run", "--resume", str(long)), ("report", str(long)),
                 ("ceiling", str(long))):
        assert _one_line(cli(*args)).endswith(f"{long}: File name too long; give another path"), args


def test_a_mistyped_local_path_is_told_it_is_no_directory_either(hub_cache: Path, tmp_path: Path, cli) -> None:
    result = cli("run", "--checkpoint", "models/my-modle", cwd=tmp_path)
    assert _one_line(result).startswith("checkpoint 'models/my-modle': no such directory here (check the path, if "
                                        "it is one), and not in the Hugging Face cache")


def _interrupted_run(builtin, run_dir: Path, cli) -> None:
    """A finished one-sample run, set back to ``interrupted`` as a Ctrl-C leaves it."""
    result = cli("run", "--checkpoint", str(builtin("tiny-bert")), "--paths", "base", *QUICK,
                 "--output", str(run_dir))
    assert result.returncode == 0, result.stderr
    info = json.loads((run_dir / "run.json").read_text())
    (run_dir / "run.json").write_text(json.dumps({**info, "status": "interrupted"}))


def test_resume_refuses_or_applies_each_flag_it_used_to_drop(builtin, tmp_path: Path, cli) -> None:
    run_dir = tmp_path / "run"
    _interrupted_run(builtin, run_dir, cli)
    assert _one_line(cli("run", "--resume", str(run_dir), "--timeout", "5")) == (
        "--resume continues a run with its own suite and settings; drop --timeout")
    assert _one_line(cli("run", "--resume", str(run_dir), "--env", "a=/x")) == (
        "--resume continues a run with its own suite and settings; drop --env")
    assert _one_line(cli("run", "--resume", str(run_dir), "--trust-remote-code")) == (
        f"--trust-remote-code: {run_dir} was started without it, and a resumed run keeps its own settings; drop it")
    assert _one_line(cli("run", "--resume", str(run_dir), "--allow-bin-weights")).startswith(
        "--allow-bin-weights: ")
    # A run.json cannot give consent: a run started with the flag needs it again.
    info = json.loads((run_dir / "run.json").read_text())
    info["suite"]["trust_remote_code"] = True
    (run_dir / "run.json").write_text(json.dumps(info))
    assert _one_line(cli("run", "--resume", str(run_dir), "--no-progress")) == (
        f"{run_dir} was started with --trust-remote-code; give it again to finish the run (a run directory cannot "
        "turn it on by itself)")
    result = cli("run", "--resume", str(run_dir), "--trust-remote-code", "--download", "--no-progress")
    assert result.returncode == 0, result.stderr  # --download applies (nothing to fetch here)
    assert read_run_info(run_dir)["status"] == "complete"


@pytest.mark.parametrize("reader", ["full", "closed"])
def test_a_failed_write_to_stdout_is_one_line(builtin, tmp_path: Path, cli, reader: str) -> None:
    run_dir = tmp_path / "run"
    result = cli("run", "--checkpoint", str(builtin("tiny-bert")), "--paths", "base", *QUICK,
                 "--output", str(run_dir))
    assert result.returncode == 0, result.stderr
    script = str(Path(sysconfig.get_path("scripts")) / "loadbench")
    if reader == "full":
        with open("/dev/full", "w") as full:
            done = subprocess.run([script, "report", str(run_dir)], stdout=full, stderr=subprocess.PIPE, text=True,
                                  timeout=120)
        stderr, code, why = done.stderr, done.returncode, "No space left on device"
    else:  # `loadbench report RUN | head -1` with the reader already gone
        process = subprocess.Popen([script, "report", str(run_dir)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True)
        assert process.stdout is not None and process.stderr is not None
        process.stdout.close()
        stderr, code, why = process.stderr.read(), process.wait(timeout=120), "Broken pipe"
    assert code == 2 and "Traceback" not in stderr and stderr.count("\n") == 1, stderr
    assert stderr == (f"loadbench: error: cannot write to standard output ({why}); what it printed is cut short "
                      "(redirect it to a file with room, or give --output where the verb has one)\n")
