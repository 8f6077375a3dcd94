"""Studies of loadbench itself: its overhead, its accuracy, its detection rates.

Runnable scripts (``python -m loadbench.bench.studies.<name>``) whose figures the docs quote;
importable because the fork server needs them, never imported by the product.
"""
