"""The history on disk: one file per run, per machine, in the order added, and refusals that lose nothing."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from loadbench.results.history.store import HistoryError, add, history_root, read


def test_runs_are_kept_in_the_order_added_under_their_commit_or_label(tmp_path, history_run) -> None:
    root = tmp_path / "history"
    add([history_run(2), history_run(1)], root)
    add(history_run(3), root, labels=["release 3"])
    (machine, runs), = read(root).items()
    assert [r.label for r in runs] == ["c02", "c01", "release 3"]
    assert [r.number for r in runs] == [1, 2, 3]
    (key, metric), = [k for k in runs[0].series if k[1] == "load_s"]
    unit, direction, values = runs[0].series[(key, metric)]
    assert (unit, direction, len(values)) == ("s", "lower", 8)  # the warmup left out
    assert all(0.08 < v < 0.12 for v in values)
    assert (root / machine / "machine.json").is_file()


def test_another_machine_is_kept_apart(tmp_path, history_run) -> None:
    root = tmp_path / "history"
    add([history_run(1), history_run(2, cpu_model="Intel Xeon Gold 6338")], root)
    machines = read(root)
    assert len(machines) == 2 and all(len(runs) == 1 for runs in machines.values())


def test_a_run_added_twice_is_refused_and_nothing_is_written(tmp_path, history_run) -> None:
    root = tmp_path / "history"
    run = history_run(1)
    add(run, root)
    with pytest.raises(HistoryError, match="already in the history"):
        add([history_run(2), run], root)
    assert [r.label for runs in read(root).values() for r in runs] == ["c01"]


def test_one_label_per_run(tmp_path, history_run) -> None:
    with pytest.raises(HistoryError, match="1 label\\(s\\) for 2 run"):
        add([history_run(1), history_run(2)], tmp_path / "h", labels=["a"])
    with pytest.raises(HistoryError, match="non-empty one-line label"):
        add(history_run(3), tmp_path / "h", labels=["  "])


def test_a_damaged_or_foreign_file_is_named(tmp_path, history_run) -> None:
    root = tmp_path / "history"
    add(history_run(1), root)
    path, = root.glob("*/runs/*.json")
    path.write_text("{not json")
    with pytest.raises(HistoryError, match=f"{path.name}: not JSON"):
        read(root)
    path.write_text(json.dumps({"format": "something else"}))
    with pytest.raises(HistoryError, match="not a loadbench history run"):
        read(root)
    path.write_text(json.dumps({"format": "loadbench-history-run/1", "label": "x"}))
    with pytest.raises(HistoryError, match="a damaged history run"):
        read(root)


def test_a_file_claimed_but_not_yet_written_is_not_a_run(tmp_path, history_run) -> None:
    root = tmp_path / "history"
    add(history_run(1), root)
    machine, = [p for p in root.iterdir() if p.is_dir()]
    (machine / "runs" / "000002.json").touch()  # a writer killed between claiming and writing
    add(history_run(3), root)
    assert [(r.number, r.label) for runs in read(root).values() for r in runs] == [(1, "c01"), (3, "c03")]


def test_concurrent_writers_never_share_a_number(tmp_path, history_run) -> None:
    root = tmp_path / "history"
    runs = [history_run(n) for n in range(1, 9)]
    threads = [threading.Thread(target=add, args=(run, root)) for run in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    numbers = [r.number for runs_ in read(root).values() for r in runs_]
    assert sorted(numbers) == list(range(1, 9))


def test_the_root_comes_from_the_argument_then_the_environment(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("LOADBENCH_HISTORY", str(tmp_path / "env"))
    assert history_root() == tmp_path / "env"
    assert history_root(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv("LOADBENCH_HISTORY")
    assert history_root() == Path(".loadbench/history")
    (tmp_path / "file").write_text("")
    with pytest.raises(HistoryError, match="a file, not a directory"):
        read(tmp_path / "file")
    assert read(tmp_path / "nothing-yet") == {}
