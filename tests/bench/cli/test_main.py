"""The real ``loadbench`` command: once as the console script a user runs, else in this process (``cli``)."""

from __future__ import annotations

import json
import subprocess
import sysconfig
from pathlib import Path

import pytest

from loadbench.bench.studies.interrupt_soak import check_run
from loadbench.results import SCHEMA_VERSION, load, read_run_info

PATH_HEADER = ("base", "task", "custom", "pipeline")


def _table_row(stdout: str, *cells: str) -> list[str]:
    for line in stdout.splitlines():
        parts = line.split()
        if parts[:len(cells)] == list(cells):
            return parts
    raise AssertionError(f"no row {cells} in:\n{stdout}")


@pytest.fixture(scope="module")
def default_run(builtin_cache: Path, tmp_path_factory: pytest.TempPathFactory):
    """The one run of the installed console script, end to end in a fresh process, as a user types it."""
    out = tmp_path_factory.mktemp("cli") / "default"
    script = Path(sysconfig.get_path("scripts")) / "loadbench"
    result = subprocess.run([str(script), "run", "--repeats", "1", "--warmups", "0", "--no-progress",
                             "--output", str(out)], capture_output=True, text=True, timeout=600)
    return result, out


def test_default_run_prints_three_checkpoints_by_four_paths(default_run) -> None:
    result, out = default_run
    assert result.returncode == 0, result.stderr
    header = next(line.split() for line in result.stdout.splitlines() if "metric" in line.split())
    assert header[-4:] == list(PATH_HEADER)
    for checkpoint, task in [("tiny-llama", "text-generation"), ("tiny-bert", "text-classification"),
                             ("tiny-t5", "text2text-generation")]:
        for cache in ("warm", "cold"):
            row = _table_row(result.stdout, checkpoint, task, cache, "load_s")
            assert "FAILED" not in row
    t5 = _table_row(result.stdout, "tiny-t5", "text2text-generation", "cold", "load_s")
    assert t5[-2:] == ["n/a", "[1]"]
    assert "[1] transformers" in result.stdout and "no pipeline for text2text-generation" in result.stdout
    assert f"run directory: {out}" in result.stdout


def test_default_run_records(default_run) -> None:
    _, out = default_run
    info = read_run_info(out)
    assert info["status"] == "complete" and info["schema_version"] == SCHEMA_VERSION == 6
    check_run(out)  # every sample whole, once
    df = load(out)
    ok_load = df[(df.metric == "load_s") & (df.status == "ok")]
    assert len(ok_load) == 22  # 12 cases x warm and cold page cache, one case not applicable
    assert set(df["cache"]) == {"warm", "cold"}
    decode = df[df.metric == "decode_tokens_per_s"]
    assert set(decode["path"]) == {"task", "pipeline"}
    new_tokens = df[df.metric == "new_tokens"]["value"]
    assert (new_tokens == info["suite"]["new_tokens"]).all()


