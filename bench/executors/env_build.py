"""Python environments built from requirements: once, into loadbench's cache, on top of this one.

``--env old="transformers==4.57.6"`` asks for an environment that holds what installing
those requirements gives, plus loadbench's own worker (and its runtime requirements) and
this driver's torch, and nothing else. It is built as a virtual environment whose
interpreter sees, after its own site-packages, links to just the distributions of this
environment that belong to that closure (a ``.pth`` line naming its ``loadbench-layer``):
torch and loadbench come from here, are not downloaded again, and always speak this
driver's protocol; what the requirements change is installed into it; and what the driver
has besides (kernels, with transformers 5.25) is out of sight, so it cannot break them.

pip resolves, because only pip sees the layered packages (uv reads just an environment's
own site-packages, and would fetch torch again); uv, where it is installed, then installs
exactly what pip chose, faster, and pip does where it is not. A build is keyed by the
requirements and by the environment it is layered on (its interpreter, its site-packages
and their versions), goes to a hidden sibling and is renamed into place when complete:
an interrupted build is never taken for a built one, and a changed base gets a new build.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
import uuid
import venv
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from loadbench.errors import UserError

__all__ = ["BuildFailed", "BuiltEnvironment", "built_environments", "create_layered_venv", "ensure_environment",
           "environment_dir", "find_uv", "normalized_requirements", "python_of", "requirements_in"]

MARKER = "loadbench_env.json"  # written last: its presence means the build is complete
# Part of every build's key: bump it when how an environment is built changes (2: uv compiles
# bytecode; 3: only what the requirements need is layered from the driver), so no build made
# the old way is reused.
RECIPE = 3
LAYER_PTH = "00_loadbench_layer.pth"
Say = Callable[[str], None]


class BuildFailed(UserError):
    """An environment could not be built from its requirements; the message names them and says why."""


@dataclass(frozen=True)
class BuiltEnvironment:
    """A built environment: where it is, what it was built from, and what the build took."""

    path: Path
    requirements: tuple[str, ...]
    installed: dict[str, str]  # package -> version installed into it (the rest comes from the base)
    installer: str
    build_s: float
    reused: bool


def _say_on_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def normalized_requirements(texts: Sequence[str], where: str) -> tuple[str, ...]:
    """PEP 508 requirements in one spelling each (so equal specifications share one build)."""
    from packaging.requirements import InvalidRequirement, Requirement

    if not texts:
        raise BuildFailed(f"{where}: no requirements; give at least one, e.g. transformers==4.57.6")
    parsed = []
    for text in texts:
        try:
            requirement = Requirement(text)
        except InvalidRequirement as exc:
            reason = str(exc).splitlines()[0] if str(exc) else "unreadable"
            raise BuildFailed(f"{where}: {text!r} is not a requirement ({reason}); write it as pip would take "
                              "it, e.g. transformers==4.57.6") from None
        _check_applies(requirement, text, where)
        parsed.append(str(requirement))
    return tuple(sorted(dict.fromkeys(parsed)))


def _check_applies(requirement: Any, text: str, where: str) -> None:
    """Refuse what would build an environment that does not hold what it is named for.

    A marker false here installs nothing (the environment would run the driver's release
    under this one's name); a pinned release outside loadbench's own range cannot hold
    loadbench's worker, which runs in every environment.
    """
    import platform

    if requirement.marker is not None and not requirement.marker.evaluate():
        raise BuildFailed(f"{where}: {text!r} does not apply to this Python {platform.python_version()} (its "
                          "marker is false), so the environment would not hold it; drop the marker")
    for needed in _loadbench_requirements():
        if _canonical(needed.name) != _canonical(requirement.name):
            continue
        for spec in requirement.specifier:
            if spec.operator in ("==", "===") and "*" not in spec.version and not needed.specifier.contains(
                    spec.version, prereleases=True):
                raise BuildFailed(f"{where}: {text!r} conflicts with loadbench, which needs {needed} (its worker "
                                  f"runs in every environment); ask for a {needed.name} release in that range")


def _loadbench_requirements() -> list[Any]:
    """loadbench's own runtime requirements (without extras), as installed here."""
    from packaging.requirements import Requirement

    try:
        texts = metadata.requires("loadbench") or []
    except metadata.PackageNotFoundError:
        return []
    return [r for r in map(Requirement, texts) if r.marker is None or r.marker.evaluate({"extra": ""})]


def requirements_in(spec: str) -> list[str] | None:
    """``--env NAME=SPEC``'s requirements, or None where SPEC names an interpreter or venv.

    Requirements are whitespace-separated, and at least one carries a version or a URL
    (``transformers==4.57.6``, ``pkg @ file:///w.whl``): a bare word is taken for a path,
    so a mistyped venv is reported missing instead of looked up on PyPI.
    """
    from packaging.requirements import InvalidRequirement, Requirement

    if Path(spec).expanduser().exists():
        return None
    if ";" in spec:  # a marker has spaces of its own: one requirement, refused later if its marker is false here
        try:
            return [spec] if Requirement(spec).specifier else None
        except InvalidRequirement:
            return None
    tokens: list[str] = []
    for word in spec.split():
        if tokens and (word == "@" or tokens[-1].endswith(" @")):
            tokens[-1] = f"{tokens[-1]} {word}"
        else:
            tokens.append(word)
    try:
        parsed = [Requirement(token) for token in tokens]
    except InvalidRequirement:
        return None
    return tokens if parsed and any(r.specifier or r.url for r in parsed) else None


def _base() -> dict[str, Any]:
    """What a built environment is layered on: this interpreter, its site-packages and their versions."""
    site_packages = sysconfig.get_paths()["purelib"]
    packages = sorted(f"{dist.metadata['Name']}=={dist.version}" for dist in metadata.distributions()
                      if dist.metadata["Name"] and dist.metadata["Name"].lower() != "loadbench")
    # The prefix, not sys.executable: python and python3 of one venv are one base.
    return {"python": sys.version.split()[0], "prefix": sys.prefix, "site_packages": site_packages,
            "packages": hashlib.sha256("\n".join(packages).encode("utf-8")).hexdigest()[:16]}


# loadbench's extras a worker uses (the loading paths), carried into a built environment where the
# driver has them installed; the rest (ray, parquet, test) serve the driver only.
WORKER_EXTRAS = ("device-map", "runai", "fastsafetensors", "tensorizer", "instanttensor")
LAYER_DIR = "loadbench-layer"


def _canonical(name: str) -> str:
    from packaging.utils import canonicalize_name

    return str(canonicalize_name(name))


def _driver_distributions() -> dict[str, metadata.Distribution]:
    """The distributions in this environment's site-packages (what a layer can link), by canonical name.

    Not those on the whole sys.path: a checkout's ``*.egg-info`` in the working directory
    would stand for loadbench with files that are not there.
    """
    found: dict[str, metadata.Distribution] = {}
    for dist in metadata.distributions(path=[sysconfig.get_paths()["purelib"]]):
        name = dist.metadata["Name"]
        if name:
            found.setdefault(_canonical(name), dist)
    return found


def _runtime_roots(driver: dict[str, metadata.Distribution], wanted: Sequence[str]) -> list[str]:
    """What a built environment needs besides its requirements: loadbench, its worker extras, the driver's torch.

    Each as a requirement pip sees satisfied here, so resolving them downloads nothing.
    """
    from packaging.requirements import Requirement

    roots = ["loadbench"] if "loadbench" in driver else []
    for text in metadata.requires("loadbench") or [] if "loadbench" in driver else []:
        requirement = Requirement(text)
        marker = requirement.marker
        if marker is not None and _canonical(requirement.name) in driver and any(
                marker.evaluate({"extra": extra}) for extra in WORKER_EXTRAS):
            roots.append(str(Requirement(f"{requirement.name}{requirement.specifier}")))
    if "torch" in driver and not any(_canonical(Requirement(text).name) == "torch" for text in wanted):
        roots.append(f"torch=={driver['torch'].version}")  # the driver's own build (+cpu, +cu128) is reused
    return roots


def _closure(roots: Sequence[str], requires: dict[str, list[str]]) -> set[str]:
    """Canonical names of every distribution ``roots`` need, through ``requires`` (name -> Requires-Dist)."""
    from packaging.requirements import Requirement

    needed: dict[str, set[str]] = {}
    pending = [Requirement(text) for text in roots]
    while pending:
        requirement = pending.pop()
        name, extras = _canonical(requirement.name), set(requirement.extras)
        if name not in requires or (name in needed and extras <= needed[name]):
            continue
        needed[name] = needed.get(name, set()) | extras
        for text in requires[name]:
            dependency = Requirement(text)
            if dependency.marker is None or any(dependency.marker.evaluate({"extra": extra})
                                                for extra in {"", *needed[name]}):
                pending.append(dependency)
    return set(needed)


def _layer(site: Path, driver: dict[str, metadata.Distribution], kept: set[str], layer: Path) -> None:
    """Links to the files of the ``kept`` distributions of ``site``, and to nothing else.

    A directory only kept distributions own is one link; one shared with others (a namespace
    package, __pycache__) is made here and its entries linked one by one.
    """
    owners: dict[tuple[str, ...], set[str]] = {}
    for name, dist in driver.items():
        for file in dist.files or []:
            parts = Path(str(file)).parts
            if not parts or parts[0] == ".." or not (site / parts[0]).exists():
                continue  # a script in bin/, or a distribution elsewhere on the path
            for depth in range(1, len(parts) + 1):
                owners.setdefault(parts[:depth], set()).add(name)

    def link(prefix: tuple[str, ...]) -> None:
        for entry in sorted(p for p in owners if len(p) == len(prefix) + 1 and p[:len(prefix)] == prefix):
            if owners[entry] <= kept:
                (layer.joinpath(*entry)).symlink_to(site.joinpath(*entry))
            elif owners[entry] & kept and (site.joinpath(*entry)).is_dir():
                layer.joinpath(*entry).mkdir()
                link(entry)

    layer.mkdir()
    link(())


def restrict_layer(directory: Path, own_site: Path, chosen: list[dict[str, Any]], roots: Sequence[str],
                   driver: dict[str, metadata.Distribution] | None = None, final: Path | None = None) -> list[str]:
    """Replace the layer of the whole driver by one of only what the environment needs from it.

    What it needs: the closure of ``roots`` over the packages installed into it (``chosen``)
    and the driver's. ``final``: where ``directory`` will be renamed to. Returns the
    driver's distributions it reuses, as ``name==version``.
    """
    driver = driver if driver is not None else _driver_distributions()
    installed = {_canonical(item["name"]): list(item.get("requires_dist") or []) for item in chosen}
    requires = {name: list(dist.requires or []) for name, dist in driver.items()} | installed
    reused = sorted(_closure(roots, requires) - set(installed))
    site = Path(sysconfig.get_paths()["purelib"])
    # Beside its site-packages, not in it: a folder there would be an importable package named "layer".
    _layer(site, driver, set(reused), directory / LAYER_DIR)
    (own_site / LAYER_PTH).write_text(f"import site; site.addsitedir({str((final or directory) / LAYER_DIR)!r})\n",
                                      encoding="utf-8")
    return [f"{driver[name].metadata['Name']}=={driver[name].version}" for name in reused]


def cache_root() -> Path:
    from loadbench.loaders.checkpoints.builtin import cache_root as loadbench_cache

    return loadbench_cache() / "envs"


def environment_dir(requirements: Sequence[str], root: Path | None = None,
                    base: dict[str, Any] | None = None) -> Path:
    """Where the environment of these (normalized) requirements lives, built or not."""
    key = json.dumps({"recipe": RECIPE, "requirements": list(requirements), "base": base or _base()},
                     sort_keys=True)
    return (root if root is not None else cache_root()) / hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def python_of(directory: Path) -> Path:
    return directory / "bin" / "python"


def _read_marker(directory: Path) -> dict[str, Any] | None:
    """The build's record, if the build is complete and still usable (its base is where it was)."""
    try:
        marker = json.loads((directory / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(marker, dict) or not python_of(directory).exists():
        return None
    base = marker.get("base") or {}
    if not Path(str(base.get("site_packages", ""))).is_dir():
        return None
    return marker


def create_layered_venv(directory: Path) -> tuple[Path, Path]:
    """A venv without pip of its own, whose interpreter also sees this environment's packages.

    Returns its interpreter and its own site-packages.
    """
    venv.EnvBuilder(clear=True, symlinks=True).create(directory)
    python = python_of(directory)
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    base = sysconfig.get_paths()["purelib"]
    # addsitedir, not a bare path: it also runs the base's own .pth files (editable installs).
    (site / LAYER_PTH).write_text(f"import site; site.addsitedir({base!r})\n", encoding="utf-8")
    return python, site


def _last_error(stderr: str) -> str:
    """pip's or uv's reason, in one line: its last error line, else its last line."""
    lines = [line.strip(" │╰─▶×\t") for line in stderr.splitlines()]
    lines = [line for line in lines if line]
    errors = [line.removeprefix("ERROR: ").removeprefix("error: ") for line in lines
              if line.startswith(("ERROR: ", "error: ")) and "dependency resolver does not currently" not in line
              and not line.startswith("ERROR: ResolutionImpossible: for help")]
    if errors:
        return errors[-1]
    return lines[-1] if lines else "no reason given"


def _run_tool(command: list[str], what: str, where: str) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(command, capture_output=True, text=True)
    except OSError as exc:
        raise BuildFailed(f"{where}: {what} could not start ({exc})") from None
    if done.returncode != 0:
        raise BuildFailed(f"{where}: {what} failed: {_last_error(done.stderr or done.stdout)}")
    return done


def _resolve(python: Path, requirements: Sequence[str], scratch: Path, where: str) -> list[dict[str, Any]]:
    """What pip would install into the layered environment for these requirements, without installing it."""
    report = scratch / "pip-report.json"
    _run_tool([str(python), "-m", "pip", "install", "--dry-run", "--quiet", "--disable-pip-version-check",
               "--report", str(report), *requirements], "pip, resolving the requirements,", where)
    items = json.loads(report.read_text(encoding="utf-8")).get("install", [])
    return [{"name": item["metadata"]["name"], "version": item["metadata"]["version"],
             "url": item["download_info"]["url"], "requires_dist": item["metadata"].get("requires_dist") or []}
            for item in items]


def find_uv() -> str | None:
    """uv on PATH or beside this interpreter (a venv with uv installed but not activated)."""
    beside = Path(sys.executable).parent / "uv"
    return shutil.which("uv") or (str(beside) if beside.is_file() and os.access(beside, os.X_OK) else None)


def _install(python: Path, chosen: list[dict[str, Any]], installer: str, where: str) -> None:
    pins = [f"{item['name']} @ {item['url']}" for item in chosen]
    if installer == "pip":
        command = [str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--disable-pip-version-check",
                   "--no-warn-script-location", *pins]
    else:
        # --compile-bytecode, as pip does: without a .pyc a module is compiled inside the timed load
        # that imports it, in every sample where .pyc are not written (PYTHONDONTWRITEBYTECODE):
        # transformers 4.46 imports ~250 modules inside from_pretrained, 0.22 s against 0.09 s.
        command = [installer, "pip", "install", "--quiet", "--no-deps", "--compile-bytecode", "--python",
                   str(python), *pins]
    _run_tool(command, f"{Path(installer).name}, installing {len(pins)} packages,", where)


def ensure_environment(name: str, requirements: Sequence[str], *, say: Say | None = None,
                       installer: str | None = None, root: Path | None = None) -> BuiltEnvironment:
    """The built environment for these requirements: from the cache, or built now (once).

    ``installer``: ``"pip"``, a path to uv, or None for uv where it is installed, else pip.
    ``say`` hears the progress (default: a line each on stderr). Raises BuildFailed,
    naming the requirements and pip's or uv's reason.
    """
    say = say or _say_on_stderr
    wanted = normalized_requirements(requirements, f"environment {name!r}")
    where = f"environment {name!r} ({' '.join(wanted)})"
    base = _base()  # a scan of every installed package's metadata: once per call
    target = environment_dir(wanted, root, base)
    marker = _read_marker(target)
    if marker is not None:
        say(f"{where}: reusing {target} (built in {marker.get('build_s', 0):.1f} s)")
        return BuiltEnvironment(target, wanted, dict(marker.get("installed", {})), str(marker.get("installer")),
                                float(marker.get("build_s", 0.0)), reused=True)
    tool = installer or find_uv() or "pip"
    tool_name = Path(tool).name
    started = time.perf_counter()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.with_name(f".{target.name}.building-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        staging.mkdir()
    except OSError as exc:
        raise BuildFailed(f"{where}: cannot write the environment cache {target.parent} ({exc.strerror or exc}); "
                          "point LOADBENCH_CACHE_DIR at a writable directory") from None
    try:
        say(f"{where}: building into {target} (pip resolves, {tool_name} installs)")
        python, own_site = create_layered_venv(staging)
        driver = _driver_distributions()
        roots = [*wanted, *_runtime_roots(driver, wanted)]
        with tempfile.TemporaryDirectory(prefix="loadbench-env-") as scratch:
            try:
                chosen = _resolve(python, roots, Path(scratch), where)
            except BuildFailed as exc:
                if "conflicting dependencies" not in str(exc):
                    raise
                raise BuildFailed(f"{exc} (an environment also holds loadbench's worker and what it needs: "
                                  f"{', '.join(roots[len(wanted):])})") from None
        if chosen:
            listed = ", ".join(f"{item['name']} {item['version']}" for item in chosen)
            say(f"{where}: installing {listed}")
            _install(python, chosen, tool, where)
        # Then the driver's packages it does not need go out of sight: what the requirements did not ask
        # for (kernels, beside transformers 5.0) must not change what they import.
        layered = restrict_layer(staging, own_site, chosen, roots, driver, final=target)
        installed = {item["name"]: item["version"] for item in chosen}
        build_s = round(time.perf_counter() - started, 3)  # as the record keeps it, and reuse reports it
        record = {"requirements": list(wanted), "installed": installed, "installer": tool_name,
                  "build_s": build_s, "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                  "base": base, "from_base": layered}
        (staging / MARKER).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        try:
            staging.rename(target)
        except OSError:
            if _read_marker(target) is None:  # not a lost race: a half-built or stale directory is in the way
                shutil.rmtree(target, ignore_errors=True)
                staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone after a rename; what an error or Ctrl-C left
    say(f"{where}: built in {build_s:.1f} s")
    return BuiltEnvironment(target, wanted, installed, tool_name, build_s, reused=False)


def built_environments(root: Path | None = None) -> list[dict[str, Any]]:
    """Every complete build in the cache, with its record (for ``loadbench env list``)."""
    folder = root if root is not None else cache_root()
    base = _base()
    found = []
    for directory in sorted(folder.iterdir()) if folder.is_dir() else []:
        if directory.name.startswith("."):
            continue
        marker = _read_marker(directory)
        if marker is not None:
            requirements = marker.get("requirements") or []
            # Current: what these requirements would use now; else built on another base or recipe.
            current = environment_dir(requirements, folder, base) == directory
            found.append({"path": str(directory), **marker, "current": current})
    return found
