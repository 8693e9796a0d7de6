"""Lens distortion models of sensor_msgs/CameraInfo, with analytic Jacobians and inversion.

All functions work on normalized image coordinates (x/z, y/z in the camera optical frame), not
on pixels; :mod:`hand_mesh_ros.core.camera.camera` applies the intrinsic matrix.

Models (ROS ``distortion_model`` names, coefficient order as in the CameraInfo ``D`` field):

- ``plumb_bob``: (k1, k2, p1, p2, k3), Brown-Conrady radial + tangential.
- ``rational_polynomial``: (k1, k2, p1, p2, k3, k4, k5, k6), radial term
  (1 + k1 r^2 + k2 r^4 + k3 r^6) / (1 + k4 r^2 + k5 r^4 + k6 r^6).
- ``equidistant``: (k1, k2, k3, k4), fisheye: theta_d = theta (1 + k1 theta^2 + ... k4 theta^8)
  with theta = atan(r); the distorted point is (theta_d / r) (x, y).
- ``none``: identity.

Like OpenCV (and ``image_geometry``), ``plumb_bob`` and ``rational_polynomial`` accept every
length of ``D`` that OpenCV's standard model accepts (:data:`ACCEPTED_LENGTHS`): 4, 5, 8, 12 or
14 coefficients in OpenCV order (k1, k2, p1, p2[, k3[, k4, k5, k6[, s1, s2, s3, s4[, tau_x,
tau_y]]]]); missing ones are zero. s1..s4 are the thin-prism terms (x += s1 r^2 + s2 r^4,
y += s3 r^2 + s4 r^4) and tau_x, tau_y the tilted-sensor angles (OpenCV's
``computeTiltProjectionMatrix``). Camera drivers publish such lengths (OAK-D: 14).
"""

import numpy as np

PLUMB_BOB = 'plumb_bob'
RATIONAL_POLYNOMIAL = 'rational_polynomial'
EQUIDISTANT = 'equidistant'
NO_DISTORTION = 'none'

#: Number of coefficients in ``D`` that ROS documents for each supported model.
COEFFICIENT_COUNT = {PLUMB_BOB: 5, RATIONAL_POLYNOMIAL: 8, EQUIDISTANT: 4, NO_DISTORTION: 0}

_OPENCV_LENGTHS = (4, 5, 8, 12, 14)
#: Lengths of ``D`` accepted for each model (those OpenCV accepts).
ACCEPTED_LENGTHS = {PLUMB_BOB: _OPENCV_LENGTHS, RATIONAL_POLYNOMIAL: _OPENCV_LENGTHS,
                    EQUIDISTANT: (4,), NO_DISTORTION: (0,)}


def _rational_coefficients(model, d):
    """Return the 14 OpenCV coefficients (k1..k6, p1, p2, s1..s4, tau_x, tau_y), zero-padded."""
    coeffs = np.zeros(14)
    values = np.asarray(d, dtype=float).reshape(-1)[:14]
    coeffs[:values.size] = values
    return coeffs


def _tilt_matrix(tau_x, tau_y):
    """Return OpenCV's 3x3 tilted-sensor projection matrix for the angles (radians)."""
    cx, sx, cy, sy = np.cos(tau_x), np.sin(tau_x), np.cos(tau_y), np.sin(tau_y)
    rot_x = np.array([[1.0, 0.0, 0.0], [0.0, cx, sx], [0.0, -sx, cx]])
    rot_y = np.array([[cy, 0.0, -sy], [0.0, 1.0, 0.0], [sy, 0.0, cy]])
    rot = rot_y @ rot_x
    proj_z = np.array([[rot[2, 2], 0.0, -rot[0, 2]], [0.0, rot[2, 2], -rot[1, 2]],
                       [0.0, 0.0, 1.0]])
    return proj_z @ rot


def _apply_tilt(xy, jac, tau_x, tau_y):
    """Apply the tilt homography to (N, 2) points and chain it into their (N, 2, 2) Jacobian."""
    mat = _tilt_matrix(tau_x, tau_y)
    hom = xy @ mat[:, :2].T + mat[:, 2]
    inv_w = 1.0 / hom[:, 2]
    out = hom[:, :2] * inv_w[:, None]
    if jac is None:
        return out, None
    # d(out_i)/d(xy) = (M[i, :2] - out_i M[2, :2]) / w
    d_tilt = (mat[None, :2, :2] - out[:, :, None] * mat[None, 2:3, :2]) * inv_w[:, None, None]
    return out, d_tilt @ jac


