"""loadbench: benchmark the four ways of loading a Hugging Face model.

The Python API, the same as the command line's verbs (workers are forked from
loadbench's zygote and never import the calling script)::

    import loadbench

    result = loadbench.run(repeats=5)            # the built-in default suite
    print(result.summary_text())                 # the table ``loadbench run`` prints
    verdict = loadbench.compare(result.run_dir, loadbench.run(repeats=5).run_dir)
    verdict.exit_code                            # 0 no regression, 1 a regression, 3 inconclusive

``loadbench.results`` reads, summarizes and compares what runs recorded as pandas frames.
Every mistake a caller can fix raises ``loadbench.UserError`` with a one-line message.
Importing ``loadbench`` imports neither torch nor transformers: the API is loaded on first
use, and they load when a run starts.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from loadbench.errors import UserError

if TYPE_CHECKING:
    from loadbench.bench.api import (
        BuiltinCheckpoint,
        CompareResult,
        ReportResult,
        RunResult,
        baseline_list,
        baseline_save,
        bisect,
        build_environment,
        ceiling,
        checkpoints,
        compare,
        environments,
        history,
        history_add,
        history_report,
        report,
        resume,
        run,
    )
    from loadbench.bench.suite import CheckpointEntry, Suite
    from loadbench.bench.tune import TuneResult, tune

__version__ = "0.1.0"

__all__ = ["BuiltinCheckpoint", "CheckpointEntry", "CompareResult", "ReportResult", "RunResult", "Suite",
           "UserError", "__version__", "baseline_list", "baseline_save", "bisect", "build_environment", "ceiling",
           "checkpoints", "compare", "environments", "history", "history_add", "history_report", "report", "resume",
           "run", "TuneResult", "tune"]
# Where each lazily served name lives: imported when first asked for.
_MODULES = {"CheckpointEntry": "loadbench.bench.suite", "Suite": "loadbench.bench.suite",
            "TuneResult": "loadbench.bench.tune", "tune": "loadbench.bench.tune"}
_LAZY = {name: _MODULES.get(name, "loadbench.bench.api")
         for name in __all__ if name not in ("UserError", "__version__")}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'loadbench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
