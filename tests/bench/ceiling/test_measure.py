"""The machine's ceiling: each probe on small sizes, the cache (once, reused, refreshed, repaired), the CLI.

No assertion here is about how fast anything is: the machine is shared and noisy.
"""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path

import pytest

from loadbench.bench.ceiling import measure as ceiling
from loadbench.bench.ceiling import probes as ceiling_probes
from loadbench.bench.ceiling.probes import MiB, Rate, cold_read_rate, cuda_rates, memory_rates
from loadbench.bench.cli.main import main
from loadbench.bench.probes import page_cache as pagecache


def _is_median_of(rate: Rate, repeats: int) -> bool:
    return len(rate.repeats) == repeats and rate.median == statistics.median(rate.repeats) and rate.reason is None


def test_cold_read_measures_or_says_why_and_leaves_nothing(tmp_path: Path) -> None:
    rate = cold_read_rate(tmp_path, size_bytes=4 * MiB, repeats=3)
    if rate.median is None:  # e.g. a tmpfs, whose pages cannot be dropped
        assert rate.reason is not None and rate.reason.startswith("not measured: ")
    else:
        assert _is_median_of(rate, 3) and rate.size_bytes == 4 * MiB and rate.spread is not None
    assert list(tmp_path.iterdir()) == []


def test_cold_read_refuses_a_cache_that_kept_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pagecache, "disk_read_bytes", lambda: 0)  # nothing ever comes from storage
    rate = cold_read_rate(tmp_path, size_bytes=2 * MiB, repeats=3)
    assert rate.median is None and rate.reason is not None
    assert rate.reason.startswith("not measured: posix_fadvise(DONTNEED) left the file cached")


def test_cold_read_without_fadvise_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(ceiling_probes.os, "posix_fadvise", raising=False)
    rate = cold_read_rate(tmp_path, size_bytes=2 * MiB)
    assert rate.reason == "not measured: this OS has no posix_fadvise, so the page cache cannot be emptied"


def test_memory_rates_are_medians_of_their_repeats() -> None:
    read, copy = memory_rates(size_bytes=8 * MiB, repeats=5)
    assert _is_median_of(read, 5) and _is_median_of(copy, 5)
    assert read.size_bytes == copy.size_bytes == 8 * MiB


def test_cuda_rates_say_why_without_a_gpu() -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    for rate in cuda_rates(size_bytes=MiB, repeats=2):
        assert rate.median is None and rate.reason is not None
        assert rate.reason.startswith("not measured: no CUDA device (")
        assert "not measured" in rate.text()


def test_rate_round_trips_and_refuses_damage() -> None:
    rate = Rate(2e9, (1.5e9, 2e9, 2.5e9), 4 * MiB)
    assert Rate.from_dict(json.loads(json.dumps(rate.to_dict()))) == rate
    assert rate.spread == pytest.approx(0.5)
    assert rate.text() == "2.00 GB/s (median of 3 × 4 MiB, spread 50%)"
    for damaged in ("fast", {"median_bytes_per_s": "fast"}, {"median_bytes_per_s": None},
                    {"median_bytes_per_s": -1.0, "repeats_bytes_per_s": []}):
        with pytest.raises(ValueError):
            Rate.from_dict(damaged)


class Counting:
    """Stands in for the probes: counts calls and returns recognisable rates."""

    def __init__(self) -> None:
        self.disk = self.memory = 0

    def cold_read(self, directory: Path) -> Rate:
        self.disk += 1
        return Rate(1e9 * self.disk, (1e9 * self.disk,), MiB)

    def measure_memory(self) -> dict[str, Rate]:
        self.memory += 1
        return {name: Rate(1e10 * self.memory, (1e10 * self.memory,), MiB) for name in ceiling.MEMORY_RATES}


