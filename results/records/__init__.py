"""Records on disk and in memory: the schema, the run directory, the pandas frame, baselines."""
