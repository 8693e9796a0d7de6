"""Which camera's hand is which fused hand: side, a Mahalanobis gate, one-to-one per camera.

Each camera's hands are matched to the fused tracks by the squared Mahalanobis distance of
the wrists under the sum of their covariances (a camera's large error along its ray makes it
tolerant along the ray only). A pair is allowed only for the same side and within the gate;
every camera gives a fused track at most one hand, so two hands of the same side close
together stay two hands. Among allowed pairs the assignment with the least total distance
wins (Hungarian method). The pair a camera's own track already had keeps priority and a
gate LINK_GATE_SCALE times wider: the camera's tracker already followed that hand from
image to image, so the link only breaks when the camera's track clearly jumped to another
hand (a fused track's prediction lags a sudden turn; a lagging prediction must not split a
hand in two).
"""

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.stats import chi2

#: Cost of a pair that is not allowed (outside the gate or another side).
_FORBIDDEN = 1.0e9
#: How much wider (in squared distance) the gate is for a camera track's linked pair.
LINK_GATE_SCALE = 16.0
#: Cost discount of the pair a camera's track was linked to last time: it wins over any
#: other pair inside the gate.
_LINK_BONUS = 1.0e6


def gate_distance2(probability):
    """Return the squared Mahalanobis distance of the gate for ``probability`` (3 dof)."""
    return float(chi2.ppf(probability, df=3))


def mahalanobis2(x_m, cov_x, y_m, cov_y):
    """Return the squared Mahalanobis distance of ``x - y`` under ``cov_x + cov_y``."""
    diff = np.asarray(x_m, dtype=np.float64) - np.asarray(y_m, dtype=np.float64)
    return float(diff @ np.linalg.solve(np.asarray(cov_x) + np.asarray(cov_y), diff))


def assign(distances2, allowed, linked, gate2):
    """Return ``[(row, column)]``: one-to-one pairs of least total distance inside the gate.

    Args:
        distances2: (R, C) squared Mahalanobis distances (rows: one camera's hands,
            columns: fused tracks).
        allowed: (R, C) bool, False where sides differ.
        linked: (R, C) bool, True for the track each hand's camera track was linked to.
        gate2: the gate (squared distance); LINK_GATE_SCALE * gate2 for linked pairs.

    """
    distances2 = np.asarray(distances2, dtype=np.float64).reshape(len(allowed), -1)
    if distances2.size == 0:
        return []
    linked = np.asarray(linked, dtype=bool)
    inside = np.asarray(allowed, dtype=bool) & (
        distances2 <= np.where(linked, LINK_GATE_SCALE * gate2, gate2))
    cost = np.where(inside, distances2 - _LINK_BONUS * linked, _FORBIDDEN)
    rows, columns = linear_sum_assignment(cost)
    return [(int(r), int(c)) for r, c in zip(rows, columns) if inside[r, c]]