def distort(xy_n, model, d):
    """Distort (N, 2) normalized points with ``model`` and coefficients ``d``; return (N, 2)."""
    if model == NO_DISTORTION:
        return np.array(xy_n, dtype=float)
    if model == EQUIDISTANT:
        xy_n = np.asarray(xy_n, dtype=float)
        r = np.hypot(xy_n[:, 0], xy_n[:, 1])
        theta_d, _ = _theta_poly(np.arctan(r), np.asarray(d, dtype=float))
        small = r < 1e-8
        g = np.where(small, 1.0, theta_d / np.where(small, 1.0, r))
        return xy_n * g[:, None]
    return distort_with_jacobian(xy_n, model, d, jacobian=False)[0]


def distort_with_jacobian(xy_n, model, d, jacobian=True):
    """Distort normalized points and return the Jacobian of the distortion.

    Parameters
    ----------
    xy_n
        (N, 2) undistorted normalized coordinates.
    model
        One of the model names in ``COEFFICIENT_COUNT``.
    d
        (M,) coefficients in CameraInfo order.
    jacobian
        Compute the Jacobian (``False`` returns ``None`` in its place; Brown-Conrady only).

    Returns
    -------
    xy_d: (N, 2) distorted normalized coordinates.
    jac: (N, 2, 2) d(xy_d) / d(xy_n).

    """
    xy_n = np.asarray(xy_n, dtype=float)
    x = xy_n[:, 0]
    y = xy_n[:, 1]
    n = xy_n.shape[0]
    if model == NO_DISTORTION:
        jac = np.zeros((n, 2, 2))
        jac[:, 0, 0] = 1.0
        jac[:, 1, 1] = 1.0
        return xy_n.copy(), jac
    if model == EQUIDISTANT:
        return _equidistant(x, y, np.asarray(d, dtype=float))
    k1, k2, p1, p2, k3, k4, k5, k6, s1, s2, s3, s4, tau_x, tau_y = (
        _rational_coefficients(model, d))
    tilted = tau_x != 0.0 or tau_y != 0.0
    r2 = x * x + y * y
    num = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))
    den = 1.0 + r2 * (k4 + r2 * (k5 + r2 * k6))
    dnum = k1 + r2 * (2.0 * k2 + 3.0 * k3 * r2)
    dden = k4 + r2 * (2.0 * k5 + 3.0 * k6 * r2)
    c = num / den
    dc = (dnum * den - num * dden) / (den * den)  # d c / d r2
    xy = x * y
    xd = x * c + 2.0 * p1 * xy + p2 * (r2 + 2.0 * x * x) + r2 * (s1 + s2 * r2)
    yd = y * c + p1 * (r2 + 2.0 * y * y) + 2.0 * p2 * xy + r2 * (s3 + s4 * r2)
    out = np.stack([xd, yd], axis=1)
    if not jacobian:
        return _apply_tilt(out, None, tau_x, tau_y) if tilted else (out, None)
    jac = np.empty((n, 2, 2))
    cross = 2.0 * xy * dc + 2.0 * p1 * x + 2.0 * p2 * y
    prism_x = 2.0 * (s1 + 2.0 * s2 * r2)   # d(s1 r^2 + s2 r^4) / d(x or y), over x or y
    prism_y = 2.0 * (s3 + 2.0 * s4 * r2)
    jac[:, 0, 0] = c + 2.0 * x * x * dc + 2.0 * p1 * y + 6.0 * p2 * x + prism_x * x
    jac[:, 0, 1] = cross + prism_x * y
    jac[:, 1, 0] = cross + prism_y * x
    jac[:, 1, 1] = c + 2.0 * y * y * dc + 6.0 * p1 * y + 2.0 * p2 * x + prism_y * y
    if tilted:
        return _apply_tilt(out, jac, tau_x, tau_y)
    return out, jac


def _theta_poly(theta, d):
    """Return theta_d(theta) and d theta_d / d theta for the equidistant model."""
    k1, k2, k3, k4 = d
    t2 = theta * theta
    poly = 1.0 + t2 * (k1 + t2 * (k2 + t2 * (k3 + t2 * k4)))
    dpoly = 1.0 + t2 * (3.0 * k1 + t2 * (5.0 * k2 + t2 * (7.0 * k3 + t2 * 9.0 * k4)))
    return theta * poly, dpoly


