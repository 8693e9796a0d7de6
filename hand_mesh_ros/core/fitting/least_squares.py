"""What the fits share: the damped Gauss-Newton (Levenberg-Marquardt) step and the 2D error.

Root recovery and the tailor both minimise reprojection residuals with Levenberg-Marquardt:
each iteration solves the Gauss-Newton system damped on its diagonal (Marquardt's scaling,
invariant to the parameters' units, :func:`damped_step`) and measures its fit by the mean
keypoint distance (:func:`mean_reprojection_error_px`). Root recovery's loop
(:func:`robust_levenberg_marquardt`) reweights a robust loss (IRLS) on pixel residuals; the
tailor's (:func:`hand_mesh_ros.core.fitting.tailor_terms.levenberg_marquardt`) linearises
its many-term cost lazily.
"""

import math

import numpy as np
from scipy.linalg import lapack

#: Loss thresholds in units of the estimated per-axis keypoint noise sigma.
_HUBER_K = 2.0
_CAUCHY_K = 2.5
#: Relative step size below which Levenberg-Marquardt stops (0.1 micrometre at 1 m, four
#: orders below the millimetres the keypoints' noise leaves).
_STEP_TOL = 1e-7


def damped_step(hess, half_gradient, damping, diagonal_floor, ridge=0.0):
    """Return the Levenberg-Marquardt step (n,), or None where the system cannot be solved.

    Solves ``(H + damping * D + ridge * I) step = -g`` with ``D = diag(max(diag(H),
    diagonal_floor))`` by Cholesky; ``hess`` (n, n) is the Gauss-Newton Hessian ``J^T J``
    and ``half_gradient`` (n,) is ``J^T r``. None when the damped matrix is not positive
    definite or the step is not finite (the caller raises the damping). The inputs are not
    modified.
    """
    hess = np.asarray(hess, dtype=np.float64)
    damped = np.array(hess, order='F')  # LAPACK's layout: dposv overwrites this copy only
    damped.flat[::hess.shape[0] + 1] += (
        damping * np.maximum(hess.diagonal(), diagonal_floor) + ridge)
    step, info = lapack.dposv(damped, half_gradient, overwrite_a=1)[1:]
    if info != 0 or not np.isfinite(step).all():
        return None
    return -step


def mean_reprojection_error_px(keypoints_px, observed_px, used=None):
    """Return the mean distance (px) between (K, 2) ``keypoints_px`` and ``observed_px``.

    ``used`` (K,) bool selects the keypoints that count (all when None); NaN where none
    does.
    """
    diff = np.asarray(keypoints_px, dtype=np.float64) - np.asarray(observed_px,
                                                                   dtype=np.float64)
    dist = np.sqrt(np.einsum('ka,ka->k', diff, diff))
    if used is None:
        return float(dist.mean())
    used = np.asarray(used, dtype=bool)
    count = int(np.count_nonzero(used))
    return float(dist @ used) / count if count else float('nan')


def robust_loss(e, robust, scale):
    """Return the robust cost rho(e) and IRLS weight psi(e)/e for residual norms ``e``."""
    if robust is None:
        return 0.5 * e * e, np.ones_like(e)
    if robust == 'huber':
        delta = _HUBER_K * scale
        inside = e <= delta
        rho = np.where(inside, 0.5 * e * e, delta * (e - 0.5 * delta))
        return rho, np.where(inside, 1.0, delta / np.maximum(e, 1e-300))
    c = _CAUCHY_K * scale
    q = (e / c) ** 2
    return 0.5 * c * c * np.log1p(q), 1.0 / (1.0 + q)


def robust_levenberg_marquardt(residual_fn, params, weights, robust, scale, feasible,
                               max_iterations):
    """Minimise sum_j w_j rho(|r_j(p)|) over ``params`` (n,) by IRLS Levenberg-Marquardt.

    ``residual_fn(p)`` returns residuals (M, 2) and their Jacobian (M, 2, n); ``weights``
    (M,); ``robust`` and ``scale`` as in :func:`robust_loss`; ``feasible(p)`` refuses a
    candidate. Each iteration tries up to 12 dampings; the loop stops when the step
    vanishes or no damping lowers the cost. Returns (params, iterations, converged).
    """
    resid, jac = residual_fn(params)
    rho, irls = robust_loss(row_norms(resid), robust, scale)
    cost = float((weights * rho).sum())
    lam = 1e-4
    for iteration in range(1, max_iterations + 1):
        sqrt_omega = np.sqrt(weights * irls)[:, None]
        jac_w = (jac * sqrt_omega[:, :, None]).reshape(-1, params.size)
        hess = jac_w.T @ jac_w
        grad = jac_w.T @ (resid * sqrt_omega).reshape(-1)
        diag_floor = 1e-12 * max(1.0, float(hess.diagonal().max()))
        params_norm = math.sqrt(float(params @ params))
        accepted = False
        for _ in range(12):
            step = damped_step(hess, grad, lam, diag_floor)
            if step is None:
                lam *= 10.0
                continue
            if math.sqrt(float(step @ step)) <= _STEP_TOL * (1.0 + params_norm):
                return params, iteration, True  # the (IRLS) Gauss-Newton step vanished
            candidate = params + step
            if feasible(candidate):
                new_resid, new_jac = residual_fn(candidate)
                new_rho, new_irls = robust_loss(row_norms(new_resid), robust, scale)
                new_cost = float((weights * new_rho).sum())
                if np.isfinite(new_cost) and new_cost <= cost:
                    accepted = True
                    break
            lam *= 10.0
        if not accepted:
            return params, iteration, True  # no decrease possible: at a minimum
        params, resid, jac, irls, cost = candidate, new_resid, new_jac, new_irls, new_cost
        lam = max(lam / 10.0, 1e-9)
    return params, max_iterations, False


def row_norms(vectors):
    """Return the Euclidean norms (M,) of the rows of ``vectors`` (M, 2)."""
    return np.sqrt(np.einsum('ma,ma->m', vectors, vectors))
