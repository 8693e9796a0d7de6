"""Fitting a hand to its evidence: root recovery, the tailor, the 2D refit, gates, uncertainty."""
