"""``hand-mesh eval``: accuracy, temporal and root-recovery figures, reports and plots."""
