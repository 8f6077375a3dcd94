"""A history of runs kept per machine: plain files that a git branch, a CI cache or an artifact can carry.

Layout (the root is ``--history``, else ``$LOADBENCH_HISTORY``, else ``.loadbench/history``)::

    <root>/<machine-key>/machine.json                the hardware the key stands for
    <root>/<machine-key>/runs/000001.json            one run: label, fingerprint, every sample

Runs on other hardware go under another key and are never pooled: a change between two
machines says nothing about the code. Each run file holds only what a trend needs (the
fingerprint and the measured values of every case and metric, warmups and failures left
out), so reading a thousand runs is reading a thousand small JSON files. Files are only
ever added, each written atomically under the next free number: the order they were added
is the order of the series, and concurrent CI jobs never half-write one.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loadbench.errors import UserError
from loadbench.results.records.durable import write_json_atomic
from loadbench.results.records.runinfo import fingerprint_fields, machine_fields, machine_key, named_environments
from loadbench.results.records.schema import CASE_KEYS
from loadbench.results.records.store import read_run_info

__all__ = ["ANCHORED_UNIT", "DEFAULT_ROOT", "FORMAT", "HISTORY_ENV", "HistoryError", "HistoryRun", "add",
           "history_root", "read", "usable_root"]

HISTORY_ENV = "LOADBENCH_HISTORY"
DEFAULT_ROOT = Path(".loadbench") / "history"
FORMAT = "loadbench-history-run/1"
# The unit of an anchored series: a candidate environment's value over the anchor's, block by block.
ANCHORED_UNIT = "ratio"
_NUMBERED = re.compile(r"^(\d{6,})\.json$")


class HistoryError(UserError):
    """A history that cannot be read or added to (exit 2)."""


@dataclass(frozen=True, eq=False)
class HistoryRun:
    """One run as the history keeps it; two are the same run only if they are the same object."""

    number: int
    label: str
    run_id: str
    added_at: str
    source: str
    report: str | None
    fingerprint: dict[str, Any]
    # (case as a tuple of CASE_KEYS values, metric) -> (unit, direction, values in the order measured)
    series: dict[tuple[tuple[str, ...], str], tuple[str, str, list[float]]] = field(repr=False)

    @property
    def packages(self) -> dict[str, str]:
        return _text_map(self.fingerprint.get("packages"))


def _text_map(found: Any) -> dict[str, str]:
    """A fingerprint's mapping (such as its packages) as text, or empty where it is not one."""
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, Mapping) else {}


def history_root(root: str | Path | None = None) -> Path:
    """The history directory: the argument, else ``$LOADBENCH_HISTORY``, else ``.loadbench/history``."""
    if root is not None:
        return Path(root)
    return Path(os.environ[HISTORY_ENV]) if os.environ.get(HISTORY_ENV) else DEFAULT_ROOT


def _default_label(info: Mapping[str, Any]) -> str:
    """The checkout's commit where the run recorded one (short, as git shows it), else the run id."""
    fp = info.get("fingerprint")
    commit = info.get("git_commit") or (fp.get("git_commit") if isinstance(fp, Mapping) else None)
    return str(commit)[:12] if commit else str(info.get("run_id") or "run")


