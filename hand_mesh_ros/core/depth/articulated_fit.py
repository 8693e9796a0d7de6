"""Articulated fit of the hand model to the visible depth surface (articulated ICP).

Unknowns: the free bones' rotation vectors (global rotation and joint angles), a uniform size
factor ``k`` of the hand about its wrist and the wrist position ``t`` (camera frame):
``v = t + k M v_rel(pose, shape)`` (see :mod:`hand_mesh_ros.core.depth.surface_model`).
The fit alternates between

1. correspondences at the current pose: each depth point of the hand (segmented by
   :func:`~hand_mesh_ros.core.depth.surface_correspondence.segment_hand_points`) with the
   nearest model point the camera sees, gated (a gate that narrows round by round), and robust
   (Huber) weights from the point-to-plane distances in sensor sigmas;
2. a few damped Gauss-Newton steps (the tailor's Levenberg-Marquardt) with those pairs fixed,
   on the cost (dimensionless, every residual divided by its sigma)

   - point-to-plane distances ``n . (p - v)`` over ``sqrt((c z^2)^2 + s_model^2)``; the depth
     rows count as at most :data:`INDEPENDENT_DEPTH_POINTS` independent samples (sensor noise
     is spatially correlated);
   - the 2D keypoints through the colour camera (Huber), sigma a fraction of the hand's size
     in pixels (scale-free);
   - a prior on the pose towards the starting pose (the tailor's, which carries the
     network's 3D and the track's temporal terms), a prior on ``k`` (the size the depth
     fusion and the track's metric length agree on), joint limits and the twist constraint.

The wrist covariance is the translation block of the inverse Gauss-Newton Hessian at the
solution (pose and size marginalised), scaled up by the residual variance where that exceeds
one (residuals larger than their sigmas): it shrinks where
the visible surface pins the hand and stays wide where it does not (a hand seen edge-on).
"""

from dataclasses import dataclass, replace
import math

import numpy as np
from scipy.linalg import lapack

from hand_mesh_ros.core.depth.depth_fusion import depth_sigma_m, wrist_lever_covariance
from hand_mesh_ros.core.depth.surface_correspondence import match_points, visible_points
from hand_mesh_ros.core.fitting.tailor_steps import side_mirror
from hand_mesh_ros.core.fitting.tailor_terms import gram_matrix
from hand_mesh_ros.core.fitting.uncertainty import last_block_covariance

#: Correspondence rounds (one damped Gauss-Newton step each) and the step's damping.
ROUNDS = 3
LM_DAMPING = 1e-3
#: Correspondence gate (metres) of the first round; it narrows by GATE_SHRINK per round to
#: GATE_MIN_M.
GATE_START_M = 0.03
GATE_SHRINK = 0.6
GATE_MIN_M = 0.012
#: Largest offset beside the model's tangent plane (metres; about the surface spacing).
TANGENT_GATE_M = 0.008
#: Model error of the surface against a real hand (1 sigma), metres.
MODEL_SIGMA_M = 0.002
#: Huber threshold of the depth and 2D residuals, in sigmas.
HUBER_SIGMAS = 2.0
#: Depth rows count as at most this many independent samples.
INDEPENDENT_DEPTH_POINTS = 120
#: 2D keypoint sigma as a fraction of the observed keypoints' box diagonal.
KEYPOINT_SIGMA_REL = 0.02
#: Pose prior sigmas (rad): the hand's global rotation, every other bone.
ROOT_SIGMA_RAD = math.radians(20.0)
BONE_SIGMA_RAD = math.radians(20.0)
#: Weights (per rad^2) of joint limits and of the twist constraint.
W_LIMITS = 2500.0
W_TWIST = 100.0
#: Fewest matched depth points for a fit.
MIN_MATCHES = 20
#: Size factors outside this range are not a plausible fit.
SCALE_RANGE = (0.8, 1.25)


@dataclass(frozen=True)
class DepthFitResult:
    """Outcome of :func:`fit_hand_to_depth` (metres, camera optical frame).

    Attributes:
        fitted: True when the depth moved the hand (else the fields repeat the input).
        reason: '' when fitted, else why not ('no_depth_points', ...).
        pose_aa: (J, 3) fitted pose (native parametrisation, bone 0 in camera axes).
        shape: (S,) shape with the fitted size.
        translation_m: (3,) fitted wrist position.
        scale: size factor applied to the input hand about its wrist.
        covariance_m2: (3, 3) covariance of ``translation_m`` (NaN when not fitted).
        n_points: depth points given.
        n_matched: depth points matched to the visible surface in the last round.
        residual_mm: RMS point-to-plane distance of the matched points at the solution.
        iterations: damped Gauss-Newton steps tried, all rounds.
        converged: the last round's steps met the convergence test.

    """

    fitted: bool
    reason: str
    pose_aa: np.ndarray
    shape: np.ndarray
    translation_m: np.ndarray
    scale: float
    covariance_m2: np.ndarray
    n_points: int
    n_matched: int
    residual_mm: float
    iterations: int
    converged: bool


