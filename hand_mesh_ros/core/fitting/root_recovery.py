"""Absolute root translation of a hand from 2D keypoints, root-relative 3D joints and a camera.

With a camera model (full intrinsics or an assumed FOV) the keypoints are undistorted to
normalized rays and a linear least-squares problem gives a first translation T (for joint j
with root-relative position J_j and ray (a_j, b_j): ``X + J_jx = a_j (Z + J_jz)`` and
``Y + J_jy = b_j (Z + J_jz)``). A robust Levenberg-Marquardt refinement (IRLS with a Huber or
Cauchy loss on the pixel residual, analytic Jacobian through the full distorted projection)
then minimises reprojection error in raw-image pixels and rejects outlier keypoints.

Without a camera model the weak-perspective camera of HandTailor (section 3.5) is fitted:
``u_j = s * J_j[:2] + t`` with an orthographic scale ``s`` (px per metre) and a 2D offset
``t`` (px); a metric translation is then derived with a nominal focal length (given FOV,
centred principal point), so its depth is only as good as that assumption.
"""

from dataclasses import dataclass
import math

import numpy as np

from hand_mesh_ros.core.camera.camera import CameraMode, DEFAULT_HFOV_DEG, nominal_pinhole
from hand_mesh_ros.core.errors import RootRecoveryError
from hand_mesh_ros.core.fitting.least_squares import robust_levenberg_marquardt, row_norms

#: Median of the norm of a 2D isotropic Gaussian residual, in units of its per-axis sigma.
_RAYLEIGH_MEDIAN = math.sqrt(2.0 * math.log(2.0))


@dataclass(frozen=True, eq=False)
class RootResult:
    """Result of :func:`recover_root`.

    Attributes
    ----------
    translation_m: (3,) root joint position in the camera optical frame, metres.
    residuals_px: (N,) reprojection error norm per keypoint, px (0 where not valid).
    mean_reprojection_error_px: mean of ``residuals_px`` over inliers.
    inlier_mask: (N,) bool, keypoints used by the final fit.
    valid_mask: (N,) bool, keypoints with finite input and positive weight.
    mode: :class:`CameraMode` the solution was computed in.
    scale_px_per_m: weak-perspective scale s (``None`` in the perspective modes).
    offset_px: (2,) weak-perspective offset t, the root's pixel (``None`` otherwise).
    noise_sigma_px: per-axis keypoint noise the robust loss was scaled with.
    iterations: Levenberg-Marquardt iterations run (all rounds).
    converged: the last refinement met its convergence test.

    """

    translation_m: np.ndarray
    residuals_px: np.ndarray
    mean_reprojection_error_px: float
    inlier_mask: np.ndarray
    valid_mask: np.ndarray
    mode: CameraMode
    scale_px_per_m: float = None
    offset_px: np.ndarray = None
    noise_sigma_px: float = 0.0
    iterations: int = 0
    converged: bool = True


def _estimate_sigma(e, weights, floor):
    """Return a robust per-axis noise sigma from residual norms ``e`` (median based)."""
    used = e[weights > 0.0]
    return max(floor, float(np.median(used)) / _RAYLEIGH_MEDIAN) if used.size else floor


def _robust_fit(residual_fn, params, weights, robust, feasible, *, noise_sigma_px,
                min_sigma_px, inlier_threshold_sigma, max_iterations, min_keypoints):
    """Run the (robust) refinement; return (params, inliers, sigma, iterations, converged)."""
    if robust is None:
        params, its, converged = robust_levenberg_marquardt(
            residual_fn, params, weights, None, 1.0, feasible, max_iterations)
        return params, weights > 0.0, 0.0, its, converged
    # Round 1: robust loss on every keypoint, its scale from the starting residuals.
    e = row_norms(residual_fn(params)[0])
    sigma = noise_sigma_px or _estimate_sigma(e, weights, min_sigma_px)
    params, total, converged = robust_levenberg_marquardt(
        residual_fn, params, weights, robust, sigma, feasible, max_iterations)
    # Round 2: re-estimate the scale, reject outliers, refine on the inliers.
    e = row_norms(residual_fn(params)[0])
    sigma = noise_sigma_px or _estimate_sigma(e, weights, min_sigma_px)
    inliers = (weights > 0.0) & (e <= inlier_threshold_sigma * sigma)
    if np.count_nonzero(inliers) >= min_keypoints:
        params, its, converged = robust_levenberg_marquardt(
            residual_fn, params, weights * inliers, robust, sigma, feasible, max_iterations)
        total += its
    else:
        inliers = weights > 0.0
    return params, inliers, sigma, total, converged


