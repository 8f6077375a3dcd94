"""Property: whatever a run's files hold, reading, reporting and comparing it gives a result or one line.

One real paired run is measured once (tiny-llama, two environments on this interpreter);
each example damages a copy of its files the ways hands, scripts and crashes do:
records duplicated, dropped, reordered or edited; impossible values (zero, negative, NaN,
inf, 400-digit numbers); wrong types (strings, lists, objects, null where numbers are);
run.json's fields replaced; the last line cut at any byte. ``results.load``,
``loadbench.report`` and ``loadbench.compare`` must each return, or raise a UserError
whose message is one line (the CLI prints it and exits 2) — never another exception.

LOADBENCH_HYPOTHESIS_EXAMPLES sets the number of examples (default 100, about ten seconds after the
run); LOADBENCH_HYPOTHESIS_NO_SHRINK=1 reports failures as found, without shrinking them.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st

import loadbench
from loadbench.errors import UserError
from loadbench.results import TruncatedRunWarning, load

EXAMPLES = int(os.environ.get("LOADBENCH_HYPOTHESIS_EXAMPLES", "100"))
# Set to find every failure fast, without shrinking each to its smallest form.
PHASES = tuple(Phase)[:-2] if os.environ.get("LOADBENCH_HYPOTHESIS_NO_SHRINK") else tuple(Phase)


@pytest.fixture(scope="module")
def real_run(builtin_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real paired run, measured once: two environments (this interpreter twice), ten blocks.

    Ten: the fewest with which the gate's three time rows can have a bounded interval.
    """
    from loadbench.bench.suite import suite_from_dict

    suite = suite_from_dict({
        "checkpoints": [{"builtin": "tiny-llama"}], "paths": ["base"], "repeats": 10, "warmups": 0,
        "device": "cpu", "cache": "warm", "new_tokens": 2,
        "environments": [{"name": "base", "python": sys.executable}, {"name": "head", "python": sys.executable}],
    }, "property-suite")
    result = loadbench.run(suite, output=tmp_path_factory.mktemp("property") / "run", cache_dir=builtin_cache,
                           reports=False)
    assert result.complete and not result.failed_samples
    return result.run_dir


# Values no measurement writes, and values of the wrong type.
_HUGE = 10**400
EVIL = st.one_of(
    st.sampled_from([0, -1, -0.0, 1e-320, 1e308, -1e308, float("nan"), float("inf"), float("-inf"), _HUGE, -_HUGE,
                     2**63, -(2**63) - 1, 2**53 + 1, True, False, None, "", "0.1", "fast", "NaN", [], [1, 2],
                     {}, {"a": 1}, "\n", "x" * 2000]),
    st.integers(), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
    st.lists(st.integers(), max_size=3),
)
# Fields of run.json that loadbench writes, and readers read.
INFO_KEYS = ("fingerprint", "nodes", "suite", "status", "run_id", "schema_version", "started_at", "finished_at",
             "resumed_at", "checkpoint_commits", "ceiling", "checkpoints")
NESTED = ("packages", "gpus", "cpu_model", "cpu_count", "hostname", "environments", "repeats", "name", "python")


def _records(run: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]


def _mutate_records(data: st.DataObject, lines: list[str]) -> list[str]:
    """One damage to the lines of samples.jsonl (each a JSON record, or whatever a damage left)."""
    if not lines:
        return lines
    index = data.draw(st.integers(0, len(lines) - 1), label="line")
    kind = data.draw(st.sampled_from(["duplicate", "drop", "swap", "edit", "edit", "edit", "relabel", "garbage",
                                      "copy lines", "drop lines"]), label="damage")
    if kind in ("copy lines", "drop lines"):  # whole samples (or parts) appended twice, or lost
        end = data.draw(st.integers(index + 1, min(len(lines), index + 40)), label="to line")
        if kind == "drop lines":
            return [*lines[:index], *lines[end:]]
        at = data.draw(st.sampled_from([len(lines), index, end]), label="copied to")
        return [*lines[:at], *lines[index:end], *lines[at:]]
    if kind == "duplicate":
        at = data.draw(st.integers(0, len(lines)), label="to")
        return [*lines[:at], lines[index], *lines[at:]]
    if kind == "drop":
        return [*lines[:index], *lines[index + 1:]]
    if kind == "swap":
        other = data.draw(st.integers(0, len(lines) - 1), label="with")
        swapped = list(lines)
        swapped[index], swapped[other] = swapped[other], swapped[index]
        return swapped
    if kind == "garbage":
        return [*lines[:index], data.draw(st.sampled_from(["{", "[]", "null", "1", '"x"', "{}", "\x00", "ÿ"])),
                *lines[index + 1:]]
    try:
        record = json.loads(lines[index])
    except ValueError:
        return lines
    if not isinstance(record, dict):
        return lines
    if kind == "relabel":  # another environment, block or repeat: a sample moved where it was not measured
        key = data.draw(st.sampled_from(["env", "block", "repeat", "metric", "status", "sample_records", "warmup"]))
        record[key] = data.draw(st.sampled_from(["base", "head", "other", 0, 1, 5, 17, "load_s", "ok", "failed", True,
                                                 None]))
    else:
        key = data.draw(st.sampled_from(sorted(record) + ["extra"]), label="field")
        record[key] = data.draw(EVIL, label="value")
    return [*lines[:index], json.dumps(record, allow_nan=True), *lines[index + 1:]]


