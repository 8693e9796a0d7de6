"""Evaluation: accuracy, temporal, root-recovery, gate and depth metrics, and reports."""
