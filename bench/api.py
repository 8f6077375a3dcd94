"""loadbench's Python API: every command of the CLI, as a keyword call that returns objects.

Served at the top of the package (``import loadbench; loadbench.run(...)``), where its
docstring shows it in use. Arguments are named as keywords; an error that names one
writes it in backquotes (`` `max_parallel` ``), which the CLI shows as its flag.

Every mistake the caller can fix raises ``loadbench.errors.UserError`` with a one-line
message; the CLI prints it and exits 2. That includes a keyword given a value of the wrong
type (``repeats=True``, ``output=5``): each public function checks its arguments against
its annotations (``bench/api_checks.py``), and a single string where a list is expected
is taken as a one-item list. Importing this module imports neither torch nor
transformers: they load when a run starts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loadbench.bench.api_checks import check_settings, checked
from loadbench.bench.compare_inputs import CompareResult
from loadbench.bench.compare_inputs import compare as _compare
from loadbench.bench.executors.base import Executor
from loadbench.bench.executors.factory import executor_for_resume, make_executor
from loadbench.bench.runner import WORKER_LOG, OutputNotWritable, Progress, RunOutcome, resume_run, run_suite
from loadbench.bench.suite import Suite, SuiteError, default_suite, load_suite, suite_for_dirs, suite_from_dict
from loadbench.errors import UserError

if TYPE_CHECKING:
    import pandas as pd

    from loadbench.bench.bisect.driver import BisectResult
    from loadbench.bench.ceiling.measure import Ceiling
    from loadbench.bench.executors.env_build import BuiltEnvironment
    from loadbench.results.history.show import History
    from loadbench.results.history.store import HistoryRun
    from loadbench.results.records.baseline import BaselineInfo
    from loadbench.results.report.model import Report

__all__ = ["BuiltinCheckpoint", "CompareResult", "ReportResult", "RunResult", "baseline_list", "baseline_save",
           "bisect", "build_environment", "ceiling", "checkpoints", "compare", "environments", "history", "history_add",
           "history_report", "report", "resume", "run"]


@dataclass(frozen=True)
class RunResult:
    """A finished (or interrupted) run: where it is, what happened, and its data on demand."""

    run_dir: Path
    samples: int  # worker samples taken by this call
    failed_samples: int
    interrupted: bool
    lost: int  # samples lost with their node or left unrun: ``resume`` takes them again
    cv_threshold: float
    reports: tuple[Path, ...]  # report.md and report.html in the run directory, when written
    # Another Ctrl-C came while the reports were written: they were skipped, and the
    # libraries it cut off mid-import are not to be used again in this process.
    interrupted_again: bool = False
    # Samples were taken and not one load of the run succeeded: every sample of every case
    # failed (the CLI exits 1), as a bad option or a broken loader would make it.
    measured_nothing: bool = False
    # With ``until_decided``: when and why each case stopped (run.json's ``sequential``).
    sequential: dict[str, Any] | None = None

    @property
    def complete(self) -> bool:
        return not self.interrupted and not self.lost

    @property
    def worker_log(self) -> Path | None:
        """This machine's worker log; None when workers ran on other nodes (run.json names theirs)."""
        path = self.run_dir / WORKER_LOG
        return path if path.exists() else None

    def frame(self) -> pd.DataFrame:
        """The run's tidy records (``loadbench.results.load``)."""
        from loadbench.results import load

        return load(self.run_dir)

    def summary(self) -> pd.DataFrame:
        """One row per case x metric: median, quartiles, CV, status (``loadbench.results.summarize``)."""
        from loadbench.results import summarize

        return summarize(self.frame(), self.cv_threshold)

    def summary_text(self) -> str:
        """The paths-side-by-side table of the headline metrics, as ``loadbench run`` prints it."""
        from loadbench.results import summary_text
        from loadbench.results.analysis.metrics import HEADLINE

        return summary_text(self._report.summary, metrics=HEADLINE, cv_threshold=self.cv_threshold)

    @cached_property
    def _report(self) -> Report:
        """The run's report model, built once: the printed summary and the written reports share it."""
        from loadbench.results import build_report

        return build_report(self.run_dir, cv_threshold=self.cv_threshold)

    def write_reports(self) -> RunResult:
        """Write report.md and report.html into the run directory; return the result that names them.

        ``run(reports=False)`` then this: what the CLI does, so that the summary is printed
        before the reports' seconds of plotting. Another Ctrl-C meanwhile skips them
        (``loadbench report`` makes them later), and the result says so (``interrupted_again``).
        """
        from loadbench.results import write_run_reports

        try:
            with _writing(self.run_dir):
                written = write_run_reports(self._report)
        except KeyboardInterrupt:
            return replace(self, reports=(), interrupted_again=True)
        return replace(self, reports=tuple(written))


