"""The hand model: skinning, rotations, anatomy, topology and hand size."""
