"""Pre-imported once in the fork server; every sample's worker is forked from it.

Importing torch and transformers costs seconds; paying it once is what makes a fresh
process per sample affordable. Only imports happen here, never a load or a forward: a
worker must start where a user's fresh process stands after its imports.
"""

from __future__ import annotations

import gc

from loadbench.bench.sample.offline import set_library_defaults

set_library_defaults()

# torch, transformers, and the generic machinery every path uses; architecture modules and
# pipelines stay out and are imported by each worker before its timer (recorded as import_s).
import torch  # noqa: E402,F401
import transformers  # noqa: E402,F401
import transformers.generation  # noqa: E402,F401
import transformers.modeling_utils  # noqa: E402,F401
from transformers import AutoConfig, AutoTokenizer  # noqa: E402,F401

__all__: list[str] = []

# Imports leave ~10^6 objects behind. Without this, a full collection in a worker walks
# them all (~0.1 s) at a moment that depends on the sample's allocations, adding noise
# of that size to some loads; frozen, they are never scanned (nor copied on write). This
# is gc.freeze's documented use: pre-fork servers.
gc.freeze()