def test_real_pretrained_checkpoint(minilm_dir: Path, tmp_path: Path, cli) -> None:
    result = cli("run", "--checkpoint", str(minilm_dir), "--repeats", "1", "--warmups", "0",
                 "--cache", "warm", "--no-progress", "--output", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr
    df = load(tmp_path / "run")
    ok = df[(df.status == "ok") & (df.metric == "load_s")]
    assert set(ok["path"]) == {"base", "custom", "pipeline"}  # feature extraction: task path n/a
    eq = df[df.metric == "max_abs_diff_vs_base"]
    assert (eq.status == "ok").all() and (eq["value"] < 1e-5).all()


def test_loading_options_suite_checks_every_combination(builtin_cache: Path, tmp_path: Path, cli) -> None:
    # The documented example: device_map x attention implementation x parallel loading on one checkpoint.
    example = Path(__file__).resolve().parents[3] / "examples" / "options.toml"
    result = cli("run", str(example), "--repeats", "1", "--warmups", "0", "--no-progress",
                 "--output", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr
    df = load(tmp_path / "run")
    assert df["options"].nunique() == 8 and set(df["path"]) == set(PATH_HEADER)
    assert not (df.status == "failed").any(), df[df.status == "failed"][["options", "path", "error"]]
    eq = df[df.metric == "max_abs_diff_vs_base"]
    compared = set(zip(eq["options"], eq["path"]))
    # Every combination on every path, base included: the reference is the plain load.
    assert compared == {(o, p) for o in df["options"].unique() for p in PATH_HEADER}
    assert (eq.status == "ok").all()
    eager = df[(df.metric == "load_s") & df["options"].str.contains("attn_implementation=eager")]
    assert set(eager["attn_implementation"]) == {"eager"}
    assert "options" in result.stdout.splitlines()[2]  # a column of the summary: it varies


def test_sharded_checkpoint_and_suite_file(builtin, tmp_path: Path, cli) -> None:
    suite = tmp_path / "suite.toml"
    suite.write_text(f'repeats = 1\nwarmups = 0\ncache = "cold"\npaths = ["custom"]\n'
                     f'[[checkpoints]]\npath = "{builtin("tiny-llama-sharded")}"\n')
    result = cli("run", str(suite), "--no-progress", "--output", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr
    df = load(tmp_path / "run")
    assert set(df[df.metric == "load_s"]["status"]) == {"ok"}
    assert set(df[df.metric == "max_abs_diff_vs_base"]["status"]) == {"ok"}
    shards = sum(p.stat().st_size for p in builtin("tiny-llama-sharded").glob("model-*.safetensors"))
    assert df[df.metric == "disk_read_bytes"]["value"].min() >= shards  # cold: every shard read


def _bad_checkpoints(tmp_path: Path, good: Path) -> dict[str, tuple[Path, str]]:
    import shutil

    cases = {}
    cases["missing"] = (tmp_path / "nope", "no such directory")
    (tmp_path / "empty").mkdir()
    cases["not a checkpoint"] = (tmp_path / "empty", "no config.json")
    bad_json = tmp_path / "bad-json"
    shutil.copytree(good, bad_json)
    (bad_json / "config.json").write_text("{not json")
    cases["config not json"] = (bad_json, "config.json: not valid JSON")
    unknown = tmp_path / "unknown-arch"
    shutil.copytree(good, unknown)
    config = json.loads((unknown / "config.json").read_text())
    (unknown / "config.json").write_text(json.dumps({**config, "model_type": "no-such-arch"}))
    cases["unknown architecture"] = (unknown, "unknown architecture 'no-such-arch'")
    no_weights = tmp_path / "no-weights"
    shutil.copytree(good, no_weights)
    (no_weights / "model.safetensors").unlink()
    cases["no weights"] = (no_weights, "no model.safetensors")
    return cases


def test_bad_checkpoints_get_one_line_and_exit_2(builtin, tmp_path: Path, cli) -> None:
    for label, (directory, message) in _bad_checkpoints(tmp_path, builtin("tiny-bert")).items():
        result = cli("run", "--checkpoint", str(directory), "--no-progress",
                     "--output", str(tmp_path / f"run-{label}"))
        assert result.returncode == 2, label
        assert result.stderr.count("\n") == 1, (label, result.stderr)
        assert result.stderr.startswith("loadbench: error: ") and message in result.stderr, label
        assert str(directory) in result.stderr
        assert not (tmp_path / f"run-{label}").exists()


def test_missing_shard_named_by_index(builtin, tmp_path: Path, cli) -> None:
    import shutil

    broken = tmp_path / "sharded"
    shutil.copytree(builtin("tiny-llama-sharded"), broken)
    shard = sorted(broken.glob("model-*.safetensors"))[-1]
    shard.unlink()
    result = cli("run", "--checkpoint", str(broken), "--no-progress")
    assert result.returncode == 2
    assert f"shard {shard.name} named in model.safetensors.index.json is missing" in result.stderr


def test_bad_suite_and_options(tmp_path: Path, cli) -> None:
    suite = tmp_path / "suite.toml"
    suite.write_text('repaets = 2\n[[checkpoints]]\nbuiltin = "tiny-bert"\n')
    result = cli("run", str(suite))
    assert result.returncode == 2 and "repaets: Extra inputs are not permitted" in result.stderr
    result = cli("run", "--device", "tpu")
    assert result.returncode == 2 and "device" in result.stderr
    result = cli("run", "--repeats", "lots")
    assert result.returncode == 2 and "invalid int value" in result.stderr
    result = cli("run", "--option", "devicemap=auto")
    assert result.returncode == 2 and "unknown loading option 'devicemap'" in result.stderr
    result = cli("run", "--option", "attn_implementation")
    assert result.returncode == 2 and "give NAME=VALUE[,VALUE...]" in result.stderr
    result = cli("run", "--option", "loading_workers=2", "--option", "loading_workers=4")
    assert result.returncode == 2 and "given twice" in result.stderr


def test_output_directory_holding_a_run_is_refused(default_run, cli) -> None:
    _, out = default_run
    before = (out / "samples.jsonl").read_bytes()
    result = cli("run", "--output", str(out), "--no-progress")
    assert result.returncode == 2
    assert "already holds a run" in result.stderr or "exists" in result.stderr
    assert (out / "samples.jsonl").read_bytes() == before


def test_checkpoints_command_lists_builtins(builtin_cache: Path, cli) -> None:
    result = cli("checkpoints")
    assert result.returncode == 0
    names = [line.split()[0] for line in result.stdout.splitlines()]
    assert names[:3] == ["tiny-llama", "tiny-bert", "tiny-t5"]
    assert str(builtin_cache) in result.stdout



def test_a_hub_id_runs_from_the_local_cache_offline_and_records_its_commit(hub_cache: Path, tmp_path: Path,
                                                                            cli) -> None:
    # In this process: the hub cache and HF_HUB_OFFLINE are read when the id is resolved, not at import.
    result = cli("run", "--checkpoint", "acme/tiny-llama@v1", "--paths", "base", "--repeats", "1",
                 "--warmups", "0", "--cache", "warm", "--no-progress", "--output", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr
    df = load(tmp_path / "run")
    assert set(df["checkpoint"]) == {"acme/tiny-llama@v1"}
    assert set(df["checkpoint_commit"]) == {"fedcba9876543210fedcba9876543210fedcba98"}
    assert set(df[df.metric == "load_s"]["status"]) == {"ok"}
    assert read_run_info(tmp_path / "run")["suite"]["checkpoints"][0]["repo"] == "acme/tiny-llama"


def test_a_hub_id_not_in_the_cache_is_one_line_saying_how_to_fetch_it(hub_cache: Path, tmp_path: Path,
                                                                       cli) -> None:
    result = cli("run", "--checkpoint", "acme/absent", "--output", str(tmp_path / "run"))
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr == (f"loadbench: error: checkpoint 'acme/absent': no such directory here (check the path, "
                             f"if it is one), and not in the Hugging Face cache ({hub_cache}); fetch it first with "
                             "`hf download acme/absent`, or pass --download\n")
    assert not (tmp_path / "run").exists()
