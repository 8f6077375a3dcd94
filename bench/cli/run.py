"""The ``run`` verb: measure a suite, or finish an interrupted run, and say how it ended.

``bench/cli/main.py`` wires it in with ``register(verbs)`` and keeps the one error boundary.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loadbench.bench.cli.errors import EXIT_ALL_FAILED, EXIT_INCOMPLETE, EXIT_INTERRUPTED, EXIT_OK, FLAGS
from loadbench.bench.executors.base import EXECUTORS
from loadbench.errors import UserError
from loadbench.vocabulary import CACHE_STATES, DTYPES

if TYPE_CHECKING:
    from loadbench.bench.api import RunResult

__all__ = ["register"]

Handler = Callable[[argparse.Namespace], int]


class UsageError(UserError):
    """Options that do not go together."""


def _environment(text: str) -> dict[str, Any]:
    from loadbench.bench.executors.env_build import requirements_in

    name, sep, spec = text.partition("=")
    if not sep or not name or not spec:
        raise argparse.ArgumentTypeError(f"{text!r}: give NAME=PATH (a venv) or NAME=REQUIREMENTS, e.g. "
                                         "base=.venv-base or old='transformers==4.57.6'")
    requirements = requirements_in(spec)
    return {"name": name, "requirements": requirements} if requirements else {"name": name, "python": spec}


class _OptionAxis(argparse.Action):
    """``--option NAME=V1,V2``: one axis of the run's [options] table per flag."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        name, sep, text = str(values).partition("=")
        if not sep or not name or not text:
            parser.error(f"--option {values!r}: give NAME=VALUE[,VALUE...], e.g. attn_implementation=eager,sdpa")
        axes = dict(getattr(namespace, self.dest) or {})
        if name in axes:
            parser.error(f"--option {name} is given twice; list its values in one flag: {name}=A,B")
        axes[name] = [value.strip() for value in text.split(",")]
        setattr(namespace, self.dest, axes)


def register(verbs: argparse._SubParsersAction) -> dict[str, Handler]:
    run = verbs.add_parser("run", help="measure a suite (default: built-in tiny checkpoints)")
    run.add_argument("suite", nargs="?", type=Path, help="suite TOML file (default: the embedded default suite)")
    run.add_argument("--checkpoint", action="append", metavar="DIR|NAME|ORG/NAME[@REV]", dest="checkpoints",
                     help="a local checkpoint directory, a built-in one's name (tiny-llama), or a Hugging Face hub "
                          "id from the local cache; repeat for several (replaces the suite's checkpoints)")
    run.add_argument("--download", action="store_true", default=None,
                     help="download hub checkpoints the local cache lacks, before anything is timed")
    run.add_argument("--paths", nargs="+", metavar="PATH",
                     help="loading paths to measure: base, task, custom, pipeline, a fast loader (runai-streamer, "
                          "fastsafetensors, tensorizer, instanttensor), "
                          "or your own loading function as module:function (replaces the suite's)")
    run.add_argument("--output", type=Path, metavar="DIR", help="run directory to write (default: runs/<run-id>)")
    run.add_argument("--repeats", type=int, metavar="N", help="measured samples per case")
    run.add_argument("--warmups", type=int, metavar="N", help="discarded samples per case, taken first")
    run.add_argument("--device", nargs="+", metavar="DEVICE", help="one or more of auto, cpu, cuda, cuda:N")
    run.add_argument("--dtype", nargs="+", choices=DTYPES)
    run.add_argument("--cache", nargs="+", choices=CACHE_STATES,
                     help="page cache state of the checkpoint files before each sample")
    run.add_argument("--new-tokens", type=int, metavar="N", help="fixed generation length")
    run.add_argument("--batch-size", type=int, metavar="N", help="prompts per call")
    run.add_argument("--prompt-tokens", type=int, metavar="N", help="cut or repeat the prompt to N tokens")
    run.add_argument("--threads", type=int, metavar="N", help="torch threads per worker (default: usable cores)")
    run.add_argument("--seed", type=int, help="seed of the case order shuffle (default: drawn, recorded)")
    run.add_argument("--env", action="append", type=_environment, dest="environments", metavar="NAME=PATH|REQS",
                     help="measure every case in this Python environment too: a venv directory, an interpreter, "
                          "or requirements such as 'transformers==4.57.6' to build one from (once, cached); "
                          "interleaved with the others; repeat for each (replaces the suite's)")
    run.add_argument("--option", action=_OptionAxis, dest="options", metavar="NAME=V1[,V2...]",
                     help="vary a loading option: device_map, attn_implementation, parallel_loading (on/off), "
                          "loading_workers, safetensors_read (mmap/eager), torch_threads, loader_threads; "
                          "'default' leaves the library's; repeat for each (replaces the suite's [options])")
    run.add_argument("--until-decided", action="store_true", default=None,
                     help="with --env: after --repeats blocks, add a block a round to each case whose gated rows "
                          "are still inconclusive, until decided (docs/REGRESSIONS.md)")
    run.add_argument("--max-repeats", type=int, metavar="N",
                     help="with --until-decided: at most N blocks per case (default 60)")
    run.add_argument("--max-minutes", type=float, metavar="M",
                     help="with --until-decided: stop after M minutes of measuring, with what is decided")
    run.add_argument("--timeout", type=float, metavar="S", dest="timeout_s", help="per-sample time limit")
    run.add_argument("--trust-remote-code", action="store_true", default=None,
                     help="allow checkpoints to run their own Python code (off by default)")
    run.add_argument("--allow-bin-weights", action="store_true", default=None,
                     help="accept pickle .bin weights (loaded with torch's weights_only); off by default")
    run.add_argument("--resume", type=Path, metavar="RUN_DIR",
                     help="finish an interrupted run: take only its missing samples, with its own suite")
    run.add_argument("--no-progress", action="store_true", help="no live progress display")
    run.add_argument("--executor", choices=EXECUTORS,
                     help="where samples run: local (default; this machine, one at a time) or ray "
                          "(a Ray cluster; needs the ray extra)")
    run.add_argument("--ray-address", metavar="ADDR",
                     help="with --executor ray: the cluster's head, host:port or 'auto' "
                          "(default: $RAY_ADDRESS, else a Ray started on this machine)")
    run.add_argument("--max-parallel", type=int, metavar="N",
                     help="with --executor ray: at most N samples at once (default: one per node)")
    return {"run": _cmd_run}


