"""The words every layer shares: path, task, dtype and cache names, and the retryable error.

One owner for each, imported by loaders (which implement them), bench (which plans and
parses them) and results (which orders and reads them). Plain constants: importing this
costs nothing.
"""

from __future__ import annotations

__all__ = ["BASE_PATH", "CACHE_STATES", "COLD", "DEFAULT_OPTIONS", "DTYPES", "NODE_LOST", "PATH_NAMES",
           "RETRYABLE_ERRORS", "SUPPORTED_TRANSFORMERS", "TASK_NAMES", "WARM", "release", "supported_transformers"]

# The path every other one is checked against: the backbone as AutoModel loads it.
BASE_PATH = "base"
# The four loading paths, in the order every table shows them.
PATH_NAMES: tuple[str, ...] = (BASE_PATH, "task", "custom", "pipeline")
TASK_NAMES: tuple[str, ...] = ("text-generation", "text2text-generation", "text-classification",
                               "feature-extraction")
DTYPES: tuple[str, ...] = ("auto", "float32", "bfloat16", "float16")
# Page cache state of the checkpoint files before a sample, warm first in tables.
WARM, COLD = "warm", "cold"
CACHE_STATES: tuple[str, ...] = (WARM, COLD)
# A case's loading options when it sets none: the library's defaults.
DEFAULT_OPTIONS = "default"
# The error type of a sample whose machine went away mid-sample: the case is not at
# fault, so --resume measures it again.
NODE_LOST = "node_lost"
RETRYABLE_ERRORS: tuple[str, ...] = (NODE_LOST,)
# The transformers releases the worker supports, as pyproject.toml states them (a test checks
# both agree): from the first, up to but not including the second. CI tests both ends.
SUPPORTED_TRANSFORMERS: tuple[tuple[int, int], tuple[int, int]] = ((4, 46), (6, 0))


def release(version: str) -> tuple[int, int] | None:
    """A version string's (major, minor) (``5.0.0rc1`` -> (5, 0)); None when it is not a version."""
    from packaging.version import InvalidVersion, Version

    try:
        parts = Version(version).release
    except InvalidVersion:
        return None
    return parts[0], parts[1] if len(parts) > 1 else 0


def supported_transformers(version: str) -> bool:
    """Whether a transformers version string (``4.57.6``, ``5.0.0rc1``) is in the supported range."""
    found = release(version)
    low, high = SUPPORTED_TRANSFORMERS
    return found is not None and low <= found < high
