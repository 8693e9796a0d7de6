"""Fitting: root recovery, the tailor optimisation, uncertainty and plausibility gates."""
