"""The pipeline's RGB-D stage: check a frame's depth, fuse it into each hand, keep sizes metric.

Called by :class:`~hand_mesh_ros.core.pipeline.HandMeshPipeline` after the tailor when a
depth image is paired with the frame (``Frame.depth``). The maths is in
:mod:`hand_mesh_ros.core.depth.depth_fusion`; this module applies its result to a
:class:`HandEstimate` (position, size, covariance) and feeds the track's metric hand length
(``Track.metric_length``, which the tailor reads too) so frames without depth stay metric.
The fused position's covariance is the fusion's own plus the camera model's terms
(:func:`~hand_mesh_ros.core.fitting.uncertainty.camera_covariance_m2`, for the colour fit's
camera mode): the fusion solves the 2D keypoints, the depth and the size prior together, so
the colour fit's covariance (the same 2D, the same prior) is not added to it again. With
``depth.articulated`` the fused hand is then fitted to its depth surface
(:class:`~hand_mesh_ros.core.depth.articulated_stage.ArticulatedDepthStage`): pose, size and
position, with that fit's own covariance plus the same camera terms.
"""

from dataclasses import replace
import math

import numpy as np

from hand_mesh_ros.core.camera.camera import CameraMode
from hand_mesh_ros.core.depth import depth_fusion
from hand_mesh_ros.core.depth.articulated_stage import ArticulatedDepthStage
from hand_mesh_ros.core.errors import InputError
from hand_mesh_ros.core.fitting.least_squares import mean_reprojection_error_px
from hand_mesh_ros.core.fitting.uncertainty import camera_covariance_m2, hand_confidence
from hand_mesh_ros.core.hand import hand_size
from hand_mesh_ros.core.types import POSITION_DEPTH_FUSED

#: Relative slack of the gate on a track's depth-observed hand length.
SIZE_GATE_REL = 0.02


def check_depth_image(depth_m, depth_camera, rgb_shape, camera, mode):
    """Return the depth camera model to use for ``depth_m``, or raise InputError.

    Args:
        depth_m: (H, W) float array, metres (0 / NaN = no data).
        depth_camera: the depth image's own CameraModel, or None (then it must have the
            colour image's size and use its camera).
        rgb_shape: shape of the colour image.
        camera: the colour camera model (None without one).
        mode: the frame's position mode (a CameraMode or its value).

    Raises:
        InputError: reason 'depth_bad_array', 'depth_size_mismatch' or
            'depth_needs_camera_info' (depth without a real calibration would claim a
            metric position that is not).

    """
    if (not isinstance(depth_m, np.ndarray) or depth_m.ndim != 2
            or depth_m.dtype.kind != 'f' or min(depth_m.shape) < 3):
        raise InputError('depth must be a (H, W) float array in metres, got %s'
                         % (getattr(depth_m, 'shape', type(depth_m).__name__),),
                         reason='depth_bad_array')
    if CameraMode(mode) != CameraMode.FULL_INTRINSICS or camera is None:
        raise InputError('depth needs the colour camera_info (full intrinsics); position '
                         'mode is %s' % CameraMode(mode).value,
                         reason='depth_needs_camera_info')
    height, width = depth_m.shape
    if depth_camera is not None:
        if (depth_camera.width, depth_camera.height) != (width, height):
            raise InputError('depth image is %dx%d but its camera_info is for %dx%d'
                             % (width, height, depth_camera.width, depth_camera.height),
                             reason='depth_size_mismatch')
        return depth_camera
    if (height, width) != tuple(rgb_shape[:2]):
        raise InputError('depth image is %dx%d, colour image %dx%d, and the depth has no '
                         'camera_info of its own: refused' % (width, height, rgb_shape[1],
                                                              rgb_shape[0]),
                         reason='depth_size_mismatch')
    return camera


def rest_hand_length_m(hand_model, shape):
    """Return the hand length (:mod:`~hand_mesh_ros.core.hand.hand_size`) of ``shape``, m."""
    vertices, joints = hand_model.rest_shape(shape)
    return float(hand_size.hand_length_m(hand_model.keypoints_from(vertices, joints)[0]))


