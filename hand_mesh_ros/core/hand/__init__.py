"""The hand model: topology, anatomy, skinning, rotations and hand size."""
