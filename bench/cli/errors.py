"""How the command line ends: its exit codes, and an API error worded with the flags a user typed.

The API names its arguments in backquotes (`` `max_parallel` ``); here each becomes the flag
that sets it (``--max-parallel``), so neither side speaks the other's language.
"""

from __future__ import annotations

import re

from loadbench.errors import UserError
from loadbench.results.comparison.unpaired import EXIT_INCONCLUSIVE

__all__ = ["EXIT_ALL_FAILED", "EXIT_INCOMPLETE", "EXIT_INCONCLUSIVE", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE",
           "FLAGS", "cli_message"]

EXIT_OK = 0
EXIT_ALL_FAILED = 1  # run: every sample it measured failed (compare: a regression), so CI cannot pass it by
EXIT_USAGE = 2  # a UserError: input the user can fix
EXIT_INCOMPLETE = 3  # samples lost with their node: --resume takes them again
# compare's 3, EXIT_INCONCLUSIVE: a gated row too wide to call, a gate not yet decided as a run
# is not yet complete (--no-fail-on-inconclusive makes it 0). The verdict rule that computes it owns it.
EXIT_INTERRUPTED = 130

# API keyword -> the flag that sets it, where they differ beyond ``_`` -> ``-``.
FLAGS = {
    "environments": "--env",
    "json_output": "--json",
    "executor": "--executor",
    "max_parallel": "--max-parallel",
    "ray_address": "--ray-address",
    "what": "--what",
    "output": "--output",
    "format": "--format",
    "baseline_env": "--baseline-env",
    "candidate_env": "--candidate-env",
    "gate": "--gate",
    "fail_on_inconclusive": "--fail-on-inconclusive",
    "trust_remote_code": "--trust-remote-code",
    "allow_bin_weights": "--allow-bin-weights",
    "download": "--download",
    "allow_mismatch": "--allow-mismatch",
    "device": "--device",
    "options": "--option",
    "timeout_s": "--timeout",
    "budget_minutes": "--budget-minutes",
    "confirm_pairs": "--confirm-pairs",
    "goal": "--goal",
    "settings": "--settings",
}

_KEYWORD = re.compile(r"`([a-z_]+)`")


def cli_message(error: UserError) -> str:
    """The error's one line, with each backquoted API keyword that has a flag written as the flag."""
    return _KEYWORD.sub(lambda m: FLAGS.get(m.group(1), m.group(0)), str(error))