def _check_inputs(keypoints_px, joints_rel_m, weights, min_keypoints):
    """Validate shapes; return (keypoints, joints, weights, valid) as float copies."""
    kp = np.array(keypoints_px, dtype=float)
    joints = np.array(joints_rel_m, dtype=float)
    if kp.ndim != 2 or kp.shape[1] != 2 or joints.shape != (kp.shape[0], 3):
        raise ValueError(f'keypoints_px must be (N, 2) and joints_rel_m (N, 3); got '
                         f'{kp.shape} and {joints.shape}')
    w = np.ones(kp.shape[0]) if weights is None else np.array(weights, dtype=float)
    if w.shape != (kp.shape[0],):
        raise ValueError(f'weights must be ({kp.shape[0]},), got {w.shape}')
    if (w < 0.0).any():
        raise ValueError('weights must be non-negative')
    valid = (np.isfinite(kp).all(axis=1) & np.isfinite(joints).all(axis=1)
             & np.isfinite(w) & (w > 0.0))
    w = np.where(valid, w, 0.0)
    if np.count_nonzero(valid) < min_keypoints:
        raise RootRecoveryError(
            f'{np.count_nonzero(valid)} valid keypoints, at least {min_keypoints} needed',
            reason='too_few_keypoints')
    used_kp, used_joints = kp[valid], joints[valid]
    if _largest_extent(used_kp) < 1e-6:
        raise RootRecoveryError('all keypoints are at the same pixel', reason='degenerate')
    if _largest_extent(used_joints) < 1e-9:
        raise RootRecoveryError('all 3D joints coincide', reason='degenerate')
    return kp, joints, w, valid


def _largest_extent(points):
    """Return the largest per-axis extent (max - min) of (M, D) ``points``."""
    return float((points.max(axis=0) - points.min(axis=0)).max())


def _solve_linear(design, target, weights):
    """Weighted least squares of stacked 2-row blocks; ``None`` if rank deficient.

    ``design`` is (M, 2, 3), ``target`` (M, 2), ``weights`` (M,); returns (3,) or ``None``.
    """
    sqrt_w = np.sqrt(weights)[:, None]
    rows = (design * sqrt_w[:, :, None]).reshape(-1, 3)
    rhs = (target * sqrt_w).reshape(-1)
    if not (np.isfinite(rows).all() and np.isfinite(rhs).all()):
        return None
    solution, _, _, sing = np.linalg.lstsq(rows, rhs, rcond=None)
    if not sing[-1] > 1e-9 * sing[0]:
        return None
    return solution


def _pair_solutions(design, target, weights, max_pairs=300):
    """Solve the linear system from every pair of keypoints (at most ``max_pairs``): (P, 3)."""
    used = np.flatnonzero(weights > 0.0)
    first, second = np.triu_indices(used.size, 1)
    if first.size > max_pairs:
        pick = np.random.default_rng(0).choice(first.size, max_pairs, replace=False)
        first, second = first[pick], second[pick]
    first, second = used[first], used[second]
    rows = np.concatenate([design[first], design[second]], axis=1)  # (P, 4, 3)
    rhs = np.concatenate([target[first], target[second]], axis=1)  # (P, 4)
    normal = np.einsum('pki,pkj->pij', rows, rows)
    scale = np.trace(normal, axis1=1, axis2=2)
    well_posed = np.linalg.det(normal) > 1e-12 * scale ** 3
    if not np.any(well_posed):
        return np.zeros((0, 3))
    sols = np.linalg.solve(normal[well_posed],
                           np.einsum('pki,pk->pi', rows[well_posed], rhs[well_posed])[..., None])
    sols = sols[..., 0]
    return sols[np.all(np.isfinite(sols), axis=1)]


