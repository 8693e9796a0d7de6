"""The mesh network's output for one tracked hand, decoded once, in camera-aligned axes.

The tracker gives each hand its crop's :class:`~hand_mesh_ros.core.tracking.mesh_outputs.
MeshOutputs` (lifted as a right and as a left hand); :func:`decode_network_hand` picks the
track's side and rotates the crop-aligned outputs about the optical axis into the camera's
axes.
"""

from dataclasses import dataclass

import numpy as np

from hand_mesh_ros.core.errors import HandMeshError
from hand_mesh_ros.core.hand import rotations


@dataclass(frozen=True)
class NetworkHand:
    """One hand as the mesh network sees it (raw-image px; metres; camera-aligned axes).

    Attributes:
        track_id: the tracker's id of the hand.
        side: 'left' or 'right' (the track's smoothed handedness).
        side_score: probability of ``side``.
        presence: the network's hand presence in [0, 1].
        keypoints_px: (21, 2) the network's 2D keypoints in the raw image.
        pose_aa: (J, 3) the hand model's pose for ``side``, root rotation in camera axes.
        shape: (S,) the hand model's shape coefficients for ``side``.
        joints_rel_m: (21, 3) the network mesh's keypoints for ``side``, root-relative,
            camera-aligned axes.

    """

    track_id: int
    side: str
    side_score: float
    presence: float
    keypoints_px: np.ndarray
    pose_aa: np.ndarray
    shape: np.ndarray
    joints_rel_m: np.ndarray


def camera_root_pose(pose_aa, roi_rotation_rad, side):
    """Return ``pose_aa`` with its root rotation expressed in the camera-aligned frame.

    The network's lifting gives the root rotation in the crop's world frame; the crop is
    rotated by ``roi_rotation_rad`` about the optical axis. A left hand is a mirrored right
    model (x -> -x), for which a rotation about z by theta acts as one by -theta.
    """
    angle = roi_rotation_rad if side == 'right' else -roi_rotation_rad
    pose = np.array(pose_aa, dtype=np.float64)
    root = rotations.rotation_about_z(angle) @ rotations.axis_angle_to_matrix(pose[0])
    pose[0] = rotations.matrix_to_axis_angle(root)
    return pose


def decode_network_hand(hand) -> NetworkHand:
    """Return the :class:`NetworkHand` of a TrackedHand (its ``mesh`` outputs for its side).

    Raises:
        HandMeshError: the hand has no mesh outputs (a landmark-only model).

    """
    if hand.mesh is None:
        raise HandMeshError('the hand session has no mesh outputs: run `hand-mesh '
                            'setup-models`')
    pose_aa, shape, keypoints_m = hand.mesh.for_side(hand.side)
    rotation = hand.roi.rotation_rad
    joints_rel = (keypoints_m - keypoints_m[0]) @ rotations.rotation_about_z(rotation).T
    return NetworkHand(
        track_id=int(hand.track_id), side=hand.side, side_score=float(hand.handedness_score),
        presence=float(hand.presence), keypoints_px=np.asarray(hand.keypoints_px),
        pose_aa=camera_root_pose(pose_aa, rotation, hand.side), shape=shape,
        joints_rel_m=joints_rel)
