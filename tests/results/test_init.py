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
    # reporting
    "runs", "by_path", "by_run", "build_report", "render", "write_report", "write_run_reports", "Report",
    "DuplicateRun", "MissingDependency", "FINGERPRINT_COLUMNS", "COMPARABILITY_KEYS",
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


def test_report_modules_import_light() -> None:
    code = ("import loadbench.results.report.model, loadbench.results.report.html.page, "
            "loadbench.results.report.plots.bars")
    assert not {"pandas", "matplotlib", "torch", "transformers"} & _modules_after(code)


def test_reports_never_import_torch_or_pyplot(golden_run_v2: Path) -> None:
    code = (
        "from loadbench.results import build_report, render\n"
        f"render(build_report({str(golden_run_v2)!r}), 'html')"
    )
    loaded = _modules_after(code)
    assert "matplotlib" in loaded
    # pyplot would pick a GUI backend and keep global figure state in a notebook.
    assert not {"torch", "transformers", "matplotlib.pyplot"} & loaded


def test_reading_and_reporting_never_import_torch(golden_run: Path) -> None:
    code = (
        "from loadbench.results import load, summary_text\n"
        f"summary_text(load({str(golden_run)!r}))"
    )
    loaded = _modules_after(code)
    assert {"pandas", "rich"} <= loaded
    assert not {"torch", "transformers"} & loaded