class HandDepthFusion:
    """Depth fusion of one hand model; it keeps no per-track state."""

    def __init__(self, hand_model):
        """Use ``hand_model``."""
        self.hand_model = hand_model
        self.articulated = ArticulatedDepthStage(hand_model)

    def apply(self, estimate, depth_m, depth_camera, camera, config, metric_length, size,
              free_bones):
        """Return (estimate, DepthFusionResult): ``estimate`` fused when the depth allows.

        Args:
            estimate: the tailor's HandEstimate (wrist at ``bone_transforms[0]``).
            depth_m: (H, W) float depth image, metres.
            depth_camera: CameraModel of the depth pixels.
            camera: the colour camera model.
            config: a DepthConfig.
            metric_length: the track's :class:`~hand_mesh_ros.core.track.MetricLength`
                (read as the size prior, fed with the depth's length).
            size: the hand-length measure
                (:class:`~hand_mesh_ros.core.hand.hand_size.HandLength`: ``length_m(shape)``,
                ``with_length(shape, length_m)``).
            free_bones: (F,) the bones whose rotations the articulated fit changes (the
                tailor's ``free_bones``).

        """
        shape = np.asarray(estimate.shape_coefficients, dtype=np.float64)
        length_fit = size.length_m(shape)
        known = metric_length.belief()
        if known is None:
            prior, prior_sigma = 1.0, depth_fusion.HAND_LENGTH_REL_SPREAD
        else:
            prior, prior_sigma = known[0] / length_fit, known[1] / length_fit
        wrist_m = estimate.bone_transforms[0, :3, 3]
        result = depth_fusion.fuse_depth(
            estimate.keypoints_m, estimate.vertices_m, wrist_m, depth_m, depth_camera,
            focal_px=0.5 * (camera.fx + camera.fy), noise_coeff_per_m=config.noise_coeff_per_m,
            min_depth_m=config.min_depth_m, max_depth_m=config.max_depth_m,
            prior_scale=prior, prior_scale_sigma=prior_sigma)
        if not result.fused:
            return estimate, result
        observe_metric_length(metric_length, known, result.scale_observed * length_fit,
                              result.scale_observed_sigma * length_fit)
        shape = size.with_length(shape, result.scale * length_fit)
        covariance = result.covariance_m2 + camera_covariance_m2(result.translation_m,
                                                                 estimate.position_mode)
        fused = scaled_estimate(estimate, wrist_m, result.translation_m, result.scale,
                                camera, covariance, shape)
        if config.articulated:
            fused = self.articulated.apply(fused, depth_m, depth_camera, camera, config,
                                           free_bones, size, estimate.position_mode)[0]
        return fused, result


def observe_metric_length(metric_length, known, length_m, sigma_m):
    """Feed ``length_m`` (its sigma) to the track's metric length unless it is an outlier.

    A length far outside the track's own (``known`` = (length, sigma) or None; a bad frame:
    occlusion, wrong fit) is not evidence about the hand (3 sigma + 2 %).
    """
    if known is None or abs(length_m - known[0]) <= (
            3.0 * math.hypot(sigma_m, known[1]) + SIZE_GATE_REL * known[0]):
        metric_length.observe(length_m, sigma_m)


def scaled_estimate(estimate, translation_m, new_translation_m, scale, camera, covariance_m2,
                    shape):
    """Return ``estimate`` with its hand scaled by ``scale`` about the wrist and moved.

    ``shape`` (S,) is the shape with the scaled size; ``covariance_m2`` (3, 3) the fused
    wrist covariance. The size direction is a uniform scale of the rest hand
    (``test_depth_fusion`` checks it), so scaling the root-relative outputs equals posing
    that shape, at no second skinning cost.
    """
    t_old = np.asarray(translation_m, dtype=np.float64)
    t_new = np.asarray(new_translation_m, dtype=np.float64)

    def move(points):
        return t_new + scale * (np.asarray(points, dtype=np.float64) - t_old)

    bones = np.array(estimate.bone_transforms, dtype=np.float64)
    bones[:, :3, 3] = move(bones[:, :3, 3])
    landmarks = move(estimate.keypoints_m)
    keypoints_px = camera.project(landmarks)
    error_px = mean_reprojection_error_px(keypoints_px, estimate.observed_keypoints_px)
    covariance = np.asarray(covariance_m2, dtype=np.float64)
    return replace(
        estimate, joints_m=move(estimate.joints_m), vertices_m=move(estimate.vertices_m),
        bone_transforms=bones, keypoints_px=keypoints_px, reprojection_error_px=error_px,
        position_mode=POSITION_DEPTH_FUSED, shape_coefficients=np.asarray(shape, np.float64),
        keypoints_m=landmarks, hand_length_m=float(estimate.hand_length_m) * float(scale),
        position_covariance_m2=covariance,
        confidence=hand_confidence(estimate.score, covariance))
