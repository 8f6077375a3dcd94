"""compare's settings: thresholds from the command line, and the one parser of a suite's [compare] table."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadbench.errors import UserError
from loadbench.results.comparison.comparability import CannotCompare
from loadbench.results.comparison.settings import (
    CompareSettings,
    compare_settings_from_table,
    parse_threshold,
    read_compare_settings,
)


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_thresholds_parse_from_the_command_line_and_a_suite_file(tmp_path: Path) -> None:
    assert parse_threshold("load_s=15") == ("load_s", 0.15)
    assert parse_threshold(" time = 7.5% ") == ("time", 0.075)
    for bad in ("load_s", "nope=10", "load_s=fast", "load_s=0", "=5"):
        with pytest.raises(ValueError):
            parse_threshold(bad)
    suite = tmp_path / "suite.toml"
    suite.write_text('repeats = 10\n[compare]\nalpha = 0.01\nmetrics = ["load_s", "peak_rss_bytes"]\n'
                     'thresholds = { time = 12, peak_rss_bytes = 3 }\n')
    settings = read_compare_settings(suite)
    assert settings.alpha == 0.01 and settings.thresholds == {"time": 0.12, "peak_rss_bytes": 0.03}
    assert settings.metrics == ("load_s", "peak_rss_bytes")
    assert read_compare_settings(_write(tmp_path / "plain.toml", "repeats = 3\n")).thresholds == {}
    for text, message in [('[compare]\nthresholds = { lod_s = 5 }\n', "lod_s"),
                          ("[compare]\nalpha = 2\n", "alpha"), ("[compare]\nfactor = 1.1\n", "factor"),
                          ('[compare]\nmetrics = ["load"]\n', "load")]:
        with pytest.raises(CannotCompare, match=message):
            read_compare_settings(_write(tmp_path / "bad.toml", text))


@pytest.mark.parametrize(("text", "message"), [
    ("compare = 3\n", r"^{path}: compare must be a table$"),
    ("[compare]\nfactor = 1.1\n",
     r"^{path}: compare: unknown key\(s\) factor \(known: alpha, thresholds, metrics, gate\)$"),
    ("[compare]\nthresholds = [5]\n", r"^{path}: compare\.thresholds must be a table such as \{{load_s = 15\}}$"),
    ("[compare]\nalpha = true\n", r"^{path}: compare: alpha must be a number between 0 and 1, got True$"),
    ("[compare]\nmetrics = []\n", r"^{path}: compare: metrics must be a list of metric names$"),
    ("[compare]\nthresholds = {{ time = -1 }}\n", r"^{path}: compare: threshold time=-1: must be above 0"),
])
def test_a_bad_table_names_the_file_and_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path / "suite.toml", text.replace("{{", "{").replace("}}", "}"))
    with pytest.raises(CannotCompare, match=message.format(path=str(path).replace(".", r"\."))):
        read_compare_settings(path)


def test_the_table_parser_is_the_file_parser_without_the_file() -> None:
    table = {"alpha": 0.05, "thresholds": {"load_s": 15, "memory": "3%"}, "metrics": ["load_s"]}
    assert compare_settings_from_table(table) == CompareSettings({"load_s": 0.15, "memory": 0.03}, 0.05, ("load_s",))
    assert compare_settings_from_table({}) == CompareSettings()
    # What the suite model stored for "no table" before it kept the table as written.
    assert compare_settings_from_table({"alpha": None, "thresholds": {}, "metrics": None}) == CompareSettings()
    with pytest.raises(CannotCompare, match=r"^unknown key\(s\) factor"):
        compare_settings_from_table({"factor": 1.1})
    with pytest.raises(CannotCompare, match=r"^suite: unknown key\(s\) factor"):
        compare_settings_from_table({"factor": 1.1}, "suite")


def test_cannot_compare_is_a_user_error() -> None:
    assert issubclass(CannotCompare, UserError) and issubclass(CannotCompare, ValueError)


def test_the_gate_is_a_list_of_known_metrics() -> None:
    assert compare_settings_from_table({"gate": ["weights_s"]}).gate == ("weights_s",)
    for bad in ("weights_s", [], ["no_such_metric"]):
        with pytest.raises(CannotCompare, match="gate|no_such_metric"):
            compare_settings_from_table({"gate": bad})
