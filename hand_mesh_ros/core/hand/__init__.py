"""The hand: topology, hand size, anatomy, the skinned hand model and its rotations."""