def _equidistant(x, y, d):
    """Distort with the equidistant (fisheye) model; see :func:`distort_with_jacobian`."""
    r = np.hypot(x, y)
    theta = np.arctan(r)
    theta_d, dtheta_d = _theta_poly(theta, d)
    small = r < 1e-8
    r_safe = np.where(small, 1.0, r)
    g = np.where(small, 1.0, theta_d / r_safe)
    # h = (dg/dr) / r, with the series limit 2 (k1 - 1/3) at r -> 0.
    dg_dr = (dtheta_d / (1.0 + r_safe * r_safe) * r_safe - theta_d) / (r_safe * r_safe)
    h = np.where(small, 2.0 * (d[0] - 1.0 / 3.0), dg_dr / r_safe)
    jac = np.empty((x.shape[0], 2, 2))
    jac[:, 0, 0] = g + h * x * x
    jac[:, 0, 1] = h * x * y
    jac[:, 1, 0] = jac[:, 0, 1]
    jac[:, 1, 1] = g + h * y * y
    return np.stack([g * x, g * y], axis=1), jac


def undistort_normalized(xy_d, model, d, max_iterations=50, tol=1e-13):
    """Invert the distortion of normalized points by Newton's method.

    Parameters
    ----------
    xy_d
        (N, 2) distorted normalized coordinates.
    model
        Distortion model name.
    d
        (M,) coefficients in CameraInfo order.
    max_iterations
        Newton iterations at most.
    tol
        Convergence threshold on the distortion residual (normalized units).

    Returns
    -------
    xy_n: (N, 2) undistorted normalized coordinates; NaN where the inversion did not
    converge (e.g. beyond the fold of a strong barrel distortion) or the input is not
    finite.

    """
    xy_d = np.asarray(xy_d, dtype=float)
    if model == NO_DISTORTION:
        return xy_d.copy()
    if model == EQUIDISTANT:
        return _undistort_equidistant(xy_d, np.asarray(d, dtype=float), max_iterations, tol)
    xy_n = xy_d.copy()
    err = np.full(xy_d.shape[0], np.inf)
    for _ in range(max_iterations):
        f, jac = distort_with_jacobian(xy_n, model, d)
        resid = f - xy_d
        err = np.max(np.abs(resid), axis=1)
        active = err > tol
        if not np.any(active):
            break
        det = jac[:, 0, 0] * jac[:, 1, 1] - jac[:, 0, 1] * jac[:, 1, 0]
        det = np.where(np.abs(det) < 1e-12, 1e-12, det)
        step_x = (jac[:, 1, 1] * resid[:, 0] - jac[:, 0, 1] * resid[:, 1]) / det
        step_y = (jac[:, 0, 0] * resid[:, 1] - jac[:, 1, 0] * resid[:, 0]) / det
        step = np.stack([step_x, step_y], axis=1)
        # Limit the step so that one bad Jacobian cannot throw a point far away.
        norm = np.linalg.norm(step, axis=1, keepdims=True)
        limit = 0.5 * (1.0 + np.linalg.norm(xy_n, axis=1, keepdims=True))
        step = np.where(norm > limit, step * limit / np.maximum(norm, 1e-300), step)
        xy_n = np.where(active[:, None], xy_n - step, xy_n)
    ok = np.isfinite(err) & (err <= max(tol * 1e3, 1e-10))
    xy_n[~ok] = np.nan
    return xy_n


def _undistort_equidistant(xy_d, d, max_iterations, tol):
    """Invert the equidistant model: solve theta_d(theta) = |xy_d| for theta in [0, pi/2)."""
    r_d = np.hypot(xy_d[:, 0], xy_d[:, 1])
    theta = np.clip(r_d, 0.0, np.pi / 2 - 1e-6)
    for _ in range(max_iterations):
        f, df = _theta_poly(theta, d)
        resid = f - r_d
        if np.all(np.abs(resid[np.isfinite(resid)]) <= tol):
            break
        df = np.where(np.abs(df) < 1e-12, 1e-12, df)
        theta = np.clip(theta - resid / df, 0.0, np.pi / 2 - 1e-6)
    f, df = _theta_poly(theta, d)
    ok = np.isfinite(f) & (np.abs(f - r_d) <= max(tol * 1e3, 1e-10)) & (df > 0.0)
    small = r_d < 1e-12
    scale = np.where(small, 1.0, np.tan(theta) / np.where(small, 1.0, r_d))
    xy_n = xy_d * scale[:, None]
    xy_n[~ok] = np.nan
    return xy_n
