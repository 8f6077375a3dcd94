"""``python -m loadbench``: the CLI, for an environment whose scripts directory is not on PATH."""

from loadbench.bench.cli.main import entry

entry()
