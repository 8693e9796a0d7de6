"""Refit a hand from its 2D keypoints alone, when the network's 3D cannot explain them.

The landmark network's 3D of curled fingers (a fist, a thumbs-up) can contradict its own
2D keypoints: no depth puts that 3D onto the 2D. The 2D keypoints are still good, so the
hand model is fitted to them directly, with

- the tailor's cost (:mod:`hand_mesh_ros.core.fitting.tailor_cost`) without its 3D term:
  robust 2D reprojection in millimetres at the hand's depth, soft joint limits and the
  unnatural-twist constraints, the palm held at the hand-length prior, an identity prior on
  the shape;
- a pose prior: per pose component, a Gaussian with the moments of the uniform
  distribution over the joint limits (:class:`PosePrior`), weighted by ``w_pose_prior``;
- several starts (:func:`start_poses`: the network's pose, a closed fist, a flat hand, a
  thumbs-up), each placed by perspective-n-point on its own keypoints (all 21, and the
  two mirror-ambiguous solutions of the palm's plane); the best placed starts run a few
  Levenberg-Marquardt steps and the best :data:`FINALISTS` of those run to convergence.

The fit with the lowest cost wins. Its covariance is the Gauss-Newton covariance of the
wrist plus the spread of the other finalists that explain the 2D about as well (within
:data:`ALTERNATIVE_ERROR_RATIO` of the best mean pixel error): where the 2D does not decide
between two hands, the published position says so.
"""

from dataclasses import dataclass, replace
import math
from typing import Optional

import cv2
import numpy as np

from hand_mesh_ros.core.camera.camera import DEFAULT_HFOV_DEG
from hand_mesh_ros.core.errors import TailorError
from hand_mesh_ros.core.fitting.least_squares import mean_reprojection_error_px
from hand_mesh_ros.core.fitting.tailor_cost import N_ROWS, TailorProblem
from hand_mesh_ros.core.fitting.tailor_steps import side_mirror
from hand_mesh_ros.core.fitting.tailor_terms import (check_inputs, levenberg_marquardt,
                                                     Projector, rotation_log)
from hand_mesh_ros.core.fitting.uncertainty import last_block_covariance, position_covariance_m2

#: Flexion (local x) of each template as fractions of the joint's upper limit: the four
#: fingers' (proximal, middle, distal) phalanges and the thumb's (metacarpal, proximal,
#: distal).
TEMPLATES = {
    'fist': ((0.8, 0.85, 0.6), (0.4, 0.6, 0.5)),
    'flat': ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0)),
    'thumbs_up': ((0.8, 0.85, 0.6), (0.0, 0.0, 0.0)),
}
FINGERS = ('index', 'middle', 'ring', 'pinky')
PHALANGES = ('proximal', 'middle', 'distal')
THUMB_BONES = ('thumb_metacarpal', 'thumb_proximal', 'thumb_distal')
#: Keypoints of the palm (wrist and the four MCPs), nearly coplanar.
PALM_KEYPOINTS = (0, 5, 9, 13, 17)
#: The starts with the lowest cost as placed (at most :data:`SCREENED`) run
#: :data:`START_ITERATIONS` Levenberg-Marquardt steps; the best :data:`FINALISTS` of them
#: then run to convergence (a step gaining less than :data:`MIN_RELATIVE_GAIN`) or
#: :data:`FINAL_ITERATIONS` steps.
SCREENED = 6
START_ITERATIONS = 3
FINALISTS = 2
FINAL_ITERATIONS = 15
MIN_RELATIVE_GAIN = 1e-3
#: Finalists whose mean pixel error is within this ratio of the best count as alternatives.
ALTERNATIVE_ERROR_RATIO = 1.5
_MIRROR_X = np.diag([-1.0, 1.0, 1.0])


@dataclass(frozen=True)
class PosePrior:
    """A diagonal Gaussian over the free pose parameters (radians): mean and sigma (3F,)."""

    mean_rad: np.ndarray
    sigma_rad: np.ndarray

    @classmethod
    def from_joint_limits(cls, model, free_bones):
        """Return the moments of the uniform distribution over ``model``'s joint limits.

        The root (bone 0, the orientation in the camera frame) gets no prior (sigma inf).
        """
        bones = np.asarray(free_bones)
        lower = model.joint_limits_min_rad[bones]
        upper = model.joint_limits_max_rad[bones]
        sigma = (upper - lower) / math.sqrt(12.0)
        sigma[model.parents[bones] < 0] = np.inf
        return cls(0.5 * (lower + upper).reshape(-1), np.maximum(sigma, 1e-3).reshape(-1))


