"""Interrupt real runs at random moments, resume each, and check that nothing measured is lost or torn.

Each run is the real CLI on a small suite, stopped after a random delay by a random one of
Ctrl-C (SIGINT to the process group), SIGTERM, SIGHUP or SIGKILL, then resumed, and
stopped again, until a resume completes it. The delays span the whole run (start-up, the
samples, the writes between them, closing and the reports), so over many interruptions
every phase is hit. A finished run must be complete, with every planned sample exactly
once and each sample whole (as many records as it says it wrote).

    python -m loadbench.bench.studies.interrupt_soak --interruptions 200 --workdir DIR
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

__all__ = ["main", "soak"]

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGKILL)
SUITE = ('repeats = {repeats}\nwarmups = 0\ncache = "warm"\npaths = ["base", "custom"]\nforward_iters = 1\n'
         'seed = 1\n[[checkpoints]]\nbuiltin = "tiny-bert"\n')


def _as_at_a_terminal() -> None:
    # Started from a script, the run would inherit SIGINT ignored; at a terminal it is not.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "loadbench.bench.cli.main", *args, "--no-progress"]


def _stop(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    if sig == signal.SIGINT:
        os.killpg(process.pid, sig)  # Ctrl-C reaches the whole foreground group, workers included
    else:
        process.send_signal(sig)


def check_run(run_dir: Path, planned: int | None = None) -> None:
    """Complete, each sample whole and once (and ``planned`` of them); AssertionError says what is not."""
    from loadbench.results import TruncatedRunWarning, read_run_info, read_samples
    from loadbench.results.records.schema import sample_key

    info = read_run_info(run_dir)
    assert info["status"] == "complete", f"{run_dir}: status {info['status']}"
    with warnings.catch_warnings():
        warnings.simplefilter("error", TruncatedRunWarning)
        records = read_samples(run_dir)
    counts = Counter(sample_key(r) for r in records)
    sizes = {sample_key(r): r["sample_records"] for r in records}
    assert planned is None or len(counts) == planned, f"{run_dir}: {len(counts)} samples, {planned} planned"
    torn = {k: n for k, n in counts.items() if n != sizes[k]}
    assert not torn, f"{run_dir}: samples not whole or twice: {torn}"


def soak(workdir: Path, interruptions: int, repeats: int, max_delay_s: float, seed: int) -> dict[str, Any]:
    """Interrupt runs until ``interruptions`` have landed; return the counts."""
    rng = random.Random(seed)
    workdir.mkdir(parents=True, exist_ok=True)
    suite = workdir / "suite.toml"
    suite.write_text(SUITE.format(repeats=repeats), encoding="utf-8")
    planned = 2 * repeats
    done, runs, by_signal, exits = 0, 0, Counter[str](), Counter[int]()
    started = time.monotonic()
    while done < interruptions:
        run_dir = workdir / f"run-{runs:04d}"
        runs += 1
        command = _cli("run", str(suite), "--output", str(run_dir))
        while True:
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                       start_new_session=True, preexec_fn=_as_at_a_terminal)
            try:
                process.wait(timeout=rng.uniform(0.2, max_delay_s))
            except subprocess.TimeoutExpired:
                sig = rng.choice(SIGNALS)
                _stop(process, sig)
                process.wait(timeout=120)
                if process.returncode != 0:  # it may have finished just as the signal came
                    done += 1
                    by_signal[sig.name] += 1
            exits[process.returncode] += 1
            if process.returncode == 0:
                break
            if not (run_dir / "run.json").exists():  # stopped before the run directory was made
                command = _cli("run", str(suite), "--output", str(run_dir))
                continue
            status = json.loads((run_dir / "run.json").read_text(encoding="utf-8")).get("status")
            if status == "complete":  # stopped while writing the reports: nothing left to measure
                break
            command = _cli("run", "--resume", str(run_dir))
        check_run(run_dir, planned)
        print(f"{done}/{interruptions} interruptions, {runs} runs complete and whole, "
              f"{time.monotonic() - started:.0f} s", flush=True)
    return {"interruptions": done, "runs": runs, "by_signal": dict(by_signal),
            "exit_codes": {str(k): v for k, v in sorted(exits.items())}, "seed": seed,
            "runtime_s": round(time.monotonic() - started)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True, help="where the interrupted runs go")
    parser.add_argument("--interruptions", type=int, default=200, help="interruptions to land (default 200)")
    parser.add_argument("--repeats", type=int, default=3, help="repeats per case of the small suite")
    parser.add_argument("--max-delay", type=float, default=10.0, metavar="S",
                        help="longest wait before an interruption (default 10 s: start-up to reports)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if args.interruptions < 1 or args.repeats < 1 or not 0.2 < args.max_delay < 3600:
        parser.error("--interruptions and --repeats must be 1 or more, --max-delay between 0.2 and 3600 s")
    result = soak(args.workdir, args.interruptions, args.repeats, args.max_delay, args.seed)
    print(json.dumps(result))
    (args.workdir / "soak.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
