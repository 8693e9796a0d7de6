"""The pipeline's RGB-D stage: check a frame's depth, fuse it into each hand, keep sizes metric.

Called by :class:`~hand_mesh_ros.core.pipeline.HandMeshPipeline` after the tailor when a
depth image is paired with the frame (``Frame.depth``). The maths is in
:mod:`hand_mesh_ros.core.depth.depth_fusion`; this module applies its result to a
:class:`HandEstimate` (position, size, covariance, status) and feeds the track's metric hand
length to the tailor (``HandTailor.observe_hand_length``) so frames without depth stay
metric.
"""

from dataclasses import fields, replace
import math
import time

import numpy as np

from hand_mesh_ros.core.camera.camera import CameraMode
from hand_mesh_ros.core.depth import depth_fusion
from hand_mesh_ros.core.depth.articulated_stage import ArticulatedDepthStage
from hand_mesh_ros.core.errors import InputError
from hand_mesh_ros.core.fitting.uncertainty import hand_confidence
from hand_mesh_ros.core.types import POSITION_DEPTH_FUSED

#: FrameResult.depth_status values besides a refusal reason.
DEPTH_NONE = ''
DEPTH_FUSED = 'fused'
DEPTH_NOT_FUSED = 'not_fused'
#: Relative slack of the gate on a track's depth-observed hand length.
SIZE_GATE_REL = 0.02


def check_depth(depth_m, depth_camera, rgb_shape, camera, mode):
    """Return the depth camera model to use for ``depth_m``, or raise InputError.

    Args:
        depth_m: (H, W) float array, metres (0 / NaN = no data).
        depth_camera: the depth image's own CameraModel, or None (then it must have the
            colour image's size and use its camera).
        rgb_shape: shape of the colour image.
        camera: the colour camera model (None without one).
        mode: the frame's position mode.

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
    if mode != CameraMode.FULL_INTRINSICS.value or camera is None:
        raise InputError('depth needs the colour camera_info (full intrinsics); position '
                         'mode is %s' % mode, reason='depth_needs_camera_info')
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
    """Return the hand length (wrist -> middle fingertip, flat hand) of ``shape``, metres."""
    vertices, joints = hand_model.rest_shape(shape)
    return depth_fusion.hand_length_m(hand_model.keypoints_from(vertices, joints)[0])


class HandDepthFusion:
    """Per-pipeline depth fusion state (metric hand lengths of tracks)."""

    def __init__(self, hand_model):
        """Use ``hand_model`` (for rest hand lengths)."""
        self.hand_model = hand_model
        self.lengths = depth_fusion.DepthSizeTracks()
        self.articulated = ArticulatedDepthStage(hand_model)
        self.last_ms = 0.0
        # The rest wrist -> middle fingertip vector is linear in the shape: d0 + D . beta.
        ends = list(depth_fusion.LENGTH_KEYPOINTS)

        def rest_vector(shape):
            vertices, joints = hand_model.rest_shape(shape)
            keypoints = hand_model.keypoints_from(vertices, joints)[0]
            return keypoints[ends[1]] - keypoints[ends[0]]

        zero = hand_model.zero_shape()
        self._length_d0 = rest_vector(zero)
        self._length_basis = np.stack([rest_vector(unit) - self._length_d0
                                       for unit in np.eye(len(zero))], axis=1)

    def rest_length_m(self, shape):
        """Return :func:`rest_hand_length_m` of ``shape`` (S,) from the linear form."""
        return float(np.linalg.norm(self._length_d0 + self._length_basis @ shape))

    def forget(self, track_id):
        """Drop a track's metric length."""
        self.lengths.forget(track_id)

    def reset(self):
        """Drop every track."""
        self.lengths = depth_fusion.DepthSizeTracks()

    def apply(self, estimate, translation_m, depth_m, depth_camera, camera, config, tailor):
        """Return (estimate, DepthFusionResult): ``estimate`` fused when the depth allows.

        Args:
            estimate: the tailor's HandEstimate (root at ``translation_m``).
            translation_m: (3,) its wrist position.
            depth_m: (H, W) float depth image, metres.
            depth_camera: CameraModel of the depth pixels.
            camera: the colour camera model.
            config: a DepthConfig.
            tailor: the HandTailor (``observe_hand_length`` keeps the track metric).

        """
        start = time.perf_counter()
        # The tailor's hand length (core/hand_size) is the one measure of a hand's size.
        length_fit = tailor.size.length_m(np.asarray(estimate.shape_coefficients))
        known = self.lengths.get(estimate.track_id)
        if known is None:
            prior, prior_sigma = 1.0, depth_fusion.HAND_LENGTH_REL_SPREAD
        else:
            prior, prior_sigma = known[0] / length_fit, known[1] / length_fit
        landmarks_m = (estimate.keypoints_m if estimate.keypoints_m is not None
                       else estimate.joints_m)   # the points the 2D keypoints observe
        result = depth_fusion.fuse_depth(
            landmarks_m, estimate.vertices_m, translation_m, depth_m, depth_camera,
            focal_px=0.5 * (camera.fx + camera.fy), noise_coeff_per_m=config.noise_coeff_per_m,
            min_depth_m=config.min_depth_m, max_depth_m=config.max_depth_m,
            prior_scale=prior, prior_scale_sigma=prior_sigma)
        if not result.fused:
            self.last_ms = (time.perf_counter() - start) * 1e3
            return estimate, result
        length = result.scale_observed * length_fit
        sigma = result.scale_observed_sigma * length_fit
        # A length far outside the track's own (a bad frame: occlusion, wrong fit) is not
        # evidence about the hand: it is not fed to the track (3 sigma + 2 %).
        if known is None or abs(length - known[0]) <= (
                3.0 * math.hypot(sigma, known[1]) + SIZE_GATE_REL * known[0]):
            self.lengths.observe(estimate.track_id, length, sigma)
            tailor.observe_hand_length(estimate.track_id, length, sigma)
        shape = np.asarray(estimate.shape_coefficients, dtype=np.float64)
        shape = tailor.size.with_length(shape, result.scale * tailor.size.length_m(shape))
        fused = scaled_estimate(estimate, translation_m, result.translation_m, result.scale,
                                camera, result.covariance_m2, shape)
        if config.articulated:
            fused = self.articulated.apply(fused, depth_m, depth_camera, camera, config,
                                           tailor)[0]
        self.last_ms = (time.perf_counter() - start) * 1e3
        return fused, result