def _series_of(run_dir: Path, info: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every case × metric of a run with its measured values (no warmups, no failures), and its anchored series."""
    from loadbench.results.records.frame import load

    frame = load(run_dir, fingerprint=False)
    if frame.empty:
        return []
    ok = frame[(frame["status"] == "ok") & ~frame["warmup"].astype(bool) & frame["value"].notna()]
    out = []
    for (case, metric), rows in _groups(ok):
        values = [float(v) for v in rows["value"] if math.isfinite(v)]
        if values:
            out.append({"case": dict(zip(CASE_KEYS, case, strict=True)), "metric": metric,
                        "unit": str(rows["unit"].iloc[0]), "direction": str(rows["direction"].iloc[0]),
                        "values": values})
    return out + _anchored_series(ok, _named_environments(info, ok))


def _named_environments(info: Mapping[str, Any], frame: Any) -> list[str]:
    """The run's environments in the order it named them (the first is the anchor), those measured only."""
    present = set(frame["env"].dropna().astype(str)) if "env" in frame.columns else set()
    return [name for name in named_environments(info) if name in present]


def _anchored_series(ok: Any, environments: list[str]) -> list[dict[str, Any]]:
    """Each later environment's values over the first's, block by block: ``env`` reads ``head vs base``.

    Both samples of a block ran back to back, so whatever state the machine was in then
    (a virtual core at half speed for a minute, another job) divides out: a history of
    these ratios moves when the candidate's code moves against a fixed anchor, not when
    the machine does. Only positive values have a ratio (not the memory a load may free).
    """
    if len(environments) < 2 or "block" not in ok.columns:
        return []
    anchor, out = environments[0], []
    paired = ok[ok["block"].notna()]
    for (case, metric), rows in _groups(paired.assign(env=anchor)):
        by_env = {env: dict(zip(group["block"], group["value"], strict=True))
                  for env, group in paired.loc[rows.index].groupby("env")}
        base = by_env.get(anchor, {})
        for candidate in environments[1:]:
            cand = by_env.get(candidate, {})
            common = sorted(base.keys() & cand.keys())
            if common and all(base[b] > 0 and cand[b] > 0 for b in common):
                out.append({"case": {**dict(zip(CASE_KEYS, case, strict=True)), "env": f"{candidate} vs {anchor}"},
                            "metric": metric, "unit": ANCHORED_UNIT, "direction": str(rows["direction"].iloc[0]),
                            "values": [float(cand[b] / base[b]) for b in common]})
    return out


def _groups(frame: Any) -> Iterable[tuple[tuple[tuple[str, ...], str], Any]]:
    keys = [*CASE_KEYS, "metric"]
    filled = frame.assign(**{k: frame[k].astype("string").fillna("") for k in keys})
    for key, rows in filled.groupby(keys, sort=True):
        yield (tuple(str(v) for v in key[:-1]), str(key[-1])), rows


def _machine_dir(root: Path, info: Mapping[str, Any]) -> Path:
    directory = root / machine_key(info)
    directory.mkdir(parents=True, exist_ok=True)
    machine_file = directory / "machine.json"
    if not machine_file.exists():
        write_json_atomic(machine_file, {"machine": machine_fields(info)})
    return directory


def _next_number(runs_dir: Path) -> int:
    numbers = [int(m.group(1)) for p in runs_dir.iterdir() if (m := _NUMBERED.match(p.name))]
    return max(numbers, default=0) + 1


def _claim(runs_dir: Path) -> tuple[int, Path]:
    """The next free number and its file, claimed atomically (O_EXCL): two writers never share one."""
    while True:
        number = _next_number(runs_dir)
        path = runs_dir / f"{number:06d}.json"
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        except FileExistsError:
            continue
        return number, path


def _report_of(run_dir: Path) -> str | None:
    report = run_dir / "report.html"
    return str(report.resolve()) if report.is_file() else None


def add(runs: str | Path | Sequence[str | Path], root: str | Path | None = None, *,
        labels: Sequence[str] | None = None) -> list[HistoryRun]:
    """File finished runs into the history, in the order given, each under its label.

    A run already in the history (same run id, same machine) is refused, as is a run with
    no measured sample: either would put a point in the series that was not measured once.
    """
    run_dirs = [Path(runs)] if isinstance(runs, (str, Path)) else [Path(r) for r in runs]
    if not run_dirs:
        raise HistoryError("no run to add; give one or more run directories")
    if labels is not None and len(labels) != len(run_dirs):
        raise HistoryError(f"{len(labels)} label(s) for {len(run_dirs)} run(s); give one --label per run, or none")
    base = history_root(root)
    prepared = []
    for i, run_dir in enumerate(run_dirs):
        info = read_run_info(run_dir)
        series = _series_of(run_dir, info)
        if not series:
            raise HistoryError(f"{run_dir}: no measured sample to add (every sample failed or the run is empty)")
        label = labels[i] if labels is not None else _default_label(info)
        if not label.strip() or "\n" in label:
            raise HistoryError(f"label {label!r} for {run_dir}: give a non-empty one-line label")
        prepared.append((run_dir, info, series, label))
    known = {run.run_id for runs_of_machine in read(base).values() for run in runs_of_machine}
    for run_dir, info, _, _ in prepared:
        if str(info.get("run_id")) in known:
            raise HistoryError(f"{run_dir}: run {info.get('run_id')} is already in the history at {base}")
    added = []
    for run_dir, info, series, label in prepared:
        runs_dir = _machine_dir(base, info) / "runs"
        runs_dir.mkdir(exist_ok=True)
        number, path = _claim(runs_dir)
        document = {
            "format": FORMAT, "label": label, "run_id": str(info.get("run_id")),
            "added_at": datetime.now(UTC).isoformat(timespec="seconds"), "source": str(run_dir.resolve()),
            "report": _report_of(run_dir),
            "fingerprint": {**fingerprint_fields(info), "packages": _packages(info)},
            "series": series,
        }
        try:
            write_json_atomic(path, document)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        added.append(_parse(path, document))
    return added


def _packages(info: Mapping[str, Any]) -> dict[str, str]:
    fp = info.get("fingerprint")
    return _text_map(fp.get("packages") if isinstance(fp, Mapping) else None)


def _parse(path: Path, document: Mapping[str, Any]) -> HistoryRun:
    if document.get("format") != FORMAT:
        raise HistoryError(f"{path}: not a loadbench history run (format {document.get('format')!r}, "
                           f"expected {FORMAT!r}); remove it or give another --history")
    try:
        series = {}
        for entry in document["series"]:
            case = tuple(str(entry["case"].get(k, "")) for k in CASE_KEYS)
            series[(case, str(entry["metric"]))] = (str(entry["unit"]), str(entry["direction"]),
                                                    [float(v) for v in entry["values"]])
        match = _NUMBERED.match(path.name)
        return HistoryRun(number=int(match.group(1)) if match else 0, label=str(document["label"]),
                          run_id=str(document["run_id"]), added_at=str(document["added_at"]),
                          source=str(document["source"]), report=document.get("report"),
                          fingerprint=dict(document["fingerprint"]), series=series)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise HistoryError(f"{path}: a damaged history run ({type(exc).__name__}: {exc}); "
                           "remove it or restore it from where the history is kept") from None


def usable_root(root: str | Path | None = None) -> Path:
    """``history_root``, refused in one line where it is a file (it may not exist yet)."""
    base = history_root(root)
    if base.exists() and not base.is_dir():
        raise HistoryError(f"--history {base}: a file, not a directory; give a directory")
    return base


def read(root: str | Path | None = None) -> dict[str, list[HistoryRun]]:
    """Every machine's runs, in the order they were added; an empty dict where there is no history yet."""
    base = usable_root(root)
    machines: dict[str, list[HistoryRun]] = {}
    for machine_dir in sorted(p for p in base.iterdir() if p.is_dir()) if base.is_dir() else []:
        runs = []
        for path in sorted((machine_dir / "runs").glob("*.json")):
            if not _NUMBERED.match(path.name):
                continue
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise HistoryError(f"{path}: cannot be read ({exc}); remove it or give another --history") from None
            if not text.strip():  # claimed by a writer that has not finished (or was killed): not a run yet
                continue
            try:
                document = json.loads(text)
            except json.JSONDecodeError as exc:
                raise HistoryError(f"{path}: not JSON ({exc}); remove it or restore it") from None
            if not isinstance(document, dict):
                raise HistoryError(f"{path}: not a loadbench history run; remove it or give another --history")
            runs.append(_parse(path, document))
        if runs:
            machines[machine_dir.name] = runs
    return machines
