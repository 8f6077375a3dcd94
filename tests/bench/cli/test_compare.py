"""The ``compare`` and ``baseline`` verbs: exit codes, reports, the step summary, baselines by name."""

from __future__ import annotations

import argparse
import json
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pytest

from loadbench.bench.cli.compare import register, write_step_summary
from loadbench.results import RunWriter, Sample
from loadbench.results.records.baseline import machine_key

CASE = {"checkpoint": "tiny-bert", "path": "task", "task": "text-classification", "dtype": "auto",
        "device": "cpu", "cache": "warm"}
FINGERPRINT = {"hostname": "ci-1", "cpu_model": "AMD EPYC", "cpu_count": 2, "gpus": "NVML unavailable",
               "python": "3.11.7", "packages": {"torch": "2.13.0+cpu", "transformers": "5.24.0"}}
BASE = [0.100 + i / 1000 for i in range(10)]

MakeRun = Callable[..., Path]


def loadbench(cli, *args: str) -> subprocess.CompletedProcess[str]:
    """The real ``loadbench`` (its error boundary included), in this process: a user error is one line, exit 2."""
    result = cli(*args)
    if result.stderr.startswith("loadbench: error: "):
        assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    return result


def test_each_verb_gets_its_handler_as_a_default() -> None:
    parser = argparse.ArgumentParser(prog="loadbench")
    handlers = register(parser.add_subparsers(dest="verb", required=True))
    for argv in (["compare", "a", "b"], ["baseline", "list"]):
        args = parser.parse_args(argv)
        assert args.handler is handlers[args.verb]


@pytest.fixture
def make_run(tmp_path: Path) -> MakeRun:
    counter = iter(range(1000))

    def make(load_s: list[float] = BASE, fingerprint: Mapping[str, object] = FINGERPRINT) -> Path:
        run_id = f"run{next(counter)}"
        with RunWriter.create(tmp_path / "runs" / run_id, {"run_id": run_id, "fingerprint": dict(fingerprint)}) as w:
            for i, value in enumerate(load_s):
                w.append(Sample.ok(CASE, run_id, i, "load_s", value))
                w.append(Sample.ok(CASE, run_id, i, "peak_rss_bytes", 3.3e8))
        return w.run_dir

    return make


