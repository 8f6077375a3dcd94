"""loadbench: benchmark the four ways of loading a Hugging Face model.

The Python API is ``loadbench.bench.api`` (run, resume, report, compare, baseline);
``loadbench.results`` reads, summarizes and compares what runs recorded as pandas
frames. Mistakes a caller can fix raise ``loadbench.errors.UserError``. Importing
``loadbench`` or either of those modules does not import torch or transformers.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