def _initialize(design, target, weights, robust, feasible_batch, errors_batch, options,
                infeasible_reason):
    """Return a starting solution (3,): linear least squares, made robust by LMedS.

    Without a robust loss this is the weighted linear least-squares solution. With one, the
    candidates are that solution and the solutions from every pair of keypoints; the feasible
    candidate with the least median reprojection error wins (robust to < 50% outliers), and
    the linear problem is solved again on its inliers.
    """
    full = _solve_linear(design, target, weights)
    if robust is None:
        if full is None:
            raise RootRecoveryError('the linear system is rank deficient', reason='degenerate')
        if not feasible_batch(full[None])[0]:
            raise RootRecoveryError(
                'the linear solution is not feasible (hand behind the camera, too far or '
                'mirrored)', reason=infeasible_reason(full))
        return full
    cands = _pair_solutions(design, target, weights)
    if full is not None:
        cands = np.concatenate([full[None], cands])
    if cands.shape[0]:
        cands = cands[feasible_batch(cands)]
    if not cands.shape[0]:
        reason = 'degenerate' if full is None else infeasible_reason(full)
        raise RootRecoveryError('no feasible linear solution', reason=reason)
    used = weights > 0.0
    with np.errstate(all='ignore'):
        errors = errors_batch(cands)[:, used]
        medians = np.median(errors, axis=1)
    medians[~np.isfinite(medians)] = np.inf
    best = int(np.argmin(medians))
    if not np.isfinite(medians[best]):
        raise RootRecoveryError('no candidate reprojects finitely', reason='non_finite')
    sigma = options['noise_sigma_px'] or max(options['min_sigma_px'],
                                             medians[best] / _RAYLEIGH_MEDIAN)
    inliers = np.zeros_like(used)
    inliers[used] = errors[best] <= options['inlier_threshold_sigma'] * sigma
    if np.count_nonzero(inliers) >= options['min_keypoints']:
        refit = _solve_linear(design, target, weights * inliers)
        if refit is not None and feasible_batch(refit[None])[0]:
            return refit
    return cands[best]


def _finish(params, kp, valid, inliers, residual_fn, sigma, its, converged, mode, **extra):
    """Assemble a :class:`RootResult` from the refined parameters."""
    residuals = np.zeros(kp.shape[0])
    residuals[valid] = row_norms(residual_fn(params)[0])
    inlier_mask = np.zeros(kp.shape[0], dtype=bool)
    inlier_mask[valid] = inliers
    if not np.all(np.isfinite(residuals)):
        raise RootRecoveryError('non-finite reprojection residuals', reason='non_finite')
    return RootResult(
        translation_m=extra.pop('translation_m'), residuals_px=residuals,
        mean_reprojection_error_px=float(np.mean(residuals[inlier_mask])),
        inlier_mask=inlier_mask, valid_mask=valid.copy(), mode=mode,
        noise_sigma_px=float(sigma), iterations=int(its), converged=bool(converged), **extra)


