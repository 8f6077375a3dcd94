"""Page-cache helpers on a temporary checkpoint: what they read, drop and report."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import pytest

from loadbench.bench.probes import page_cache as pagecache


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    """Files larger than one read chunk, one of them in a subfolder, as sharded checkpoints have."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "config.json").write_bytes(b"{}")
    (tmp_path / "model.safetensors").write_bytes(b"\x01" * (pagecache.CHUNK_BYTES + 7))
    (tmp_path / "sub" / "shard.bin").write_bytes(b"\x02" * 3)
    return tmp_path


def test_warm_reads_every_file_whole(checkpoint: Path) -> None:
    assert pagecache.warm(checkpoint) == 2 + pagecache.CHUNK_BYTES + 7 + 3


def test_warm_of_an_empty_directory_reads_nothing(tmp_path: Path) -> None:
    assert pagecache.warm(tmp_path) == 0


def test_warm_does_not_hide_an_unreadable_file(checkpoint: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Simulated: file modes do not stop root. A half-warmed checkpoint must not pass as warm.
    def refuse(path: Any, *args: Any, **kwargs: Any) -> Any:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(pagecache, "open", refuse, raising=False)
    with pytest.raises(PermissionError):
        pagecache.warm(checkpoint)


@pytest.mark.skipif(not hasattr(os, "posix_fadvise"), reason="needs posix_fadvise")
def test_evict_syncs_and_drops_every_file(checkpoint: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    advised: list[tuple[int, int, int]] = []
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(pagecache.os, "posix_fadvise", lambda fd, offset, length, advice: advised.append(
        (offset, length, advice)))
    monkeypatch.setattr(pagecache.os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    assert pagecache.evict(checkpoint) is None
    assert advised == [(0, 0, os.POSIX_FADV_DONTNEED)] * 3  # whole file, each of the three
    assert len(synced) == 3


@pytest.mark.skipif(not hasattr(os, "posix_fadvise"), reason="needs posix_fadvise")
def test_evict_really_runs_on_a_directory(checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    assert pagecache.evict(checkpoint) is None
    assert pagecache.evict(tmp_path_factory.mktemp("empty")) is None


def test_evict_says_why_when_the_os_cannot_drop_pages(checkpoint: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(pagecache.os, "posix_fadvise", raising=False)
    reason = pagecache.evict(checkpoint)
    assert reason is not None and "posix_fadvise" in reason and "'cold' is not cold" in reason


def test_disk_read_bytes_is_an_int_or_none() -> None:
    value = pagecache.disk_read_bytes()
    assert value is None or (isinstance(value, int) and value >= 0)
    if Path("/proc/self/io").exists():
        assert isinstance(value, int)


def _fake_proc_io(monkeypatch: pytest.MonkeyPatch, text: str | None) -> None:
    def fake_open(path: Any, *args: Any, **kwargs: Any) -> io.StringIO:
        assert path == "/proc/self/io"
        if text is None:
            raise FileNotFoundError(path)
        return io.StringIO(text)

    monkeypatch.setattr(pagecache, "open", fake_open, raising=False)


def test_disk_read_bytes_reads_the_storage_line_not_rchar(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_proc_io(monkeypatch, "rchar: 999999\nwchar: 5\nread_bytes: 8192\nwrite_bytes: 4096\n")
    assert pagecache.disk_read_bytes() == 8192


@pytest.mark.parametrize("text", [None, "rchar: 1\nwchar: 2\n"], ids=["no-proc-io", "no-read_bytes-line"])
def test_disk_read_bytes_is_none_where_the_kernel_does_not_say(monkeypatch: pytest.MonkeyPatch,
                                                                text: str | None) -> None:
    _fake_proc_io(monkeypatch, text)
    assert pagecache.disk_read_bytes() is None