compare = checked(_compare)


def _progress(progress: bool | Progress) -> Any:
    if callable(progress):
        return nullcontext(progress)
    from loadbench.bench.progress import progress_display

    return progress_display(enabled=bool(progress))


def _finished(outcome: RunOutcome, suite: Suite, reports: bool) -> RunResult:
    result = RunResult(outcome.run_dir, outcome.samples, outcome.failed_samples, outcome.interrupted, outcome.lost,
                       suite.cv_threshold, (), False, _measured_nothing(outcome), outcome.sequential)
    # Another Ctrl-C while the reports are written skips them, but still returns, so the
    # caller says how to finish the run.
    return result.write_reports() if reports else result


def _measured_nothing(outcome: RunOutcome) -> bool:
    """Whether samples were taken and not one load of the whole run succeeded."""
    if outcome.samples == 0 or outcome.failed_samples < outcome.samples:
        return False
    import warnings

    from loadbench.results import TruncatedRunWarning, read_samples

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TruncatedRunWarning)
        # A failed load may still have its memory on record: the load is what every sample is for.
        return not any(record.get("metric") == "load_s" and record.get("status") == "ok"
                       for record in read_samples(outcome.run_dir))


def _suite(suite: Suite | str | Path | None, checkpoints: Sequence[str | Path] | None,
           settings: dict[str, Any]) -> Suite:
    """The suite to run: a Suite, a suite file, or the default; ``checkpoints`` replace its checkpoints."""
    dirs = [str(c) for c in checkpoints] if checkpoints else None
    if isinstance(suite, Suite):
        chosen = suite
    elif suite is not None:
        chosen = load_suite(suite, allow={k: settings.get(k) is True
                                          for k in ("trust_remote_code", "allow_bin_weights")})
    else:
        return suite_for_dirs(dirs) if dirs else default_suite()
    return chosen.model_copy(update={"checkpoints": suite_for_dirs(dirs).checkpoints}) if dirs else chosen


@checked
def run(suite: Suite | str | Path | None = None, *, checkpoints: Sequence[str | Path] | None = None,
        output: str | Path | None = None, executor: str | Executor | None = None, ray_address: str | None = None,
        max_parallel: int | None = None, progress: bool | Progress = False, cache_dir: str | Path | None = None,
        reports: bool = True, **settings: Any) -> RunResult:
    """Measure a suite into a new run directory and write its reports there.

    ``suite``: a Suite, a suite TOML file, or None for the built-in default suite.
    ``checkpoints``: local checkpoint directories, built-in names or hub ids that replace the
    suite's checkpoints; a single string is taken as a list of that one (never split into
    characters), as are single values of list settings (``device="cpu"``).
    ``settings``: any suite field (``repeats=5``, ``device="cpu"``, ``cache=["warm"]``...);
    None leaves the suite's value. ``executor``: ``"local"`` (None: the default), ``"ray"`` or an Executor.
    ``progress``: True for a progress bar on a terminal, or a callback
    ``(case label, done, total)``. Raises UserError for unusable input before any sample.
    """
    check_settings("run", settings, Suite)
    chosen = _suite(suite, checkpoints, settings).with_overrides(**settings)
    if output is not None:
        _check_output(Path(output))
    where = executor if executor is not None and not isinstance(executor, str) else make_executor(
        executor, chosen, address=ray_address, max_parallel=max_parallel)
    with _progress(progress) as report_progress:
        outcome = run_suite(chosen, Path(output) if output is not None else None,
                            cache_dir=Path(cache_dir) if cache_dir is not None else None,
                            progress=report_progress, executor=where)
    return _finished(outcome, chosen, reports)


