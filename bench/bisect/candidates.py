"""What a bisect walks, oldest first: a package's releases on the registry, or a repository's commits.

Releases come from ``pip index versions``, so the index a user's pip is set up with (a
mirror, ``--find-links``, ``PIP_INDEX_URL``) is the one walked. Commits are those on the
newer commit's first-parent line back to the older one: the order a branch was built in.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from loadbench.errors import UserError

__all__ = ["BisectError", "Candidate", "commits", "releases"]


class BisectError(UserError):
    """A bisect that cannot start or go on; the message names the input and what to do."""


@dataclass(frozen=True)
class Candidate:
    """One version to measure: its label (the environment's name), and where it comes from."""

    label: str  # a release (5.12.0) or a commit's short hash
    requirement: str | None  # what installs it (transformers==5.12.0); None for a commit until its wheel is built
    commit: str | None = None  # the full hash, for a commit
    subject: str = ""  # the commit's first line


def _version(text: str, what: str) -> object:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(text)
    except InvalidVersion:
        raise BisectError(f"{what} {text!r} is not a version; give a release such as 5.0.0") from None


def _listed_versions(package: str, pre: bool) -> list[str]:
    """Every release the registry lists for ``package``, as pip reports them."""
    command = [sys.executable, "-m", "pip", "index", "versions", package, "--disable-pip-version-check"]
    done = subprocess.run([*command, *(["--pre"] if pre else [])], capture_output=True, text=True)
    listed = next((line.partition(":")[2] for line in done.stdout.splitlines()
                   if line.startswith("Available versions:")), None)
    if done.returncode != 0 or listed is None:
        reason = (done.stderr.strip().splitlines() or ["no releases listed"])[-1].removeprefix("ERROR: ")
        raise BisectError(f"package {package!r}: the package index lists no releases ({reason}); check the name, "
                          "and that pip can reach its index")
    return [v.strip() for v in listed.split(",") if v.strip()]


def releases(package: str, good: str, bad: str, *, pre: bool = False) -> list[Candidate]:
    """The releases of ``package`` from ``good`` to ``bad``, both included, oldest first.

    Pre-releases are walked only with ``pre`` (or when an end is one). Raises BisectError
    for a name that is not a package, an end that is not a version or not a release, and
    ends in the wrong order.
    """
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.version import Version

    try:
        valid = Requirement(package).name == package
    except InvalidRequirement:
        valid = False
    if not valid:
        raise BisectError(f"package {package!r}: give a package's name alone, such as transformers")
    old, new = _version(good, "GOOD"), _version(bad, "BAD")
    assert isinstance(old, Version) and isinstance(new, Version)
    if not old < new:
        raise BisectError(f"GOOD {good} must be an older release than BAD {bad}; give them oldest first")
    pre = pre or old.is_prerelease or new.is_prerelease
    listed = {Version(v): v for v in _listed_versions(package, pre) if _parses(v)}
    for end, text in ((old, good), (new, bad)):
        if end not in listed:
            near = sorted(listed, key=lambda v: abs(_ordinal(v) - _ordinal(end)))[:3]
            raise BisectError(f"{package} {text} is not a release on the package index (nearest: "
                              f"{', '.join(listed[v] for v in sorted(near)) or 'none'}); give releases it lists")
    chosen = sorted(v for v in listed if old <= v <= new and (pre or not v.is_prerelease))
    return [Candidate(listed[v], f"{package}=={listed[v]}") for v in chosen]


def _parses(text: str) -> bool:
    from packaging.version import InvalidVersion, Version

    try:
        Version(text)
    except InvalidVersion:
        return False
    return True


def _ordinal(version: object) -> float:
    """A number that orders releases roughly by distance, to name the nearest ones."""
    release = getattr(version, "release", (0,))
    return sum(part / 1000 ** i for i, part in enumerate(release[:3]))


def _git(repo: Path, *args: str) -> str:
    try:
        done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    except OSError as exc:
        raise BisectError(f"--repo {repo}: git cannot run ({exc.strerror or exc}); install git") from None
    if done.returncode != 0:
        raise BisectError(f"--repo {repo}: git {args[0]} failed: "
                          f"{(done.stderr.strip().splitlines() or ['no reason given'])[-1]}")
    return done.stdout


def _commit_of(repo: Path, ref: str, what: str) -> str:
    try:
        return _git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").strip()
    except BisectError:
        raise BisectError(f"{what} {ref!r} is not a commit of {repo}; give a hash, tag or branch there") from None


def commits(repo: Path, good: str, bad: str) -> list[Candidate]:
    """The commits from ``good`` to ``bad`` along ``bad``'s first parents, both included, oldest first."""
    if not (repo / ".git").exists() and not repo.is_dir():
        raise BisectError(f"--repo {repo}: no such directory; give a git repository's directory")
    try:
        _git(repo, "rev-parse", "--git-dir")
    except BisectError:
        raise BisectError(f"--repo {repo}: not a git repository; give the directory of one") from None
    old, new = _commit_of(repo, good, "GOOD"), _commit_of(repo, bad, "BAD")
    if old == new:
        raise BisectError(f"GOOD {good} and BAD {bad} are the same commit; give two")
    line = _git(repo, "rev-list", "--first-parent", new).split()
    if old not in line:
        raise BisectError(f"GOOD {good} is not on the first-parent line of BAD {bad} in {repo}; give an older "
                          "commit of that branch")
    walked = list(reversed(line[:line.index(old) + 1]))
    subjects = dict(row.split("\t", 1) for row in _git(repo, "log", "--first-parent", "--format=%H\t%s",
                                                       f"{old}..{new}").splitlines() if "\t" in row)
    subjects.setdefault(old, _git(repo, "log", "-1", "--format=%s", old).strip())
    return [Candidate(sha[:10], None, sha, subjects.get(sha, "")) for sha in walked]