def scaled_estimate(estimate, translation_m, new_translation_m, scale, camera, covariance_m2,
                    shape):
    """Return ``estimate`` with its hand scaled by ``scale`` about the wrist and moved.

    ``shape`` (S,) is the shape with the scaled size. The size direction is a uniform scale
    of the rest hand (``test_depth_fusion`` checks it), so scaling the root-relative outputs
    equals posing that shape, at no second skinning cost.
    """
    t_old = np.asarray(translation_m, dtype=np.float64)
    t_new = np.asarray(new_translation_m, dtype=np.float64)

    def move(points):
        return t_new + scale * (np.asarray(points, dtype=np.float64) - t_old)

    joints = move(estimate.joints_m)
    bones = np.array(estimate.bone_transforms, dtype=np.float64)
    bones[:, :3, 3] = move(bones[:, :3, 3])
    landmarks = None if estimate.keypoints_m is None else move(estimate.keypoints_m)
    keypoints_px = camera.project(joints if landmarks is None else landmarks)
    error_px = float(np.mean(np.linalg.norm(keypoints_px - estimate.observed_keypoints_px,
                                            axis=1)))
    changes = {'joints_m': joints, 'vertices_m': move(estimate.vertices_m),
               'bone_transforms': bones, 'keypoints_px': keypoints_px,
               'reprojection_error_px': error_px, 'position_mode': POSITION_DEPTH_FUSED,
               'shape_coefficients': np.asarray(shape, dtype=np.float64),
               'keypoints_m': landmarks}
    names = {f.name for f in fields(estimate)}
    for size_field in ('hand_scale_m', 'hand_length_m'):
        if size_field in names:
            changes[size_field] = float(getattr(estimate, size_field)) * float(scale)
    if 'position_covariance_m2' in names:
        changes['position_covariance_m2'] = np.asarray(covariance_m2, dtype=np.float64)
        changes['confidence'] = hand_confidence(estimate.score, covariance_m2)
    return replace(estimate, **changes)
