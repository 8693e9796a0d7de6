"""Depth: checking an aligned depth image and fusing it with a hand estimate."""
