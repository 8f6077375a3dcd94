"""Comparing a baseline with a candidate: the statistics, the verdicts and how they read."""
