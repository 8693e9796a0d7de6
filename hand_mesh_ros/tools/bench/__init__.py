"""Benchmarks: per-stage timings, the mesh network, tailor and 2D refit benches, peers, probes."""
