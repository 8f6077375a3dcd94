"""The words every layer shares: path, task, dtype and cache names, and the retryable error.

One owner for each, imported by loaders (which implement them), bench (which plans and
parses them) and results (which orders and reads them). Plain constants: importing this
costs nothing.
"""

from __future__ import annotations

__all__ = ["CACHE_STATES", "DTYPES", "NODE_LOST", "PATH_NAMES", "RETRYABLE_ERRORS", "TASK_NAMES"]

# The four loading paths, in the order every table shows them.
PATH_NAMES: tuple[str, ...] = ("base", "task", "custom", "pipeline")
TASK_NAMES: tuple[str, ...] = ("text-generation", "text2text-generation", "text-classification",
                               "feature-extraction")
DTYPES: tuple[str, ...] = ("auto", "float32", "bfloat16", "float16")
# Page cache state of the checkpoint files before a sample, warm first in tables.
CACHE_STATES: tuple[str, ...] = ("warm", "cold")
# The error type of a sample whose machine went away mid-sample: the case is not at
# fault, so --resume measures it again.
NODE_LOST = "node_lost"
RETRYABLE_ERRORS: tuple[str, ...] = (NODE_LOST,)
