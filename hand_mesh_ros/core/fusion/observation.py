"""One camera's hand, checked for use in fusion and brought into the fusion frame.

A :class:`HandObservation` is what one camera says about one hand at one stamp: the wrist
position and orientation, the 21 anatomical joints and the wrist position covariance, all in
the frame named by ``frame_id``. :func:`observation_problem` refuses what fusion cannot use
(anything non-finite, a covariance that is not a symmetric positive semi-definite matrix);
:func:`in_frame` expresses an observation in another frame given ``T_target_source``.
"""

from dataclasses import dataclass, field, replace
from typing import Tuple

import numpy as np
from scipy.spatial.transform import Rotation

from hand_mesh_ros.core.hand.topology import NUM_KEYPOINTS, SIDES

#: Smallest variance (m^2) of any axis of a covariance used in fusion: (1 mm)^2. A camera's
#: covariance below it along some axis would claim sub-millimetre certainty and take over
#: that axis of every fused hand.
MIN_VARIANCE_M2 = 1.0e-6
#: Largest variance accepted, (1 m)^2: beyond it the observation says nothing about where
#: the hand is.
MAX_VARIANCE_M2 = 1.0
#: Position modes, most metric first (HandPose.POSITION_* meaning, by name).
POSITION_MODES = ('depth_fused', 'full_intrinsics', 'assumed_fov', 'weak_perspective')


@dataclass(frozen=True)
class HandObservation:
    """One hand seen by one camera at one stamp (metres, seconds, frame ``frame_id``).

    Attributes:
        camera: the camera's key (its namespace or topic).
        track_id: the camera's own track id of this hand.
        side: 'left' or 'right'.
        stamp_ns: the stamp of the image the hand was seen in.
        frame_id: the frame every position and rotation below is expressed in.
        wrist_m: (3,) wrist position.
        rotation: (3, 3) wrist orientation (columns: the wrist frame's axes).
        joints_m: (21, 3) anatomical joint centres, MediaPipe order.
        covariance_m2: (3, 3) wrist position covariance.
        score, side_score, confidence: the camera's figures, in [0, 1].
        position_mode: one of POSITION_MODES.
        pose_coefficients: (B, 3) the hand model's axis-angle per bone; bone 0 (the global
            orientation) is in ``frame_id``, the others relative to their parents.
        details: the camera's message-level extras carried to the fused output unchanged
            (hand model name, pose and shape coefficients, hand length, keypoints, ...).

    """

    camera: str
    track_id: int
    side: str
    stamp_ns: int
    frame_id: str
    wrist_m: np.ndarray
    rotation: np.ndarray
    joints_m: np.ndarray
    covariance_m2: np.ndarray
    score: float
    side_score: float
    confidence: float
    position_mode: str
    pose_coefficients: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    details: Tuple = ()


def observation_problem(obs):
    """Return why ``obs`` cannot be fused ('' when it can): a short reason key."""
    if obs.side not in SIDES:
        return 'unknown_side'
    if obs.position_mode not in POSITION_MODES:
        return 'unknown_position_mode'
    arrays = {'wrist': (obs.wrist_m, (3,)), 'rotation': (obs.rotation, (3, 3)),
              'joints': (obs.joints_m, (NUM_KEYPOINTS, 3)),
              'covariance': (obs.covariance_m2, (3, 3))}
    for name, (value, shape) in arrays.items():
        value = np.asarray(value, dtype=np.float64)
        if value.shape != shape:
            return '%s_shape' % name
        if not np.all(np.isfinite(value)):
            return 'non_finite_%s' % name
    for value in (obs.score, obs.side_score, obs.confidence):
        if not np.isfinite(value):
            return 'non_finite_score'
    rot = np.asarray(obs.rotation, dtype=np.float64)
    if not np.allclose(rot @ rot.T, np.eye(3), atol=1e-4) or np.linalg.det(rot) < 0.0:
        return 'rotation_not_orthonormal'
    return covariance_problem(obs.covariance_m2)


def covariance_problem(covariance_m2):
    """Return why a (3, 3) covariance is unusable ('' when it is usable)."""
    cov = np.asarray(covariance_m2, dtype=np.float64)
    if not np.all(np.isfinite(cov)):
        return 'non_finite_covariance'
    scale = max(float(np.max(np.abs(cov))), MIN_VARIANCE_M2)
    if np.max(np.abs(cov - cov.T)) > 1e-6 * scale:
        return 'covariance_not_symmetric'
    eigenvalues = np.linalg.eigvalsh(cov)
    if eigenvalues[0] < -1e-9 * scale:
        return 'covariance_not_positive'
    if eigenvalues[-1] > MAX_VARIANCE_M2:
        return 'covariance_too_large'
    return ''


def usable_covariance(covariance_m2):
    """Return the symmetric covariance with every eigenvalue at least MIN_VARIANCE_M2."""
    cov = np.asarray(covariance_m2, dtype=np.float64)
    cov = 0.5 * (cov + cov.T)
    eigenvalues, vectors = np.linalg.eigh(cov)
    return (vectors * np.maximum(eigenvalues, MIN_VARIANCE_M2)) @ vectors.T


def in_frame(obs, transform, frame_id):
    """Return ``obs`` expressed in ``frame_id`` given (4, 4) ``transform`` = T_frame_obs."""
    t = np.asarray(transform, dtype=np.float64)
    rot, shift = t[:3, :3], t[:3, 3]
    pose = np.array(obs.pose_coefficients, dtype=np.float64).reshape(-1, 3)
    if len(pose):
        pose[0] = (Rotation.from_matrix(rot) * Rotation.from_rotvec(pose[0])).as_rotvec()
    return replace(
        obs, frame_id=frame_id,
        wrist_m=rot @ np.asarray(obs.wrist_m, dtype=np.float64) + shift,
        rotation=rot @ np.asarray(obs.rotation, dtype=np.float64),
        joints_m=np.asarray(obs.joints_m, dtype=np.float64) @ rot.T + shift,
        covariance_m2=rot @ usable_covariance(obs.covariance_m2) @ rot.T,
        pose_coefficients=pose)