@dataclass(frozen=True, eq=False)
class Refit:
    """A hand fitted to its 2D keypoints (camera optical frame, metres, raw-image pixels).

    Attributes:
        pose_aa: (J, 3) pose, native parametrisation (bone 0: orientation in camera axes).
        shape: (S,) shape coefficients (the hand's size included).
        translation_m: (3,) wrist position.
        keypoints_m: (21, 3) landmark-convention keypoints in the camera frame.
        keypoints_px: (21, 2) those keypoints projected.
        error_px: mean distance of ``keypoints_px`` to the observed keypoints.
        start: name of the start the fit came from.
        limit_excess_rad: the largest excess of a pose component over its joint limit.
        prior_sigmas: root mean square of the pose's distance from the prior's mean, in
            the prior's sigmas.
        alternatives: finalists (the fit included) that explain the 2D about as well.
        hand_length_m: the hand length the fit held (wrist crease to middle fingertip).
        position_covariance_m2: (3, 3) wrist covariance (fit, alternatives, hand length,
            camera mode).

    """

    pose_aa: np.ndarray
    shape: np.ndarray
    translation_m: np.ndarray
    keypoints_m: np.ndarray
    keypoints_px: np.ndarray
    error_px: float
    start: str
    limit_excess_rad: float
    prior_sigmas: float
    alternatives: int
    hand_length_m: float
    position_covariance_m2: np.ndarray


def template_pose(model, name):
    """Return the (J, 3) pose of template ``name`` of :data:`TEMPLATES` (root at rest)."""
    fingers, thumb = TEMPLATES[name]
    upper = model.joint_limits_max_rad
    pose = model.zero_pose()
    index = {bone: j for j, bone in enumerate(model.bone_names)}
    for finger in FINGERS:
        for phalanx, fraction in zip(PHALANGES, fingers):
            bone = index['%s_%s' % (finger, phalanx)]
            pose[bone, 0] = fraction * upper[bone, 0]
    for bone_name, fraction in zip(THUMB_BONES, thumb):
        bone = index[bone_name]
        pose[bone, 0] = fraction * upper[bone, 0]
    return pose


def start_poses(model, network_pose_aa):
    """Return [(name, (J, 3) pose)]: the network's pose, then every template."""
    starts = [('network', np.array(network_pose_aa, dtype=np.float64))]
    return starts + [(name, template_pose(model, name)) for name in TEMPLATES]


def _normalised(projector, obs, kp_w):
    """Return (21, 2) normalised image coordinates of the keypoints and which are usable."""
    if projector.weak:
        rays = (obs - projector.centre_px) / projector.focal_px
    else:
        rays = projector.camera.undistort_pixels(obs)
    usable = (kp_w > 0.0) & np.isfinite(rays).all(axis=1)
    return rays, usable


def _solve_pnp(points_m, rays, flags):
    """Return [(rotation vector, translation)] of OpenCV's PnP (none for degenerate input)."""
    try:
        ok, rvecs, tvecs, _ = cv2.solvePnPGeneric(points_m.astype(np.float64),
                                                  rays.astype(np.float64), np.eye(3), None,
                                                  flags=flags)
    except cv2.error:
        return []
    return list(zip(rvecs, tvecs)) if ok else []


def _pnp_rotations(points_m, rays, usable):
    """Return [(R (3, 3), t (3,))] placing ``points_m`` (21, 3) onto the ``rays`` (21, 2).

    SQPnP on every usable keypoint, and IPPE's two solutions on the palm's plane.
    """
    use = np.flatnonzero(usable)
    out = [(cv2.Rodrigues(r)[0], t.ravel())
           for r, t in _solve_pnp(points_m[use], rays[use], cv2.SOLVEPNP_SQPNP)]
    palm = [k for k in PALM_KEYPOINTS if usable[k]]
    if len(palm) >= 4:
        centre = points_m[palm].mean(axis=0)
        basis = np.linalg.svd(points_m[palm] - centre)[2].T  # columns: plane x, y, normal
        planar = (points_m[palm] - centre) @ basis
        planar[:, 2] = 0.0
        for r, t in _solve_pnp(planar, rays[palm], cv2.SOLVEPNP_IPPE):
            rot = cv2.Rodrigues(r)[0] @ basis.T
            out.append((rot, t.ravel() - rot @ centre))
    return out


def _placed_starts(tailor, starts, shape_fixed, mirror, rays, usable):
    """Return [(name, x (n,))]: every start pose placed by PnP in front of the camera."""
    cost = tailor.cost
    placed = []
    for name, pose in starts:
        pose = tailor.fold_pose(pose)
        pose[0] = 0.0
        points = tailor.kinematics.evaluate(pose, shape_fixed, jacobians=False)[0] * mirror
        for rot, t in _pnp_rotations(points, rays, usable):
            if not (np.isfinite(t).all() and t[2] > 0.0):
                continue
            if mirror[0] < 0.0:
                rot = _MIRROR_X @ rot @ _MIRROR_X
            pose[0] = rotation_log(rot)
            placed.append((name, cost.pack(pose, shape_fixed, t)))
    return placed


