"""Named baselines, stored per machine so that one from other hardware is never used silently.

Layout (the root is ``$LOADBENCH_BASELINES``, else ``.loadbench/baselines`` in the
working directory)::

    <root>/<machine-key>/machine.json          the hardware the key stands for
    <root>/<machine-key>/<name>/baseline.json  name, save time, the runs and where they came from
    <root>/<machine-key>/<name>/<run-id>/      a copy of each run: run.json, samples.jsonl

``<machine-key>`` is a readable slug of the CPU, CPU count and GPUs plus a 10-digit hash
of exactly those fields (MACHINE_KEYS): the same hardware always maps to the same key.
Library versions are not part of the key: ``compare`` checks them itself and says what
differs, so a torch upgrade can still be compared against the old baseline on purpose.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loadbench.errors import UserError
from loadbench.results.comparison.comparability import CannotCompare
from loadbench.results.records.runinfo import MACHINE_KEYS, machine_fields, machine_key, node_fields
from loadbench.results.records.store import RUN_INFO_FILE, SAMPLES_FILE, read_run_info, read_samples

__all__ = [
    "BASELINES_ENV",
    "BaselineError",
    "BaselineInfo",
    "DEFAULT_NAME",
    "DEFAULT_ROOT",
    "MACHINE_KEYS",
    "NoBaseline",
    "baselines_root",
    "list_baselines",
    "machine_key",
    "resolve",
    "save",
]

BASELINES_ENV = "LOADBENCH_BASELINES"
DEFAULT_ROOT = Path(".loadbench") / "baselines"
DEFAULT_NAME = "default"
MACHINE_FILE = "machine.json"
BASELINE_FILE = "baseline.json"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class BaselineError(UserError):
    """A baseline cannot be saved or read (bad name, incomplete or mixed runs)."""


class NoBaseline(BaselineError, CannotCompare):
    """No baseline of that name for this machine: compare cannot go on (exit 2)."""


@dataclass(frozen=True)
class BaselineInfo:
    """One saved baseline."""

    name: str
    machine_key: str
    machine: dict[str, str | None]
    directory: Path
    runs: tuple[str, ...]
    saved_at: str | None


def baselines_root(root: str | Path | None = None) -> Path:
    """The root given, else ``$LOADBENCH_BASELINES``, else ``.loadbench/baselines``."""
    if root is not None:
        return Path(root)
    return Path(os.environ.get(BASELINES_ENV) or DEFAULT_ROOT)


def _describe(machine: Mapping[str, str | None]) -> str:
    return (f"{machine.get('cpu_model') or 'unknown CPU'}, {machine.get('cpu_count') or '?'} CPUs, "
            f"{machine.get('gpus') or 'no GPU'}")


def _check_name(name: str) -> str:
    if not _NAME.match(name):
        raise BaselineError(f"baseline name {name!r}: use letters, digits, '.', '_' and '-' "
                            "(e.g. main, release-1.2), starting with a letter or digit")
    return name


def _check_run(run_dir: Path) -> tuple[dict[str, Any], dict[str, dict[str, str | None]]]:
    """run.json, and machine key -> hardware of every machine that measured the run's samples."""
    info = read_run_info(run_dir)
    if info.get("status") != "complete":
        raise BaselineError(f"{run_dir}: the run is {info.get('status') or 'unfinished'}, "
                            "only a complete run can be a baseline")
    samples = read_samples(run_dir)
    if not any(s["status"] == "ok" and not s["warmup"] for s in samples):
        raise BaselineError(f"{run_dir}: the run has no measured samples")
    # A run spread over several nodes is only one machine's baseline when they share hardware.
    machines = {}
    for node in dict.fromkeys(s["node"] for s in samples):
        fields = machine_fields(node_fields(info, node))
        machines[machine_key(fields)] = fields
    return info, machines


def save(run_dirs: str | Path | Sequence[str | Path], name: str | None = None,
         root: str | Path | None = None) -> Path:
    """Store one or more complete runs (pooled) as baseline ``name`` of their machine.

    An existing baseline of that name and machine is replaced as a whole. Returns the
    baseline's directory. Raises BaselineError for a bad name, an incomplete run, or runs
    from different machines; NotARun/CorruptRun for unreadable runs.
    """
    runs = [Path(run_dirs)] if isinstance(run_dirs, (str, Path)) else [Path(r) for r in run_dirs]
    if not runs:
        raise BaselineError("give at least one run directory")
    name = _check_name(name or DEFAULT_NAME)
    checked = [_check_run(r) for r in runs]
    infos = [info for info, _ in checked]
    machines = {k: fields for _, found in checked for k, fields in found.items()}
    if len(machines) > 1:
        raise BaselineError(f"the runs come from different machines ({', '.join(sorted(machines))}); "
                            "save each machine's runs separately")
    key, machine = machines.popitem()
    run_ids = [str(i.get("run_id") or r.name) for i, r in zip(infos, runs)]
    if len(set(run_ids)) != len(run_ids):
        raise BaselineError(f"the same run is given twice ({', '.join(run_ids)})")
    machine_dir = baselines_root(root) / key
    machine_dir.mkdir(parents=True, exist_ok=True)
    (machine_dir / MACHINE_FILE).write_text(json.dumps(machine, indent=2) + "\n", encoding="utf-8")
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=machine_dir))
    try:
        for run, run_id in zip(runs, run_ids):
            (staging / run_id).mkdir()
            for file in (RUN_INFO_FILE, SAMPLES_FILE):
                shutil.copy2(run / file, staging / run_id / file)
        meta = {"name": name, "machine_key": key, "saved_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "runs": run_ids, "sources": [str(r.resolve()) for r in runs]}
        (staging / BASELINE_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        target = machine_dir / name
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{name}.old.", dir=machine_dir))
            os.replace(target, old / name)
            os.replace(staging, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def list_baselines(root: str | Path | None = None) -> list[BaselineInfo]:
    """Every saved baseline under the root, by machine key then name."""
    base = baselines_root(root)
    out = []
    for meta_path in sorted(base.glob(f"*/*/{BASELINE_FILE}")):
        directory = meta_path.parent
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            machine = json.loads((directory.parent / MACHINE_FILE).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue  # half-written or foreign: not a baseline
        out.append(BaselineInfo(name=directory.name, machine_key=directory.parent.name, machine=machine,
                                directory=directory, runs=tuple(meta.get("runs", ())),
                                saved_at=meta.get("saved_at")))
    return out


def resolve(name: str, fingerprint: Mapping[str, Any], root: str | Path | None = None) -> Path:
    """The directory of baseline ``name`` for the machine of ``fingerprint``.

    ``fingerprint`` is a run.json or flat fingerprint fields (cpu_model, cpu_count, gpus).
    Raises NoBaseline, naming the machines that do have a baseline of that name.
    """
    _check_name(name)
    key = machine_key(fingerprint)
    directory = baselines_root(root) / key / name
    if (directory / BASELINE_FILE).is_file():
        return directory
    others = [b for b in list_baselines(root) if b.name == name]
    here = f"no baseline {name!r} for this machine ({_describe(machine_fields(fingerprint))}; key {key}) " \
           f"in {baselines_root(root)}"
    if others:
        there = "; ".join(f"{b.machine_key} ({_describe(b.machine)})" for b in others)
        raise NoBaseline(f"{here}; it exists only for other hardware: {there}")
    raise NoBaseline(f"{here}; save one with `loadbench baseline save RUN --name {name}`")
