"""Soak tests: the node under a long, hostile input stream."""
