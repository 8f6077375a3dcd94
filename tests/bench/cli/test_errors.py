"""The CLI words an API error with its flags: what the API calls `max_parallel`, a user typed as --max-parallel."""

from __future__ import annotations

from pathlib import Path

from loadbench.bench.cli.errors import FLAGS, cli_message
from loadbench.bench.cli.main import _parser
from loadbench.errors import UserError


def test_backquoted_keywords_become_flags_and_nothing_else_changes() -> None:
    error = UserError("`max_parallel` 0: give 1 or more; see `loadbench ceiling --json` and `colour`")
    assert cli_message(error) == "--max-parallel 0: give 1 or more; see `loadbench ceiling --json` and `colour`"


def test_every_flag_named_is_one_the_parser_has() -> None:
    parser, _ = _parser()
    known = {option for action in parser._subparsers._group_actions  # type: ignore[union-attr]
             for sub in action.choices.values() for act in sub._actions for option in act.option_strings}
    assert set(FLAGS.values()) <= known, set(FLAGS.values()) - known


def test_a_suite_that_turns_on_remote_code_names_the_flag_at_the_command_line(cli, tmp_path: Path) -> None:
    suite = tmp_path / "s.toml"
    suite.write_text('trust_remote_code = true\n[[checkpoints]]\nbuiltin = "tiny-bert"\n')
    result = cli("run", str(suite), "--no-progress")
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert result.stderr.endswith("a suite file cannot turn it on: pass --trust-remote-code if you trust them\n")
