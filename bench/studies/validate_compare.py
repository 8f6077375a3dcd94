"""Check that ``loadbench compare`` neither cries wolf nor sleeps through a real slowdown.

Three measurements, each repeated over many resampled comparisons (docs/REGRESSIONS.md):

- **A/A**: two disjoint groups of whole samples drawn per case from a pool of real runs of
  the same code (e.g. three default-suite runs); every regressed verdict is false.
- **slower**: real worker samples of one case, where the load path sleeps ``0.20 x``
  the median load time of the undelayed samples so far inside the timed region (a
  test-only loader wrapper, installed in the forked worker only), against samples
  without it.
- **faster**: the reverse: a baseline sleeping ``0.25 x`` the median against no
  sleep, i.e. a candidate 20% faster: it must read improved, never regressed.

The three variants are measured interleaved in a shuffled order each round, so drift on
the machine hits all alike, and written as ordinary run directories.

    python -m loadbench.bench.studies.validate_compare --pool RUN [RUN ...] --workdir DIR
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

__all__ = ["main"]

FAMILIES = ("time", "memory", "throughput")
VARIANTS = {"base": 0.0, "slower": 0.20, "faster_baseline": 0.25}


class _Delayed:
    """A loading path whose load takes ``delay_s`` longer: the real load, then a sleep."""

    def __init__(self, real: Any, delay_s: float) -> None:
        self._real, self._delay_s = real, delay_s
        self.preimport = real.preimport
        self.not_applicable = real.not_applicable

    def load(self, *args: Any) -> Any:
        loaded = self._real.load(*args)
        time.sleep(self._delay_s)
        return loaded


def delayed_child(conn: Any, payload: str, log_path: str | None, *, delay_s: float) -> None:
    """Zygote target: the real worker, with the request's path slowed by ``delay_s``."""
    from loadbench.bench.sample.worker import child_main
    from loadbench.loaders import PATHS

    path = json.loads(payload)["path"]
    if delay_s > 0:
        PATHS[path] = _Delayed(PATHS[path], delay_s)  # this forked worker only
    child_main(conn, payload, log_path)


def _sample(zygote: Any, request: Any, delay_s: float, timeout_s: float) -> Any:
    from loadbench.bench.studies.validate_compare import delayed_child  # importable by name in the fork server

    return zygote.run(request, timeout_s, partial(delayed_child, delay_s=delay_s))


def _load_s(reply: Any) -> list[float]:
    return [float(m["value"]) for m in reply.metrics if m["metric"] == "load_s"]


def measure(workdir: Path, builtin: str, path: str, samples: int, seed: int) -> dict[str, Path]:
    """Calibrate, then measure the variants interleaved; one run directory per variant."""
    from loadbench.bench.executors.local import worker_cpus
    from loadbench.bench.fingerprint import fingerprint
    from loadbench.bench.plan import plan
    from loadbench.bench.runner import new_run_id
    from loadbench.bench.sample.spawn import Zygote
    from loadbench.bench.sample.translate import Round, records_for, request_for
    from loadbench.bench.suite import CheckpointEntry, Suite
    from loadbench.results import RunWriter

    suite = Suite(name="validate-compare", checkpoints=[CheckpointEntry(builtin=builtin)], paths=[path],
                  cache=["warm"], repeats=samples, warmups=0)
    case = next(c for c in plan(suite) if c.not_applicable is None)
    threads, cpus = worker_cpus(suite.threads, suite.pin_cpus)
    request = replace(request_for(case, suite, check_equivalence=False), threads=threads, cpus=cpus)
    zygote = Zygote()
    workdir.mkdir(parents=True, exist_ok=True)
    zygote.log_path = str(workdir / "worker.log")
    base_load_s: list[float] = []  # calibration, then every base sample: the delay follows the machine
    for _ in range(10):
        base_load_s += _load_s(_sample(zygote, request, 0.0, suite.timeout_s))
    print(f"calibration: median load_s {statistics.median(base_load_s) * 1e3:.1f} ms", flush=True)
    writers, dirs = {}, {}
    for variant, factor in VARIANTS.items():
        dirs[variant] = workdir / variant
        writers[variant] = RunWriter.create(dirs[variant], {
            "run_id": new_run_id() + f"-{variant}", "suite": suite.model_dump(), "fingerprint": fingerprint(),
            "seed": seed, "threads": threads, "cpus": cpus, "variant": variant, "delay_factor": factor})
    rng = random.Random(seed)
    started = time.perf_counter()
    for repeat in range(samples):
        for variant in rng.sample(list(VARIANTS), len(VARIANTS)):
            writer = writers[variant]
            delay_s = VARIANTS[variant] * statistics.median(base_load_s)
            reply = _sample(zygote, request, delay_s, suite.timeout_s)
            if variant == "base":
                base_load_s += _load_s(reply)
            writer.append_sample(records_for(case, writer.info["run_id"], Round(repeat, False), reply))
        if repeat % 10 == 9:
            print(f"  {repeat + 1}/{samples} rounds, {time.perf_counter() - started:.0f} s", flush=True)
    for writer in writers.values():
        writer.close()
    return dirs