@dataclass
class _Problem:
    """One round's fixed data: matches, weights, and the frame's observations and priors."""

    points: np.ndarray      # (K, 3) matched depth points
    normals: np.ndarray     # (K, 3) their surface normals, camera frame (held fixed)
    index: np.ndarray       # (K,) surface point ids
    depth_w: np.ndarray     # (K,) sqrt weight / sigma of each depth row
    obs_px: np.ndarray      # (21, 2) observed keypoints (invalid rows zero)
    kp_w: np.ndarray        # (21,) sqrt confidence / sigma (px) of each keypoint
    prior_w: np.ndarray     # (n,) diagonal prior weights
    prior_centre: np.ndarray


@dataclass
class _Evaluation:
    """The cost at ``x`` and what the linearisation and the next round reuse."""

    cost: float
    x: np.ndarray
    r: np.ndarray = None
    posed: object = None
    surface: np.ndarray = None      # (P, 3) root-relative surface points, native side
    normals: np.ndarray = None      # (P, 3) their normals, native side
    jac_proj: np.ndarray = None     # (21, 2, 3)
    px: np.ndarray = None           # (21, 2) projected keypoints
    kp_sqrt_w: np.ndarray = None    # (21,) Huber IRLS factors of the 2D rows
    constraints: tuple = None


class _Fit:
    """Cost and linearisation of one hand's fit (see the module docstring)."""

    def __init__(self, surface, side, pose, shape, camera):
        self.surface = surface
        self.kin = surface.kinematics
        self.shape = shape
        self.camera = camera
        self.mirror = side_mirror(side, surface.model.native_side)
        self.rest = surface.rest_points(shape)
        self.n_pose = surface.n_pose
        self.n = self.n_pose + 4
        self.pose_template = pose.copy()  # bones that are not free keep their rotation

    def unpack(self, x):
        """Return pose (J, 3), size factor and translation (3,) of parameters ``x``."""
        pose = self.pose_template.copy()
        pose[self.surface.free_bones] = x[:self.n_pose].reshape(-1, 3)
        return pose, float(x[self.n_pose]), x[-3:]

    def world_surface(self, ev):
        """Return the posed surface (P, 3) and its normals (P, 3) of ``ev``, camera frame."""
        _, k, t = self.unpack(ev.x)
        return t + k * ev.surface * self.mirror, ev.normals * self.mirror

    def pose_at(self, x):
        """Return the posed :class:`_Evaluation` of ``x``, without residuals yet.

        The whole surface is posed and the keypoints projected; the cost is inf when a
        keypoint is behind the camera.
        """
        pose, k, t = self.unpack(x)
        posed = self.kin.pose(pose, self.shape)
        rel, normals = self.surface.surface(posed, self.shape, self.rest)
        kp_world = t + k * posed.keypoints * self.mirror
        if kp_world[:, 2].min() <= 1e-3:
            return _Evaluation(math.inf, x)
        px, jac_proj = self.camera.project_with_jacobian(kp_world)
        return _Evaluation(math.nan, x, None, posed, rel, normals, jac_proj, px)

    def score(self, ev, problem):
        """Return ``ev`` (posed by :meth:`pose_at`) with the residuals and cost of ``problem``."""
        if ev.posed is None:
            return ev
        _, k, t = self.unpack(ev.x)
        v = t + k * ev.surface[problem.index] * self.mirror
        r_depth = np.einsum('ka,ka->k', problem.normals, problem.points - v) * problem.depth_w
        diff = (ev.px - problem.obs_px) * problem.kp_w[:, None]
        kp_sqrt_w = _huber_sqrt_weights(np.sqrt(np.einsum('ka,ka->k', diff, diff)))
        r = np.concatenate([r_depth, (diff * kp_sqrt_w[:, None]).reshape(-1)])
        if not np.isfinite(r).all():
            return replace(ev, cost=math.inf)
        delta = ev.x - problem.prior_centre
        constraints = self.surface.constraints.terms(ev.x[:self.n_pose], W_LIMITS, W_TWIST)
        cost = float(r @ r + problem.prior_w @ (delta * delta) + constraints[0])
        return replace(ev, cost=cost, r=r, kp_sqrt_w=kp_sqrt_w, constraints=constraints)

    def linearise(self, ev, problem):
        """Return (H, g): the Gauss-Newton Hessian and half the gradient at ``ev``."""
        pose, k, _ = self.unpack(ev.x)
        n, n_pose = self.n, self.n_pose
        axes, origins = self.surface.world_axes(ev.posed, pose)
        rel = ev.surface[problem.index]
        rows_d = np.empty((len(problem.index), n))
        native_n = problem.normals * self.mirror
        rows_d[:, :n_pose] = -k * self.surface.plane_jacobian(rel, native_n, problem.index,
                                                              axes, origins)
        rows_d[:, n_pose] = -np.einsum('ka,ka->k', native_n, rel)
        rows_d[:, -3:] = -problem.normals
        rows_d *= problem.depth_w[:, None]
        jac_pose = self.kin.jacobians(ev.posed)[0] * self.mirror[None, :, None]
        jac_kp = np.concatenate([k * jac_pose, (ev.posed.keypoints * self.mirror)[:, :, None],
                                 np.broadcast_to(np.eye(3), (21, 3, 3))], axis=2)
        rows_2d = (ev.jac_proj @ jac_kp) * (problem.kp_w * ev.kp_sqrt_w)[:, None, None]
        rows = np.vstack([rows_d, rows_2d.reshape(42, n)])
        hess = gram_matrix(rows)
        grad = rows.T @ ev.r
        grad += problem.prior_w * (ev.x - problem.prior_centre)
        hess.flat[::n + 1] += problem.prior_w
        _, c_grad, c_hess = ev.constraints
        grad[:n_pose] += c_grad
        hess.flat[:n_pose * (n + 1):n + 1] += c_hess
        return hess, grad


