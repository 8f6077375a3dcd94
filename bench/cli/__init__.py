"""The ``loadbench`` command line: one module per verb, a thin shell over the Python API."""
