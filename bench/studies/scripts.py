"""What every harness benchmark script shares: its options, its record file, its machine line.

``selfbench`` and ``hostnoise`` measure the harness and the host rather than a path;
they take the same ``--samples``/``--output`` options, append their records the same way
and print the same spread, so a reader can set their figures side by side.

Its top level stays light (numpy is imported only where it is used): the
scripts import it before anything else.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any

__all__ = ["append_record", "benchmark_args", "machine_info", "spread"]


def benchmark_args(argv: Sequence[str] | None, module: str, doc: str, samples: int, least: int,
                   what: str) -> argparse.Namespace:
    """``--samples`` and ``--output``, the options every harness benchmark script takes.

    Fewer than ``least`` samples is a usage error (exit 2), caught before any work.
    """
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=doc.splitlines()[0])
    parser.add_argument("--samples", type=int, default=samples, help=f"{what} (default {samples})")
    parser.add_argument("--output", type=Path, help="append one JSON line per sample, then a summary")
    args = parser.parse_args(argv)
    if args.samples < least:
        parser.error(f"--samples must be at least {least}")
    return args


def append_record(output: Path | None, record: dict[str, Any]) -> None:
    """Append one JSON line and sync it, so an interrupted run keeps the samples it took."""
    if output is None:
        return
    with output.open("a", encoding="utf-8") as stream:
        stream.write(json.dumps(record) + "\n")
        stream.flush()
        os.fsync(stream.fileno())


def machine_info() -> dict[str, Any]:
    """What a reader needs to compare figures across machines; versions read without importing torch."""
    return {"cpu_count": os.cpu_count(), "python": platform.python_version(),
            "torch": version("torch"), "transformers": version("transformers"),
            "platform": platform.platform()}


def spread(values: Sequence[float]) -> tuple[float, float, float, float]:
    """Median, IQR, min, max.

    numpy's quantiles rather than ``statistics.quantiles``: they work from one sample up,
    and selfbench allows one.
    """
    import numpy

    low, q1, median, q3, high = numpy.percentile(values, [0, 25, 50, 75, 100])
    return float(median), float(q3 - q1), float(low), float(high)
