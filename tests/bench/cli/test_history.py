"""The ``history`` verb end to end: add runs, show them as text and JSON, and fail a nightly job on a regression."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

_RUNS = Path(__file__).parents[2] / "results" / "history" / "conftest.py"
_spec = importlib.util.spec_from_file_location("history_runs", _RUNS)
assert _spec is not None and _spec.loader is not None
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)
history_run = _module.history_run  # the fixtures, shared with tests/results/history
anchored_run = _module.anchored_run


def test_add_then_show_names_the_step_and_a_nightly_job_fails_on_it(cli, tmp_path, history_run) -> None:
    root = str(tmp_path / "history")
    runs = [str(history_run(n, 1.0 if n <= 6 else 1.12, transformers="5.25.0" if n >= 7 else None))
            for n in range(1, 13)]
    added = cli("history", "add", *runs, "--history", root)
    assert added.returncode == 0, added.stderr
    assert added.stdout.splitlines()[-1] == "added c12 (run 20260101T000012Z-000c) as run 12 of the history"

    shown = cli("history", "show", "--history", root)
    assert shown.returncode == 0, shown.stderr
    row, = [line for line in shown.stdout.splitlines() if "load_s" in line]
    assert "tiny-llama · task" in row and "at c07 (after c06)" in row
    assert re.search(r"❌ \+1\d\.\d% \(\+\d+\.\d% … \+\d+\.\d%\)", row), row  # 12% planted, with its interval
    assert "at c07: transformers 5.24.0 → 5.25.0" in shown.stdout

    data = json.loads(cli("history", "show", "--history", root, "--format", "json").stdout)
    point, = data["change_points"]
    assert {k: point[k] for k in ("checkpoint", "path", "metric", "label", "previous_label")} == {
        "checkpoint": "tiny-llama", "path": "task", "metric": "load_s", "label": "c07", "previous_label": "c06"}
    assert point["ci_low"] < point["change"] < point["ci_high"]

    assert cli("history", "show", "--history", root, "--fail-on-regression").returncode == 1
    assert cli("history", "show", "--history", root, "--fail-on-regression", "--since", "c08").returncode == 0


def test_anchored_shows_only_each_environment_over_the_first_and_finds_the_step_there(
        cli, tmp_path, anchored_run) -> None:
    root = str(tmp_path / "history")
    assert cli("history", "add", *(str(anchored_run(n, 1.0 if n <= 6 else 1.10)) for n in range(1, 13)),
               "--history", root).returncode == 0
    shown = cli("history", "show", "--history", root, "--anchored", "--fail-on-regression")
    assert shown.returncode == 1, shown.stderr
    row, = [line for line in shown.stdout.splitlines() if "load_s" in line]
    assert "tiny-llama · task · head vs ref" in row and re.search(r"×\d\.\d{3}", row) and "at c07 (after c06)" in row
    assert "1 change point(s) in 1 series" in shown.stdout
    page = cli("history", "report", "--history", root, "--anchored", "--output", str(tmp_path / "site"))
    assert page.returncode == 0 and "head vs ref" in (tmp_path / "site" / "index.html").read_text()


def test_mistakes_are_one_line_and_exit_2(cli, tmp_path, history_run) -> None:
    root = str(tmp_path / "history")
    run = str(history_run(1))
    assert cli("history", "add", run, "--history", root).returncode == 0
    again = cli("history", "add", run, "--history", root)
    assert again.returncode == 2 and "already in the history" in again.stderr
    since = cli("history", "show", "--history", root, "--since", "nope")
    assert since.returncode == 2 and "--since nope: no run of the history has that label" in since.stderr
    missing = cli("history", "add", str(tmp_path / "no-such-run"), "--history", root)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
    empty = cli("history", "show", "--history", str(tmp_path / "empty"))
    assert empty.returncode == 0 and "no runs yet" in empty.stdout
