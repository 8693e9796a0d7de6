"""Plausibility gates: drop a hand that no real hand in front of the camera could be.

A hand that passed the network, root recovery and the tailor is still checked before it is
published (cause 3 of issue 11: a fit that ran off to 864 m, or a 3D hand that disagrees with
its own 2D keypoints by 88 px, was published). Every gate is scale-free: pixel errors are
divided by the hand's size in pixels, so the same scene at another resolution passes or fails
the same way.

The gates, in the order they are checked (the first failure names the reason):

``implausible_depth``
    The wrist's depth (camera z) is outside the working range ``[min_depth_m, max_depth_m]``.
``implausible_bones``
    A bone of the network's 3D joints or of the published joints is outside
    ``[min_bone_ratio, max_bone_ratio]`` times the hand model's mean hand (zero shape). The
    ratios are per bone: a hand 3x too large, or one finger twice its length, fails.
``inconsistent_3d_2d``
    The network's own root-relative 3D joints, placed at their best translation, reproject
    onto its own 2D keypoints with a mean error above ``max_network_error`` hand sizes:
    the 3D hand cannot explain the 2D evidence (shuffled or mirrored keypoints).
``implausible_reprojection``
    The published hand's keypoints reproject onto the observed ones with a mean error above
    ``max_reprojection_error`` hand sizes.
``implausible_speed``
    The wrist moved faster than ``max_speed_mps`` since the track's last published hand
    (only checked within ``max_gap_s`` of it).

Hand size in pixels: the wrist -> middle-finger MCP length of the published joints times the
mean focal length divided by the wrist's depth (pose-independent, unlike a 2D extent that
shrinks when the hand is seen edge-on).
"""

import math

import numpy as np

from hand_mesh_ros.core.hand.hand_size import PALM_CHAIN as SIZE_KEYPOINTS
from hand_mesh_ros.core.hand.topology import KEYPOINT_PARENTS

#: Rejection reasons, in checking order.
REASONS = ('implausible_depth', 'implausible_bones', 'inconsistent_3d_2d',
           'implausible_reprojection', 'implausible_speed')


def bone_lengths_m(joints_m):
    """Return the 20 bone lengths (20,) of (21, 3) keypoints in MediaPipe order."""
    joints = np.asarray(joints_m, dtype=np.float64)
    parents = np.asarray(KEYPOINT_PARENTS[1:])
    return np.linalg.norm(joints[1:] - joints[parents], axis=1)


def bone_length_ratios(joints_m, reference_joints_m):
    """Return (20,) bone lengths of ``joints_m`` divided by those of ``reference_joints_m``.

    A zero-length reference bone gives a ratio of 1 (it cannot be judged).
    """
    reference = bone_lengths_m(reference_joints_m)
    lengths = bone_lengths_m(joints_m)
    safe = reference > 1e-9
    return np.where(safe, lengths / np.where(safe, reference, 1.0), 1.0)


def hand_size_px(joints_m, focal_px):
    """Return the hand's size in pixels (wrist -> middle MCP length * focal / wrist depth).

    ``joints_m`` (21, 3) camera-frame joints, ``focal_px`` the mean focal length. Returns 0
    for a hand at or behind the camera.
    """
    joints = np.asarray(joints_m, dtype=np.float64)
    depth = float(joints[0, 2])
    length = float(np.linalg.norm(joints[SIZE_KEYPOINTS[1]] - joints[SIZE_KEYPOINTS[0]]))
    return float(focal_px) * length / depth if depth > 0.0 else 0.0


def mean_relative_error(keypoints_px, observed_px, size_px):
    """Return the mean distance (21, 2) <-> (21, 2) in hand sizes (inf without a size).

    Rows where ``observed_px`` is not finite are ignored.
    """
    if not size_px > 0.0:
        return math.inf
    diff = np.asarray(keypoints_px, dtype=np.float64) - np.asarray(observed_px, np.float64)
    dist = np.linalg.norm(diff, axis=1)
    dist = dist[np.isfinite(dist)]
    return float(np.mean(dist)) / size_px if dist.size else math.inf


def check_plausibility(*, joints_m, keypoints_px, observed_px, network_joints_rel_m,
                       network_error_px, reference_joints_m, focal_px, speed_mps,
                       min_depth_m, max_depth_m, min_bone_ratio, max_bone_ratio,
                       max_network_error, max_reprojection_error, max_speed_mps):
    """Return (reason or None, figures) for one hand; see the module docstring.

    Args:
        joints_m: (21, 3) published joints, camera frame, metres.
        keypoints_px: (21, 2) the published joints projected (raw-image px).
        observed_px: (21, 2) the network's 2D keypoints (raw-image px).
        network_joints_rel_m: (21, 3) the network's root-relative 3D joints.
        network_error_px: mean 2D error (px) of those joints at their best translation
            (root recovery) against ``observed_px``, or None to skip that gate.
        reference_joints_m: (21, 3) joints of the hand model's mean hand (any pose).
        focal_px: mean focal length of the camera (nominal one without a camera), px.
        speed_mps: wrist speed since the track's last published hand, or None.
        min_depth_m, max_depth_m: working range of the wrist's depth.
        min_bone_ratio, max_bone_ratio: allowed bone length / the mean hand's.
        max_network_error: allowed mean 2D error of the network's 3D, in hand sizes.
        max_reprojection_error: allowed mean 2D error of the published hand, in hand sizes.
        max_speed_mps: allowed wrist speed.

    Returns:
        (the first failing reason of :data:`REASONS` or None, dict of the measured figures).

    """
    joints = np.asarray(joints_m, dtype=np.float64)
    depth_m = float(joints[0, 2])
    size_px = hand_size_px(joints, focal_px)
    network_ratios = bone_length_ratios(network_joints_rel_m, reference_joints_m)
    ratios = bone_length_ratios(joints, reference_joints_m)
    figures = {
        'depth_m': depth_m, 'hand_size_px': size_px,
        'bone_ratio_min': float(min(network_ratios.min(), ratios.min())),
        'bone_ratio_max': float(max(network_ratios.max(), ratios.max())),
        'network_error': (None if network_error_px is None
                          else float(network_error_px) / size_px if size_px > 0.0
                          else math.inf),
        'reprojection_error': mean_relative_error(keypoints_px, observed_px, size_px),
        'speed_mps': speed_mps}
    if not min_depth_m <= depth_m <= max_depth_m:
        return 'implausible_depth', figures
    if not (min_bone_ratio <= figures['bone_ratio_min']
            and figures['bone_ratio_max'] <= max_bone_ratio):
        return 'implausible_bones', figures
    if figures['network_error'] is not None and not (
            figures['network_error'] <= max_network_error):
        return 'inconsistent_3d_2d', figures
    if not figures['reprojection_error'] <= max_reprojection_error:
        return 'implausible_reprojection', figures
    if speed_mps is not None and not speed_mps <= max_speed_mps:
        return 'implausible_speed', figures
    return None, figures