def _units(df: Any) -> dict[tuple[str, ...], list[Any]]:
    """Per case, the row groups of whole worker samples (run, repeat): metrics stay paired."""
    from loadbench.results import CASE_KEYS

    measured = df[~df["warmup"]]
    out: dict[tuple[str, ...], list[Any]] = {}
    for key, rows in measured.groupby([*CASE_KEYS, "run_id", "repeat"], sort=False):
        if not (rows["status"] == "ok").any():
            continue  # a case not applicable here: nothing to draw
        out.setdefault(tuple(key[:len(CASE_KEYS)]), []).append(rows)
    return out


def _draw(units: dict[tuple[str, ...], list[Any]], n: int, rng: random.Random, groups: int,
          replace: bool = False) -> list[Any]:
    import pandas as pd

    sides: list[list[Any]] = [[] for _ in range(groups)]
    for pool in units.values():
        if replace:
            picks = [[rng.choice(pool) for _ in range(n)] for _ in range(groups)]
        else:
            if len(pool) < groups * n:
                raise SystemExit(f"a case has {len(pool)} samples; {groups} x {n} needed")
            chosen = rng.sample(pool, groups * n)
            picks = [chosen[i * n:(i + 1) * n] for i in range(groups)]
        for side, pick in zip(sides, picks):
            side.extend(pick)
    return [pd.concat(side, ignore_index=True) for side in sides]


def _count(tables: list[Any], verdict: str, metric: str | None = None) -> dict[str, int]:
    """Comparisons with at least one row of ``verdict`` per family (or of one metric)."""
    counts = {}
    for family in ((metric,) if metric else FAMILIES):
        hits = 0
        for table in tables:
            rows = table[table["metric"] == metric] if metric else table[table["family"] == family]
            hits += bool((rows["verdict"] == verdict).any())
        counts[family] = hits
    return counts


def aa(pool: Any, n: int, comparisons: int, rng: random.Random) -> list[Any]:
    """A/A comparisons: two disjoint groups of n whole samples per case from one pool."""
    from loadbench.results.comparison.unpaired import compare

    units = _units(pool)
    return [compare(*_draw(units, n, rng, 2)) for _ in range(comparisons)]


def ab(base: Any, cand: Any, n: int, comparisons: int, rng: random.Random, context: Any = None,
       metrics: Any = None) -> list[Any]:
    """Comparisons of n samples of ``base`` against n of ``cand``, optionally inside a whole
    suite's other cases (drawn with replacement from ``context``, the same on both sides)."""
    import pandas as pd

    from loadbench.results.comparison.unpaired import compare

    bunits, cunits = _units(base), _units(cand)
    cx = _units(context) if context is not None else None
    out = []
    for _ in range(comparisons):
        sides = [_draw(bunits, n, rng, 1)[0], _draw(cunits, n, rng, 1)[0]]
        if cx is not None:
            extra = _draw(cx, n, rng, 2, replace=True)
            sides = [pd.concat([s, e], ignore_index=True) for s, e in zip(sides, extra)]
        out.append(compare(*sides, metrics=metrics))
    return out