@pytest.fixture
def probes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Counting:
    counting = Counting()
    monkeypatch.setenv("LOADBENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(ceiling, "cold_read_rate", counting.cold_read)
    monkeypatch.setattr(ceiling, "_measure_memory", counting.measure_memory)
    return counting


def test_measured_once_then_read_from_the_cache(tmp_path: Path, probes: Counting) -> None:
    first = ceiling.machine_ceiling(tmp_path)
    again = ceiling.machine_ceiling(tmp_path)
    assert (probes.disk, probes.memory) == (1, 1)
    assert again == first and again.cold_read.median == 1e9
    assert ceiling.cache_path() == tmp_path / "cache" / ceiling.CACHE_FILE


def test_refresh_measures_again(tmp_path: Path, probes: Counting) -> None:
    ceiling.machine_ceiling(tmp_path)
    fresh = ceiling.machine_ceiling(tmp_path, refresh=True)
    assert (probes.disk, probes.memory) == (2, 2) and fresh.cold_read.median == 2e9
    assert ceiling.machine_ceiling(tmp_path).cold_read.median == 2e9  # the refreshed rates are the cached ones


def test_another_filesystem_measures_only_its_storage(tmp_path: Path, probes: Counting,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    ceiling.machine_ceiling(tmp_path)
    monkeypatch.setattr(ceiling, "filesystem_key", lambda directory: "/elsewhere (device 9:9)")
    assert ceiling.machine_ceiling(tmp_path).filesystem == "/elsewhere (device 9:9)"
    assert (probes.disk, probes.memory) == (2, 1)


@pytest.mark.parametrize("content", ["{not json", "[]", '{"version": 1, "machines": {"x": 3}}',
                                     '{"version": 999, "machines": {}}', "\udcff"])
def test_a_damaged_cache_is_measured_again(tmp_path: Path, probes: Counting, content: str) -> None:
    ceiling.machine_ceiling(tmp_path)
    ceiling.cache_path().write_bytes(content.encode("utf-8", "surrogateescape"))
    assert ceiling.machine_ceiling(tmp_path).cold_read.median == 2e9
    assert (probes.disk, probes.memory) == (2, 2)
    assert ceiling.machine_ceiling(tmp_path).cold_read.median == 2e9  # and the repaired cache is used


def test_a_damaged_entry_is_measured_again(tmp_path: Path, probes: Counting) -> None:
    ceiling.machine_ceiling(tmp_path)
    data = json.loads(ceiling.cache_path().read_text())
    entry = next(iter(data["machines"].values()))
    entry["memory"]["memory_read"]["median_bytes_per_s"] = "fast"
    ceiling.cache_path().write_text(json.dumps(data))
    ceiling.machine_ceiling(tmp_path)
    assert (probes.disk, probes.memory) == (1, 2)


def test_an_unwritable_cache_still_gives_the_ceiling(tmp_path: Path, probes: Counting,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("LOADBENCH_CACHE_DIR", str(tmp_path / "file" / "cache"))
    assert ceiling.machine_ceiling(tmp_path).cold_read.median == 1e9


def test_a_missing_directory_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(ceiling.CeilingError, match="no such directory"):
        ceiling.machine_ceiling(tmp_path / "nope")


def test_run_ceiling_lists_each_checkpoint_storage(tmp_path: Path, probes: Counting,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ceiling, "measure_apart", ceiling.machine_ceiling)  # in-process, to see the probes
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    recorded = ceiling.run_ceiling({"a": str(tmp_path / "a"), "b": str(tmp_path / "b")})
    assert set(recorded["storage"]) == {"a", "b"} and probes.disk == 1  # one filesystem, measured once
    assert recorded["storage"]["a"]["cold_read"]["median_bytes_per_s"] == 1e9
    assert recorded["memory_read"]["median_bytes_per_s"] == 1e10
    assert recorded["hostname"] and recorded["machine"].startswith(recorded["hostname"][:8])


def test_cli_prints_every_rate_and_refreshes(tmp_path: Path, probes: Counting,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ceiling", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "storage cold read: 1.00 GB/s (median of 1 × 1 MiB" in out
    assert all(label in out for label in ceiling.LABELS.values())
    assert main(["ceiling", "--refresh", str(tmp_path)]) == 0
    assert "storage cold read: 2.00 GB/s" in capsys.readouterr().out


def test_cli_json_is_the_ceiling(tmp_path: Path, probes: Counting, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ceiling", "--json", str(tmp_path)]) == 0
    assert ceiling.Ceiling.from_dict(json.loads(capsys.readouterr().out)) == ceiling.machine_ceiling(tmp_path)
    assert probes.disk == 1


def test_a_ceiling_that_cannot_be_measured_is_recorded_with_why(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOADBENCH_CACHE_DIR", str(tmp_path / "empty-cache"))  # nothing cached: it must measure
    monkeypatch.setattr(ceiling.sys, "executable", "/bin/false")
    with pytest.raises(ceiling.CeilingError, match="measuring the machine's ceiling failed"):
        ceiling.measure_apart(tmp_path)
    recorded = ceiling.run_ceiling({"a": str(tmp_path)})
    assert recorded["not_measured"].startswith(f"{tmp_path}: measuring the machine's ceiling failed")


def test_cli_names_a_missing_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ceiling", str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err.startswith(f"loadbench: error: {tmp_path / 'nope'}: no such directory")


def test_cli_names_a_file_given_for_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "model.safetensors"
    file.write_bytes(b"x")
    assert main(["ceiling", str(file)]) == 2
    assert capsys.readouterr().err == (f"loadbench: error: {file}: is a file, not a directory; give the checkpoint's "
                                       "directory (or any directory on the storage to measure)\n")


def test_filesystem_key_names_the_mount(tmp_path: Path) -> None:
    key = ceiling.filesystem_key(tmp_path)
    device = os.stat(tmp_path).st_dev
    assert key.endswith(f"(device {os.major(device)}:{os.minor(device)})")
    assert os.path.ismount(key.rsplit(" (device", 1)[0])


def test_a_run_reads_a_cached_ceiling_without_a_process_of_its_own(tmp_path: Path, probes: Counting,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    cached = ceiling.machine_ceiling(tmp_path)
    monkeypatch.setattr(ceiling.sys, "executable", "/bin/false")  # a process would fail
    recorded = ceiling.run_ceiling({"a": str(tmp_path)})
    assert recorded["storage"]["a"]["cold_read"] == cached.cold_read.to_dict()
    assert recorded["memory_read"] == cached.memory_read.to_dict()
    assert ceiling.cached_ceiling(tmp_path / "missing") is None
