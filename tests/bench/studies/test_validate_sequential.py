"""The sequential replay: the runner's own looks over a run's blocks, from several starting rounds."""

from __future__ import annotations

import random
from pathlib import Path

from loadbench.bench.studies.validate_sequential import main, replay_run
from loadbench.results import RunWriter, Sample


def _run(tmp_path: Path, rounds: int = 40) -> Path:
    """base, same (identical) and slow (30% slower), two paths, a host probe; every block holds all three."""
    rng = random.Random(5)
    writer = RunWriter.create(tmp_path / "run", {"run_id": "r", "suite": {"name": "t"}})
    block = 0
    for repeat in range(rounds):
        for path in ("base", "task"):
            case = {"checkpoint": "tiny-llama", "path": path, "task": "text-generation", "dtype": "auto",
                    "device": "cpu", "cache": "warm", "options": "default"}
            truth = 0.1 * (1 + rng.gauss(0, 0.01))
            for env, factor in (("base", 1.0), ("same", 1.0), ("slow", 1.3)):
                key = {**case, "env": env}
                writer.append_sample([
                    Sample.ok(key, "r", repeat, "load_s", truth * factor * (1 + rng.gauss(0, 0.005)), block=block),
                    Sample.ok(key, "r", repeat, "host_probe_s", 0.002 * (3 if rng.random() < 0.1 else 1),
                              block=block)])
            block += 1
    writer.close("complete")
    return writer.run_dir


def test_a_real_slowdown_is_caught_and_identical_environments_never_regress(tmp_path: Path) -> None:
    result = replay_run(_run(tmp_path), comparisons=4, start_every=5, repeats=5, max_repeats=20, variant="gate")
    slow, same = result["candidates"]["slow"], result["candidates"]["same"]
    assert slow["comparisons"] == 4 and slow["regressed"] == 4 and slow["legacy_regressed"] == 4
    # A 30% slowdown in every pair is decided at the fewest pairs that can decide 2 time rows at 0.05.
    assert slow["max_blocks_per_case"] == 9
    assert same["regressed"] == 0 and same["misleading"] == 0
    assert same["no_regression"] + same["inconclusive"] == 4


def test_the_variants_and_the_command(tmp_path: Path, capsys) -> None:
    run = _run(tmp_path)
    dropped = replay_run(run, comparisons=2, start_every=5, repeats=5, max_repeats=20, variant="drop-contended")
    # Contended blocks are skipped and still paid for: more blocks per case than the pairs used.
    assert dropped["candidates"]["slow"]["max_blocks_per_case"] > 9
    output = tmp_path / "figures.jsonl"
    assert main([str(run), "--comparisons", "2", "--start-every", "5", "--output", str(output)]) == 0
    assert "slow" in capsys.readouterr().out and output.read_text(encoding="utf-8").count("\n") == 1
