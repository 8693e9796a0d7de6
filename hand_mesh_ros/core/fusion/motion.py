"""A fused track's wrist motion: velocity from its recent fused positions, and shifts in time.

Cameras are not synchronised: each camera's hand is brought to the common stamp of a fused
output with the velocity of the fused track it belongs to. The velocity is the slope of a
line fitted to the track's fused wrist positions over a short window, each position weighted
by its information (inverse covariance): an output that one camera made alone is weak along
that camera's ray, and moves the slope along that ray little. The slope's covariance is the
velocity block of the inverse of the fit's normal matrix.
"""

from dataclasses import replace

import numpy as np

#: Fewest fused positions in the window for a velocity; with fewer the track is held still.
MIN_VELOCITY_SAMPLES = 3
#: Accelerations the constant-velocity model does not know about when a camera's hand is
#: moved to the common stamp, m/s^2 (1 sigma, a brisk hand movement): over dt its
#: covariance widens by 0.5 * this * dt^2 (1 mm over 20 ms).
UNMODELLED_ACCEL_MPS2 = 5.0
#: The same for matching a camera's hand to a fused track (1 sigma): a hand reversing at
#: 1 m/s within a camera period (about 60 m/s^2) must still match its own track, so the
#: gate allows 0.5 * this * dt^2 (27 mm over 33 ms).
ASSOCIATION_ACCEL_MPS2 = 50.0


def fit_velocity(stamps_ns, positions_m, covariances_m2, window_s, stamp_ns):
    """Return ``(velocity_mps (3,), covariance (3, 3))`` from positions within ``window_s``.

    Args:
        stamps_ns: (N,) stamps of the positions (any order).
        positions_m: (N, 3) fused wrist positions.
        covariances_m2: (N, 3, 3) their covariances (positive definite).
        window_s: only positions at most this much older than ``stamp_ns`` are used;
            0 turns motion off (zero velocity, zero covariance).
        stamp_ns: the stamp the velocity is wanted at.

    With fewer than MIN_VELOCITY_SAMPLES positions, or all at one stamp, the velocity is
    zero and its covariance zero (the prediction then only widens by UNMODELLED_ACCEL_MPS2).
    """
    stamps = np.asarray(stamps_ns, dtype=np.int64)
    zero = (np.zeros(3), np.zeros((3, 3)))
    if window_s <= 0.0 or len(stamps) < MIN_VELOCITY_SAMPLES:
        return zero
    age_s = (int(stamp_ns) - stamps) * 1e-9
    use = (age_s >= 0.0) & (age_s <= window_s)
    t = -age_s[use]
    if np.count_nonzero(use) < MIN_VELOCITY_SAMPLES or np.ptp(t) <= 0.0:
        return zero
    t = t - t.mean()
    information = np.linalg.inv(np.asarray(covariances_m2, dtype=np.float64)[use])
    positions = np.asarray(positions_m, dtype=np.float64)[use]
    normal, rhs = _line_normal_equations(t, positions, information)
    try:
        inverse = np.linalg.inv(normal)
    except np.linalg.LinAlgError:
        return zero
    velocity = (inverse @ rhs)[3:]
    covariance = inverse[3:, 3:]
    return velocity, 0.5 * (covariance + covariance.T)


def _line_normal_equations(t, positions, information):
    """Return the (6, 6) normal matrix and (6,) right side of a line p + v t (weighted)."""
    sum_w = information.sum(axis=0)
    sum_wt = np.einsum('n,nij->ij', t, information)
    sum_wtt = np.einsum('n,nij->ij', t * t, information)
    w_x = np.einsum('nij,nj->ni', information, positions)
    normal = np.block([[sum_w, sum_wt], [sum_wt, sum_wtt]])
    return normal, np.concatenate([w_x.sum(axis=0), t @ w_x])


def predicted_covariance(covariance_m2, velocity_covariance, dt_s,
                         accel_mps2=UNMODELLED_ACCEL_MPS2):
    """Return the covariance of a position moved by ``dt_s`` with an uncertain velocity.

    ``accel_mps2``: the unmodelled acceleration (1 sigma) the prediction allows for.
    """
    return (np.asarray(covariance_m2, dtype=np.float64) + dt_s ** 2 * velocity_covariance
            + np.eye(3) * (0.5 * accel_mps2 * dt_s ** 2) ** 2)


def shifted(obs, stamp_ns, velocity_mps, velocity_covariance):
    """Return ``obs`` moved to ``stamp_ns`` with the given wrist velocity (rigidly).

    The whole hand moves with the wrist; the covariance grows with the time moved over.
    """
    dt_s = (int(stamp_ns) - int(obs.stamp_ns)) * 1e-9
    step = np.asarray(velocity_mps, dtype=np.float64) * dt_s
    return replace(obs, stamp_ns=int(stamp_ns), wrist_m=obs.wrist_m + step,
                   joints_m=obs.joints_m + step,
                   covariance_m2=predicted_covariance(obs.covariance_m2, velocity_covariance,
                                                      dt_s))
