"""The tailor: per-frame refinement of a hand's pose, shape and position (HandTailor 3.4).

For each hand and frame:

1. **Scale step** (HandTailor eq. 12): the closed-form scale aligning the model's bone lengths
   to the network's root-relative 3D joints gives this frame's hand size, as a hand length
   (wrist crease to middle fingertip, :mod:`hand_mesh_ros.core.hand.hand_size`); the track's
   :class:`SizeEstimate` fuses it with the population prior (or ``hand_length_m``, the
   user's known length) and the track's metric length (``Track.metric_length``, e.g. from
   depth).
   The model's size shape coefficient is set to the fused length, the network's joints are
   rescaled to it and the initial translation follows (depth scales with size for the
   same image).
2. **Levenberg-Marquardt** on the free bone rotations, the other shape coefficients and the
   translation, minimising (units: mm, rad)

   - robust (Huber) 2D reprojection of the 21 model keypoints through the full camera model
     (distortion included), invalid keypoints left out; residuals in millimetres
     at the hand's depth (pixels * depth / focal length), so the fit is the same at any
     image resolution,
   - consistency with the network's (rescaled) root-relative 3D joints,
   - soft joint limits and the unnatural-twist constraints (HAMR eq. 6-7, HandTailor eq. 10),
   - an identity prior on the shape (eq. 11) and a weak prior towards the network's pose,
   - temporal terms from the track: the previous pose, one running shape per track, and a
     constant-velocity prediction of the translation.

   Jacobians are analytic (:mod:`hand_mesh_ros.core.fitting.kinematics_jacobian`), the start
   is the better of the network's estimate and the track's prediction. A candidate step is
   judged by its cost alone and linearised only when the iterations go on from it
   (:mod:`hand_mesh_ros.core.fitting.tailor_cost`); so after a converged step (cost lowered
   by less than ``min_relative_gain``) the fit's covariance uses the Gauss-Newton Hessian of
   the iterate one step before the solution, with the solution's residual cost.

Without a camera model the projection is weak perspective (HandTailor 3.5); ``refine`` then
needs ``image_size`` and ``hfov_deg`` for its nominal camera (a CameraModel in
``weak_perspective`` mode works too). Left hands are fitted with the native (right) model
mirrored (x -> -x) and the mirror enters the Jacobian. Bones that rotate about the root's
centre like the root (anny's 'wrist') are redundant for the keypoints; their rotation is
folded into the root and returned as zero. The hand's size lives in the model's size shape
coefficient, so
``model.forward(result.pose_aa, result.shape, side).keypoints + result.translation_m``
equals ``result.joints_m``.

The tailor holds no per-track state: each call reads and updates the :class:`Track` it is
given (``track.fit``, and ``track.metric_length`` read-only).
"""

from dataclasses import replace
import math
from typing import Optional, Sequence, Tuple

import numpy as np

from hand_mesh_ros.core.camera.camera import CameraModel, DEFAULT_HFOV_DEG
from hand_mesh_ros.core.config import TailorConfig
from hand_mesh_ros.core.errors import TailorError
from hand_mesh_ros.core.fitting import tailor_steps as steps
from hand_mesh_ros.core.fitting.kinematics_jacobian import KeypointKinematics
from hand_mesh_ros.core.fitting.least_squares import mean_reprojection_error_px
from hand_mesh_ros.core.fitting.tailor_cost import N_ROWS, TailorCost, TailorProblem
from hand_mesh_ros.core.fitting.tailor_terms import (check_depth, check_inputs,
                                                     nearest_equivalent_rotation, PoseConstraints,
                                                     Projector, rotation_log, TailorResult)
from hand_mesh_ros.core.fitting.uncertainty import last_block_covariance, position_covariance_m2
from hand_mesh_ros.core.hand.hand_model import HandModel
from hand_mesh_ros.core.hand.hand_size import HandLength, PALM_CHAIN
from hand_mesh_ros.core.hand.rotations import axis_angle_to_matrix
from hand_mesh_ros.core.track import Track

#: The metric weights (per mm^2 of 3D joints and of translation) are per mm of a hand whose
#: palm (wrist -> middle MCP, metres) is this long at the model's proportions (0.175 m hand
#: length): they scale with the hand's length, so that the fit is scale-equivariant (a hand
#: k times larger at k times the depth gives the same image and the same, k times larger,
#: solution).
_WEIGHT_PALM_M = 0.095
#: Tracks with fewer size observations repeat the scale step inside a frame.
_YOUNG_FRAMES = 5


