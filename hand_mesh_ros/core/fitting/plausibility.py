"""Plausibility gates: drop a hand that no real hand in front of the camera could be.

A hand that passed the network, root recovery and the tailor is still checked before it is
published: a fit can run off far beyond the working range, and a 3D hand can disagree with its
own 2D keypoints. Every gate is scale-free: pixel errors are divided by the hand's size in
pixels, so the same scene at another resolution passes or fails the same way.

The gates, in the order they are checked (the first failure names the reason):

``implausible_depth``
    The wrist's depth (camera z) is outside the working range ``[min_depth_m, max_depth_m]``.
``implausible_bones``
    Judged after the fit, against the fitted hand: a bone of the published joints is outside
    ``[min_bone_ratio, max_bone_ratio]`` times the hand model's mean hand (zero shape), or
    the network's 3D hand is outside that band times the published hand's size (the upper
    quartile of its per-bone length ratios: a network hand 3x too large fails, a curled
    finger collapsed in the network's 3D does not).
``inconsistent_3d_2d``
    The network's own root-relative 3D joints, placed at their best translation, reproject
    onto its own 2D keypoints with a mean error above ``max_network_error`` hand sizes
    (the 3D hand cannot explain the 2D evidence: shuffled or mirrored keypoints); or, for a
    hand refitted from its 2D alone, the network's 3D explains the mirror image of the 2D
    keypoints (flipped left to right about their centroid) within that error: the 2D is the
    mirror image of the hand the network saw, which a hand seen from its other side would
    also explain.
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

from hand_mesh_ros.core.errors import HandMeshError
from hand_mesh_ros.core.fitting.least_squares import mean_reprojection_error_px
from hand_mesh_ros.core.fitting.root_recovery import recover_root
from hand_mesh_ros.core.hand.hand_size import PALM_CHAIN as SIZE_KEYPOINTS
from hand_mesh_ros.core.hand.topology import KEYPOINT_PARENTS

#: Percentile of the per-bone length ratios that gives the network hand's relative size.
NETWORK_SCALE_PERCENTILE = 75.0
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


def network_scale(network_joints_m, joints_m):
    """Return the size of ``network_joints_m`` relative to ``joints_m`` (both (21, 3)).

    The upper quartile of the per-bone length ratios: robust to the bones of a network hand
    collapsed where its 3D fails (curled fingers), not to a hand too large as a whole.
    Bones of zero length in ``joints_m`` are not used (1.0 when none is left).
    """
    reference = bone_lengths_m(joints_m)
    lengths = bone_lengths_m(network_joints_m)
    used = (reference > 1e-9) & np.isfinite(lengths)
    if not used.any():
        return 1.0
    return float(np.percentile(lengths[used] / reference[used], NETWORK_SCALE_PERCENTILE))


def mirrored_2d(keypoints_px):
    """Return (21, 2) keypoints flipped left to right about their centroid's vertical line."""
    keypoints = np.array(keypoints_px, dtype=np.float64)
    keypoints[:, 0] = 2.0 * np.nanmean(keypoints[:, 0]) - keypoints[:, 0]
    return keypoints


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

    Rows that are not finite in either are ignored.
    """
    observed = np.asarray(observed_px, dtype=np.float64)
    keypoints = np.asarray(keypoints_px, dtype=np.float64)
    used = np.isfinite(observed).all(axis=1) & np.isfinite(keypoints).all(axis=1)
    if not (size_px > 0.0 and used.any()):
        return math.inf
    return mean_reprojection_error_px(keypoints, observed, used) / size_px


def in_hand_sizes(error_px, size_px):
    """Return ``error_px`` divided by ``size_px``: None for None, inf without a size."""
    if error_px is None:
        return None
    return float(error_px) / size_px if size_px > 0.0 else math.inf


def check_plausibility(*, joints_m, keypoints_px, observed_px, network_joints_rel_m,
                       network_error_px, reference_joints_m, focal_px, speed_mps,
                       min_depth_m, max_depth_m, min_bone_ratio, max_bone_ratio,
                       max_network_error, max_reprojection_error, max_speed_mps,
                       mirrored_network_error_px=None):
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
        min_bone_ratio, max_bone_ratio: allowed bone length / the mean hand's, and network
            hand size / the published hand's.
        max_network_error: allowed mean 2D error of the network's 3D, in hand sizes.
        max_reprojection_error: allowed mean 2D error of the published hand, in hand sizes.
        max_speed_mps: allowed wrist speed.
        mirrored_network_error_px: mean 2D error (px) of the network's 3D at its best
            translation against :func:`mirrored_2d` of ``observed_px``, or None to skip.

    Returns:
        (the first failing reason of :data:`REASONS` or None, dict of the measured figures).

    """
    joints = np.asarray(joints_m, dtype=np.float64)
    depth_m = float(joints[0, 2])
    size_px = hand_size_px(joints, focal_px)
    ratios = bone_length_ratios(joints, reference_joints_m)
    figures = {
        'depth_m': depth_m, 'hand_size_px': size_px,
        'bone_ratio_min': float(ratios.min()), 'bone_ratio_max': float(ratios.max()),
        'network_scale': network_scale(network_joints_rel_m, joints),
        'network_bone_ratio_min': float(bone_length_ratios(network_joints_rel_m,
                                                           reference_joints_m).min()),
        'network_error': in_hand_sizes(network_error_px, size_px),
        'mirror_error': in_hand_sizes(mirrored_network_error_px, size_px),
        'reprojection_error': mean_relative_error(keypoints_px, observed_px, size_px),
        'speed_mps': speed_mps}
    if not min_depth_m <= depth_m <= max_depth_m:
        return 'implausible_depth', figures
    if not (min_bone_ratio <= figures['bone_ratio_min']
            and figures['bone_ratio_max'] <= max_bone_ratio
            and min_bone_ratio <= figures['network_scale'] <= max_bone_ratio):
        return 'implausible_bones', figures
    if (figures['network_error'] is not None
            and not figures['network_error'] <= max_network_error) or (
            figures['mirror_error'] is not None
            and not figures['mirror_error'] > max_network_error):
        return 'inconsistent_3d_2d', figures
    if not figures['reprojection_error'] <= max_reprojection_error:
        return 'implausible_reprojection', figures
    if speed_mps is not None and not speed_mps <= max_speed_mps:
        return 'implausible_speed', figures
    return None, figures


