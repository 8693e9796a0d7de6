"""Fitting a hand to its evidence: root recovery, the tailor, gates, uncertainty."""
