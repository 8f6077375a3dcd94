"""A history of runs per machine, its change points, and what they say (``loadbench history``)."""
