"""Fuse several cameras' views of one hand: the wrist by inverse covariance weighting.

The wrist is the information-weighted mean of the cameras' wrists (every camera's
covariance already in the fusion frame): ``C = (sum C_i^-1)^-1``, ``x = C sum C_i^-1 x_i``.
A monocular camera is sure across its ray and unsure along it, so two cameras at an angle
each fix the other's weak direction. The articulation (joints relative to the wrist, wrist
orientation, pose coefficients) is that of the best-conditioned camera, the one whose worst
axis (largest covariance eigenvalue) is smallest: a hand's articulation comes from one
image's 2D evidence, and averaging two articulations seen from different viewpoints blurs
fingers that each camera saw sharply.
"""

from dataclasses import dataclass, field
from typing import Tuple

import numpy as np

from hand_mesh_ros.core.fitting.uncertainty import hand_confidence
from hand_mesh_ros.core.fusion.observation import POSITION_MODES


@dataclass(frozen=True)
class FusedHand:
    """One physical hand in the fusion frame at one stamp.

    Attributes:
        fused_id: the fused track's id (stable, never reused).
        side: 'left' or 'right'.
        stamp_ns: the common stamp every camera's hand was brought to.
        frame_id: the fusion frame.
        wrist_m: (3,) fused wrist position; covariance_m2: (3, 3) its covariance.
        rotation: (3, 3) wrist orientation; joints_m: (21, 3) joints (best camera's
            articulation at the fused wrist); pose_coefficients: (B, 3).
        score: the highest camera score; side_score: the mean; confidence: score times the
            probability that the wrist lies within 5 cm under the fused covariance.
        position_mode: the most metric mode among the cameras (POSITION_MODES order).
        cameras: the cameras fused, best first; best: the best camera's observation (its
            message-level details are carried to the output).

    """

    fused_id: int
    side: str
    stamp_ns: int
    frame_id: str
    wrist_m: np.ndarray
    covariance_m2: np.ndarray
    rotation: np.ndarray
    joints_m: np.ndarray
    pose_coefficients: np.ndarray
    score: float
    side_score: float
    confidence: float
    position_mode: str
    cameras: Tuple[str, ...] = ()
    best: object = field(default=None, repr=False)


def fuse_positions(positions_m, covariances_m2):
    """Return ``(position (3,), covariance (3, 3))``: the inverse-covariance weighted mean.

    Args:
        positions_m: (N, 3) positions in one frame.
        covariances_m2: (N, 3, 3) their covariances, positive definite (observations in
            the fusion frame are: :func:`in_frame` floors their eigenvalues).

    """
    information = np.zeros((3, 3))
    weighted = np.zeros(3)
    for position, covariance in zip(np.asarray(positions_m, dtype=np.float64),
                                    covariances_m2):
        inverse = np.linalg.inv(covariance)
        information += inverse
        weighted += inverse @ position
    covariance = np.linalg.inv(information)
    covariance = 0.5 * (covariance + covariance.T)
    return covariance @ weighted, covariance


def worst_axis_variance(covariance_m2):
    """Return the largest eigenvalue of a covariance (the variance of its worst axis)."""
    return float(np.linalg.eigvalsh(np.asarray(covariance_m2, dtype=np.float64))[-1])


def fuse_observations(observations, fused_id, stamp_ns):
    """Return the FusedHand of one hand's observations (all at ``stamp_ns``, one frame)."""
    ranked = sorted(observations, key=lambda o: worst_axis_variance(o.covariance_m2))
    best = ranked[0]
    wrist, covariance = fuse_positions([o.wrist_m for o in ranked],
                                       [o.covariance_m2 for o in ranked])
    score = max(float(o.score) for o in ranked)
    return FusedHand(
        fused_id=int(fused_id), side=best.side, stamp_ns=int(stamp_ns),
        frame_id=best.frame_id, wrist_m=wrist, covariance_m2=covariance,
        rotation=np.asarray(best.rotation, dtype=np.float64),
        joints_m=np.asarray(best.joints_m, dtype=np.float64) - best.wrist_m + wrist,
        pose_coefficients=np.asarray(best.pose_coefficients, dtype=np.float64),
        score=score, side_score=float(np.mean([o.side_score for o in ranked])),
        confidence=float(hand_confidence(score, covariance)),
        position_mode=min((o.position_mode for o in ranked), key=POSITION_MODES.index),
        cameras=tuple(o.camera for o in ranked), best=best)