def _huber_sqrt_weights(normalised):
    """Return sqrt Huber IRLS weights of residuals in sigmas."""
    a = np.abs(normalised)
    return np.sqrt(np.where(a > HUBER_SIGMAS, HUBER_SIGMAS / np.maximum(a, 1e-12), 1.0))


def _keypoint_rows(obs_px, weights):
    """Return observed keypoints (21, 2) (invalid rows zero) and sqrt weight / sigma (21,)."""
    valid = np.isfinite(obs_px).all(axis=1) & np.isfinite(weights) & (weights > 0.0)
    if np.count_nonzero(valid) < 2:
        return np.zeros((21, 2)), np.zeros(21)
    sigma_px = KEYPOINT_SIGMA_REL * max(float(np.linalg.norm(np.ptp(obs_px[valid], axis=0))),
                                        1.0)
    return (np.where(valid[:, None], obs_px, 0.0),
            np.sqrt(np.where(valid, weights, 0.0)) / sigma_px)


def _matches(fit, ev, points, noise_coeff_per_m, gate_m):
    """Return (rows of points, surface ids, normals (K, 3), sqrt weights / sigma (K,))."""
    surface_m, normals = fit.world_surface(ev)
    visible = visible_points(surface_m, normals)
    matches = match_points(points, surface_m, normals, visible, gate_m, TANGENT_GATE_M)
    rows = matches.point_index
    sigma = np.sqrt(depth_sigma_m(points[rows, 2], noise_coeff_per_m) ** 2 + MODEL_SIGMA_M ** 2)
    weights = _huber_sqrt_weights(matches.distance_m / sigma) / sigma
    weights *= math.sqrt(min(1.0, INDEPENDENT_DEPTH_POINTS / max(len(rows), 1)))
    return rows, matches.surface_index, normals[matches.surface_index], weights


def _unfitted(reason, pose, shape, t, n_points=0, n_matched=0):
    """Return a :class:`DepthFitResult` that repeats the input hand."""
    return DepthFitResult(False, reason, pose.copy(), shape.copy(), t.copy(), 1.0,
                          np.full((3, 3), np.nan), n_points, n_matched, math.nan, 0, False)


