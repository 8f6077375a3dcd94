"""How often the paired gate cries wolf, and how often it catches a real regression, on this machine.

Two steps, with a run of your own in between (docs/REGRESSIONS.md has this machine's figures):

    python -m loadbench.bench.studies.validate_paired prepare DIR \
        [--slowdown 0.05 0.10 0.20] [--bloat 0.10] [--blocks 300]
    loadbench run DIR/paired.toml --output DIR/run
    python -m loadbench.bench.studies.validate_paired analyse DIR/run \
        [--window 10] [--metric load_s] [--output FILE.jsonl]

``prepare`` makes virtual environments layered over this one's packages (a ``.pth`` file
adds its site-packages): ``base``, ``same`` (identical to base: the A/A pair), one
``slowN`` per slowdown, where bench/studies/slowdown.py makes transformers' loading entry points
really that much slower, and one ``memN`` per ``--bloat``, whose loads keep that much
more of the memory they add (``--metric load_added_rss_bytes`` then counts its rows). It
writes a suite measuring the tiny Llama through the four paths, warm, in all of them,
interleaved. ``analyse`` cuts the run's rounds into disjoint windows of ``--window``
rounds (a block per case in each) and compares each window on its own, as a CI job with
that many repeats would: ``same`` and each candidate against ``base``, paired; and, for
the old design, the unpaired compare of base's samples in one window against the
candidate's in a window half a run later (two runs measured minutes apart). Every figure
comes from real samples; none is synthesized or edited.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from loadbench.bench.executors.env_build import create_layered_venv
from loadbench.bench.studies.scripts import append_record, machine_info

__all__ = ["analyse", "main", "prepare"]

BENCHMARK = "validate_paired"
SLOWDOWNS = (0.05, 0.10, 0.20)
# Two checkpoints through the four paths: 8 gated load_s rows a family, as users' suites have.
CHECKPOINTS = ("tiny-llama", "tiny-bert")


def _env_name(fraction: float, kind: str = "time") -> str:
    return f"{'slow' if kind == 'time' else 'mem'}{round(fraction * 100):d}"


def make_layered_venv(directory: Path, *, pth_lines: Sequence[str] = (), install: Path | None = None) -> Path:
    """A venv whose Python also sees this environment's packages, plus ``pth_lines`` run at its startup.

    ``install``: a loadbench checkout installed into it (no dependencies), ahead of the
    layered one, so the environment keeps that code whatever happens to this one.
    """
    # The layering an environment built from requirements has (no pip or setuptools of its own).
    python, site = create_layered_venv(directory)
    if pth_lines:
        (site / "zz_loadbench_startup.pth").write_text("".join(pth_lines), encoding="utf-8")
    if install is not None:
        subprocess.run([python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                        "--no-warn-script-location", str(install)], check=True)
    return directory


def prepare(directory: Path, slowdowns: Sequence[float], blocks: int, install: Path | None,
            bloats: Sequence[float] = (), checkpoints: Sequence[str] = CHECKPOINTS) -> Path:
    """The environments and the suite; returns the suite file."""
    from loadbench.bench.studies.slowdown import pth_line

    directory.mkdir(parents=True, exist_ok=True)
    envs = {"base": [], "same": [], **{_env_name(f): [pth_line(f)] for f in slowdowns},
            **{_env_name(f, "memory"): [pth_line(f, "memory")] for f in bloats}}
    for name, lines in envs.items():
        make_layered_venv(directory / name, pth_lines=lines, install=install)
    suite = directory / "paired.toml"
    entries = "".join(f'\n[[environments]]\nname = "{name}"\npython = "{name}"\n' for name in envs)
    listed = ", ".join(f'{{builtin = "{name}"}}' for name in checkpoints)
    suite.write_text(f'name = "validate-paired"\ncheckpoints = [{listed}]\ncache = ["warm"]\n'
                     f"repeats = {blocks}\nwarmups = 1\n{entries}", encoding="utf-8")
    return suite


def _windows(blocks: list[int], size: int) -> list[list[int]]:
    return [blocks[i:i + size] for i in range(0, len(blocks) - size + 1, size)]


def _iqr(values: Any) -> float:
    import numpy as np

    q1, q3 = np.percentile(np.asarray(values, dtype=float), [25, 75])
    return float(q3 - q1)


def _paired_log_ratios(frame: Any, env: str, metric: str = "load_s") -> Any:
    """log(candidate / base) of ``metric`` per block, indexed by (block, repeat, path)."""
    import numpy as np

    rows = frame[(frame["metric"] == metric) & (frame["status"] == "ok")]
    base = rows[rows["env"] == "base"].set_index(["block", "repeat", "path"])["value"]
    cand = rows[rows["env"] == env].set_index(["block", "repeat", "path"])["value"]
    both = base.index.intersection(cand.index)
    return np.log(cand[both] / base[both])


def _probe_as_covariate(frame: Any, env: str, windows: list[list[int]]) -> dict[str, float]:
    """Whether the host probe, as a covariate of the paired log-ratios, tightens their intervals.

    Fits ``d = a + b * p`` (p: the pair's probe log-ratio) over the whole run and compares
    the median width of the 95% interval per window and path, with and without removing ``b * p``.
    """
    import numpy as np

    from loadbench.results.comparison.stats import walsh_interval

    d = _paired_log_ratios(frame, env)
    p = _paired_log_ratios(frame, env, "host_probe_s").reindex(d.index)
    keep = p.notna()
    d, p = d[keep], p[keep]
    slope = float(np.polyfit(p.to_numpy(), d.to_numpy(), 1)[0]) if len(d) > 2 else math.nan
    adjusted = d - slope * p
    widths: dict[str, list[float]] = {"raw": [], "adjusted": []}
    for chosen in windows:
        for path in d.index.get_level_values("path").unique():
            mask = d.index.get_level_values("repeat").isin(chosen) & (d.index.get_level_values("path") == path)
            for name, series in (("raw", d), ("adjusted", adjusted)):
                _, low, high = walsh_interval(series[mask].to_numpy(), 0.95)
                widths[name].append(high - low)
    return {"slope": slope, "correlation": float(np.corrcoef(p, d)[0, 1]) if len(d) > 2 else math.nan,
            "ci_width_raw": float(np.median(widths["raw"])), "ci_width_adjusted": float(np.median(widths["adjusted"]))}


def analyse(run_dir: Path, window: int, metric: str = "load_s") -> dict[str, Any]:
    """Detection and false-alarm counts per candidate environment, paired and unpaired."""
    import numpy as np

    from loadbench.results import load
    from loadbench.results.comparison.paired import compare_paired, contended_share, environments_of
    from loadbench.results.comparison.unpaired import compare

    frame = load(run_dir)
    measured = frame[~frame["warmup"]]
    # A window is `window` consecutive rounds: each case has one block per round in it.
    rounds = sorted(int(r) for r in measured["repeat"].unique())
    windows = _windows(rounds, window)
    half = len(windows) // 2
    out: dict[str, Any] = {"run": str(run_dir), "window": window, "windows": len(windows), "metric": metric,
                           "candidates": {}}
    for env in [e for e in environments_of(frame) if e != "base"]:
        paired_hits = unpaired_hits = 0
        rows_hit = improved = quiet = quiet_hits = 0
        for index, chosen in enumerate(windows):
            part = measured[measured["repeat"].isin(chosen)]
            table = compare_paired(part, baseline_env="base", candidate_env=env)
            gate = table[table["gated"]]
            flagged = bool(gate["verdict"].isin(("regressed", "failed")).any())
            paired_hits += flagged
            # A window compare would not warn about (at most 10% of its blocks contended).
            if contended_share(part, ["base", env]) <= 0.10:
                quiet += 1
                quiet_hits += flagged
            load_rows = gate[gate["metric"] == metric]
            rows_hit += int((load_rows["verdict"] == "regressed").sum())
            improved += int((gate["verdict"] == "improved").sum())
            later = measured[measured["repeat"].isin(windows[(index + half) % len(windows)])]
            base_side = part[part["env"] == "base"].assign(env="default")
            cand_side = later[later["env"] == env].assign(env="default")
            unpaired = compare(base_side, cand_side)
            unpaired_hits += bool(unpaired["verdict"].isin(("regressed", "failed")).any())
        ratios = list(_paired_log_ratios(measured, env, metric))
        base_all = measured[(measured["metric"] == metric) & (measured["env"] == "base")
                            & (measured["status"] == "ok")]
        cand_all = measured[(measured["metric"] == metric) & (measured["env"] == env)
                            & (measured["status"] == "ok")]
        unpaired_ratios = []
        for index, chosen in enumerate(windows):
            later = windows[(index + half) % len(windows)]
            for path, b in base_all[base_all["repeat"].isin(chosen)].groupby("path"):
                c = cand_all[(cand_all["repeat"].isin(later)) & (cand_all["path"] == path)]
                unpaired_ratios += [math.log(x / y) for x, y in zip(c["value"], b["value"])]
        out["candidates"][env] = {
            "comparisons": len(windows),
            "paired_flagged": paired_hits,
            "quiet_comparisons": quiet,
            "paired_flagged_quiet": quiet_hits,
            "unpaired_flagged": unpaired_hits,
            "paired_load_rows_regressed": rows_hit,
            "load_rows": int(measured[measured["metric"] == metric]["path"].nunique()) * len(windows),
            "improved_verdicts": improved,
            "true_load_ratio": float(np.exp(np.median(ratios))) if ratios else math.nan,
            "paired_ratio_iqr": _iqr(np.exp(ratios)) if ratios else math.nan,
            "unpaired_ratio_iqr": _iqr(np.exp(unpaired_ratios)) if unpaired_ratios else math.nan,
            "probe_covariate": _probe_as_covariate(measured, env, windows),
        }
    return out


def _print(result: dict[str, Any]) -> None:
    print(f"{result['run']}: {result['windows']} comparisons of {result['window']} blocks per case each; "
          f"ratio and rows hit: {result['metric']}")
    print(f"{'candidate':10} {'ratio':>10} {'paired flagged':>15} {'of them quiet':>14} {'unpaired flagged':>17} "
          f"{'rows hit':>14} {'paired IQR':>11} {'unpaired IQR':>13}")
    for env, c in result["candidates"].items():
        print(f"{env:10} {c['true_load_ratio']:10.3f} {c['paired_flagged']:>9}/{c['comparisons']:<5} "
              f"{c['paired_flagged_quiet']:>8}/{c['quiet_comparisons']:<5} "
              f"{c['unpaired_flagged']:>11}/{c['comparisons']:<5} {c['paired_load_rows_regressed']:>8}/"
              f"{c['load_rows']:<5} {c['paired_ratio_iqr']:11.3f} {c['unpaired_ratio_iqr']:13.3f}")
    print("host probe as a covariate of the paired log-ratios (median 95% interval width per window and path):")
    for env, c in result["candidates"].items():
        cov = c["probe_covariate"]
        print(f"{env:10} slope {cov['slope']:+.3f}  r {cov['correlation']:+.2f}  width {cov['ci_width_raw']:.4f} "
              f"raw, {cov['ci_width_adjusted']:.4f} adjusted")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadbench.bench.studies.validate_paired",
                                     description=(__doc__ or "").split("\n\n")[0])
    steps = parser.add_subparsers(dest="step", required=True)
    make = steps.add_parser("prepare", help="make the environments and the suite")
    make.add_argument("directory", type=Path)
    make.add_argument("--slowdown", type=float, nargs="*", default=list(SLOWDOWNS), metavar="FRACTION",
                      help="time regressions (none: give the flag alone)")
    make.add_argument("--bloat", type=float, nargs="+", default=[], metavar="FRACTION",
                      help="memory regressions: loads that keep this fraction of the memory they add once more")
    make.add_argument("--blocks", type=int, default=300, help="measured blocks (repeats) per case")
    make.add_argument("--checkpoint", nargs="+", default=list(CHECKPOINTS), dest="checkpoints", metavar="NAME",
                      help="built-in checkpoints to measure through the four paths")
    make.add_argument("--install", type=Path, metavar="CHECKOUT",
                      help="install this loadbench checkout into each environment (default: use this one's)")
    read = steps.add_parser("analyse", help="detection and false-alarm counts of a finished run")
    read.add_argument("run", type=Path)
    read.add_argument("--window", type=int, default=10, help="blocks per comparison")
    read.add_argument("--metric", default="load_s", help="the metric whose rows and ratio are counted")
    read.add_argument("--output", type=Path, metavar="FILE.jsonl", help="append the figures as one JSON record")
    args = parser.parse_args(argv)
    if args.step == "prepare":
        suite = prepare(args.directory, args.slowdown, args.blocks, args.install, args.bloat, args.checkpoints)
        print(f"wrote {suite}; now: loadbench run {suite} --output {args.directory / 'run'}")
        return 0
    result = analyse(args.run, args.window, args.metric)
    _print(result)
    append_record(args.output, {"benchmark": BENCHMARK, **machine_info(), **result})
    return 0


if __name__ == "__main__":
    sys.exit(main())
