"""The package surface: what it exports, and what it keeps out of the process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import loadbench.results as results

PUBLIC = {
    "load", "summarize", "summary_text", "render_summary", "Sample", "SCHEMA_VERSION",
    "METRICS", "RunWriter", "InvalidRecord", "UnsupportedSchema", "UnknownMetric",
    "RunExists", "NotARun", "CorruptRun",
}


def test_public_api_exported() -> None:
    assert PUBLIC <= set(results.__all__)
    for name in results.__all__:
        assert hasattr(results, name), name


def _modules_after(code: str) -> set[str]:
    script = f"import sys, json\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.splitlines()[-1]))


def test_import_is_light() -> None:
    loaded = _modules_after("import loadbench.results")
    assert "loadbench.results" in loaded
    assert not {"pandas", "rich", "torch", "transformers"} & loaded


def test_reading_and_reporting_never_import_torch(golden_run: Path) -> None:
    code = (
        "from loadbench.results import load, summary_text\n"
        f"summary_text(load({str(golden_run)!r}))"
    )
    loaded = _modules_after(code)
    assert {"pandas", "rich"} <= loaded
    assert not {"torch", "transformers"} & loaded
