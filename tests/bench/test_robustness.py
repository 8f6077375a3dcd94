"""Bad inputs and faults, each tried for real through the CLI: one line, exit code, nothing lost.

The table in docs/ROBUSTNESS.md lists these rows; keep the two in step.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from loadbench.results import load


def _copy(builtin, name: str, dest: Path) -> Path:
    shutil.copytree(builtin(name), dest)
    return dest


def _one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("loadbench: error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


def test_truncated_safetensors(builtin, cli, tmp_path: Path) -> None:
    ckpt = _copy(builtin, "tiny-bert", tmp_path / "cut")
    weights = ckpt / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1000])
    _one_line_error(cli("run", "--checkpoint", str(ckpt)), str(weights), "truncated or corrupt")


def test_corrupt_safetensors_header(builtin, cli, tmp_path: Path) -> None:
    ckpt = _copy(builtin, "tiny-bert", tmp_path / "garbled")
    weights = ckpt / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[8:20] = b"not a header"
    weights.write_bytes(bytes(data))
    _one_line_error(cli("run", "--checkpoint", str(ckpt)), str(weights), "bad header")


def test_missing_tokenizer(builtin, cli, tmp_path: Path) -> None:
    ckpt = _copy(builtin, "tiny-bert", tmp_path / "no-tok")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (ckpt / name).unlink()
    _one_line_error(cli("run", "--checkpoint", str(ckpt)), "no tokenizer files")


def test_task_the_checkpoint_cannot_do(builtin, cli, tmp_path: Path) -> None:
    suite = tmp_path / "s.toml"
    suite.write_text(f'[[checkpoints]]\npath = "{builtin("tiny-bert")}"\ntasks = ["text2text-generation"]\n')
    _one_line_error(cli("run", str(suite)), "cannot do task 'text2text-generation'",
                    "supports: text-classification, feature-extraction")


def test_remote_code_refused_without_the_flag(builtin, cli, tmp_path: Path) -> None:
    ckpt = _copy(builtin, "tiny-bert", tmp_path / "remote")
    config = json.loads((ckpt / "config.json").read_text())
    config.update(model_type="my-own-bert", auto_map={"AutoConfig": "modeling_mine.MyConfig"})
    (ckpt / "config.json").write_text(json.dumps(config))
    _one_line_error(cli("run", "--checkpoint", str(ckpt)), "needs the checkpoint's own code",
                    "--trust-remote-code")


def test_pickle_weights_refused_unless_allowed(builtin, cli, tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file

    ckpt = _copy(builtin, "tiny-bert", tmp_path / "pickled")
    weights = ckpt / "model.safetensors"
    torch.save(load_file(str(weights)), ckpt / "pytorch_model.bin")
    weights.unlink()
    _one_line_error(cli("run", "--checkpoint", str(ckpt)), "pickle .bin weights", "--allow-bin-weights")
    result = cli("run", "--checkpoint", str(ckpt), "--allow-bin-weights", "--repeats", "1",
                 "--warmups", "0", "--cache", "warm", "--no-progress", "--output", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr
    df = load(tmp_path / "run")
    assert set(df[df.metric == "load_s"]["status"]) == {"ok"}


def test_unwritable_output_directory(builtin, cli, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    _one_line_error(cli("run", "--checkpoint", str(builtin("tiny-bert")), "--output", str(blocker / "run")),
                    "cannot write the run directory", "choose another --output")


def test_sample_past_its_timeout_is_killed_and_the_run_goes_on(builtin, cli, tmp_path: Path) -> None:
    """A sample that would run for hours (10^8 forward calls) against an 8 s limit: the load
    fits in it (well under a second here, imports included), the workload does not."""
    suite = tmp_path / "s.toml"
    suite.write_text('repeats = 2\nwarmups = 0\ncache = "warm"\npaths = ["base"]\ntimeout_s = 8\n'
                     f'forward_iters = 100000000\n[[checkpoints]]\npath = "{builtin("tiny-bert")}"\n')
    result = cli("run", str(suite), "--no-progress", "--output", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr
    df = load(tmp_path / "run")
    # The sample after the killed one was tried too (the run went on); each one's load is on
    # record, and the kill is recorded against the workload it interrupted, not against the load.
    load_s = df[df.metric == "load_s"]
    assert len(load_s) == 2 and (load_s.status == "ok").all()
    workload = df[df.metric == "forward_tokens_per_s"]
    assert len(workload) == 2 and set(workload["error_type"]) == {"timeout"}
    assert workload["error"].str.contains("no result after 8 s; the worker was killed").all()
    assert (df[df.metric == "first_forward_s"].status == "ok").sum() == 0  # the partial reply ends at the load


OOM_SCRIPT = """
import json, resource, sys
import torch, transformers
from loadbench.bench.sample.protocol import SampleRequest
from loadbench.bench.sample.worker import measure

