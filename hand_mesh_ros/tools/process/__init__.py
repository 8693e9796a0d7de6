"""``hand-mesh process``: recordings in, the node's outputs out, offline (no DDS)."""