def fit_hand_to_depth(surface, side, pose_aa, shape, translation_m, points_m, camera,
                      keypoints_px, *, size, noise_coeff_per_m, keypoint_weights=None,
                      scale_sigma=0.03, rounds=ROUNDS):
    """Fit pose, size and position of one hand to its depth points; see the module docstring.

    Args:
        surface: the model's :class:`~hand_mesh_ros.core.depth.surface_model.HandSurface`.
        side: 'left' or 'right'.
        pose_aa: (J, 3) starting pose (native parametrisation, bone 0 in camera axes).
        shape: (S,) starting shape (its size is the size the factor ``k`` multiplies).
        translation_m: (3,) starting wrist position, camera frame.
        points_m: (N, 3) the hand's depth points (segmented), camera frame.
        camera: the colour CameraModel of ``keypoints_px``.
        keypoints_px: (21, 2) observed 2D keypoints (NaN rows ignored).
        size: the model's :class:`~hand_mesh_ros.core.hand.hand_size.HandLength`.
        noise_coeff_per_m: ``c`` of the sensor noise ``sigma_z = c z^2``.
        keypoint_weights: (21,) confidences, or None for ones.
        scale_sigma: 1-sigma prior of the size factor around 1.
        rounds: correspondence rounds.

    Returns:
        A :class:`DepthFitResult` with finite numbers.

    """
    pose = np.array(pose_aa, dtype=np.float64)
    shape = np.array(shape, dtype=np.float64)
    t0 = np.array(translation_m, dtype=np.float64).reshape(3)
    points = np.asarray(points_m, dtype=np.float64).reshape(-1, 3)
    obs = np.asarray(keypoints_px, dtype=np.float64)
    if not (np.isfinite(pose).all() and np.isfinite(shape).all() and np.isfinite(t0).all()
            and t0[2] > 0.0):
        return _unfitted('bad_hand', pose, shape, t0)
    points = points[np.isfinite(points).all(axis=1) & (points[:, 2] > 0.0)]
    if len(points) < MIN_MATCHES:
        return _unfitted('too_few_depth_points', pose, shape, t0, len(points))
    kp_weights = np.ones(21) if keypoint_weights is None else np.asarray(keypoint_weights)
    fit = _Fit(surface, side, pose, shape, camera)
    x = np.concatenate([pose[surface.free_bones].reshape(-1), [1.0], t0])
    prior_w = np.zeros(fit.n)
    prior_w[:fit.n_pose] = BONE_SIGMA_RAD ** -2
    prior_w[:3] = ROOT_SIGMA_RAD ** -2
    prior_w[fit.n_pose] = max(float(scale_sigma), 1e-4) ** -2
    state = _solve_rounds(fit, x, prior_w, points, obs, kp_weights, noise_coeff_per_m,
                          rounds)
    if state is None:
        return _unfitted('too_few_depth_matches', pose, shape, t0, len(points))
    return _result(fit, state, pose, shape, t0, size, len(points))


def _damped_step(fit, current, problem, lam):
    """Return (evaluation, Hessian at ``current``, accepted): one damped Gauss-Newton step.

    The damping grows tenfold after a step that raises the cost (at most two tries).
    """
    hess, grad = fit.linearise(current, problem)
    n = len(grad)
    for _ in range(2):
        damped = np.array(hess, order='F')
        damped.flat[::n + 1] += lam * np.maximum(hess.diagonal(), 1e-9) + 1e-12
        step, info = lapack.dposv(damped, grad, overwrite_a=1)[1:]
        if info == 0 and np.isfinite(step).all():
            candidate = fit.score(fit.pose_at(current.x - step), problem)
            if candidate.cost <= current.cost:
                return candidate, hess, True
        lam *= 10.0
    return current, hess, False


def _solve_rounds(fit, x, prior_w, points, obs, kp_weights, noise_coeff, rounds):
    """Run the correspondence rounds; return (evaluation, Hessian, problem, steps) or None."""
    obs_px, kp_w = _keypoint_rows(obs, kp_weights)
    ev = fit.pose_at(x)
    gate, state, steps = GATE_START_M, None, 0
    if ev.posed is None:
        return None
    for _ in range(max(int(rounds), 1)):
        rows, index, normals, depth_w = _matches(fit, ev, points, noise_coeff, gate)
        gate = max(gate * GATE_SHRINK, GATE_MIN_M)
        if len(rows) < MIN_MATCHES:
            break
        problem = _Problem(points[rows], normals, index, depth_w, obs_px, kp_w, prior_w, x)
        current = fit.score(ev, problem)
        if not math.isfinite(current.cost):
            break
        ev, hess, accepted = _damped_step(fit, current, problem, LM_DAMPING)
        steps += 1
        state = (ev, hess, problem, steps, accepted)
    return state


def _result(fit, state, pose0, shape, t0, size, n_points):
    """Return the :class:`DepthFitResult` of the last round's solution (or the input)."""
    ev, hess, problem, steps, accepted = state
    pose, k, t = fit.unpack(ev.x)
    n_matched = len(problem.index)
    if not (SCALE_RANGE[0] < k < SCALE_RANGE[1]) or not np.isfinite(ev.x).all():
        return _unfitted('implausible_depth_fit', pose0, shape, t0, n_points, n_matched)
    # The Hessian of the last step's start (one Gauss-Newton step from the solution); its
    # residuals' variance scales it only up (never below the sensor and keypoint sigmas).
    rows = len(ev.r) + fit.n_pose + 1
    dof = max(rows - fit.n, 1)
    covariance = last_block_covariance(hess, max(ev.cost, float(dof)), rows, t)
    residual_m = ev.r[:n_matched] / np.maximum(problem.depth_w, 1e-12)
    covariance = covariance + wrist_lever_covariance(problem.points - t, residual_m)
    new_shape = size.with_length(shape, k * size.length_m(shape))
    return DepthFitResult(True, '', pose, new_shape, t.copy(), k, covariance, n_points,
                          n_matched, 1e3 * float(np.sqrt(np.mean(residual_m ** 2))), steps,
                          not accepted)
