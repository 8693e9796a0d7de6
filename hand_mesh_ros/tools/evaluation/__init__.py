"""Evaluations: accuracy, temporal, root-recovery and gate figures."""
