"""The articulated depth fit as a step of the RGB-D stage: a depth-fused hand in, a fitted one out.

:meth:`ArticulatedDepthStage.apply` takes a hand whose distance and size the depth fusion
(:mod:`hand_mesh_ros.core.depth.depth_fusion`) has set, segments its depth points
(:func:`~hand_mesh_ros.core.depth.surface_correspondence.segment_hand_points`), fits pose,
size and position to them (:func:`~hand_mesh_ros.core.depth.articulated_fit.fit_hand_to_depth`)
and returns the hand posed anew. Its wrist covariance is the depth fit's own (the 2D
keypoints, the depth points and the priors it fits to, with pose and size marginalised) plus
the camera model's terms; it is not combined with the colour fit's, which holds the same 2D.
A hand the fit cannot use (too few depth points on its visible surface) is returned
unchanged.
"""

from dataclasses import replace

import numpy as np

from hand_mesh_ros.core.depth.articulated_fit import fit_hand_to_depth
from hand_mesh_ros.core.depth.surface_correspondence import MAX_POINTS, segment_hand_points
from hand_mesh_ros.core.depth.surface_model import HandSurface
from hand_mesh_ros.core.fitting.least_squares import mean_reprojection_error_px
from hand_mesh_ros.core.fitting.tailor_steps import side_mirror
from hand_mesh_ros.core.fitting.uncertainty import camera_covariance_m2, hand_confidence
from hand_mesh_ros.core.types import POSITION_DEPTH_FUSED


class ArticulatedDepthStage:
    """Fit depth-fused hands to their depth surface (holds the model's surface, built once)."""

    def __init__(self, hand_model, max_points=MAX_POINTS):
        """Use ``hand_model``; at most ``max_points`` depth points per hand."""
        self.hand_model = hand_model
        self.max_points = int(max_points)
        self._surface = None

    def surface(self, free_bones):
        """Return the :class:`HandSurface` of the model for ``free_bones`` (built once)."""
        if self._surface is None or not np.array_equal(self._surface.free_bones, free_bones):
            self._surface = HandSurface(self.hand_model, free_bones)
        return self._surface

    def apply(self, estimate, depth_m, depth_camera, camera, config, free_bones, size,
              camera_mode):
        """Return (estimate, DepthFitResult): ``estimate`` fitted to the depth when it can be.

        Args:
            estimate: a depth-fused HandEstimate.
            depth_m: (H, W) float depth image, metres.
            depth_camera: CameraModel of the depth pixels.
            camera: the colour camera model (of the observed keypoints).
            config: a DepthConfig (valid range, sensor noise).
            free_bones: (F,) the bones whose rotations the fit changes.
            size: the hand-length measure
                (:class:`~hand_mesh_ros.core.hand.hand_size.HandLength`).
            camera_mode: the colour fit's CameraMode, whose camera terms
                (:func:`~hand_mesh_ros.core.fitting.uncertainty.camera_covariance_m2`) the
                covariance adds.

        """
        surface = self.surface(free_bones)
        pose = np.asarray(estimate.pose_coefficients, dtype=np.float64)
        shape = np.asarray(estimate.shape_coefficients, dtype=np.float64)
        mirror = side_mirror(estimate.side, self.hand_model.native_side)
        # The model's origin in the camera frame: the landmarks minus their posed offsets.
        landmarks = (estimate.keypoints_m if estimate.keypoints_m is not None
                     else estimate.joints_m)
        root_rel = surface.kinematics.pose(pose, shape).keypoints * mirror
        translation = np.asarray(landmarks, dtype=np.float64)[0] - root_rel[0]
        points = segment_hand_points(
            depth_m, depth_camera, estimate.vertices_m, min_depth_m=config.min_depth_m,
            max_depth_m=config.max_depth_m, noise_coeff_per_m=config.noise_coeff_per_m,
            max_points=self.max_points)
        result = fit_hand_to_depth(
            surface, estimate.side, pose, shape, translation, points, camera,
            estimate.observed_keypoints_px, size=size,
            noise_coeff_per_m=config.noise_coeff_per_m)
        if not result.fitted:
            return estimate, result
        covariance = result.covariance_m2 + camera_covariance_m2(result.translation_m,
                                                                 camera_mode)
        return self.posed_estimate(estimate, result, camera, covariance), result

    def posed_estimate(self, estimate, result, camera, covariance_m2):
        """Return ``estimate`` with the pose, shape and position of ``result``.

        ``covariance_m2`` (3, 3) is the wrist covariance it is published with.
        """
        out = self.hand_model.forward(result.pose_aa, result.shape, side=estimate.side)
        t = result.translation_m
        bones = np.array(out.bone_frames, dtype=np.float64)
        bones[:, :3, 3] += t
        landmarks = out.keypoints + t
        keypoints_px = camera.project(landmarks)
        error_px = mean_reprojection_error_px(keypoints_px, estimate.observed_keypoints_px)
        changes = {'joints_m': out.joint_centres + t, 'vertices_m': out.vertices + t,
                   'bone_transforms': bones, 'keypoints_px': keypoints_px,
                   'keypoints_m': landmarks, 'reprojection_error_px': error_px,
                   'pose_coefficients': result.pose_aa, 'shape_coefficients': result.shape,
                   'position_mode': POSITION_DEPTH_FUSED,
                   'position_covariance_m2': covariance_m2,
                   'confidence': hand_confidence(estimate.score, covariance_m2),
                   'hand_length_m': float(estimate.hand_length_m) * result.scale}
        return replace(estimate, **changes)
