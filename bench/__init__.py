"""The harness: suites, plans, the runner and the Python API, with the rooms that run and measure a sample."""
