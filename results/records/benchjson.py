"""Read pytest-benchmark's ``--benchmark-json`` files as loadbench results.

A user's test suite may time loads with pytest-benchmark (through loadbench's
``loadbench_load`` fixture or with its own benchmarks); reading those files into the
same tidy frame as ``load()`` lets one ``compare`` span both worlds. Only the
documented keys of the format are read: ``benchmarks[].{name, fullname, group, stats,
extra_info}``, ``machine_info``, ``commit_info`` and ``datetime``.

- A benchmark made by the ``loadbench_load`` fixture carries its case and every
  metric of every round in ``extra_info["loadbench"]``: one record per round × metric,
  exactly as a run directory would hold them.
- Any other benchmark becomes the metric ``time_s`` (seconds per call, lower is
  better) of a case named after the test: one record per timing in ``stats.data``
  (``--benchmark-json`` always has them; saved files only with
  ``--benchmark-save-data``), else one record of the median.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loadbench.results.analysis.metrics import METRICS
from loadbench.results.records.documents import read_document
from loadbench.results.records.runinfo import device_name, fingerprint_fields, machine_key
from loadbench.results.records.schema import CASE_KEYS, DEFAULT_ENV, SCHEMA_VERSION
from loadbench.results.records.store import RUN_INFO_FILE, CorruptRun, NotARun
from loadbench.vocabulary import DEFAULT_OPTIONS

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["InvalidBenchmarkJson", "PLAIN_METRIC", "is_benchmark_json", "read_benchmark_json", "read_results",
           "run_dirs_in"]

PLAIN_METRIC = "time_s"  # a plain pytest-benchmark timing, per call
UNSPECIFIED = "unspecified"
_INT = ("schema_version", "repeat")


class InvalidBenchmarkJson(CorruptRun):
    """A file that is not a readable pytest-benchmark JSON document."""


def is_benchmark_json(path: str | Path) -> bool:
    """Whether ``path`` is a file to be read as pytest-benchmark JSON (by its suffix)."""
    path = Path(path)
    return path.suffix == ".json" and path.is_file()


def _document(path: Path) -> dict[str, Any]:
    document = read_document(path, json.loads, "JSON", "file", InvalidBenchmarkJson)
    if not isinstance(document, dict) or not isinstance(document.get("benchmarks"), list):
        raise InvalidBenchmarkJson(f"{path}: not a pytest-benchmark JSON file (no 'benchmarks' list)")
    return document


def _fingerprint(document: Mapping[str, Any]) -> dict[str, str | None]:
    machine = document.get("machine_info")
    machine = machine if isinstance(machine, Mapping) else {}
    ours = machine.get("loadbench")  # added by loadbench's pytest plugin: the full run fingerprint
    info: dict[str, Any] = {"fingerprint": ours} if isinstance(ours, Mapping) else {}
    if not info:
        found = machine.get("cpu")
        cpu: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
        info = {"hostname": machine.get("node"), "cpu_model": cpu.get("brand_raw"),
                "cpu_count": cpu.get("count"), "python": machine.get("python_version")}
    commit = document.get("commit_info")
    if isinstance(commit, Mapping) and commit.get("id"):
        info["git_commit"] = commit["id"]
    info["started_at"] = document.get("datetime")
    return fingerprint_fields(info)


def _where(path: Path, index: int, bench: Mapping[str, Any]) -> str:
    return f"{path}: benchmarks[{index}] ({bench.get('fullname') or bench.get('name') or '?'})"


def _number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidBenchmarkJson(f"{where}: expected a finite number, got {value!r}")
    return float(value)


def _loadbench_records(block: Mapping[str, Any], where: str) -> list[dict[str, Any]]:
    case, rounds = block.get("case"), block.get("rounds")
    if not isinstance(case, Mapping) or not isinstance(rounds, list):
        raise InvalidBenchmarkJson(f"{where}: extra_info.loadbench needs 'case' and 'rounds'")
    # Written before environments, then loading options, were case keys.
    case = {"env": DEFAULT_ENV, "options": DEFAULT_OPTIONS, **case}
    missing = [k for k in CASE_KEYS if not isinstance(case.get(k), str)]
    if missing:
        raise InvalidBenchmarkJson(f"{where}: extra_info.loadbench.case lacks {', '.join(missing)}")
    extra = {k: block.get(k) for k in ("attn_implementation", "resident_dtype")}
    records = []
    for repeat, values in enumerate(rounds):
        if not isinstance(values, Mapping):
            raise InvalidBenchmarkJson(f"{where}: extra_info.loadbench.rounds[{repeat}] is not an object")
        for metric, value in values.items():
            known = METRICS.get(metric)
            if known is None:
                continue  # a metric this loadbench does not know: a newer writer's
            records.append({**{k: case[k] for k in CASE_KEYS}, "repeat": repeat, "metric": metric,
                            "value": _number(value, f"{where}: {metric}"), "unit": known.unit,
                            "direction": known.direction, **extra})
    return records


def _plain_records(bench: Mapping[str, Any], where: str) -> list[dict[str, Any]]:
    stats = bench.get("stats")
    if not isinstance(stats, Mapping):
        raise InvalidBenchmarkJson(f"{where}: no 'stats' object")
    data = stats.get("data")
    values = data if isinstance(data, list) and data else [stats.get("median")]
    case = {"checkpoint": str(bench.get("fullname") or bench.get("name")), "path": "pytest-benchmark",
            "task": str(bench.get("group") or UNSPECIFIED), "dtype": UNSPECIFIED, "device": UNSPECIFIED,
            "cache": UNSPECIFIED, "options": DEFAULT_OPTIONS, "env": DEFAULT_ENV}
    return [{**case, "repeat": i, "metric": PLAIN_METRIC, "value": _number(v, f"{where}: stats"),
             "unit": "s", "direction": "lower"} for i, v in enumerate(values)]


def _string_dtype() -> Any:
    import pandas as pd

    return "str" if int(pd.__version__.split(".")[0]) >= 3 else object


def read_benchmark_json(path: str | Path) -> pd.DataFrame:
    """A pytest-benchmark JSON file as a ``load()``-shaped frame (same columns and dtypes).

    The run id is ``pytest-benchmark:<file name>``; every record is ``ok``. Raises
    InvalidBenchmarkJson (a CorruptRun) for anything unreadable, naming the benchmark.
    """
    import pandas as pd

    from loadbench.results.analysis.ceiling import FRAME_CEILING_COLUMNS
    from loadbench.results.records.frame import FRAME_COLUMNS

    floats = ("value", *FRAME_CEILING_COLUMNS)

    path = Path(path)
    document = _document(path)
    fields = _fingerprint(document)
    machine = machine_key(fields)
    run_id = f"pytest-benchmark:{path.name}"
    records: list[dict[str, Any]] = []
    for index, bench in enumerate(document["benchmarks"]):
        if not isinstance(bench, Mapping):
            raise InvalidBenchmarkJson(f"{path}: benchmarks[{index}] is not an object")
        where = _where(path, index, bench)
        extra = bench.get("extra_info")
        block = extra.get("loadbench") if isinstance(extra, Mapping) else None
        found = _loadbench_records(block, where) if isinstance(block, Mapping) else _plain_records(bench, where)
        for record in found:
            record.update(schema_version=SCHEMA_VERSION, run_id=run_id, status="ok", warmup=False, **fields)
            record.update(device_name=device_name(record["device"], fields), machine=machine)
        records += found
    text = _string_dtype()
    columns = {}
    for name in FRAME_COLUMNS:
        values = [r.get(name) for r in records]
        dtype: Any = ("int64" if name in _INT else "Int64" if name == "block" else "float64" if name in floats
                      else "bool" if name == "warmup" else text)
        columns[name] = pd.Series(values, dtype=dtype)
    return pd.DataFrame(columns, columns=list(FRAME_COLUMNS))


def run_dirs_in(path: str | Path) -> list[Path]:
    """``[path]`` for a run directory; the run directories directly inside it for a folder of runs."""
    path = Path(path)
    if (path / RUN_INFO_FILE).is_file() or not path.is_dir():
        return [path]  # a run, or a missing path that load() will name
    runs = sorted(p for p in path.iterdir() if (p / RUN_INFO_FILE).is_file())
    if not runs:
        raise NotARun(f"{path}: neither a loadbench run directory nor a folder of runs (no {RUN_INFO_FILE})")
    return runs


def read_results(sources: str | Path | list[str | Path]) -> pd.DataFrame:
    """Run directories, folders of runs and pytest-benchmark JSON files, pooled into one frame."""
    import pandas as pd

    from loadbench.results.records.frame import DuplicateRun, load

    items = [sources] if isinstance(sources, (str, Path)) else list(sources)
    frames = []
    runs: list[Path] = []
    for item in items:
        if is_benchmark_json(item):
            frames.append(read_benchmark_json(item))
        else:
            runs += run_dirs_in(item)
    if runs:
        frames.insert(0, load(runs))
    if not frames:
        raise NotARun("no results given")
    if len(frames) == 1:
        return frames[0]
    ids = [set(f["run_id"].unique()) for f in frames]
    seen: set[str] = set()
    for group in ids:
        if seen & group:
            raise DuplicateRun(f"run {sorted(seen & group)[0]} is given twice; give each run once")
        seen |= group
    return pd.concat(frames, ignore_index=True)
