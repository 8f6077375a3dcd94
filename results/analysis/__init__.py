"""Statistics of records: metrics, per-case summaries, wide tables, shares of the ceiling."""
