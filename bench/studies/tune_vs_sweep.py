"""Does the tuner pick what measuring everything would? A tune's choice against a brute-force sweep.

Reads a finished tune (its ``tune.json`` and ``result.json``), measures every setting the
tune could measure at ``--repeats`` samples each (default 15) in one interleaved run, and
ranks them by the tune's goal. The tuner agrees when it chose the sweep's winner, or a
setting whose median lies within the winner's 95% interval; when it kept the default, it
agrees when the default lies within that interval too. Prints the table and appends one
JSON record (``--output``)::

    python -m loadbench.bench.studies.tune_vs_sweep runs/tune-llama-800mb-warm --repeats 15
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from loadbench.bench.studies.scripts import append_record, machine_info


def _agrees(chosen: str, winner: str, measured: dict[str, Any], metric: str) -> bool:
    """The same winner, or the choice's median within the winner's interval on the goal's metric."""
    if chosen == winner:
        return True
    mine, best = measured[chosen], measured[winner]
    if not (mine.usable and best.usable):
        return False
    field = "added_bytes" if metric == "memory" else "load_s"
    ours, theirs = getattr(mine, field), getattr(best, field)
    return bool(theirs.low <= ours.median <= theirs.high)


def main(argv: Sequence[str] | None = None) -> int:
    from loadbench.bench import api
    from loadbench.bench.suite import load_suite
    from loadbench.bench.tune.front import measured_settings
    from loadbench.bench.tune.goals import parse_goal
    from loadbench.bench.tune.search import ranked

    parser = argparse.ArgumentParser(prog="python -m loadbench.bench.studies.tune_vs_sweep",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("tune", type=Path, help="a finished tune's directory")
    parser.add_argument("--repeats", type=int, default=15, help="samples per setting (default 15)")
    parser.add_argument("--output", type=Path, help="append the record to this JSON-lines file")
    args = parser.parse_args(argv)
    result = json.loads((args.tune / "result.json").read_text(encoding="utf-8"))
    template = load_suite(args.tune / "recommended.toml")
    rows = [r for r in result["settings"] if r["not_applicable"] is None]
    sweep_dir = args.tune / f"sweep-{args.repeats}"
    started = time.monotonic()
    suite = template.with_overrides(settings=[{"path": r["path"], "options": r["options"]} for r in rows],
                                    repeats=args.repeats, name="tune-sweep")
    run = api.resume(sweep_dir, reports=False) if (sweep_dir / "run.json").exists() else api.run(
        suite, output=sweep_dir, reports=False)
    from loadbench.loaders.options import LoadOptions

    keys = {(r["path"], LoadOptions(**r["options"]).text): r["setting"] for r in rows}
    measured = measured_settings(run.frame(), keys)
    goal = parse_goal(result["goal"])
    order = ranked(measured, list(measured), goal)
    winner = order[0]
    agrees = _agrees(result["recommended"], winner, measured, goal.metric)
    print(f"{'setting':<26} {'median':>9}  95% interval            n")
    for name in order:
        m = measured[name]
        low, high = (f"{v * 1000:.1f}" if math.isfinite(v) else "—" for v in (m.load_s.low, m.load_s.high))
        mark = " <- tuner" if name == result["recommended"] else ""
        print(f"{name:<26} {m.load_s.median * 1000:>7.1f}ms  {low:>8} … {high:<8} ms  {m.load_s.n}{mark}")
    print(f"sweep winner: {winner}; tuner chose: {result['recommended']} ({result['minutes']:.1f} min); "
          f"{'agrees' if agrees else 'DISAGREES'}; sweep took {(time.monotonic() - started) / 60:.1f} min")
    append_record(args.output, {"study": "tune_vs_sweep", "tune": str(args.tune), "goal": result["goal"],
                                "repeats": args.repeats, "winner": winner, "tuner": result["recommended"],
                                "agrees": agrees, "tune_minutes": result["minutes"],
                                "medians_s": {n: measured[n].load_s.median for n in order},
                                "machine": machine_info()})
    return 0 if agrees else 1


if __name__ == "__main__":
    raise SystemExit(main())