def joints3d_trust(network_error_px, joints_rel_m, translation_m, focal_px,
                   max_network_error):
    """Return in [0, 1] how far the network's 3D joints can be trusted in this frame.

    ``2 (1 - e / max_network_error)``, clipped, where ``e`` is the mean 2D error of the
    network's 3D at its recovered root in hand sizes (:func:`hand_size_px` with the mean
    focal length ``focal_px``): a 3D hand that explains its own 2D keypoints (up to half the
    gate) is trusted fully, one that fails the ``inconsistent_3d_2d`` gate not at all.
    """
    size_px = hand_size_px(np.asarray(joints_rel_m) + translation_m, focal_px)
    if not (size_px > 0.0 and max_network_error > 0.0):
        return 0.0
    error = in_hand_sizes(network_error_px, size_px)
    return float(np.clip(2.0 * (1.0 - error / max_network_error), 0.0, 1.0))


def mirrored_network_error_px(keypoints_px, joints_rel_m, camera, image_size, hfov_deg):
    """Return the mean 2D error (px) of the network's 3D against the mirrored 2D keypoints.

    The network's root-relative joints (21, 3) at their best translation (plain least
    squares root recovery) against :func:`mirrored_2d` of ``keypoints_px``; inf where no
    root puts them there. ``camera`` None: the nominal camera of ``image_size`` and
    ``hfov_deg``.
    """
    try:
        root = recover_root(mirrored_2d(keypoints_px), joints_rel_m, camera,
                            image_size=image_size, hfov_deg=hfov_deg, robust=None)
    except HandMeshError:
        return math.inf
    return float(np.mean(root.residuals_px[root.valid_mask]))
