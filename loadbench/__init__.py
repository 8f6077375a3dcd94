"""loadbench: benchmark the four ways of loading a Hugging Face model.

The public Python API lives in the sub-packages: ``loadbench.bench.api`` runs suites,
``loadbench.results`` reads and summarizes what they recorded.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
