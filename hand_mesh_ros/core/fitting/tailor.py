"""The tailor: per-frame refinement of a hand's pose, shape and position (HandTailor 3.4).

For each hand and frame:

1. **Scale step** (HandTailor eq. 12): the closed-form scale aligning the model's bone lengths
   to the network's root-relative 3D joints gives this frame's hand size, as a hand length
   (wrist crease to middle fingertip, :mod:`hand_mesh_ros.core.hand.hand_size`); the track's
   :class:`SizeEstimate` fuses it with the population prior (or ``hand_length_m``, the
   user's known length) and metric observations (:meth:`HandTailor.observe_hand_length`).
   The model's size shape coefficient is set to the fused length, the network's joints are
   rescaled to it and the initial translation follows (depth scales with size for the
   same image).
2. **Levenberg-Marquardt** on the free bone rotations, the other shape coefficients and the
   translation, minimising (units: mm, rad)

   - robust (Huber) 2D reprojection of the 21 model keypoints through the full camera model
     (distortion included), weighted by the keypoint confidences; residuals in millimetres
     at the hand's depth (pixels * depth / focal length), so the fit is the same at any
     image resolution,
   - consistency with the network's (rescaled) root-relative 3D joints,
   - soft joint limits and the unnatural-twist constraints (HAMR eq. 6-7, HandTailor eq. 10),
   - an identity prior on the shape (eq. 11) and a weak prior towards the network's pose,
   - temporal terms from the track: the previous pose, one running shape per track, and a
     constant-velocity prediction of the translation.

   Jacobians are analytic (:mod:`hand_mesh_ros.core.fitting.kinematics_jacobian`), the start is the
   better of the network's estimate and the track's prediction. A candidate step is judged
   by its cost alone and linearised only when the iterations go on from it
   (:mod:`hand_mesh_ros.core.fitting.tailor_cost`); so after a converged step (cost lowered by less
   than ``min_relative_gain``) the fit's covariance uses the Gauss-Newton Hessian of the
   iterate one step before the solution, with the solution's residual cost.

Without a camera model the projection is weak perspective (HandTailor 3.5); ``refine`` then
needs ``image_size`` for its nominal camera (a CameraModel in ``weak_perspective`` mode
works too). Left hands are fitted with the native (right) model mirrored (x -> -x) and the
mirror enters the Jacobian. Bones that rotate about the root's centre like the root (anny's
'wrist') are redundant for the keypoints; their rotation is folded into the root and
returned as zero. The hand's size lives in the model's size shape coefficient, so
``model.forward(result.pose_aa, result.shape, side).keypoints + result.translation_m``
equals ``result.joints_m``.
"""

from dataclasses import replace
import math
from typing import Hashable, Optional, Sequence, Tuple

import numpy as np

from hand_mesh_ros.core.camera.camera import CameraModel
from hand_mesh_ros.core.config import TailorConfig
from hand_mesh_ros.core.errors import TailorError
from hand_mesh_ros.core.fitting.kinematics_jacobian import KeypointKinematics, rodrigues
from hand_mesh_ros.core.fitting.tailor_cost import N_ROWS, TailorCost, TailorProblem
from hand_mesh_ros.core.fitting.tailor_terms import (bone_length_scale, check_depth, check_inputs,
                                                     levenberg_marquardt, mean_pixel_error,
                                                     nearest_equivalent_rotation, PoseConstraints,
                                                     Projector, rotation_log, TailorResult,
                                                     TrackState)
from hand_mesh_ros.core.fitting.uncertainty import last_block_covariance, position_covariance_m2
from hand_mesh_ros.core.hand.hand_model import HandModel
from hand_mesh_ros.core.hand.hand_size import HandLength, SizeEstimate

#: Frames after which the running shape estimate forgets older evidence.
_MEMORY_FRAMES = 300
#: Smoothing of the translation velocity of the constant-velocity model.
_VELOCITY_SMOOTHING = 0.5
#: Network 3D joints whose bone lengths are outside this ratio of the model's are ignored.
_SCALE_RANGE = (0.5, 2.0)
#: The metric weights (per mm^2 of 3D joints and of translation) are per mm of a hand whose
#: palm (wrist -> middle MCP, metres) is this long at the model's proportions (the size they
#: were tuned with; 0.175 m hand length): they scale with the hand's length, so that the
#: fit is scale-equivariant (a hand k times larger at k times the depth gives the same image
#: and the same, k times larger, solution).
_WEIGHT_PALM_M = 0.095
#: Tracks with fewer size observations repeat the scale step inside a frame.
_YOUNG_FRAMES = 5


