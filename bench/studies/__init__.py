"""Studies of loadbench itself: its overhead, its accuracy, its detection rates.

Runnable scripts (``python -m loadbench.bench.studies.<name>``) whose figures the docs quote;
importable because a worker imports a study's target by name, never imported by the product.
"""
