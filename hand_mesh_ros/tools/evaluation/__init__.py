"""``hand-mesh eval``: accuracy, temporal, root-recovery, gate and hard-hand figures, plots."""
