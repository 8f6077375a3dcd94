"""What a report says, computed once for every output format.

A report is runs + their summary + what a reader must be warned about (different
environments, partial runs, failures) + compare's verdicts of every later run against
the first. The markdown, HTML and export modules
only lay this out, so no format can quietly leave a warning out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loadbench.errors import UserError
from loadbench.results.analysis.summary import CV_THRESHOLD, summarize
from loadbench.results.records.frame import load
from loadbench.results.records.runinfo import Difference, differences, fingerprint_fields
from loadbench.results.records.store import read_run_info
from loadbench.results.report.runs import RunVerdicts, judge_runs

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["FORMATS", "Report", "ReportError", "RunMeta", "build_report"]

FORMATS: tuple[str, ...] = ("markdown", "html", "csv", "parquet", "json")
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


class ReportError(UserError):
    """Report arguments that do not go together, or an output that cannot be written."""


@dataclass(frozen=True)
class RunMeta:
    """One run of a report: where it is, what run.json says, and its letter (A, B…)."""

    run_id: str
    run_dir: Path
    info: dict[str, Any]
    letter: str

    @property
    def label(self) -> str:
        return f"{self.letter}: {self.run_id}"


@dataclass(frozen=True)
class Report:
    """The runs, their tidy records and summary, and the warnings that go on top."""

    runs: list[RunMeta]
    records: pd.DataFrame
    summary: pd.DataFrame
    differences: list[Difference]
    cv_threshold: float
    warnings: list[str] = field(default_factory=list)
    # compare() of every later run against the first: the verdicts of "runs side by side".
    verdicts: list[RunVerdicts] = field(default_factory=list)

    @property
    def key_differences(self) -> list[Difference]:
        """Differences in hardware or key library versions: the numbers may differ because of them."""
        return [d for d in self.differences if d.key]

    def run_summary(self, run_id: str) -> pd.DataFrame:
        return self.summary[self.summary["run_id"] == run_id]


def _cv_threshold(info: dict[str, Any]) -> float:
    suite = info.get("suite")
    value = suite.get("cv_threshold") if isinstance(suite, dict) else None
    return float(value) if isinstance(value, (int, float)) and value > 0 else CV_THRESHOLD


def build_report(run_dirs: str | Path | Iterable[str | Path], cv_threshold: float | None = None) -> Report:
    """Read the runs and work out everything a report shows.

    ``cv_threshold`` defaults to the first run's suite setting (else 10%).
    Raises NotARun / CorruptRun / DuplicateRun like ``load()``.
    """
    dirs = [Path(run_dirs)] if isinstance(run_dirs, (str, Path)) else [Path(d) for d in run_dirs]
    if not dirs:
        raise ReportError("a report needs at least one run directory")
    infos = [read_run_info(d) for d in dirs]
    records = load(dirs)
    threshold = cv_threshold if cv_threshold is not None else _cv_threshold(infos[0])
    runs = [RunMeta(str(info.get("run_id") or d.name), d, info, _LETTERS[i % len(_LETTERS)])
            for i, (d, info) in enumerate(zip(dirs, infos))]
    warnings = [f"run {r.label} is {r.info.get('status')}: its results are partial"
                for r in runs if r.info.get("status") not in ("complete", None)]
    warnings += _mixed_hardware(runs, records)
    warnings += _unsupported_versions(runs, records)
    return Report(runs, records, summarize(records, threshold),
                  differences([fingerprint_fields(i) for i in infos]) if len(infos) > 1 else [],
                  threshold, warnings, judge_runs([r.run_id for r in runs], records))


def _unsupported_versions(runs: Sequence[RunMeta], records: pd.DataFrame) -> list[str]:
    """A warning per environment whose transformers is outside the range loadbench's worker supports."""
    from loadbench.vocabulary import SUPPORTED_TRANSFORMERS, supported_transformers

    if records.empty:
        return []
    (low, high) = (".".join(map(str, v)) for v in SUPPORTED_TRANSFORMERS)
    found = records.dropna(subset=["transformers_version"]).groupby(["run_id", "env"], sort=False)[
        "transformers_version"].first()
    labels = {r.run_id: r.label for r in runs}
    return [f"run {labels.get(run_id, run_id)}, environment {env}: transformers {version} is outside the supported "
            f"range ({low} up to {high}); a failure there may be loadbench's, not that release's"
            for (run_id, env), version in found.items() if not supported_transformers(str(version))]


def _mixed_hardware(runs: Sequence[RunMeta], records: pd.DataFrame) -> list[str]:
    """A warning per run whose samples come from unlike machines: its numbers are shown per machine."""
    if records.empty:
        return []
    counts = records.groupby("run_id", sort=False)["machine"].nunique(dropna=False)
    return [f"run {r.label} was measured on {counts[r.run_id]} different machines (see its nodes under "
            "Environment): each case is shown once per machine, never pooled"
            for r in runs if counts.get(r.run_id, 0) > 1]
