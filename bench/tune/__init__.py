"""``loadbench tune``: which way of loading this checkpoint is best on this machine, for a stated goal.

``candidates`` lists the settings that apply here, ``goals`` parses what "best" means,
``search`` spends the samples (successive halving) and confirms the winner in a paired
run, ``front`` summarises each setting and draws the Pareto front, ``driver`` keeps the
steps on disk, ``answer`` and ``report`` say what was found, ``usage`` writes the code.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from loadbench.bench.api_checks import checked
from loadbench.bench.tune.answer import TuneResult
from loadbench.bench.tune.goals import TuneError

__all__ = ["TuneError", "TuneResult", "tune"]


def _usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _check_numbers(budget_minutes: float, confirm_pairs: int | None) -> None:
    from loadbench.bench.tune.driver import MIN_PAIRS

    if not (math.isfinite(budget_minutes) and budget_minutes > 0):
        raise TuneError(f"`budget_minutes` {budget_minutes:g}: give the minutes the tune may take, more than 0")
    if confirm_pairs is not None and confirm_pairs < MIN_PAIRS:
        raise TuneError(f"`confirm_pairs` {confirm_pairs}: give at least {MIN_PAIRS}, the fewest paired rounds whose "
                        "95% interval can exclude no change")


def _chosen(found: list[Any], names: Sequence[str] | None) -> list[Any]:
    """The candidates named (the default always kept); an unknown name is an error listing the known ones."""
    from loadbench.bench.tune.candidates import DEFAULT_SETTING

    if not names:
        return found
    names = [names] if isinstance(names, str) else list(names)  # one name is a list of one, not of characters
    known = {s.name for s in found}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise TuneError(f"`settings`: {unknown[0]!r} is not a setting here; known: {', '.join(sorted(known))}")
    return [s for s in found if s.name == DEFAULT_SETTING or s.name in names]


@checked
def tune(checkpoint: str | Path, *, device: str = "auto", dtype: str = "auto", cache: str = "warm",
         goal: str = "fastest", budget_minutes: float = 10.0, settings: Sequence[str] | None = None,
         output: str | Path | None = None, confirm_pairs: int | None = None, progress: bool = False,
         on_step: Callable[[str], None] | None = None, trust_remote_code: bool = False,
         download: bool = False) -> TuneResult:
    """Measure the ways of loading ``checkpoint`` that apply here and recommend one for ``goal``.

    ``goal``: ``fastest``, ``least-memory`` or ``fastest-within-memory=4GiB``.
    ``settings``: names of candidates to try (default: all; the default load is always
    one). The recommendation's gain over the default is confirmed by a paired run of
    ``confirm_pairs`` rounds (default: as many as the budget leaves, 6 to 40).
    ``output`` (default ``runs/tune-<checkpoint>-<cache>-<goal>``) keeps every step; the same
    call again continues an interrupted tune. Raises
    UserError for unusable input before anything is measured.
    """
    from loadbench.bench import api
    from loadbench.bench.plan import plan
    from loadbench.bench.suite import suite_for_dirs
    from loadbench.bench.tune.candidates import DEFAULT_SETTING, candidates
    from loadbench.bench.tune.driver import Plan, Steps, measure_tune
    from loadbench.bench.tune.goals import parse_goal
    from loadbench.loaders import inspect_checkpoint

    parsed_goal = parse_goal(goal)
    _check_numbers(budget_minutes, confirm_pairs)
    cores = _usable_cores()
    # Unpinned, with torch's threads on every core: the machine as the user's own process finds it.
    suite = suite_for_dirs([str(checkpoint)]).with_overrides(
        device=[device], dtype=[dtype], cache=[cache], warmups=0, new_tokens=2, forward_iters=1, pin_cpus=False,
        threads=cores, trust_remote_code=trust_remote_code, download=download)
    case = plan(suite)[0]
    suite = suite.with_overrides(device=[case.device])  # what "auto" resolved to, so the suite written says it
    info = inspect_checkpoint(case.checkpoint_dir, trust_remote_code)
    found = _chosen(candidates(info, case.task, case.device, cores), settings)
    where = Path(output) if output is not None else Path("runs") / f"tune-{case.checkpoint}-{cache}-{parsed_goal.text}"
    request = {"checkpoint": case.checkpoint_dir, "device": case.device, "dtype": dtype, "cache": cache,
               "goal": parsed_goal.text, "settings": [s.name for s in found]}
    the_plan = Plan(request, suite, found, parsed_goal, budget_minutes * 60, confirm_pairs)
    steps = Steps(api.run, lambda d, **kw: api.resume(d, trust_remote_code=trust_remote_code, **kw),
                  on_step or (lambda text: None), progress)
    measured, state, confirmation, why = measure_tune(the_plan, where, steps)
    return _answer(the_plan, case, where, measured, state, confirmation, why, DEFAULT_SETTING)


def _pairs_taken(state: Any) -> int:
    """The paired run's rounds, so the suite written re-checks the answer with as many; 10 where there was none."""
    return next((step["repeats"] for step in state.steps if step["dir"] == "confirm"), 10)


def _answer(the_plan: Any, case: Any, where: Path, measured: Any, state: Any, confirmation: Any, why: str | None,
            default: str) -> TuneResult:
    import json

    from loadbench.bench.tune.answer import recommended_suite_text
    from loadbench.bench.tune.report import render_html, render_markdown
    from loadbench.bench.tune.usage import usage
    from loadbench.results.records.durable import write_text_atomic

    recommended = confirmation.contender if confirmation is not None and confirmation.verdict == "better" else default
    by_name = {s.name: s for s in the_plan.settings}
    gpu = ("measured (NVML): GPU memory added to the load's, host-to-device share in the JSON"
           if case.device.startswith("cuda") else
           f"not measured: the device is {case.device}; GPU memory and host-to-device time are measured on CUDA "
           "devices only")
    result = TuneResult(where, case.checkpoint, case.checkpoint_dir, case.task, case.device, the_plan.goal,
                        tuple(the_plan.settings),
                        measured, confirmation, why, recommended,
                        usage(by_name[recommended], case.checkpoint_dir, case.task, case.device,
                              the_plan.suite.dtype[0]),
                        state.spent_s / 60, the_plan.budget_s / 60, state.stopped, gpu,
                        tuple(where / name for name in ("recommended.toml", "report.md", "report.html",
                                                        "result.json")))
    pair = [by_name[default]] + ([by_name[confirmation.contender]] if confirmation is not None else [])
    texts = (recommended_suite_text(the_plan.suite, pair, _pairs_taken(state), result.explanation),
             render_markdown(result), render_html(result),
             json.dumps(result.to_json(), indent=2, allow_nan=False) + "\n")
    for path, text in zip(result.files, texts, strict=True):
        write_text_atomic(path, text)
    return result
