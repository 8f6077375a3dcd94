"""Whether a change to the harness moved what samples measure: an older loadbench and this one, paired.

The older revision runs as an environment of its own: a git worktree of it, laid out as
the installed package is (``loadbench`` with ``bench``, ``loaders`` and ``results`` in
it), first on the PYTHONPATH of a wrapper interpreter. This checkout is the other
environment. Both use this venv's torch and transformers, so the one difference is
loadbench itself: its zygote, its worker, its probes. The run measures each case in both
back to back (a block, in a random order), and the study pairs them: the Hodges–Lehmann
estimate of the blocks' log ratios (head over base) with its 95% interval, per case and
metric, then over all cases' blocks together. "unchanged" needs the interval inside
±3%; an interval that excludes 0 is "changed"; any other is "inconclusive".

    python -m loadbench.bench.studies.harness_ab --baseline 0fca77d [--repeats 20] [--output FILE.jsonl]
"""

from __future__ import annotations

import argparse
import math
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from loadbench.bench.studies.scripts import append_record, machine_info

__all__ = ["METRICS", "Verdict", "main", "paired_verdicts"]

METRICS = ("load_s", "load_cpu_s", "first_forward_s", "decode_tokens_per_s", "forward_tokens_per_s")
BOUND = 0.03  # "unchanged": the whole 95% interval within ±3%
CHECKPOINTS = ("tiny-llama", "tiny-bert")
PATHS = ("base", "task")
PACKAGE_DIRS = ("bench", "loaders", "results")  # pyproject's package-dir: loadbench.bench = bench, ...

Verdict = dict[str, Any]


def baseline_interpreter(revision: str, scratch: Path) -> Path:
    """A wrapper of this interpreter that imports loadbench at ``revision`` (a worktree of this checkout)."""
    root = Path(__file__).resolve().parents[2]
    tree = scratch / "tree"
    added = subprocess.run(["git", "-C", str(root), "worktree", "add", "--detach", "--quiet", str(tree), revision],
                           capture_output=True, text=True)
    if added.returncode != 0:
        why = (added.stderr.strip().splitlines() or [f"git exited {added.returncode}"])[-1]
        raise SystemExit(f"harness_ab: --baseline {revision!r}: cannot check it out ({why}); give a revision "
                         f"of {root}")
    site = scratch / "site"
    shutil.copytree(tree / "loadbench", site / "loadbench")
    for name in PACKAGE_DIRS:
        (site / "loadbench" / name).symlink_to(tree / name)
    wrapper = scratch / "python-base"
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH="{site}" exec "{sys.executable}" "$@"\n', encoding="utf-8")
    wrapper.chmod(0o755)
    return wrapper


def remove_worktree(scratch: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    if (scratch / "tree").exists():
        subprocess.run(["git", "-C", str(root), "worktree", "remove", "--force", str(scratch / "tree")], check=False)


def paired_verdicts(frame: Any, base: str = "base", head: str = "head") -> list[Verdict]:
    """Per case and metric, and over all cases, the blocks' paired log ratios head / base and the verdict."""
    from loadbench.results.comparison.stats import walsh_interval

    ok = frame[(frame["status"] == "ok") & ~frame["warmup"] & frame["metric"].isin(METRICS)]
    wide = ok.pivot_table(index=["checkpoint", "path", "cache", "metric", "block"], columns="env", values="value",
                          aggfunc="first").dropna(subset=[base, head])
    wide = wide[(wide[base] > 0) & (wide[head] > 0)]
    logs = (wide[head] / wide[base]).map(math.log)
    verdicts = []
    groups = [((checkpoint, path, cache, metric), series)
              for (checkpoint, path, cache, metric), series in logs.groupby(level=[0, 1, 2, 3])]
    groups += [(("all cases", "", "", metric), series) for metric, series in logs.groupby(level=3)]
    for (checkpoint, path, cache, metric), series in groups:
        estimate, low, high = (math.expm1(v) for v in walsh_interval(series.to_numpy()))
        verdict = ("unchanged" if -BOUND <= low and high <= BOUND else
                   "changed" if low > 0 or high < 0 else "inconclusive")
        verdicts.append({"checkpoint": checkpoint, "path": path, "cache": cache, "metric": metric,
                         "pairs": len(series), "change": estimate, "low": low, "high": high, "verdict": verdict})
    return verdicts


def measure(revision: str, repeats: int, scratch: Path) -> Path:
    wrapper = baseline_interpreter(revision, scratch)
    run_dir = scratch / "run"
    command = [sys.executable, "-m", "loadbench", "run", "--no-progress", "--repeats", str(repeats),
               "--cache", "warm", "cold", "--paths", *PATHS, "--env", f"base={wrapper}",
               "--env", f"head={sys.executable}", "--output", str(run_dir)]
    for checkpoint in CHECKPOINTS:
        command += ["--checkpoint", checkpoint]
    # Not from a checkout: its own `loadbench` folder would come first on sys.path in every environment.
    subprocess.run(command, check=True, cwd=scratch, stdout=subprocess.DEVNULL)
    return run_dir


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadbench.bench.studies.harness_ab",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="the git revision of loadbench to pair this checkout with")
    parser.add_argument("--repeats", type=int, default=20, help="blocks per case (default 20)")
    parser.add_argument("--output", type=Path, help="append the verdicts as JSON lines to this file")
    args = parser.parse_args(argv)
    if args.repeats < 6:
        parser.error("--repeats must be at least 6 (a 95% interval needs 6 pairs)")
    from loadbench.results import load

    with tempfile.TemporaryDirectory() as directory:
        scratch = Path(directory)
        try:
            verdicts = paired_verdicts(load(measure(args.baseline, args.repeats, scratch)))
        finally:
            remove_worktree(scratch)
    print(f"this checkout (head) against {args.baseline} (base); change = head / base - 1, 95% interval")
    for v in verdicts:
        case = " · ".join(part for part in (v["checkpoint"], v["path"], v["cache"]) if part)
        print(f"{case:32s} {v['metric']:22s} {v['pairs']:3d} pairs  {v['change']:+7.1%}  "
              f"[{v['low']:+7.1%}, {v['high']:+7.1%}]  {v['verdict']}")
        append_record(args.output, {"study": "harness_ab", "baseline": args.baseline, **v, "machine": machine_info()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
