"""What this machine's storage and memory allow, measured once and cached."""