def _mutate_info(data: st.DataObject, info: dict[str, Any]) -> dict[str, Any] | Any:
    """One damage to run.json: a field replaced, a nested field replaced, or the whole document."""
    kind = data.draw(st.sampled_from(["field", "nested", "whole"]), label="info damage")
    if kind == "whole" or not isinstance(info, dict):
        return data.draw(EVIL, label="run.json")
    key = data.draw(st.sampled_from(INFO_KEYS), label="info field")
    if kind == "field" or not isinstance(info.get(key), dict):
        return {**info, key: data.draw(EVIL, label="info value")}
    nested = data.draw(st.sampled_from(NESTED), label="nested field")
    return {**info, key: {**info[key], nested: data.draw(EVIL, label="nested value")}}


def _write(run: Path, target: Path, data: st.DataObject) -> None:
    """A copy of run in target, damaged by a few drawn damages."""
    shutil.copytree(run, target)
    lines = (run / "samples.jsonl").read_text().splitlines()
    info: Any = json.loads((run / "run.json").read_text())
    for _ in range(data.draw(st.integers(1, 3), label="damages")):
        if data.draw(st.integers(0, 4), label="which file") == 0:
            info = _mutate_info(data, info)
        else:
            lines = _mutate_records(data, lines)
    body = "".join(line + "\n" for line in lines).encode("utf-8", "surrogatepass")
    if data.draw(st.booleans(), label="cut") and lines:
        last = len(body) - len(lines[-1].encode("utf-8", "surrogatepass")) - 1
        body = body[:data.draw(st.integers(last, len(body)), label="cut at")]
    (target / "samples.jsonl").write_bytes(body)
    (target / "run.json").write_text(json.dumps(info, allow_nan=True), encoding="utf-8")


CALLS: dict[str, Callable[[Path], Any]] = {
    "load": load,
    "report markdown": lambda run: loadbench.report(run, format="markdown"),
    "report json": lambda run: loadbench.report(run, format="json", output="-"),
    "compare": lambda run: loadbench.compare(run),
}


def _outcome(call: Callable[[Path], Any], run: Path) -> str:
    """'ok', or the one-line message of a UserError; any other exception fails the property."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TruncatedRunWarning)  # a cut last line is said, and expected here
            call(run)
    except UserError as exc:
        message = str(exc)
        assert message and "\n" not in message, f"a UserError of more than one line: {message!r}"
        return message
    return "ok"


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow], phases=PHASES)
@given(data=st.data())
def test_a_damaged_run_gives_a_result_or_one_line(real_run: Path, data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory(prefix="damaged-") as scratch:
        run = Path(scratch) / "run"
        _write(real_run, run, data)
        for name, call in CALLS.items():
            note(f"{name}: {_outcome(call, run)}")
        # The damaged run as one side of an unpaired compare, the real one as the other.
        note(f"compare unpaired: {_outcome(lambda damaged: loadbench.compare(real_run, damaged), run)}")


def test_the_real_run_itself_is_read_reported_and_compared(real_run: Path) -> None:
    frame = load(real_run)
    assert set(frame["env"]) == {"base", "head"} and frame["block"].notna().any()
    assert [_outcome(call, real_run) for call in CALLS.values()] == ["ok"] * len(CALLS)
    assert len(_records(real_run)) == len(frame)


@pytest.mark.parametrize("damage, message", [
    (lambda lines: lines + lines[-json.loads(lines[-1])["sample_records"]:], "is recorded again"),
    (lambda lines: [line.replace('"metric": "load_s", "value": ', '"metric": "load_s", "value": -', 1)
                    for line in lines], "load_s = -"),
])
def test_the_cli_exits_2_with_one_line_on_a_damaged_real_run(real_run: Path, tmp_path: Path, cli,
                                                             damage: Callable[[list[str]], list[str]],
                                                             message: str) -> None:
    run = Path(shutil.copytree(real_run, tmp_path / "run"))
    lines = (run / "samples.jsonl").read_text().splitlines()
    (run / "samples.jsonl").write_text("".join(line + "\n" for line in damage(lines)))
    for verb in ("report", "compare"):
        result = cli(verb, str(run))
        assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
        assert result.stderr.startswith("loadbench: error: ") and message in result.stderr, result.stderr