def _problem(tailor, projector, obs, kp_w, mirror, shape_fixed, depth_m, prior, weights):
    """Return the :class:`TailorProblem` of a 2D-only fit (no 3D term, pose prior).

    ``weights`` = (w_pose_prior, w_limits, depth_sigma_rel). The wrist's depth is held
    near ``depth_m`` (where a start placed the hand): a depth off by ``depth_sigma_rel``
    of it costs as much as every keypoint off by 1 mm (a hand pressed against the camera
    can otherwise bend its perspective onto any 2D).
    """
    w_pose_prior, w_limits, depth_sigma_rel = weights
    cost, cfg = tailor.cost, replace(tailor.config, w_limits=w_limits)
    n_pose, n_shape = cost.n_pose, cost.n_shape
    prior_w = np.zeros(cost.n)
    prior_centre = np.zeros(cost.n)
    prior_w[:n_pose] = w_pose_prior / prior.sigma_rad ** 2
    prior_centre[:n_pose] = prior.mean_rad
    prior_w[n_pose:n_pose + n_shape] = cfg.w_shape
    prior_w[-1] = 21.0 * cfg.w_reprojection / (depth_sigma_rel * depth_m) ** 2
    prior_centre[-1] = depth_m
    return TailorProblem(
        projector=projector, obs=obs, kp_w=kp_w, net=np.zeros((21, 3)),
        valid3d=np.zeros(21, dtype=bool), mirror=mirror, shape_fixed=shape_fixed,
        palm_target_m=cost.palm.length_m(shape_fixed), prior_w=prior_w,
        prior_centre=prior_centre, size_m=tailor.size.length_m(shape_fixed),
        mm_per_px=1e3 * depth_m / projector.mean_focal_px(), config=cfg)


def _descend(tailor, problem, x, iterations, min_relative_gain=0.0):
    """Return (x, evaluation, (H, g)) after at most ``iterations`` LM steps from ``x``."""
    cost = tailor.cost
    current = cost.evaluate(x, problem)
    if not math.isfinite(current.cost):
        return x, current, None
    normal = cost.linearise(current, problem)
    x, current, normal, _, _, _ = levenberg_marquardt(
        lambda v: cost.evaluate(v, problem), lambda ev: cost.linearise(ev, problem), x,
        current, normal, iterations, min_relative_gain)
    return x, current, normal


def _prior_sigmas(prior, pose_params):
    """Return the RMS distance of the finite-sigma pose parameters from the prior's mean."""
    finite = np.isfinite(prior.sigma_rad)
    z = (pose_params[finite] - prior.mean_rad[finite]) / prior.sigma_rad[finite]
    return float(np.sqrt(np.mean(z * z)))


def refit_from_2d(tailor, side, keypoints_px, camera, *, network_pose_aa,
                  hand_length_m, hand_length_sd_m, prior: Optional[PosePrior] = None,
                  image_size=None, hfov_deg=DEFAULT_HFOV_DEG, keypoint_weights=None,
                  w_pose_prior=2.0, w_limits=1e5, depth_sigma_rel=0.25,
                  max_depth_m=10.0) -> Optional[Refit]:
    """Fit the hand model to 2D keypoints alone; return the best :class:`Refit` or None.

    Args:
        tailor: a :class:`~hand_mesh_ros.core.fitting.tailor.HandTailor` (its model,
            kinematics, cost and weights: ``w_reprojection``, ``robust_scale_mm``,
            ``w_limits``, ``w_twist``, ``w_shape``).
        side: 'left' or 'right'.
        keypoints_px: (21, 2) observed keypoints, raw-image px (NaN rows ignored).
        camera: a CameraModel, or None for weak perspective (needs ``image_size``).
        network_pose_aa: (J, 3) the network's pose (one of the starts).
        hand_length_m, hand_length_sd_m: the hand-length prior (the fit holds the mean).
        prior: the pose prior; None for :meth:`PosePrior.from_joint_limits` of the tailor's
            model and free bones.
        image_size: (width, height) px, used only without a camera model.
        hfov_deg: horizontal FOV of the nominal camera, used only without a camera model.
        keypoint_weights: (21,) confidences, or None for ones.
        w_pose_prior: weight of the pose prior (per squared sigma).
        w_limits: weight per rad^2 beyond a joint limit.
        depth_sigma_rel: relative sigma of the wrist's depth around the starts' median.
        max_depth_m: starts and fits farther than this are discarded.

    Returns:
        The fit with the lowest cost, or None when no start can be placed in front of the
        camera within ``max_depth_m``.

    Raises:
        TailorError: fewer than six usable keypoints, or all at one pixel.

    """
    model = tailor.model
    obs, kp_w, _, _, _, _, _ = check_inputs(
        model, keypoints_px, keypoint_weights, np.zeros((21, 3)), network_pose_aa,
        model.zero_shape(), np.zeros(3), side)
    projector = Projector(camera, image_size, hfov_deg)
    mirror = side_mirror(side, model.native_side)
    if prior is None:
        prior = PosePrior.from_joint_limits(model, tailor.free_bones)
    shape_fixed = tailor.size.with_length(model.zero_shape(), hand_length_m)
    rays, usable = _normalised(projector, obs, kp_w)
    if np.count_nonzero(usable) < 6:
        raise TailorError('fewer than six keypoints can be undistorted')
    placed = [(name, x) for name, x in _placed_starts(
        tailor, start_poses(model, network_pose_aa), shape_fixed, mirror, rays, usable)
        if x[-1] <= max_depth_m]
    if not placed:
        return None
    problem, finals = _finalists(tailor, (projector, obs, kp_w, mirror, shape_fixed), placed,
                                 prior, (w_pose_prior, w_limits, depth_sigma_rel), max_depth_m)
    if not finals:
        return None
    finals.sort(key=lambda final: final[0])
    return _result(tailor, problem, finals, prior, hand_length_m, hand_length_sd_m)