class HandTailor:
    """Refine hands against 2D keypoints, network 3D joints, priors and their track's history."""

    def __init__(self, model: HandModel, config: Optional[TailorConfig] = None) -> None:
        """Prepare the kinematics of ``model`` (a HandModel) and empty track state."""
        self.model = model
        self.config = TailorConfig() if config is None else config
        rest_rot = model.rest_bone_rotations
        self._folded = []  # (bone, rel rotation) of bones folded into the root
        for bone in range(1, model.n_bones):
            if (model.parents[bone] == 0
                    and np.allclose(model.rest_joints_m[bone], model.rest_joints_m[0])):
                self._folded.append((bone, rest_rot[0].T @ rest_rot[bone]))
        folded = {bone for bone, _ in self._folded}
        self.free_bones = np.array([j for j in range(model.n_bones) if j not in folded])
        self.kinematics = KeypointKinematics(model, self.free_bones)
        # Rest keypoints are linear in the shape: (21, 3) + (21, 3, S) . beta.
        zero_pose = model.zero_pose()
        self._kp_rest0 = self.kinematics.evaluate(zero_pose, model.zero_shape(), False)[0]
        self._kp_rest_basis = np.stack([
            self.kinematics.evaluate(zero_pose, unit, False)[0] - self._kp_rest0
            for unit in np.eye(model.n_shapes)], axis=-1)
        self.size = HandLength(self._kp_rest0, self._kp_rest_basis)
        # Inside one frame the fit holds the palm (wrist -> middle MCP) at the value the fused
        # hand length gives with the frame's starting proportions; the fingers' length stays
        # free (holding the whole hand length instead lets palm and fingers trade off and
        # bent the ASL video's hands: PA-MPJPE 9.3 -> 13 mm).
        self._palm = HandLength(self._kp_rest0, self._kp_rest_basis, chain=(0, 9))
        self._palm_share = float(self._palm.length_m(model.zero_shape())
                                 / self.size.length_m(model.zero_shape()))
        self._weight_length_m = _WEIGHT_PALM_M / self._palm_share
        self.free_shapes = np.array([s for s in range(model.n_shapes) if s != self.size.index])
        self.constraints = PoseConstraints(model, self.free_bones, self.kinematics.levels)
        self._n_pose = 3 * len(self.free_bones)
        self._n_shape = len(self.free_shapes)
        self._n = self._n_pose + self._n_shape + 3
        self.cost = TailorCost(self.kinematics, self.free_shapes, self._palm, self.constraints,
                               self._weight_length_m)
        self._tracks = {}
        self._sizes = {}  # track id -> SizeEstimate

    # ------------------------------------------------------------------ track state
    def forget(self, track_id: Hashable) -> None:
        """Drop the temporal state and size evidence of ``track_id`` (no error if unknown)."""
        self._tracks.pop(track_id, None)
        self._sizes.pop(track_id, None)

    def reset(self) -> None:
        """Drop every track's temporal state and size evidence."""
        self._tracks.clear()
        self._sizes.clear()

    def has_track(self, track_id: Hashable) -> bool:
        """Return True when ``track_id`` has temporal state."""
        return track_id in self._tracks

    def predicted_translation(self, track_id: Hashable,
                              timestamp_s: float) -> Optional[np.ndarray]:
        """Return the track's constant-velocity root prediction (3,) at ``timestamp_s``.

        None when the track is unknown or its last update is older than ``max_gap_s``.
        """
        track = self._tracks.get(track_id)
        if track is None:
            return None
        dt = float(timestamp_s) - track.timestamp_s
        if not 0.0 < dt <= self.config.max_gap_s:
            return None
        return track.translation + track.velocity * dt

    def hand_length_m(self, track_id: Hashable) -> Tuple[float, float]:
        """Return (mean, sigma) of the track's hand length; the prior for an unknown track."""
        return self._sizes.get(track_id, SizeEstimate()).belief(self.config.hand_length_m)

    def observe_hand_length(self, track_id: Hashable, length_m: float,
                            sigma_m: float) -> None:
        """Fuse a metric hand length (metres, its sigma; e.g. from depth) into a track's size.

        Later frames use it; :meth:`forget` drops it. Raises ValueError unless both are
        finite and positive.
        """
        length_m, sigma_m = float(length_m), float(sigma_m)
        if not (math.isfinite(length_m) and math.isfinite(sigma_m)
                and length_m > 0.0 and sigma_m > 0.0):
            raise ValueError('hand length and its sigma must be finite and positive, got '
                             '%r, %r' % (length_m, sigma_m))
        self._sizes.setdefault(track_id, SizeEstimate()).add_metric(length_m, sigma_m)

    # ------------------------------------------------------------------ helpers
    def fold_pose(self, pose_aa: np.ndarray) -> np.ndarray:
        """Return (J, 3) ``pose_aa`` with redundant bones' rotations folded into the root."""
        pose = np.array(pose_aa, dtype=np.float64)
        bones = [bone for bone, _ in self._folded]
        if not bones or not pose[bones].any():
            return pose
        rots = rodrigues(pose[[0] + bones])
        rot0 = rots[0]
        for (bone, rel), rot in zip(self._folded, rots[1:]):
            rot0 = rot0 @ rel @ rot @ rel.T
            pose[bone] = 0.0
        pose[0] = rotation_log(rot0)
        return pose

    def _fused_size(self, estimate, size_obs_m):
        """Return (length, sigma, new SizeEstimate) after adding ``size_obs_m`` (or None)."""
        estimate = estimate.copy()
        if size_obs_m is not None:
            estimate.add_network(size_obs_m)
        mean, sigma = estimate.belief(self.config.hand_length_m)
        return mean, sigma, estimate

    def _size_observation(self, shape, net, valid3d):
        """Return the hand size implied by the network's joints (eq. 12), or None.

        The model's bone lengths do not depend on the pose, so they are taken from the rest
        keypoints of ``shape``.
        """
        rest = self._kp_rest0 + self._kp_rest_basis @ shape
        valid = valid3d.copy()
        valid[0] = True
        ratio = bone_length_scale(rest, net, valid)
        if ratio is None or not _SCALE_RANGE[0] < ratio < _SCALE_RANGE[1]:
            return None
        return ratio * self.size.length_m(shape)

    def _params(self, pose, shape, translation):
        """Pack the free parameters (n,)."""
        return self.cost.pack(pose, shape, translation)

    # ------------------------------------------------------------------ refinement
    def refine(self, track_id: Hashable, keypoints_px: np.ndarray,
               keypoint_weights: Optional[np.ndarray], joints_rel_m: np.ndarray,
               init_pose_aa: np.ndarray, init_shape: np.ndarray,
               init_translation_m: np.ndarray, camera: Optional[CameraModel],
               timestamp_s: float, side: str, *,
               image_size: Optional[Sequence[int]] = None,
               temporal: Optional[bool] = None,
               joints3d_trust: float = 1.0,
               max_depth_m: float = 10.0) -> TailorResult:
        """Refine one hand in one frame; update (if temporal) and use its track's state.

        Args:
            track_id: hashable id of the hand's track.
            keypoints_px: (21, 2) observed keypoints in raw-image pixels (NaN rows ignored).
            keypoint_weights: (21,) confidences >= 0, or None for ones.
            joints_rel_m: (21, 3) network root-relative joints, camera-frame orientation.
            init_pose_aa: (J, 3) network pose (native parametrisation, bone 0 in camera axes).
            init_shape: (S,) network shape coefficients.
            init_translation_m: (3,) root position, e.g. from root recovery.
            camera: a CameraModel, or None for weak perspective (needs ``image_size``).
            timestamp_s: the frame's time in seconds.
            side: 'left' or 'right'.
            image_size: (width, height) px, used only without a camera model.
            temporal: override ``config.temporal`` for this call.
            joints3d_trust: in [0, 1], how far the network's 3D joints can be trusted in
                this frame; their weight is ``config.w_joints3d`` times it.
            max_depth_m: a hand whose root would lie farther (at the start, after the scale
                step, or at the end) is refused with reason 'too_far'.

        Returns:
            TailorResult with finite values.

        Raises:
            TailorError: degenerate or non-finite input or result.
            CameraModelError: no camera and ``image_size`` missing or not positive.
            ValueError: wrongly shaped arguments or an unknown side.

        """
        cfg = self.config
        temporal = cfg.temporal if temporal is None else bool(temporal)
        obs, kp_w, net, valid3d, pose0, shape0, t0 = check_inputs(
            self.model, keypoints_px, keypoint_weights, joints_rel_m, init_pose_aa, init_shape,
            init_translation_m, side)
        projector = Projector(camera, image_size)
        mirror = np.array([-1.0 if side != self.model.native_side else 1.0, 1.0, 1.0])
        track = self._tracks.get(track_id) if temporal else None
        dt = None if track is None else float(timestamp_s) - track.timestamp_s
        moving = track is not None and 0.0 < dt <= cfg.max_gap_s
        pose0 = self.fold_pose(pose0)
        if track is not None:
            # The same orientation has many rotation vectors: use the one nearest the track's.
            pose0[0] = nearest_equivalent_rotation(pose0[0], track.pose[0])

        # Error of the network's mesh, then the scale step (eq. 12) and the size fusion.
        kp_model0 = self.kinematics.evaluate(pose0, shape0, jacobians=False)[0]
        init_points = kp_model0 * mirror + t0
        # Projected together with the first linearisation (one camera call) when possible.
        merge = not projector.weak and init_points[:, 2].min() >= projector.min_depth_m
        before = None
        if not merge:
            before = self._reprojection_error(projector, init_points, t0, obs, kp_w)
        shape_ref = shape0 if track is None else track.shape
        net_raw = net
        size_obs = self._size_observation(shape_ref, net_raw, valid3d)
        size_before = self._sizes.get(track_id, SizeEstimate()).copy(network=track is not None)
        size_m, size_sd, size_est = self._fused_size(size_before, size_obs)
        shape_fixed = self.size.with_length(shape_ref, size_m)
        if size_obs is not None:
            net = net_raw * (size_m / size_obs)
            t0 = t0 * (size_m / size_obs)
        else:
            valid3d = np.zeros(21, dtype=bool)
        check_depth(t0, max_depth_m, 'the scaled start')
        # Scale-free 2D residuals: pixels times depth / focal length = millimetres at the
        # hand's depth (fixed for the frame), so the same scene at any resolution costs the
        # same and the 2D and 3D terms share a unit.
        mm_per_px = 1e3 * max(float(t0[2]), projector.min_depth_m) / projector.mean_focal_px()

        # Quadratic priors, diagonal: weights (n,) and centres (n,).
        n_pose, n_shape = self._n_pose, self._n_shape
        x_init = self._params(pose0, shape_fixed, t0)
        prior_w = np.zeros(self._n)
        prior_wc = np.zeros(self._n)
        prior_w[:n_pose] += cfg.w_pose_prior
        prior_wc[:n_pose] += cfg.w_pose_prior * x_init[:n_pose]
        shape_conf = 1.0 if track is None else float(track.shape_frames)
        shape_sl = slice(n_pose, n_pose + n_shape)
        prior_w[shape_sl] += cfg.w_shape + cfg.w_shape_track * shape_conf
        prior_wc[shape_sl] += cfg.w_shape_track * shape_conf * shape_ref[self.free_shapes]
        starts = [x_init]
        t_pred = None
        if moving:
            x_prev = self._params(track.pose, shape_fixed, track.translation)
            # The temporal pose prior's centre is the previous pose moved a fraction towards
            # the network's: smoothing without drift (held to the past alone, the pose
            # wandered off the network's 3D where the 2D keypoints do not pin it).
            centre = x_prev[:n_pose] + cfg.temporal_pose_blend * (
                x_init[:n_pose] - x_prev[:n_pose])
            prior_w[:n_pose] += cfg.w_temporal_pose
            prior_wc[:n_pose] += cfg.w_temporal_pose * centre
            t_pred = track.translation + track.velocity * dt
            # Depth is observed about (depth / size) times less precisely than x and y.
            palm_m = size_m * self._palm_share
            depth_ratio = palm_m / max(float(track.translation[2]), palm_m)
            w_t = (cfg.w_temporal_translation * 1e6 * (self._weight_length_m / size_m) ** 2
                   * np.array([1.0, 1.0, depth_ratio ** 2]))
            prior_w[-3:] += w_t
            prior_wc[-3:] += w_t * t_pred
            x_prev[-3:] = t_pred
            starts.append(x_prev)
        prior_centre = np.divide(prior_wc, prior_w, out=np.zeros(self._n), where=prior_w > 0.0)

        problem = TailorProblem(
            projector=projector, obs=obs, kp_w=kp_w, net=net, valid3d=valid3d, mirror=mirror,
            shape_fixed=shape_fixed, palm_target_m=self._palm.length_m(shape_fixed),
            prior_w=prior_w, prior_centre=prior_centre, size_m=size_m, mm_per_px=mm_per_px,
            config=replace(cfg, w_joints3d=cfg.w_joints3d * float(joints3d_trust)))
        cost = self.cost
        # Warm start from the track's prediction; the network's estimate if that fails.
        x = starts[-1]
        current = cost.evaluate(x, problem, init_points if merge else None)
        if merge:
            before = (mean_pixel_error(current.extra_px, obs, kp_w)
                      if current.extra_px is not None
                      else self._reprojection_error(projector, init_points, t0, obs, kp_w))
        if not math.isfinite(current.cost) and len(starts) > 1:
            x = starts[0]
            current = cost.evaluate(x, problem)
        if not math.isfinite(current.cost):
            raise TailorError('the initial hand is behind the camera or not finite')
        normal = cost.linearise(current, problem)
        # A young track's size came from the network's shape: after a first half of the
        # iterations the scale step is repeated with the refined shape's proportions.
        young = size_obs is not None and (track is None or track.size_frames < _YOUNG_FRAMES)
        total = max(int(cfg.iterations), 0)
        first = (total + 1) // 2 if young else total
        x, current, normal, normal_at_x, iterations, converged = levenberg_marquardt(
            lambda v: cost.evaluate(v, problem), lambda ev: cost.linearise(ev, problem), x,
            current, normal, first, cfg.min_relative_gain)
        if young and total > first:
            shape_c = current.shape
            size_obs2 = self._size_observation(shape_c, net_raw, valid3d)
            if size_obs2 is not None:
                size_m2, size_sd, size_est = self._fused_size(size_before, size_obs2)
                shape_fixed = self.size.with_length(shape_c, size_m2)
                x = x.copy()
                x[-3:] *= size_m2 / size_m
                problem = replace(problem, net=net_raw * (size_m2 / size_obs2),
                                  shape_fixed=shape_fixed,
                                  palm_target_m=self._palm.length_m(shape_fixed),
                                  size_m=size_m2)
                current = cost.evaluate(x, problem)
                if not math.isfinite(current.cost):
                    raise TailorError('the rescaled hand is behind the camera or not finite')
                normal_at_x = False
            if not normal_at_x:
                normal = cost.linearise(current, problem)
            x, current, normal, normal_at_x, more, converged = levenberg_marquardt(
                lambda v: cost.evaluate(v, problem), lambda ev: cost.linearise(ev, problem),
                x, current, normal, total - first, cfg.min_relative_gain)
            iterations += more
        pose, shape, translation = cost.unpack(x, shape_fixed)
        joints_m, px = current.joints, current.px
        after = mean_pixel_error(px, obs, kp_w)
        values = (pose, shape, translation, joints_m, px, after)
        if not all(np.isfinite(v).all() for v in values):
            raise TailorError('the refined hand is not finite')
        length_m = self.size.length_m(shape)
        # The fit's covariance: the Gauss-Newton Hessian of the last linearised iterate
        # (the solution, or the iterate one converged step before it), scaled by the
        # residual cost at the solution.
        rows = N_ROWS - 63 + 3 * int(np.count_nonzero(valid3d[1:]))
        covariance = position_covariance_m2(
            translation, last_block_covariance(normal[0], current.cost, rows, translation),
            length_m, size_sd, projector.mode)
        check_depth(translation, max_depth_m, 'the refined hand')
        if temporal:
            self._sizes[track_id] = size_est
            self._update_track(track_id, track, moving, dt, timestamp_s, pose, shape,
                               translation, size_est.network_mean_m, size_est.network_frames)
        return TailorResult(
            pose_aa=pose, shape=shape, translation_m=translation.copy(), keypoints_px=px,
            joints_m=joints_m, reprojection_error_before_px=before,
            reprojection_error_after_px=after, hand_length_m=length_m,
            hand_length_sigma_m=size_sd, position_covariance_m2=covariance,
            iterations=iterations, converged=converged, mode=projector.mode,
            temporal=temporal)

    def _update_track(self, track_id, track, moving, dt, timestamp_s, pose, shape, translation,
                      size_mean, size_count):
        """Store this frame's solution as the track's state."""
        if track is None:
            self._tracks[track_id] = TrackState(
                pose=pose, shape=shape, shape_frames=1, translation=translation.copy(),
                velocity=np.zeros(3), timestamp_s=float(timestamp_s),
                size_obs_mean_m=size_mean, size_frames=size_count)
            return
        velocity = np.zeros(3)
        if moving:
            measured = (translation - track.translation) / dt
            velocity = track.velocity + _VELOCITY_SMOOTHING * (measured - track.velocity)
        frames = min(track.shape_frames + 1, _MEMORY_FRAMES)
        track.shape = track.shape + (shape - track.shape) / frames
        track.shape_frames = frames
        track.pose = pose
        track.translation = translation.copy()
        track.velocity = velocity
        track.timestamp_s = float(timestamp_s)
        track.size_obs_mean_m = size_mean
        track.size_frames = size_count

    def _reprojection_error(self, projector, points_m, translation_m, obs, kp_w):
        """Return the mean reprojection error of camera-frame keypoints (inf if invisible)."""
        px = projector.project(points_m, translation_m)[0]
        return math.inf if px is None else mean_pixel_error(px, obs, kp_w)
