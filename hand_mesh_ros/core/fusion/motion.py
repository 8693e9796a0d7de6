"""A fused track's wrist motion: velocity from its recent fused positions, and shifts in time.

Cameras are not synchronised: each camera's hand is brought to the common stamp of a fused
output with the velocity of the fused track it belongs to. The velocity is the least-squares
slope of the track's fused wrist positions over a short window, whose uncertainty follows
from the positions' covariances and the spread of their stamps (the slope of a line fitted
to N points with covariance C at times t_i has covariance C / sum((t_i - mean t)^2)).
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
        covariances_m2: (N, 3, 3) their covariances.
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
    if np.count_nonzero(use) < MIN_VELOCITY_SAMPLES:
        return zero
    t = -age_s[use]
    spread = float(np.sum((t - t.mean()) ** 2))
    if spread <= 0.0:
        return zero
    positions = np.asarray(positions_m, dtype=np.float64)[use]
    velocity = ((t - t.mean()) @ (positions - positions.mean(axis=0))) / spread
    covariance = np.mean(np.asarray(covariances_m2, dtype=np.float64)[use], axis=0) / spread
    return velocity, covariance


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
