"""The library settings every worker starts with: offline, quiet, single-process tokenizers.

Read by huggingface_hub and transformers at import time, so whatever imports them first
in a process (the zygote; a benchmark environment's startup hook) applies these before.
A benchmark never downloads, and library progress bars would garble the run's display.
"""

from __future__ import annotations

import os

__all__ = ["LIBRARY_DEFAULTS", "set_library_defaults"]

LIBRARY_DEFAULTS: tuple[tuple[str, str], ...] = (
    ("HF_HUB_OFFLINE", "1"),
    ("TRANSFORMERS_OFFLINE", "1"),
    ("HF_HUB_DISABLE_PROGRESS_BARS", "1"),
    ("HF_HUB_DISABLE_TELEMETRY", "1"),
    ("TOKENIZERS_PARALLELISM", "false"),
)


def set_library_defaults() -> None:
    """Set each of LIBRARY_DEFAULTS unless the user set it already."""
    for name, value in LIBRARY_DEFAULTS:
        os.environ.setdefault(name, value)
