"""loadbench from Python, as a notebook would use it: run, summarize, report, compare.

    python examples/api_tour.py [--repeats N] [--output DIR]

Two runs of the same small suite, one after the other; the second is compared with the
first.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import loadbench
from loadbench import CheckpointEntry, Suite, UserError


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=8, help="measured samples per case and run")
    parser.add_argument("--output", type=Path, default=Path("runs/api-tour"), help="where both runs go")
    args = parser.parse_args()

    suite = Suite(name="api-tour", checkpoints=[CheckpointEntry(builtin="tiny-bert")], paths=["base", "task"],
                  cache=["warm"], device=["cpu"])
    try:
        first = loadbench.run(suite, output=args.output / "first", repeats=args.repeats)
        print(first.summary_text())
        frame = first.frame()
        print(f"{len(frame)} records; load_s medians by path:")
        print(frame[frame.metric == "load_s"].groupby("path")["value"].median().to_string())

        html = loadbench.report(first.run_dir, format="html", output=args.output / "first.html")
        print(f"HTML report: {html.path}")

        second = loadbench.run(suite, output=args.output / "second", repeats=args.repeats)
        verdict = loadbench.compare(first.run_dir, second.run_dir, metrics=["load_s", "peak_rss_bytes"])
        print(verdict.table[["path", "metric", "median_base", "median_cand", "change", "verdict"]].to_string())
        print(f"exit code a CI gate would use: {verdict.exit_code}")
    except UserError as exc:
        print(f"error: {exc}")
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