def vm_size():
    for line in open("/proc/self/status"):
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024

# Room to load (the load peaks ~380 MiB RSS), none for the workload: unlimited, a batch of
# 4096 long prompts peaked at ~1.5 GiB RSS here (512 prompts, ~0.6 GiB, fit now and then).
limit = vm_size() + 600 * 2**20
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
reply = measure(SampleRequest(sys.argv[1], "base", "text-classification", "cpu", "auto",
                              "the river runs " * 40, 4096, 4, 1, False, cache="warm", threads=1))
print(json.dumps(reply.to_dict()))
"""


def test_out_of_memory_in_a_sample_is_recorded_as_its_failure(builtin) -> None:
    """A real allocation failure: the worker's address space capped as a small machine's RAM would be."""
    # Its own process: RLIMIT_AS caps the whole process, never to be set on pytest's.
    result = subprocess.run([sys.executable, "-c", OOM_SCRIPT, str(builtin("tiny-bert"))],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    reply = json.loads(result.stdout.strip().splitlines()[-1])
    assert any(m["metric"] == "load_s" for m in reply["metrics"])  # the load fit, the workload did not
    [failure] = [f for f in reply["failures"] if f["metric"] == "forward_tokens_per_s"]
    assert failure["error_type"] in {"RuntimeError", "MemoryError", "OutOfMemoryError"}
    assert "allocate" in failure["error"]


def _refused_writing_nothing(cli, tmp_path: Path, ckpt: Path, *needles: str, flags: tuple[str, ...] = ()) -> None:
    out = tmp_path / f"run-{ckpt.name}"
    _one_line_error(cli("run", "--checkpoint", str(ckpt), "--repeats", "1", "--no-progress",
                        "--output", str(out), *flags), *needles)
    assert not out.exists()


def _reshard(ckpt: Path, second: str) -> None:
    """tiny-llama's weights as two shards, the second saved as ``second`` (torch.save for .bin)."""
    import torch
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(ckpt / "model.safetensors"))
    (ckpt / "model.safetensors").unlink()
    names = sorted(tensors)
    half = len(names) // 2
    save_file({k: tensors[k] for k in names[:half]}, str(ckpt / "model-00001-of-00002.safetensors"))
    torch.save({k: tensors[k] for k in names[half:]}, ckpt / second)
    weight_map = {k: "model-00001-of-00002.safetensors" if i < half else second for i, k in enumerate(names)}
    (ckpt / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))


def test_index_naming_pickle_or_outside_shards(builtin, cli, tmp_path: Path) -> None:
    ckpt = _copy(builtin, "tiny-llama", tmp_path / "pickled-shard")
    _reshard(ckpt, "pytorch_model-00002-of-00002.bin")
    _refused_writing_nothing(cli, tmp_path, ckpt,
                             "model.safetensors.index.json: shard 'pytorch_model-00002-of-00002.bin'"
                             " is pickle weights, which can run code when loaded", "--allow-bin-weights")
    escape = _copy(builtin, "tiny-llama", tmp_path / "escaping-shard")
    _reshard(escape, "../outside.bin")
    _refused_writing_nothing(cli, tmp_path, escape, "shard '../outside.bin' is outside the checkpoint directory",
                             flags=("--allow-bin-weights",))


def test_empty_weights(builtin, cli, tmp_path: Path) -> None:
    from safetensors.torch import save_file

    ckpt = _copy(builtin, "tiny-llama", tmp_path / "no-tensors")
    save_file({}, str(ckpt / "model.safetensors"), metadata={"format": "pt"})
    _refused_writing_nothing(cli, tmp_path, ckpt, str(ckpt / "model.safetensors"), "holds no tensors")
    index = _copy(builtin, "tiny-llama-sharded", tmp_path / "empty-index")
    (index / "model.safetensors.index.json").write_text('{"metadata": {}, "weight_map": {}}')
    _refused_writing_nothing(cli, tmp_path, index, "'weight_map' names no tensors")