# Options that change what a run measures: a resumed run keeps its own.
_MEASURING = ("paths", "repeats", "warmups", "device", "dtype", "cache", "new_tokens", "batch_size", "prompt_tokens",
              "threads", "seed", "environments", "options", "until_decided", "max_repeats", "max_minutes")
_SETTINGS = (*_MEASURING, "timeout_s", "trust_remote_code", "allow_bin_weights", "download")


def _cmd_run(args: argparse.Namespace) -> int:
    from loadbench.bench import api

    if args.resume is not None:
        # --timeout is refused too: samples already measured ran under the run's own limit.
        given = [name for name in ("suite", "checkpoints", "output", *_MEASURING, "timeout_s")
                 if getattr(args, name) is not None]
        if given:
            flag = "the suite file" if given[0] == "suite" else FLAGS.get(given[0], f"--{given[0].replace('_', '-')}")
            raise UsageError(f"--resume continues a run with its own suite and settings; drop {flag}")
        # The consents are asked again (a run directory cannot give them), and --download may fetch
        # the exact commits the run recorded: each applies to the resume.
        result = api.resume(args.resume, executor=args.executor, ray_address=args.ray_address,
                            max_parallel=args.max_parallel, progress=not args.no_progress, reports=False,
                            trust_remote_code=bool(args.trust_remote_code),
                            allow_bin_weights=bool(args.allow_bin_weights), download=bool(args.download))
    else:
        result = api.run(args.suite, checkpoints=args.checkpoints, output=args.output,
                         executor=args.executor, ray_address=args.ray_address, reports=False,
                         max_parallel=args.max_parallel, progress=not args.no_progress,
                         **{name: getattr(args, name) for name in _SETTINGS})
    return _finish(result)


def _finish(result: RunResult) -> int:
    """Print the summary of a finished (or interrupted) run, then write its reports; choose the exit code.

    The summary comes first: the reports' plots take seconds more (2.5 s of the default suite).
    """
    skipped = "(summary and reports skipped: interrupted again; `loadbench report RUN` makes them)"
    try:
        print(skipped if result.interrupted_again else result.summary_text(),
              file=sys.stderr if result.interrupted_again else sys.stdout, flush=True)
    except KeyboardInterrupt:  # one more Ctrl-C: skip the table and the reports, still say how to finish the run
        print(skipped, file=sys.stderr)
        result = replace(result, interrupted_again=True)
    if not result.reports and not result.interrupted_again:
        result = result.write_reports()
        if result.interrupted_again:
            print("(reports skipped: interrupted again; `loadbench report RUN` makes them)", file=sys.stderr)
    logs = ("see worker.log there for details" if result.worker_log is not None
            else "workers' logs stay on their nodes: run.json names each node's worker_log")
    print(f"\nrun directory: {result.run_dir}  ({result.samples} samples, "
          f"{result.failed_samples} with failures; {logs})")
    if result.reports:
        print("report: " + "  ".join(str(path) for path in result.reports))
    from loadbench.bench.sequential import summary_lines

    for line in summary_lines(result.sequential):
        print(line)
    if result.interrupted:
        print(f"interrupted: every sample measured so far is kept in {result.run_dir}; "
              f"finish it with: loadbench run --resume {result.run_dir}", file=sys.stderr)
        return EXIT_INTERRUPTED
    if result.lost:
        print(f"incomplete: {result.lost} sample(s) lost with their node or left with no node to run them; "
              f"take them again with: loadbench run --resume {result.run_dir}", file=sys.stderr)
        return EXIT_INCOMPLETE
    if result.measured_nothing:
        print(f"failed: every sample of every case failed, so nothing was measured; each error is in the table "
              f"above and in {result.run_dir}/samples.jsonl", file=sys.stderr)
        return EXIT_ALL_FAILED
    return EXIT_OK