def _check_output(path: Path) -> None:
    """A run directory the OS cannot even look up (a name too long, a loop) is refused before anything starts."""
    try:
        path.exists()
        path.parent.resolve()
    except (OSError, RuntimeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else "a symbolic link that loops"
        raise OutputNotWritable(f"{path}: cannot write the run directory ({why}); choose another `output`") from None


@checked
def resume(run_dir: str | Path, *, executor: str | Executor | None = None, ray_address: str | None = None,
           max_parallel: int | None = None, progress: bool | Progress = False,
           cache_dir: str | Path | None = None, reports: bool = True, trust_remote_code: bool = False,
           allow_bin_weights: bool = False, download: bool = False) -> RunResult:
    """Finish an interrupted run: only its missing samples, with its own suite, seed and executor.

    ``executor``: None (the run's own, from run.json), its name, or an Executor;
    ``ray_address`` points a Ray run at a new head. ``trust_remote_code`` and
    ``allow_bin_weights`` must be given again when the run was started with them (a run
    directory, like a suite file, cannot give that consent), and are refused when it was
    not; ``download`` fetches hub checkpoints the cache lacks (the commits the run recorded).
    """
    from loadbench.results import read_run_info

    run_dir = Path(run_dir)
    info = read_run_info(run_dir)
    suite = suite_from_dict(info.get("suite"), f"{run_dir}/run.json: suite")
    _check_consents(run_dir, suite, trust_remote_code=trust_remote_code, allow_bin_weights=allow_bin_weights)
    if download:
        suite = suite.model_copy(update={"download": True})
    where = executor if executor is not None and not isinstance(executor, str) else executor_for_resume(
        run_dir, info, executor, ray_address, max_parallel, suite)
    with _progress(progress) as report_progress:
        outcome = resume_run(run_dir, info, suite, where, progress=report_progress,
                             cache_dir=Path(cache_dir) if cache_dir is not None else None)
    return _finished(outcome, suite, reports)


def _check_consents(run_dir: Path, suite: Suite, **given: bool) -> None:
    """A resume runs checkpoint code or unpickles weights only with the caller's own consent, as the run did."""
    for key, consent in given.items():
        if getattr(suite, key) and not consent:
            raise SuiteError(f"{run_dir} was started with `{key}`; give it again to finish the run (a run "
                             "directory cannot turn it on by itself)")
        if consent and not getattr(suite, key):
            raise SuiteError(f"`{key}`: {run_dir} was started without it, and a resumed run keeps its own "
                             "settings; drop it")


@dataclass(frozen=True)
class ReportResult:
    """A report: its model (runs, records, summary), and the file written or the content to print."""

    report: Report
    format: str
    path: Path | None  # the file written; None when the content goes to the caller
    content: str | bytes | None  # the rendered report when no file was written


@checked
def report(runs: str | Path | Iterable[str | Path], *, format: str = "markdown", output: str | Path | None = None,
           what: str | None = None) -> ReportResult:
    """Report one or more runs in ``format`` (markdown, html, csv, parquet, json).

    ``output``: a file, a directory (``report.<ext>`` inside) or ``"-"`` for the content;
    None: the content for markdown, csv and json, a file for html and parquet (the run
    directory for one run, ``./loadbench-report.*`` for several). ``what``: records or
    summary, for csv, parquet and json.
    """
    from loadbench.results import build_report, render, write_report
    from loadbench.results.report.model import ReportError
    from loadbench.results.report.render import EXTENSIONS, check_format, default_output

    check_format(format, what)
    model = build_report(runs)
    target = default_output(model, format) if output is None else Path(output)
    if target is None or str(target) == "-":
        return ReportResult(model, format, None, render(model, format, what))
    if target.is_dir():
        target = target / f"report.{EXTENSIONS[format]}"
    if not target.parent.is_dir():
        raise ReportError(f"{target.parent}: no such directory for `output`")
    with _writing(target):
        return ReportResult(model, format, write_report(model, format, target, what), None)


@contextmanager
def _writing(path: Path) -> Iterator[None]:
    """Turns an OS refusal to write ``path`` into a one-line user error naming it."""
    try:
        yield
    except (FileExistsError, UserError):  # a UserError that is also an OSError (NotARun) says what it is itself
        raise
    except OSError as exc:
        raise OutputNotWritable(f"{path}: cannot write ({exc.strerror or exc}); choose another place") from None


@checked
def baseline_save(runs: str | Path | Sequence[str | Path], name: str | None = None,
                  baselines: str | Path | None = None) -> Path:
    """Store complete runs (pooled) as baseline ``name`` of their machine; returns its directory."""
    from loadbench.results.records.baseline import baselines_root, save

    with _writing(baselines_root(baselines)):
        return save(runs, name, baselines)


@checked
def baseline_list(baselines: str | Path | None = None) -> list[BaselineInfo]:
    """Every saved baseline, with its machine."""
    from loadbench.results.records.baseline import list_baselines

    return list_baselines(baselines)


@checked
def history_add(runs: str | Path | Sequence[str | Path], history: str | Path | None = None, *,
                labels: Sequence[str] | None = None) -> list[HistoryRun]:
    """File finished runs into the history of their machine, in order, each under a label (default: its commit)."""
    from loadbench.results.history.store import add, history_root

    with _writing(history_root(history)):
        return add(runs, history, labels=labels)


def _analyzed(root: str | Path | None, metrics: Sequence[str] | None, alpha: float, since: str | None,
              anchored: bool) -> History:
    from loadbench.results.comparison.settings import check_metric
    from loadbench.results.history.show import analyze

    if not 0 < alpha < 1:
        raise UserError(f"`alpha` must be between 0 and 1, not {alpha}")
    return analyze(root, metrics=[check_metric(m) for m in metrics] if metrics else None, alpha=alpha, since=since,
                   anchored=anchored)


@checked
def history(history: str | Path | None = None, *, metrics: Sequence[str] | None = None, alpha: float = 0.05,
            since: str | None = None, anchored: bool = False) -> History:
    """Read a history and find its change points (the gated metrics unless ``metrics`` says; ``anchored``:
    only each candidate environment's ratio to the runs' first, docs/HISTORY.md)."""
    return _analyzed(history, metrics, alpha, since, anchored)


@checked
def history_report(output: str | Path, history: str | Path | None = None, *,
                   metrics: Sequence[str] | None = None, alpha: float = 0.05, anchored: bool = False) -> Path:
    """Write the history's page (``output/index.html``): a trend per case and metric, change points marked."""
    from loadbench.results.history.page import write_page

    found = _analyzed(history, metrics, alpha, None, anchored)
    with _writing(Path(output)):
        return write_page(found, output)


@checked
def bisect(good: str, bad: str, *, package: str | None = None, repo: str | Path | None = None,
           metric: str = "load_s", suite: Suite | str | Path | None = None,
           checkpoints: Sequence[str | Path] | None = None, output: str | Path | None = None,
           history: str | Path | bool = True, alpha: float = 0.05, pre: bool = False,
           progress: bool = False, on_step: Callable[[Any], None] | None = None, **settings: Any) -> BisectResult:
    """The first release of ``package`` (or commit of the git repository ``repo``) after ``good``
    up to ``bad`` that changed ``metric``, each step a paired run (bench/bisect/search.py).

    The suite (``suite``, ``checkpoints`` and settings as for ``run``) must hold one case:
    one checkpoint, path, device, dtype and cache state (default: warm). ``output``: the
    bisect's directory (default ``runs/bisect-<what>-<good>-<bad>``); the same call again
    continues it. ``history``: where its runs are filed (True: the default history, False:
    nowhere). ``repeats``: blocks before a step's first look (default: the fewest that can
    decide). Raises UserError for unusable input before anything is measured.
    """
    from loadbench.bench.bisect.candidates import BisectError
    from loadbench.bench.bisect.driver import Measuring, run_bisect
    from loadbench.bench.bisect.inputs import candidates_for, check_suite, default_output, take_step_settings
    from loadbench.results.comparison.settings import check_metric
    from loadbench.results.history.store import usable_root

    if (package is None) == (repo is None):
        raise BisectError("give exactly one of `package` (a registry's releases) or `repo` (a git repository)")
    check_settings("bisect", settings, Suite)
    if not 0 < alpha < 1:
        raise UserError(f"`alpha` must be between 0 and 1, not {alpha}")
    repeats, budget = take_step_settings(settings)
    chosen = _suite(suite, checkpoints, settings).with_overrides(**settings)
    check_suite(chosen, repeats, budget)
    metric = check_metric(metric)
    kept = usable_root(None if history is True else history) if history is not False else None
    found, target = candidates_for(package, repo, good, bad, pre)
    return run_bisect(found, target=target, suite=chosen, metric=metric, alpha=alpha,
                      output=Path(output) if output is not None else default_output(target, good, bad),
                      history=kept, repo=Path(repo) if repo is not None else None, progress=progress,
                      on_step=on_step or (lambda step: None), repeats=repeats, budget=budget,
                      measuring=Measuring(run, resume, compare, history_add))


@dataclass(frozen=True)
class BuiltinCheckpoint:
    """A built-in tiny checkpoint: its name, whether the default suite uses it, and where it is."""

    name: str
    default: bool
    architecture: str
    directory: Path
    built: bool


@checked
def checkpoints(all: bool = False, cache_dir: str | Path | None = None) -> list[BuiltinCheckpoint]:
    """Build the built-in checkpoints (the default suite's, or ``all``) and list every one."""
    from loadbench.loaders.checkpoints.builtin import BUILTIN, builtin_dir, ensure_builtin

    cache = Path(cache_dir) if cache_dir is not None else None
    out = []
    for name, spec in BUILTIN.items():
        if spec.default or all:
            ensure_builtin(name, cache)
        directory = builtin_dir(name, cache)
        out.append(BuiltinCheckpoint(name, spec.default, spec.architecture, directory, directory.is_dir()))
    return out



@checked
def build_environment(requirements: Sequence[str], *, name: str = "env", installer: str | None = None,
                      say: Callable[[str], None] | None = None) -> BuiltEnvironment:
    """Build (once) the environment these requirements make on top of this one; return it.

    What ``--env NAME='transformers==4.57.6'`` does before a run: done ahead, it keeps the
    download out of the run (and out of an offline CI job's tests). Raises BuildFailed.
    """
    from loadbench.bench.executors.env_build import ensure_environment

    return ensure_environment(name, requirements, installer=installer, say=say)


@checked
def environments() -> list[dict[str, Any]]:
    """The environments built so far in loadbench's cache, each with what it was built from."""
    from loadbench.bench.executors.env_build import built_environments

    return built_environments()


@checked
def ceiling(directory: str | Path | None = None, *, refresh: bool = False) -> Ceiling:
    """This machine's cold read rate (of ``directory``'s filesystem), memory and host-to-device rates.

    Measured once and cached per machine and filesystem; ``refresh`` measures again.
    ``directory``: a checkpoint's (default: loadbench's cache, where the built-ins live).
    """
    from loadbench.bench.ceiling.measure import machine_ceiling

    if directory is None:
        from loadbench.loaders.checkpoints.builtin import cache_root

        root = cache_root()
        root.mkdir(parents=True, exist_ok=True)
        return machine_ceiling(root, refresh=refresh)
    return machine_ceiling(directory, refresh=refresh)
