"""Soak tests: the node under load for a long time."""
