"""Where samples run: this machine, other Python environments, a Ray cluster."""
