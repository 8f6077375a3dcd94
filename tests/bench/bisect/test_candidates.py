"""What a bisect walks: releases as pip's index lists them, commits along a branch, a commit as a wheel.

Offline: the index is a folder of wheels made here (pip's --find-links), the repository a
throwaway one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from loadbench.bench.bisect.candidates import BisectError, commits, releases
from loadbench.bench.bisect.wheels import requirement_for_commit

Git = Callable[..., str]
Planted = Callable[..., list[str]]


@pytest.fixture
def local_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_wheel: Callable[..., Path]) -> Path:
    folder = tmp_path / "index"
    folder.mkdir()
    for version in ("0.9", "1.0", "1.1", "1.2rc1", "1.2", "1.10", "2.0"):
        make_wheel(folder, "lbtestpkg", version)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(folder))
    return folder


def test_releases_between_the_ends_in_version_order(local_index: Path) -> None:
    found = releases("lbtestpkg", "1.0", "2.0")
    assert [c.label for c in found] == ["1.0", "1.1", "1.2", "1.10", "2.0"]  # 1.10 after 1.2, no rc
    assert found[0].requirement == "lbtestpkg==1.0"
    assert [c.label for c in releases("lbtestpkg", "1.1", "1.2", pre=True)] == ["1.1", "1.2rc1", "1.2"]


@pytest.mark.parametrize(("package", "good", "bad", "message"), [
    ("lbtestpkg", "1.3", "2.0", r"^lbtestpkg 1\.3 is not a release on the package index \(nearest: .*1\.2.*\)"),
    ("lbtestpkg", "2.0", "1.0", r"^GOOD 2\.0 must be an older release than BAD 1\.0"),
    ("lbtestpkg", "one", "2.0", r"^GOOD 'one' is not a version"),
    ("lbtestpkg>=1", "1.0", "2.0", r"^package 'lbtestpkg>=1': give a package's name alone"),
    ("lbnosuchpkg", "1.0", "2.0", r"^package 'lbnosuchpkg': the package index lists no releases"),
])
def test_unusable_ends_are_refused_in_one_line(local_index: Path, package: str, good: str, bad: str,
                                                message: str) -> None:
    with pytest.raises(BisectError, match=message) as caught:
        releases(package, good, bad)
    assert "\n" not in str(caught.value)


def test_commits_along_the_branch_oldest_first(tmp_path: Path, planted: Planted, git: Git) -> None:
    hashes = planted(tmp_path / "repo", 5, slow_from=3)
    found = commits(tmp_path / "repo", hashes[1], "main")
    assert [c.commit for c in found] == hashes[1:] and found[0].label == hashes[1][:10]
    assert found[1].subject == "revision 3 (slower load)"
    git(tmp_path / "repo", "checkout", "--quiet", "-b", "side", hashes[0])
    (tmp_path / "repo" / "side.txt").write_text("x")
    git(tmp_path / "repo", "add", "-A")
    git(tmp_path / "repo", "commit", "--quiet", "-m", "side")
    for good, bad, message in ((hashes[0], hashes[0], "are the same commit"), ("nosuch", "main", "is not a commit"),
                               ("side", "main", "is not on the first-parent line")):
        with pytest.raises(BisectError, match=message):
            commits(tmp_path / "repo", good, bad)
    with pytest.raises(BisectError, match="no such directory"):
        commits(tmp_path / "missing", "a", "b")


def test_a_commit_becomes_a_wheel_once(tmp_path: Path, planted: Planted, git: Git) -> None:
    hashes = planted(tmp_path / "repo", 2, slow_from=2)
    requirement = requirement_for_commit(tmp_path / "repo", hashes[1], tmp_path / "wheels")
    name, _, url = requirement.partition(" @ ")
    wheel = Path(url.removeprefix("file://"))
    assert name == "lbbisectpkg" and wheel.parent.name == hashes[1] and wheel.is_file()
    built_at = wheel.stat().st_mtime_ns
    assert requirement_for_commit(tmp_path / "repo", hashes[1], tmp_path / "wheels") == requirement
    assert wheel.stat().st_mtime_ns == built_at
    # The user's checkout is left as it was: no worktree of ours stays registered.
    assert git(tmp_path / "repo", "worktree", "list").count("\n") == 0
    (tmp_path / "repo" / "pyproject.toml").write_text("[project\n")
    git(tmp_path / "repo", "commit", "--quiet", "-am", "broken")
    with pytest.raises(BisectError, match="does not build into a wheel"):
        requirement_for_commit(tmp_path / "repo", git(tmp_path / "repo", "rev-parse", "HEAD"), tmp_path / "wheels")
