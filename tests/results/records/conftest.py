"""record_versions.py, the records each schema version wrote, importable by name for the tests beside it.

Tests are not a package; a conftest is imported before the test modules of its folder, so
it registers the helper under one name they import (as tests/results/conftest.py loads
synthetic.py by path).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_NAME = "loadbench_tests_record_versions"
_spec = importlib.util.spec_from_file_location(_NAME, Path(__file__).with_name("record_versions.py"))
assert _spec is not None and _spec.loader is not None
sys.modules[_NAME] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sys.modules[_NAME])
