"""Benchmarks: per-stage timings, the mesh network and tailor benches, peers and probes."""