def _finalists(tailor, scene, placed, prior, weights, max_depth_m):
    """Return (the 2D-only problem, [(cost, name, x, evaluation, (H, g))] of the finalists).

    ``scene`` = (projector, obs, kp_w, mirror, shape_fixed); ``placed`` [(name, x)] the
    placed starts; ``weights`` as :func:`_problem` takes them.
    """
    problem = _problem(tailor, *scene, float(np.median([x[-1] for _, x in placed])), prior,
                       weights)
    screened = sorted(((tailor.cost.evaluate(x, problem).cost, name, x) for name, x in placed),
                      key=lambda start: start[0])
    # The depth prior is centred where the start that explains the 2D best placed the hand.
    problem = _problem(tailor, *scene, float(screened[0][2][-1]), prior, weights)
    runs = []
    for start_cost, name, x in screened[:SCREENED]:
        if not math.isfinite(start_cost):
            break
        x, current, normal = _descend(tailor, problem, x, START_ITERATIONS)
        if normal is not None:
            runs.append((current.cost, name, x))
    runs.sort(key=lambda run: run[0])
    finals = []
    for _, name, x in runs[:FINALISTS]:
        x, current, normal = _descend(tailor, problem, x, FINAL_ITERATIONS, MIN_RELATIVE_GAIN)
        if normal is not None and x[-1] <= max_depth_m:
            finals.append((current.cost, name, x, current, normal))
    return problem, finals


def _result(tailor, problem, finals, prior, hand_length_m, hand_length_sd_m):
    """Return the :class:`Refit` of the best of ``finals`` [(cost, name, x, ev, normal)]."""
    cost_value, name, x, current, normal = finals[0]
    pose, shape, translation = tailor.cost.unpack(x, problem.shape_fixed)
    used = problem.kp_w > 0.0
    error_px = mean_reprojection_error_px(current.px, problem.obs, used)
    close = [f[2][-3:] for f in finals
             if mean_reprojection_error_px(f[3].px, problem.obs, used)
             <= ALTERNATIVE_ERROR_RATIO * error_px]
    fit_cov = last_block_covariance(normal[0], cost_value, N_ROWS - 63, translation)
    if len(close) > 1:
        spread = np.asarray(close) - translation
        fit_cov = fit_cov + spread.T @ spread / len(close)
    covariance = position_covariance_m2(translation, fit_cov, hand_length_m,
                                        hand_length_sd_m, problem.projector.mode)
    constraints = tailor.constraints
    params = x[:tailor.cost.n_pose]
    excess = np.maximum(constraints.lower - params, params - constraints.upper)
    excess = np.where(np.isfinite(excess), excess, 0.0)
    return Refit(
        pose_aa=pose, shape=shape, translation_m=translation.copy(),
        keypoints_m=current.joints.copy(), keypoints_px=current.px.copy(), error_px=error_px,
        start=name, limit_excess_rad=float(max(excess.max(), 0.0)),
        prior_sigmas=_prior_sigmas(prior, params), alternatives=len(close),
        hand_length_m=float(tailor.size.length_m(shape)), position_covariance_m2=covariance)