def test_config_json_with_wrong_types_or_bytes(builtin, cli, tmp_path: Path) -> None:
    cases: dict[str, tuple[bytes | None, str]] = {
        "not-utf8": (b'{"model_type": "llama\xff"}', "not UTF-8 text"),
        "a-list": (b"[1, 2]", "not a JSON object"),
        "architectures": (None, "'architectures' must be a list of class names"),
        "hidden-size": (None, "transformers cannot read it"),
        "a-directory": (None, "is a directory"),
    }
    for label, (content, needle) in cases.items():
        ckpt = _copy(builtin, "tiny-llama", tmp_path / label)
        config = ckpt / "config.json"
        if label in ("architectures", "hidden-size"):
            data = json.loads(config.read_text())
            data.update({"architectures": [5]} if label == "architectures" else {"hidden_size": "big"})
            config.write_text(json.dumps(data))
        elif label == "a-directory":
            config.unlink()
            config.mkdir()
        else:
            config.write_bytes(content or b"")
        _refused_writing_nothing(cli, tmp_path, ckpt, str(config), needle)


def test_remote_code_runs_in_the_workers_only(builtin, cli, tmp_path: Path, monkeypatch) -> None:
    """A tiny Llama under its own model_type, its code in the directory: each import leaves a file."""
    sentinel = tmp_path / "imports"
    sentinel.mkdir()
    ckpt = _copy(builtin, "tiny-llama", tmp_path / "own-code")
    (ckpt / "configuration_x.py").write_text(
        "import os\nfrom transformers import LlamaConfig\n\n"
        f"open(os.path.join({str(sentinel)!r}, f'imported-{{os.getpid()}}'), 'w').close()\n\n\n"
        "class XConfig(LlamaConfig):\n    model_type = 'x-llama'\n")
    (ckpt / "modeling_x.py").write_text(
        "from transformers import LlamaForCausalLM, LlamaModel\n\nfrom .configuration_x import XConfig\n\n\n"
        "class XModel(LlamaModel):\n    config_class = XConfig\n\n\n"
        "class XForCausalLM(LlamaForCausalLM):\n    config_class = XConfig\n")
    config = json.loads((ckpt / "config.json").read_text())
    config.update(model_type="x-llama", architectures=["XForCausalLM"], auto_map={
        "AutoConfig": "configuration_x.XConfig", "AutoModel": "modeling_x.XModel",
        "AutoModelForCausalLM": "modeling_x.XForCausalLM"})
    (ckpt / "config.json").write_text(json.dumps(config))
    monkeypatch.setenv("HF_MODULES_CACHE", str(tmp_path / "modules"))  # where transformers copies the code

    _refused_writing_nothing(cli, tmp_path, ckpt, "needs the checkpoint's own code", "--trust-remote-code")
    assert not list(sentinel.iterdir())  # refused in this very process: nothing of it imported here either
    # A process of its own: the importing pid tells the parent from the workers, and trusted code
    # run in pytest's process would register its classes into this process's transformers.
    run = subprocess.Popen([sys.executable, "-m", "loadbench.bench.cli.main", "run", "--checkpoint", str(ckpt),
                            "--trust-remote-code", "--repeats", "1", "--warmups", "0", "--cache", "warm",
                            "--no-progress", "--output", str(tmp_path / "run")],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, stderr = run.communicate(timeout=600)
    assert run.returncode == 0, stderr
    df = load(tmp_path / "run")
    load_s = df[df.metric == "load_s"].set_index("path")
    assert set(load_s.task) == {"text-generation"}
    assert set(load_s.loc[["base", "task", "pipeline"], "status"]) == {"ok"}
    assert load_s.loc["custom", "status"] == "not_applicable"
    assert "checkpoint's own code" in load_s.loc["custom", "reason"]
    importers = {int(p.name.removeprefix("imported-")) for p in sentinel.iterdir()}
    assert len(importers) == 3 and run.pid not in importers  # one worker per measured sample, never the parent
