"""Checkpoints: what a local directory holds, hub ids resolved from the cache, the built-in tiny ones."""
