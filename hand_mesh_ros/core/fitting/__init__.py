"""Fitting the hand model: root recovery, the tailor, the 2D refit and the gates."""