def recover_root(keypoints_px, joints_rel_m, camera, *, weights=None, robust='huber',
                 image_size=None, noise_sigma_px=None, min_sigma_px=None, min_sigma_rel=0.02,
                 inlier_threshold_sigma=3.5, max_iterations=50, min_keypoints=4,
                 min_depth_m=0.02, max_depth_m=10.0, hfov_deg=DEFAULT_HFOV_DEG):
    """Recover the root joint's position in the camera frame from 2D keypoints and 3D joints.

    Parameters
    ----------
    keypoints_px
        (N, 2) keypoints in raw-image pixels (the camera model's image); NaN
        rows are ignored.
    joints_rel_m
        (N, 3) joints relative to the root (joint 0 for MediaPipe order), in
        camera-frame orientation, metres.
    camera
        A :class:`~hand_mesh_ros.core.camera.camera.CameraModel` (full intrinsics or assumed
        FOV), or ``None`` for the weak-perspective mode.
    weights
        (N,) non-negative per-keypoint weights (e.g. confidences); default ones.
    robust
        'huber', 'cauchy' or ``None`` (plain least squares, no outlier rejection).
    image_size
        (width, height) px; required when ``camera`` is ``None``.
    noise_sigma_px
        Per-axis keypoint noise used to scale the robust loss; default:
        estimated from the residuals (median based), at least ``min_sigma_px``.
    min_sigma_px
        Floor of the estimated noise, px; default (None): ``min_sigma_rel`` times the
        keypoints' spread (RMS distance from their centroid), so that the same scene at
        another resolution is fitted the same way.
    min_sigma_rel
        The floor relative to the keypoints' spread when ``min_sigma_px`` is None.
    inlier_threshold_sigma
        Keypoints with residual > this many sigmas are rejected.
    max_iterations
        Levenberg-Marquardt iterations per round.
    min_keypoints
        Fewest valid keypoints accepted.
    min_depth_m
        Every joint must lie at least this far in front of the camera.
    max_depth_m
        No joint may lie farther than this (a hand farther away is implausible; stops a
        degenerate fit from running off to infinity).
    hfov_deg
        Horizontal FOV of the nominal camera of the weak-perspective mode.

    Returns
    -------
    :class:`RootResult` with finite values.

    Raises
    ------
    RootRecoveryError: degenerate or non-finite input, too few keypoints, or no solution
        with every joint between ``min_depth_m`` and ``max_depth_m`` (``'behind_camera'``,
        ``'too_far'``; weak perspective also ``'too_near'``); ``reason`` tells which.
    ValueError: wrongly shaped arguments, unknown ``robust``.
    CameraModelError: no camera and ``image_size`` missing or not positive (the nominal
        camera of :func:`~hand_mesh_ros.core.camera.camera.nominal_pinhole`).

    """
    if robust not in ('huber', 'cauchy', None):
        raise ValueError(f"robust must be 'huber', 'cauchy' or None, got {robust!r}")
    kp, joints, w, valid = _check_inputs(keypoints_px, joints_rel_m, weights, min_keypoints)
    if min_sigma_px is None:
        used = kp[valid]
        spread_px = math.sqrt(float(np.mean(np.sum((used - used.mean(axis=0)) ** 2, axis=1))))
        min_sigma_px = min_sigma_rel * spread_px
    options = {'noise_sigma_px': noise_sigma_px, 'min_sigma_px': min_sigma_px,
               'inlier_threshold_sigma': inlier_threshold_sigma,
               'max_iterations': max_iterations, 'min_keypoints': min_keypoints}
    if camera is None:
        return _recover_weak_perspective(kp, joints, w, valid, robust, image_size, hfov_deg,
                                         (min_depth_m, max_depth_m), options)
    return _recover_perspective(kp, joints, w, valid, robust, camera,
                                (min_depth_m, max_depth_m), options)