def _median(tables: list[Any], column: str) -> float:
    values = [float(t.loc[t["metric"] == "load_s", column].iloc[0]) for t in tables]
    return statistics.median(values)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", nargs="+", type=Path, required=True, help="runs of one code version (A/A pool)")
    parser.add_argument("--workdir", type=Path, required=True, help="where the measured variants go")
    parser.add_argument("--builtin", default="tiny-llama")
    parser.add_argument("--path", default="task")
    parser.add_argument("--samples", type=int, default=180, help="samples per variant")
    parser.add_argument("--comparisons", type=int, default=30)
    parser.add_argument("--suite-n", type=int, nargs="+", default=[90],
                        help="samples per side for the checks inside a whole default suite (slow)")
    parser.add_argument("--aa-comparisons", type=int, default=60, help="comparisons of the pool A/A")
    parser.add_argument("--aa-n", type=int, default=10, help="samples per side in the pool A/A")
    parser.add_argument("--n", type=int, nargs="+", default=[10, 30, 60, 90], help="samples per side")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--reuse", action="store_true", help="use the variants already in --workdir")
    args = parser.parse_args(argv)
    from loadbench.results import load
    from loadbench.results.analysis.metrics import HEADLINE

    started = time.perf_counter()
    rng = random.Random(args.seed)
    report: dict[str, Any] = {"comparisons": args.comparisons}
    pool = load(args.pool)
    tables = aa(pool, args.aa_n, args.aa_comparisons, rng)
    report["aa_pool"] = {"n": args.aa_n, "comparisons": args.aa_comparisons, "runs": len(args.pool),
                         "cases": len(_units(pool)),
                         "false_regressed": _count(tables, "regressed"),
                         "false_improved": _count(tables, "improved"),
                         "rows_per_family": {f: int((tables[0]["family"] == f).sum()) for f in FAMILIES}}
    print(json.dumps(report["aa_pool"]), flush=True)
    dirs = ({v: args.workdir / v for v in VARIANTS} if args.reuse
            else measure(args.workdir, args.builtin, args.path, args.samples, args.seed))
    frames = {v: load(d) for v, d in dirs.items()}
    context = pool[~((pool["checkpoint"] == args.builtin) & (pool["path"] == args.path))]
    for n in args.n:
        entry: dict[str, Any] = {}
        if 2 * n <= args.samples:
            entry["aa"] = _count(aa(frames["base"], n, args.comparisons, rng), "regressed")
        slower = ab(frames["base"], frames["slower"], n, args.comparisons, rng)
        faster = ab(frames["faster_baseline"], frames["base"], n, args.comparisons, rng)
        entry.update({
            "slower_flagged": _count(slower, "regressed", "load_s")["load_s"],
            "slower_median_change": round(_median(slower, "change"), 3),
            "faster_improved": _count(faster, "improved", "load_s")["load_s"],
            "faster_regressed": _count(faster, "regressed", "load_s")["load_s"],
            "faster_median_change": round(_median(faster, "change"), 3),
        })
        if n in args.suite_n:
            for label, metrics in (("in_suite", None), ("in_suite_headline", HEADLINE)):
                tables = ab(frames["base"], frames["slower"], n, args.comparisons, rng, context, metrics)
                entry[f"{label}_flagged"] = _count(tables, "regressed", "load_s")["load_s"]
                entry[f"{label}_false"] = _count([t[t["checkpoint"] != args.builtin] for t in tables],
                                                 "regressed")
        report[f"n={n}"] = entry
        print(f"n={n}: {json.dumps(entry)}", flush=True)
    quartiles = {v: [round(float(q), 4) for q in
                     f.loc[(f["metric"] == "load_s") & (f["status"] == "ok"), "value"].quantile([0.25, 0.5, 0.75])]
                 for v, f in frames.items()}
    first = frames["base"].iloc[0]
    report.update(load_s_quartiles=quartiles, samples_per_variant=args.samples,
                  case=f"{args.builtin} · {args.path} · warm",
                  machine={k: first[k] for k in ("cpu_model", "cpu_count", "torch_version", "transformers_version")},
                  runtime_s=round(time.perf_counter() - started))
    print(json.dumps({k: report[k] for k in ("load_s_quartiles", "machine", "runtime_s")}))
    (args.workdir / "validation.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
