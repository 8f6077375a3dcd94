"""The layers stay layered: loaders and results never reach up into bench, and results never load torch.

bench drives everything (plans, workers, CLI); loaders are what a worker runs; results
read what was written. A result reader that pulled in bench or torch would make a
notebook's ``import loadbench.results`` cost seconds and tie the record format to the
runner, so the rule is checked on the source, not left to review. Two more rules keep
the rooms honest: no module imports itself by a detour (a cycle, even one only a type
checker or a function body follows), and product code never imports the studies of
loadbench itself (``bench/studies``).
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
# Every folder of the product, for the whole-project rules.
ALL_PACKAGES = {"loadbench": "loadbench", "bench": "loadbench.bench", **PACKAGES}
STUDIES = "loadbench.bench.studies"
HEAVY = ("torch", "transformers")


def _statements(path: Path, package: str) -> Iterator[tuple[int, str, tuple[str, ...]]]:
    """(line, absolute module, names taken from it) of every import in the file, at any depth.

    Relative imports are resolved; ``import x`` and ``importlib.import_module("x")`` take no names.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, ()
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            yield node.lineno, module, tuple(alias.name for alias in node.names)
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)
              and ((isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                   or (isinstance(node.func, ast.Name) and node.func.id in ("import_module", "__import__")))):
            yield node.lineno, node.args[0].value, ()


def _imports(path: Path, package: str) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every import in the file, at any depth, relative ones resolved.

    ``from x import y`` yields ``x.y`` as well as ``x``, so that ``from .. import bench``
    counts as importing the bench package. ``importlib.import_module("name")`` counts too.
    """
    for line, module, names in _statements(path, package):
        yield line, module
        for name in names:
            yield line, f"{module}.{name}"


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


def _module_name(path: Path) -> tuple[str, str]:
    """(module, the package its relative imports resolve against) of a source file."""
    folder, *rest = path.relative_to(ROOT).with_suffix("").parts
    parts = [ALL_PACKAGES[folder], *rest]
    if parts[-1] == "__init__":
        parts.pop()
        return ".".join(parts), ".".join(parts)
    return ".".join(parts), ".".join(parts[:-1])


def _graph(sources: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the project modules it imports anywhere in its file (function bodies and TYPE_CHECKING too).

    ``from pkg import name`` is an edge to ``pkg.name`` when that is a module, else to ``pkg``
    (whose ``__init__`` then runs: a facade counts).
    """
    graph: dict[str, set[str]] = {}
    for module, path in sources.items():
        edges = graph.setdefault(module, set())
        for _, imported, names in _statements(path, _module_name(path)[1]):
            targets = [f"{imported}.{n}" if f"{imported}.{n}" in sources else imported for n in names] or [imported]
            edges.update(t for t in targets if t in sources and t != module)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _product_sources() -> dict[str, Path]:
    return {_module_name(path)[0]: path for folder in ALL_PACKAGES for path in _sources(folder)}


def test_no_import_cycle_anywhere() -> None:
    sources = _product_sources()
    assert len(sources) > 80  # the whole product, not an empty glob
    cycles = _cycles(_graph(sources))
    assert not cycles, "import cycles (each a set of modules that import each other):\n" + "\n".join(
        " <-> ".join(c) for c in cycles)


def test_product_code_never_imports_the_studies() -> None:
    sources = _product_sources()
    offenders = [f"{path.relative_to(ROOT)}:{line}: imports {imported}"
                 for module, path in sources.items() if not _within(module, STUDIES)
                 for line, imported in _imports(path, _module_name(path)[1]) if _within(imported, STUDIES)]
    assert any(_within(m, STUDIES) for m in sources)  # the studies are there to be kept out
    assert not offenders, "only bench/studies may import bench/studies:\n" + "\n".join(offenders)


def test_every_room_says_what_it_is_for() -> None:
    rooms = [path for folder in ALL_PACKAGES for path in (ROOT / folder).rglob("__init__.py")]
    assert len(rooms) >= 15
    silent = [str(path.relative_to(ROOT)) for path in rooms
              if not (ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or "").strip()]
    assert not silent, "a folder's __init__.py opens with one line saying what the room is for: " + ", ".join(silent)
