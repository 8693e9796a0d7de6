"""Benchmarks: per-stage timings, the tailor, the 2D refit and peers."""