@pytest.fixture(autouse=True)
def _no_summary(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    monkeypatch.setenv("LOADBENCH_BASELINES", str(tmp_path / "baselines"))


def test_exit_0_without_a_regression_and_markdown_on_stdout(make_run: MakeRun, cli) -> None:
    result = loadbench(cli, "compare", str(make_run()), str(make_run([v * 0.7 for v in BASE])))
    assert result.returncode == 0
    out = result.stdout
    assert out.startswith("## loadbench compare: ✅ no regression")
    assert "### Improved (1)" in out


def test_exit_1_on_a_regression_and_the_step_summary(make_run: MakeRun, tmp_path: Path, cli,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    summary = tmp_path / "step_summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    report = tmp_path / "report.json"
    result = loadbench(cli, "compare", str(make_run()), str(make_run([v * 1.3 for v in BASE])),
                       "--json", str(report))
    assert result.returncode == 1
    out = result.stdout
    assert out.startswith("## loadbench compare: ❌ 1 regression")
    assert summary.read_text(encoding="utf-8") == out + "\n"
    document = json.loads(report.read_text())
    assert document["exit_code"] == 1 and document["rows"][0]["verdict"] == "regressed"


def test_json_format_and_thresholds(make_run: MakeRun, cli) -> None:
    args = ["compare", str(make_run()), str(make_run([v * 1.3 for v in BASE])), "--format", "json"]
    result = loadbench(cli, *args, "--threshold", "load_s=40", "--alpha", "0.05")
    assert result.returncode == 0
    document = json.loads(result.stdout)
    assert document["alpha"] == 0.05 and document["thresholds"]["load_s"] == 0.4
    assert document["rows"][0]["verdict"] == "unchanged"


def test_thresholds_from_a_suite_file_and_the_command_line_wins(make_run: MakeRun, tmp_path: Path, cli) -> None:
    suite = tmp_path / "suite.toml"
    suite.write_text("[compare]\nthresholds = { time = 50 }\n")
    base, cand = str(make_run()), str(make_run([v * 1.3 for v in BASE]))
    assert loadbench(cli, "compare", base, cand, "--suite", str(suite)).returncode == 0
    assert loadbench(cli, "compare", base, cand, "--suite", str(suite), "--threshold", "time=10").returncode == 1


def test_bad_options_are_usage_errors(cli) -> None:
    errors = []
    for bad in (["--threshold", "lod_s=5"], ["--alpha", "5"], ["--format", "html"]):
        result = loadbench(cli, "compare", "a", "b", *bad)
        assert result.returncode == 2  # argparse's exit: usage, then the error
        assert result.stderr.startswith("usage: loadbench compare"), result.stderr
        errors.append(result.stderr)
    assert "lod_s" in "".join(errors)


@pytest.mark.parametrize("damage", ["corrupt", "empty", "missing", "no-run-json"])
def test_unusable_input_exits_2_with_one_line(make_run: MakeRun, tmp_path: Path, damage: str, cli,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    summary = tmp_path / "step_summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    bad = make_run()
    if damage == "corrupt":
        (bad / "samples.jsonl").write_text('{"schema_version": 2}\n{"broken": \n')
    elif damage == "empty":
        (bad / "samples.jsonl").write_text("")
    elif damage == "missing":
        bad = tmp_path / "nowhere"
    else:
        (bad / "run.json").unlink()
    result = loadbench(cli, "compare", str(make_run()), str(bad))
    assert result.returncode == 2
    err = result.stderr
    assert err.count("\n") == 1 and err.startswith("loadbench: error: ")
    assert "cannot compare" in summary.read_text()


def test_other_hardware_is_refused_unless_allowed(make_run: MakeRun, cli) -> None:
    base = str(make_run())
    cand = str(make_run(fingerprint={**FINGERPRINT, "cpu_model": "Intel Xeon"}))
    result = loadbench(cli, "compare", base, cand)
    assert result.returncode == 2
    assert "cpu_model: AMD EPYC vs Intel Xeon" in result.stderr
    result = loadbench(cli, "compare", base, cand, "--allow-mismatch")
    assert result.returncode == 0
    out = result.stdout
    assert "fingerprints differ" in out and "cpu_model: AMD EPYC (run0), Intel Xeon (run1)" in out


def test_pooled_runs_on_one_side(make_run: MakeRun, cli) -> None:
    base = f"{make_run(BASE[:5])},{make_run(BASE[5:])}"
    result = loadbench(cli, "compare", base, str(make_run([v * 1.3 for v in BASE])), "--format", "json")
    assert result.returncode == 1
    row = json.loads(result.stdout)["rows"][0]
    assert (row["n_base"], row["n_cand"]) == (10, 10)


def test_baseline_save_list_and_compare_by_name(make_run: MakeRun, cli) -> None:
    result = loadbench(cli, "baseline", "save", str(make_run()), "--name", "main")
    assert result.returncode == 0
    assert f"for machine {machine_key(FINGERPRINT)}" in result.stdout
    result = loadbench(cli, "baseline", "list")
    assert result.returncode == 0
    assert result.stdout.startswith("main ")
    assert loadbench(cli, "compare", "baseline:main", str(make_run([v * 1.3 for v in BASE]))).returncode == 1
    # A candidate measured on other hardware never falls back to this machine's baseline.
    other = make_run(fingerprint={**FINGERPRINT, "cpu_model": "Intel Xeon"})
    result = loadbench(cli, "compare", "baseline:main", str(other))
    assert result.returncode == 2
    assert f"exists only for other hardware: {machine_key(FINGERPRINT)}" in result.stderr


def test_baseline_save_refuses_an_incomplete_run(tmp_path: Path, cli) -> None:
    writer = RunWriter.create(tmp_path / "open", {"run_id": "open", "fingerprint": FINGERPRINT})
    writer.append(Sample.ok(CASE, "open", 0, "load_s", 0.1))
    result = loadbench(cli, "baseline", "save", str(tmp_path / "open"))
    assert result.returncode == 2
    assert "only a complete run can be a baseline" in result.stderr


def test_the_real_command_exits_2_on_a_corrupt_run(make_run: MakeRun, cli) -> None:
    bad = make_run()
    (bad / "samples.jsonl").write_text("{}\n{}\n")
    result = loadbench(cli, "compare", str(make_run()), str(bad))
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    good = loadbench(cli, "compare", str(make_run()), str(make_run([v * 1.3 for v in BASE])))
    assert good.returncode == 1, good.stderr


def _paired_run(tmp_path: Path, factor: float, **others: float | Sequence[float]) -> Path:
    """One run with environments base and head; head's load_s is ``factor`` times base's, pair by pair.

    ``others``: more environments by name, each a factor or one factor per block (noise).
    """
    envs: dict[str, float | Sequence[float]] = {"base": 1.0, "head": factor, **others}
    with RunWriter.create(tmp_path / "paired", {"run_id": "paired", "fingerprint": dict(FINGERPRINT)}) as w:
        for i, value in enumerate(BASE + BASE):
            for env, scale in envs.items():
                times = scale if isinstance(scale, float) else scale[i]
                w.append(Sample.ok({**CASE, "env": env}, "paired", i, "load_s", value * times, block=i))
    return w.run_dir


# Pairs that disagree by ±20%, half each way: 20 of them show neither a change nor its absence at ±3%.
NOISY = [1.2 if i % 2 else 0.8 for i in range(20)]


def test_one_run_with_environments_is_compared_pair_by_pair(tmp_path: Path, cli) -> None:
    run = _paired_run(tmp_path, 1.10)
    result = loadbench(cli, "compare", str(run), "--format", "json")
    assert result.returncode == 1
    document = json.loads(result.stdout)
    assert (document["schema"], document["baseline_env"], document["candidate_env"]) == (
        "loadbench-compare-paired/1", "base", "head")
    [row] = document["rows"]
    assert row["verdict"] == "regressed" and row["pairs"] == 20 and abs(row["change"] - 0.10) < 1e-9
    # The sides swapped: head as the baseline, base is 9% faster: improved, exit 0.
    result = loadbench(cli, "compare", str(run), "--baseline-env", "head", "--candidate-env", "base")
    assert result.returncode == 0
    assert "### Gate (1 improved)" in result.stdout


@pytest.mark.parametrize("argv, message", [
    (["--baseline-env", "nope"], "--baseline-env 'nope': the run's environments are base, head"),
    (["OTHER", "--gate", "load_s"], "compare the environments of one run: give one run directory"),
])
def test_paired_options_that_cannot_apply_are_one_line(tmp_path: Path, make_run: MakeRun, argv: list[str],
                                                       message: str, cli) -> None:
    run = _paired_run(tmp_path, 1.0)
    other = [str(make_run()) if a == "OTHER" else a for a in argv]
    result = loadbench(cli, "compare", str(run), *other)
    assert result.returncode == 2
    assert message in result.stderr


def test_unpaired_output_says_so(make_run: MakeRun, cli) -> None:
    result = loadbench(cli, "compare", str(make_run()), str(make_run()), "--format", "json")
    assert json.loads(result.stdout)["design"] == "unpaired"
    result = loadbench(cli, "compare", str(make_run()), str(make_run()))
    assert "**Unpaired**: two runs measured at different times" in result.stdout


def test_the_default_sides_are_the_environments_in_the_order_the_run_named_them(tmp_path: Path, cli) -> None:
    # Sampled base first in every block, but the run named head first: head is the baseline.
    info = {"run_id": "named", "fingerprint": dict(FINGERPRINT),
            "suite": {"environments": [{"name": "head", "python": "/x"}, {"name": "base", "python": "/y"}]}}
    with RunWriter.create(tmp_path / "named", info) as w:
        for i, value in enumerate(BASE + BASE):
            for env, scale in (("base", 1.0), ("head", 1.10)):
                w.append(Sample.ok({**CASE, "env": env}, "named", i, "load_s", value * scale, block=i))
    result = loadbench(cli, "compare", str(w.run_dir), "--format", "json")
    assert result.returncode == 0  # base is 9% faster than head
    document = json.loads(result.stdout)
    assert (document["baseline_env"], document["candidate_env"]) == ("head", "base")
    assert document["rows"][0]["verdict"] == "improved"


def test_step_summary_is_appended_when_the_variable_is_set(tmp_path: Path) -> None:
    target = tmp_path / "summary.md"
    target.write_text("earlier step\n")
    assert write_step_summary("## hello", {"GITHUB_STEP_SUMMARY": str(target)}) == target
    assert target.read_text() == "earlier step\n## hello\n"
    assert write_step_summary("## hello", {}) is None


def test_a_run_of_three_environments_compares_each_with_the_baseline_and_names_all(tmp_path: Path, cli) -> None:
    with RunWriter.create(tmp_path / "three", {"run_id": "three", "fingerprint": dict(FINGERPRINT)}) as w:
        for i, value in enumerate(BASE + BASE):
            for env, scale in (("base", 1.0), ("same", 1.0), ("slow", 1.10)):
                w.append(Sample.ok({**CASE, "env": env}, "three", i, "load_s", value * scale, block=i))
    result = loadbench(cli, "compare", str(w.run_dir))
    assert result.returncode == 1, result.stderr  # slow regressed: the third environment is not left out
    assert "## loadbench compare (paired), 2 environments against `base`: ❌ a regression in `slow`" in result.stdout
    assert "Run `three` has environments `base`, `same`, `slow`: each is compared with `base`" in result.stdout
    assert "environment `same` against `base`" in result.stdout and "environment `slow` against `base`" in result.stdout
    document = json.loads(loadbench(cli, "compare", str(w.run_dir), "--format", "json").stdout)
    assert (document["baseline_env"], document["candidate_envs"]) == ("base", ["same", "slow"])
    assert document["exit_code"] == 1
    assert [c["rows"][0]["verdict"] for c in document["comparisons"]] == ["unchanged", "regressed"]
    # One candidate chosen: that pair alone, as before.
    only = loadbench(cli, "compare", str(w.run_dir), "--candidate-env", "same", "--format", "json")
    assert only.returncode == 0 and json.loads(only.stdout)["candidate_env"] == "same"
    # Another baseline: the two others against it.
    other = json.loads(loadbench(cli, "compare", str(w.run_dir), "--baseline-env", "slow", "--format", "json").stdout)
    assert (other["baseline_env"], other["candidate_envs"]) == ("slow", ["base", "same"])


def test_an_inconclusive_gate_exits_3_and_says_so_and_the_flag_lets_it_pass(tmp_path: Path, cli,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    summary = tmp_path / "step_summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    run = _paired_run(tmp_path, 1.0, noisy=NOISY)
    result = loadbench(cli, "compare", str(run), "--candidate-env", "noisy")
    assert result.returncode == 3, result.stderr
    assert result.stdout.startswith("## loadbench compare (paired): ⚠ inconclusive: 1 of 1 gated row\n")
    assert "no regression" not in result.stdout and "#### inconclusive (1)" in result.stdout
    assert summary.read_text(encoding="utf-8").startswith("## loadbench compare (paired): ⚠ inconclusive")
    passing = loadbench(cli, "compare", str(run), "--candidate-env", "noisy", "--no-fail-on-inconclusive",
                        "--format", "json")
    assert passing.returncode == 0, passing.stderr
    document = json.loads(passing.stdout)
    assert document["exit_code"] == 0 and document["counts"]["inconclusive"] == 1
    assert document["rows"][0]["verdict"] == "inconclusive" and "anytime-valid" in document["rule"]
    # The flag's default, said explicitly, is the same as none.
    assert loadbench(cli, "compare", str(run), "--candidate-env", "noisy", "--fail-on-inconclusive").returncode == 3


@pytest.mark.parametrize("others, code, title", [
    ({"noisy": NOISY}, 3, "⚠ inconclusive in `noisy` (1 of 1 gated row)"),
    ({"noisy": NOISY, "slow": 1.10}, 1, "❌ a regression in `slow` · ⚠ inconclusive in `noisy` (1 of 1 gated row)"),
])
def test_several_environments_exit_with_the_worst_a_regression_over_an_inconclusive_gate(
        tmp_path: Path, cli, others: dict[str, float | list[float]], code: int, title: str) -> None:
    run = _paired_run(tmp_path, 1.0, **others)
    result = loadbench(cli, "compare", str(run))
    assert result.returncode == code, result.stderr
    assert result.stdout.startswith(f"## loadbench compare (paired), {len(others) + 1} environments against "
                                    f"`base`: {title}\n")
    document = json.loads(loadbench(cli, "compare", str(run), "--format", "json").stdout)
    assert document["exit_code"] == code
    assert [c["exit_code"] for c in document["comparisons"]] == [0, 3, 1][:len(others) + 1]
    lenient = loadbench(cli, "compare", str(run), "--no-fail-on-inconclusive")
    assert lenient.returncode == (1 if "slow" in others else 0)
    assert "⚠ inconclusive in `noisy`" in lenient.stdout.splitlines()[0]
