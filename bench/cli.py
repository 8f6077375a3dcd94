"""``loadbench`` on the command line: a thin shell over the Python API.

One error boundary: any input the user can fix ends in one line on stderr and exit 2;
``--verbose`` shows the traceback too.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from . import cli_compare

if TYPE_CHECKING:
    from .runner import RunOutcome

__all__ = ["main", "EXIT_OK", "EXIT_INCOMPLETE", "EXIT_INTERRUPTED", "EXIT_USAGE"]

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_INCOMPLETE = 3  # samples lost with their node: --resume takes them again
EXIT_INTERRUPTED = 130


class UsageError(ValueError):
    """Options that do not go together."""


def _user_errors() -> tuple[type[BaseException], ...]:
    from loadbench.loaders import CheckpointError, UnsupportedTask
    from loadbench.loaders.builtin import UnknownBuiltin
    from loadbench.results import DuplicateRun, MissingDependency, UnsupportedSchema
    from loadbench.results.store import CorruptRun, NotARun, RunExists

    from .ray_executor import RayUnavailable
    from .runner import ExecutorError, OutputNotWritable
    from .suite import SuiteError

    return (*cli_compare.user_errors(), OutputNotWritable, ExecutorError, RayUnavailable, CheckpointError, UnsupportedTask, UnknownBuiltin, SuiteError, RunExists, NotARun, CorruptRun,
            UsageError, PermissionError, DuplicateRun, MissingDependency, UnsupportedSchema)


def _parser() -> tuple[argparse.ArgumentParser, dict[str, Callable[[argparse.Namespace], int]]]:
    parser = argparse.ArgumentParser(
        prog="loadbench",
        description="Benchmark the four ways of loading a Hugging Face model: "
                    "AutoModel, AutoModelFor<Task>, a custom PreTrainedModel, pipeline().",
    )
    parser.add_argument("--verbose", action="store_true", help="show tracebacks of errors")
    verbs = parser.add_subparsers(dest="verb", required=True)

    run = verbs.add_parser("run", help="measure a suite (default: built-in tiny checkpoints)")
    run.add_argument("suite", nargs="?", type=Path, help="suite TOML file (default: the embedded default suite)")
    run.add_argument("--checkpoint", action="append", metavar="DIR", dest="checkpoints",
                     help="a local checkpoint directory; repeat for several (replaces the suite's checkpoints)")
    run.add_argument("--output", type=Path, metavar="DIR", help="run directory to write (default: runs/<run-id>)")
    run.add_argument("--repeats", type=int, metavar="N", help="measured samples per case")
    run.add_argument("--warmups", type=int, metavar="N", help="discarded samples per case, taken first")
    run.add_argument("--device", nargs="+", metavar="DEVICE", help="one or more of auto, cpu, cuda, cuda:N")
    run.add_argument("--dtype", nargs="+", choices=("auto", "float32", "bfloat16", "float16"))
    run.add_argument("--cache", nargs="+", choices=("warm", "cold"),
                     help="page cache state of the checkpoint files before each sample")
    run.add_argument("--new-tokens", type=int, metavar="N", help="fixed generation length")
    run.add_argument("--batch-size", type=int, metavar="N", help="prompts per call")
    run.add_argument("--prompt-tokens", type=int, metavar="N", help="cut or repeat the prompt to N tokens")
    run.add_argument("--threads", type=int, metavar="N", help="torch threads per worker (default: usable cores)")
    run.add_argument("--seed", type=int, help="seed of the case order shuffle (default: drawn, recorded)")
    run.add_argument("--timeout", type=float, metavar="S", dest="timeout_s", help="per-sample time limit")
    run.add_argument("--trust-remote-code", action="store_true", default=None,
                     help="allow checkpoints to run their own Python code (off by default)")
    run.add_argument("--allow-bin-weights", action="store_true", default=None,
                     help="accept pickle .bin weights (loaded with torch's weights_only); off by default")
    run.add_argument("--resume", type=Path, metavar="RUN_DIR",
                     help="finish an interrupted run: take only its missing samples, with its own suite")
    run.add_argument("--no-progress", action="store_true", help="no live progress display")
    run.add_argument("--executor", choices=("local", "ray"),
                     help="where samples run: local (default; this machine, one at a time) or ray "
                          "(a Ray cluster; needs the ray extra)")
    run.add_argument("--ray-address", metavar="ADDR",
                     help="with --executor ray: the cluster's head, host:port or 'auto' "
                          "(default: $RAY_ADDRESS, else a Ray started on this machine)")
    run.add_argument("--max-parallel", type=int, metavar="N",
                     help="with --executor ray: at most N samples at once (default: one per node)")

    report = verbs.add_parser("report", help="report one or more runs: markdown, html, csv, parquet or json")
    report.add_argument("runs", nargs="+", type=Path, metavar="RUN",
                        help="run directories; with several, the first is the baseline they are compared to")
    report.add_argument("--format", choices=("markdown", "html", "csv", "parquet", "json"), default="markdown",
                        help="markdown (default): PR comment or CI summary; html: one self-contained file with "
                             "plots; csv/parquet/json: data for other tools")
    report.add_argument("--output", type=Path, metavar="PATH",
                        help="file or directory to write, '-' for stdout (default: stdout for markdown, csv and "
                             "json; RUN/report.html or .parquet for one run, ./loadbench-report.* for several)")
    report.add_argument("--what", choices=("records", "summary"),
                        help="csv, parquet, json: the tidy records or the per-case summary "
                             "(default: records for csv and parquet, summary for json)")

    checkpoints = verbs.add_parser("checkpoints", help="build and list the built-in tiny checkpoints")
    checkpoints.add_argument("--all", action="store_true", help="build every built-in, not only the default ones")
    commands = {"run": _cmd_run, "report": _cmd_report, "checkpoints": _cmd_checkpoints}
    commands.update(cli_compare.register(verbs))
    return parser, commands


def _cmd_run(args: argparse.Namespace) -> int:
    from .runner import make_executor, run_suite
    from .suite import default_suite, load_suite, suite_for_dirs
    from .ui import progress_display

    if args.resume is not None:
        return _resume(args)
    if args.suite is not None:
        suite = load_suite(args.suite)
    elif args.checkpoints:
        suite = suite_for_dirs(args.checkpoints)
    else:
        suite = default_suite()
    if args.suite is not None and args.checkpoints:
        suite = suite.model_copy(update={"checkpoints": suite_for_dirs(args.checkpoints).checkpoints})
    suite = suite.with_overrides(
        repeats=args.repeats, warmups=args.warmups, device=args.device, dtype=args.dtype, cache=args.cache,
        new_tokens=args.new_tokens, batch_size=args.batch_size, prompt_tokens=args.prompt_tokens,
        threads=args.threads, seed=args.seed, timeout_s=args.timeout_s, trust_remote_code=args.trust_remote_code,
        allow_bin_weights=args.allow_bin_weights,
    )
    executor = make_executor(args.executor or "local", suite, address=args.ray_address,
                             max_parallel=args.max_parallel)
    with progress_display(enabled=not args.no_progress) as progress:
        outcome = run_suite(suite, args.output, progress=progress, executor=executor)
    return _finish(outcome, suite.cv_threshold)


def _resume(args: argparse.Namespace) -> int:
    from loadbench.results import read_run_info

    from .runner import make_executor, resume_run
    from .suite import Suite
    from .ui import progress_display

    given = [name for name in ("suite", "checkpoints", "output", "repeats", "warmups", "device", "dtype",
                               "cache", "new_tokens", "batch_size", "prompt_tokens", "threads", "seed")
             if getattr(args, name) is not None]
    if given:
        option = given[0].replace("_", "-")
        raise UsageError(f"--resume continues a run with its own suite and settings; drop --{option}")

    info = read_run_info(args.resume)
    suite = Suite(**info["suite"])
    # The run's own executor and settings, unless the options name others (a new head address).
    recorded = info.get("executor") or {"name": "local"}
    executor = None
    if (args.executor or recorded["name"]) != "local":
        executor = make_executor(args.executor or recorded["name"], suite,
                                 address=args.ray_address or recorded.get("address"),
                                 max_parallel=args.max_parallel or recorded.get("max_parallel"))
    with progress_display(enabled=not args.no_progress) as progress:
        outcome = resume_run(args.resume, progress=progress, executor=executor)
    return _finish(outcome, suite.cv_threshold)


def _finish(outcome: "RunOutcome", cv_threshold: float) -> int:
    """Print the summary of a finished (or interrupted) run and choose the exit code."""
    from loadbench.results import load, summary_text, write_run_reports
    from loadbench.results.metrics import HEADLINE

    print(summary_text(load(outcome.run_dir), metrics=HEADLINE, cv_threshold=cv_threshold))
    logs = ("see worker.log there for details" if (outcome.run_dir / "worker.log").exists()
            else "workers' logs stay on their nodes: run.json names each node's worker_log")
    print(f"\nrun directory: {outcome.run_dir}  ({outcome.samples} samples, "
          f"{outcome.failed_samples} with failures; {logs})")
    reports = write_run_reports(outcome.run_dir, cv_threshold=cv_threshold)
    print("report: " + "  ".join(str(path) for path in reports))
    if outcome.interrupted:
        print(f"interrupted: every sample measured so far is kept in {outcome.run_dir}; "
              f"finish it with: loadbench run --resume {outcome.run_dir}", file=sys.stderr)
        return EXIT_INTERRUPTED
    if outcome.lost:
        print(f"incomplete: {outcome.lost} sample(s) lost with their node or left with no node to run them; "
              f"take them again with: loadbench run --resume {outcome.run_dir}", file=sys.stderr)
        return EXIT_INCOMPLETE
    return EXIT_OK


def _cmd_report(args: argparse.Namespace) -> int:
    from loadbench.results import build_report, render, write_report
    from loadbench.results.render import EXTENSIONS, default_output

    if args.what is not None and args.format in ("markdown", "html"):
        raise UsageError(f"--what applies to csv, parquet and json, not {args.format}")
    report = build_report(args.runs)
    output = default_output(report, args.format) if args.output is None else args.output
    if output is None or str(output) == "-":
        content = render(report, args.format, args.what)
        if isinstance(content, bytes):
            sys.stdout.flush()
            sys.stdout.buffer.write(content)
        else:
            sys.stdout.write(content)
        return EXIT_OK
    if output.is_dir():
        output = output / f"report.{EXTENSIONS[args.format]}"
    if not output.parent.is_dir():
        raise UsageError(f"{output.parent}: no such directory for --output")
    print(f"report: {write_report(report, args.format, output, args.what)}")
    return EXIT_OK


def _cmd_checkpoints(args: argparse.Namespace) -> int:
    from loadbench.loaders.builtin import BUILTIN, builtin_dir, ensure_builtin

    for name, spec in BUILTIN.items():
        if spec.default or args.all:
            ensure_builtin(name)
        status = "built" if builtin_dir(name).is_dir() else "not built"
        marker = "default" if spec.default else "extra"
        print(f"{name:20} {marker:8} {status:10} {spec.architecture:34} {builtin_dir(name)}")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    parser, commands = _parser()
    args = parser.parse_args(argv)
    try:
        return commands[args.verb](args)
    except _user_errors() as exc:
        if args.verbose:
            raise
        print(f"loadbench: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("loadbench: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