def _recover_perspective(kp, joints, w, valid, robust, camera, depth_range_m, options):
    """Solve the linear ray equations for T, then refine it through the full camera model."""
    min_depth_m, max_depth_m = depth_range_m
    rays = camera.undistort_pixels(kp)
    valid = valid & np.isfinite(rays).all(axis=1)
    if np.count_nonzero(valid) < options['min_keypoints']:
        raise RootRecoveryError('too few keypoints can be undistorted',
                                reason='too_few_keypoints')
    u, joints_v, rays_v, w_v = kp[valid], joints[valid], rays[valid], w[valid]
    # Per keypoint: [1, 0, -a] T = a J_z - J_x and [0, 1, -b] T = b J_z - J_y.
    design = np.zeros((u.shape[0], 2, 3))
    design[:, 0, 0] = 1.0
    design[:, 1, 1] = 1.0
    design[:, :, 2] = -rays_v
    target = rays_v * joints_v[:, 2:3] - joints_v[:, :2]

    def feasible_batch(cands):
        points = camera.to_projection_frame(cands[:, None, :] + joints_v[None])
        depth = points[:, 2].reshape(cands.shape[0], -1)
        return (np.all(np.isfinite(depth), axis=1) & (np.min(depth, axis=1) > min_depth_m)
                & (np.max(depth, axis=1) < max_depth_m))

    def errors_batch(cands):
        px = camera.project(cands[:, None, :] + joints_v[None])
        return np.linalg.norm(px.reshape(cands.shape[0], -1, 2) - u[None], axis=2)

    def residual_fn(t):
        px, jac = camera.project_with_jacobian(t + joints_v)
        return px - u, jac

    def depth_ok(t):
        depth = camera.to_projection_frame(t + joints_v)[:, 2]
        return bool(np.isfinite(depth).all() and depth.min() > min_depth_m
                    and depth.max() < max_depth_m)

    def depth_reason(t):
        too_far = np.max(camera.to_projection_frame(t + joints_v)[:, 2]) >= max_depth_m
        return 'too_far' if too_far else 'behind_camera'

    translation = _initialize(design, target, w_v, robust, feasible_batch, errors_batch,
                              options, depth_reason)
    translation, inliers, sigma, its, converged = _robust_fit(
        residual_fn, translation, w_v, robust, depth_ok, **options)
    if not np.all(np.isfinite(translation)) or not depth_ok(translation):
        raise RootRecoveryError('refined solution is not valid', reason=depth_reason(translation))
    return _finish(translation, kp, valid, inliers, residual_fn, sigma, its, converged,
                   CameraMode(camera.mode), translation_m=translation.copy())


def _recover_weak_perspective(kp, joints, w, valid, robust, image_size, hfov_deg, depth_range_m,
                              options):
    """Fit u = s * J[:2] + t (HandTailor 3.5) and derive a nominal metric translation."""
    focal_px, centre_px = nominal_pinhole(image_size, hfov_deg)
    # The nominal depth focal_px / s must lie in the accepted depth range.
    min_scale, max_scale = focal_px / depth_range_m[1], focal_px / depth_range_m[0]
    u, joints_v, w_v = kp[valid], joints[valid], w[valid]
    design = np.zeros((u.shape[0], 2, 3))
    design[:, :, 0] = joints_v[:, :2]
    design[:, 0, 1] = 1.0
    design[:, 1, 2] = 1.0

    def errors_batch(cands):
        pred = np.einsum('mai,ci->cma', design, cands)
        return np.linalg.norm(pred - u[None], axis=2)

    def residual_fn(p):
        return np.einsum('mai,i->ma', design, p) - u, design

    def feasible_batch(cands):
        return (cands[:, 0] > min_scale) & (cands[:, 0] < max_scale)

    def scale_reason(p):
        if p[0] <= 0.0:
            return 'degenerate'  # mirrored
        return 'too_far' if p[0] <= min_scale else 'too_near'

    params = _initialize(design, u, w_v, robust, feasible_batch, errors_batch, options,
                         scale_reason)
    params, inliers, sigma, its, converged = _robust_fit(
        residual_fn, params, w_v, robust, lambda p: bool(feasible_batch(p[None])[0]),
        **options)
    scale, offset = float(params[0]), params[1:].copy()
    translation = np.append((offset - centre_px) / scale, focal_px / scale)
    if not np.all(np.isfinite(translation)):
        raise RootRecoveryError('weak-perspective solution is not finite', reason='non_finite')
    return _finish(params, kp, valid, inliers, residual_fn, sigma, its, converged,
                   CameraMode.WEAK_PERSPECTIVE, translation_m=translation,
                   scale_px_per_m=scale, offset_px=offset)
