"""The layers stay layered: loaders and results never reach up into bench, and results never load torch.

bench drives everything (plans, workers, CLI); loaders are what a worker runs; results
read what was written. A result reader that pulled in bench or torch would make a
notebook's ``import loadbench.results`` cost seconds and tie the record format to the
runner, so the rule is checked on the source, not left to review.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Source folder -> the package it is installed as (pyproject's package-dir).
PACKAGES = {"loaders": "loadbench.loaders", "results": "loadbench.results"}
HEAVY = ("torch", "transformers")


def _imports(path: Path, package: str) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every import in the file, at any depth, relative ones resolved.

    ``from x import y`` yields ``x.y`` as well as ``x``, so that ``from .. import bench``
    counts as importing the bench package. ``importlib.import_module("name")`` counts too.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            yield node.lineno, module
            for alias in node.names:
                yield node.lineno, f"{module}.{alias.name}"
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)
              and ((isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                   or (isinstance(node.func, ast.Name) and node.func.id in ("import_module", "__import__")))):
            yield node.lineno, node.args[0].value


def _sources(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_the_folders_are_there() -> None:
    # An empty list below would make every other test here pass by checking nothing.
    for folder in PACKAGES:
        assert len(_sources(folder)) > 5, folder


def test_loaders_and_results_never_import_bench() -> None:
    offenders = [f"{path.relative_to(ROOT)}:{line}: imports {module}"
                 for folder, package in PACKAGES.items() for path in _sources(folder)
                 for line, module in _imports(path, package) if _within(module, "loadbench.bench")]
    assert not offenders, "loaders and results must not import bench:\n" + "\n".join(offenders)


def test_results_never_import_torch_or_transformers() -> None:
    offenders = [f"{path.relative_to(ROOT)}:{line}: imports {module}"
                 for path in _sources("results") for line, module in _imports(path, PACKAGES["results"])
                 if any(_within(module, heavy) for heavy in HEAVY)]
    assert not offenders, "results must never import torch or transformers, even lazily:\n" + "\n".join(offenders)


def test_importing_loadbench_and_its_results_loads_neither_torch_nor_transformers() -> None:
    code = ("import loadbench, loadbench.results, sys\n"
            "loaded = [m for m in ('torch', 'transformers') if m in sys.modules]\n"
            "assert not loaded, f'import loadbench.results loaded {loaded}'\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