class HandTailor:
    """Refine hands against 2D keypoints, network 3D joints, priors and their track's history."""

    def __init__(self, model: HandModel, config: Optional[TailorConfig] = None) -> None:
        """Prepare the kinematics of ``model`` (a HandModel)."""
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
        # free (holding the whole hand length lets palm and fingers trade off and bends them).
        self._palm = HandLength(self._kp_rest0, self._kp_rest_basis, chain=PALM_CHAIN)
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

    # ------------------------------------------------------------------ track queries
    def predicted_translation(self, track: Optional[Track],
                              timestamp_s: float) -> Optional[np.ndarray]:
        """Return the track's constant-velocity root prediction (3,) at ``timestamp_s``.

        None without a fit state or when its last update is older than ``max_gap_s``.
        """
        state = None if track is None else track.fit
        dt = steps.track_gap_s(state, timestamp_s, self.config.max_gap_s)
        return None if dt is None else state.translation + state.velocity * dt

    def hand_length_m(self, track: Optional[Track] = None) -> Tuple[float, float]:
        """Return (mean, sigma) of the track's hand length; the prior without a track."""
        evidence = steps.size_evidence(track, network=True)
        return evidence.belief(self.config.hand_length_m)

    def fold_pose(self, pose_aa: np.ndarray) -> np.ndarray:
        """Return (J, 3) ``pose_aa`` with redundant bones' rotations folded into the root."""
        pose = np.array(pose_aa, dtype=np.float64)
        bones = [bone for bone, _ in self._folded]
        if not bones or not pose[bones].any():
            return pose
        rots = axis_angle_to_matrix(pose[[0] + bones])
        rot0 = rots[0]
        for (bone, rel), rot in zip(self._folded, rots[1:]):
            rot0 = rot0 @ rel @ rot @ rel.T
            pose[bone] = 0.0
        pose[0] = rotation_log(rot0)
        return pose

    def _rest_keypoints(self, shape):
        """Return the (21, 3) rest keypoints of ``shape`` (S,)."""
        return self._kp_rest0 + self._kp_rest_basis @ shape

    def _scale_step(self, evidence, shape_ref, net, valid3d):
        """Return the frame's :class:`~tailor_steps.ScaleStep` (eq. 12 and size fusion)."""
        return steps.scale_step(evidence, self._rest_keypoints(shape_ref), net, valid3d,
                                self.size, shape_ref, self.config.hand_length_m)

    # ------------------------------------------------------------------ refinement
    def refine(self, track: Track, keypoints_px: np.ndarray, joints_rel_m: np.ndarray,
               init_pose_aa: np.ndarray, init_shape: np.ndarray,
               init_translation_m: np.ndarray, camera: Optional[CameraModel],
               timestamp_s: float, side: str, *,
               image_size: Optional[Sequence[int]] = None, hfov_deg: float = DEFAULT_HFOV_DEG,
               temporal: Optional[bool] = None, joints3d_trust: float = 1.0,
               max_depth_m: float = 10.0) -> TailorResult:
        """Refine one hand in one frame; use and (if temporal) update ``track.fit``.

        Args:
            track: the hand's :class:`Track` (its fit state and metric length).
            keypoints_px: (21, 2) observed keypoints in raw-image pixels (NaN rows ignored).
            joints_rel_m: (21, 3) network root-relative joints, camera-frame orientation.
            init_pose_aa: (J, 3) network pose (native parametrisation, bone 0 in camera axes).
            init_shape: (S,) network shape coefficients.
            init_translation_m: (3,) root position, e.g. from root recovery.
            camera: a CameraModel, or None for weak perspective (needs ``image_size``).
            timestamp_s: the frame's time in seconds.
            side: 'left' or 'right'.
            image_size: (width, height) px, used only without a camera model.
            hfov_deg: horizontal FOV of the nominal camera, used only without a camera model.
            temporal: override ``config.temporal`` for this call.
            joints3d_trust: in [0, 1]: the 3D joints weigh ``config.w_joints3d`` times it.
            max_depth_m: a hand whose root would lie farther (at the start, after the scale
                step, or at the end) is refused with reason 'too_far'.

        Returns a TailorResult with finite values.

        Raises:
            TailorError: degenerate or non-finite input or result.
            CameraModelError: no camera and ``image_size`` missing or not positive.
            ValueError: wrongly shaped arguments or an unknown side.

        """
        temporal = self.config.temporal if temporal is None else bool(temporal)
        obs, kp_w, net, valid3d, pose0, shape0, t0 = check_inputs(
            self.model, keypoints_px, None, joints_rel_m, init_pose_aa, init_shape,
            init_translation_m, side)
        projector = Projector(camera, image_size, hfov_deg)
        state = track.fit if temporal else None
        pose0 = self._start_pose(pose0, state)
        mirror = steps.side_mirror(side, self.model.native_side)
        init_points = self.kinematics.evaluate(pose0, shape0, jacobians=False)[0] * mirror + t0
        evidence = steps.size_evidence(track, network=state is not None)
        scaled = self._scale_step(evidence, shape0 if state is None else state.shape, net,
                                  valid3d)
        t_start = scaled.rescale_translation(t0)
        check_depth(t_start, max_depth_m, 'the scaled start')
        problem, starts = self._problem(projector, obs, kp_w, scaled, mirror, pose0, t_start,
                                        state, timestamp_s, joints3d_trust)
        x, current, before = self._start(problem, starts, init_points, t0)
        young = scaled.observed_m is not None and (state is None
                                                   or state.size_frames < _YOUNG_FRAMES)
        fit = self._iterate(x, current, problem, scaled, young, evidence, net, valid3d)
        result = self._result(fit, problem, before, projector, temporal)
        check_depth(result.translation_m, max_depth_m, 'the refined hand')
        if temporal:
            track.fit = steps.next_track_state(state, timestamp_s, self.config.max_gap_s,
                                               result, fit.scaled.evidence)
        return result

    def _start_pose(self, pose_aa, state):
        """Return the folded start pose, its root rotation vector nearest the track's.

        The same orientation has many rotation vectors; the track's previous pose picks one.
        """
        pose = self.fold_pose(pose_aa)
        if state is not None:
            pose[0] = nearest_equivalent_rotation(pose[0], state.pose[0])
        return pose

    def _problem(self, projector, obs, kp_w, scaled, mirror, pose0, t_start, state,
                 timestamp_s, joints3d_trust):
        """Return (TailorProblem, starts [network start, track prediction start]).

        The network's 3D joints weigh ``config.w_joints3d * joints3d_trust``.
        """
        cfg = self.config
        # Scale-free 2D residuals: pixels times depth / focal length = millimetres at the
        # hand's depth (fixed for the frame), so the same scene at any resolution costs the
        # same and the 2D and 3D terms share a unit.
        mm_per_px = 1e3 * max(float(t_start[2]), projector.min_depth_m) / projector.mean_focal_px()
        x_init = self.cost.pack(pose0, scaled.shape_fixed, t_start)
        priors = steps.Priors(self._n)
        priors.add_pose(self._n_pose, cfg.w_pose_prior, x_init[:self._n_pose])
        shape_frames = 1.0 if state is None else float(state.shape_frames)
        shape_ref = scaled.shape_ref[self.free_shapes]
        priors.add_shape(slice(self._n_pose, self._n_pose + self._n_shape),
                         cfg.w_shape, cfg.w_shape_track * shape_frames, shape_ref)
        starts = [x_init]
        dt = steps.track_gap_s(state, timestamp_s, cfg.max_gap_s)
        if dt is not None:
            x_prev = self.cost.pack(state.pose, scaled.shape_fixed, state.translation)
            t_pred = state.translation + state.velocity * dt
            priors.add_temporal(x_prev, x_init, t_pred, self._n_pose, cfg,
                                steps.translation_weights(
                                    cfg.w_temporal_translation, self._weight_length_m,
                                    scaled.length_m, scaled.length_m * self._palm_share,
                                    state.translation))
            x_prev[-3:] = t_pred
            starts.append(x_prev)
        weights, centre = priors.diagonal()
        problem = TailorProblem(
            projector=projector, obs=obs, kp_w=kp_w, net=scaled.net, valid3d=scaled.valid3d,
            mirror=mirror, shape_fixed=scaled.shape_fixed,
            palm_target_m=self._palm.length_m(scaled.shape_fixed), prior_w=weights,
            prior_centre=centre, size_m=scaled.length_m, mm_per_px=mm_per_px,
            config=replace(cfg, w_joints3d=cfg.w_joints3d * float(joints3d_trust)))
        return problem, starts

    def _start(self, problem, starts, init_points, t0):
        """Return (x, its evaluation, mean 2D error of the network's hand) of the best start.

        The warm start is the track's prediction; the network's estimate if that fails.
        """
        projector, obs, kp_w = problem.projector, problem.obs, problem.kp_w
        # Projected together with the first evaluation (one camera call) when possible.
        merge = not projector.weak and init_points[:, 2].min() >= projector.min_depth_m
        x = starts[-1]
        current = self.cost.evaluate(x, problem, init_points if merge else None)
        if merge and current.extra_px is not None:
            before = mean_reprojection_error_px(current.extra_px, obs, kp_w > 0.0)
        else:
            before = steps.reprojection_error(projector, init_points, t0, obs, kp_w)
        if not math.isfinite(current.cost) and len(starts) > 1:
            x = starts[0]
            current = self.cost.evaluate(x, problem)
        if not math.isfinite(current.cost):
            raise TailorError('the initial hand is behind the camera or not finite')
        return x, current, before

    def _iterate(self, x, current, problem, scaled, young, evidence, net, valid3d):
        """Return the :class:`~tailor_steps.FitState` after the Levenberg-Marquardt iterations.

        A young track's size came from the network's shape: after a first half of the
        iterations the scale step is repeated with the refined shape's proportions.
        """
        cfg, cost = self.config, self.cost
        total = max(int(cfg.iterations), 0)
        first = (total + 1) // 2 if young else total
        fit = steps.FitState(x, current, cost.linearise(current, problem), True, 0, False,
                             problem, scaled)
        fit = steps.run_lm(cost, fit, first, cfg.min_relative_gain)
        if young and total > first:
            fit = self._rescale(fit, evidence, net, valid3d)
            fit = steps.run_lm(cost, fit, total - first, cfg.min_relative_gain)
        return fit

    def _rescale(self, fit, evidence, net, valid3d):
        """Return ``fit`` after the scale step repeated with its refined shape."""
        scaled = self._scale_step(evidence, fit.current.shape, net, valid3d)
        if scaled.observed_m is None:
            return fit
        problem = replace(fit.problem, net=scaled.net, shape_fixed=scaled.shape_fixed,
                          palm_target_m=self._palm.length_m(scaled.shape_fixed),
                          size_m=scaled.length_m)
        x = fit.x.copy()
        x[-3:] *= scaled.length_m / fit.scaled.length_m
        current = self.cost.evaluate(x, problem)
        if not math.isfinite(current.cost):
            raise TailorError('the rescaled hand is behind the camera or not finite')
        return steps.FitState(x, current, self.cost.linearise(current, problem), True,
                              fit.iterations, fit.converged, problem, scaled)

    def _result(self, fit, problem, before, projector, temporal):
        """Return the :class:`TailorResult` of a finished fit (finite, with its covariance)."""
        pose, shape, translation = self.cost.unpack(fit.x, fit.scaled.shape_fixed)
        joints_m, px = fit.current.joints, fit.current.px
        after = mean_reprojection_error_px(px, problem.obs, problem.kp_w > 0.0)
        values = (pose, shape, translation, joints_m, px, after)
        if not all(np.isfinite(v).all() for v in values):
            raise TailorError('the refined hand is not finite')
        length_m = self.size.length_m(shape)
        # The fit's covariance: the Gauss-Newton Hessian of the last linearised iterate
        # (the solution, or the iterate one converged step before it), scaled by the
        # residual cost at the solution.
        rows = N_ROWS - 63 + 3 * int(np.count_nonzero(fit.scaled.valid3d[1:]))
        covariance = position_covariance_m2(
            translation, last_block_covariance(fit.normal[0], fit.current.cost, rows,
                                               translation),
            length_m, fit.scaled.sigma_m, projector.mode)
        return TailorResult(
            pose_aa=pose, shape=shape, translation_m=translation.copy(), keypoints_px=px,
            joints_m=joints_m, reprojection_error_before_px=before,
            reprojection_error_after_px=after, hand_length_m=length_m,
            hand_length_sigma_m=fit.scaled.sigma_m, position_covariance_m2=covariance,
            iterations=fit.iterations, converged=fit.converged, mode=projector.mode,
            temporal=temporal)
