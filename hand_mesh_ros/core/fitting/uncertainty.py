"""How far a hand's published position can be trusted: wrist covariance and confidence.

The wrist position ``p`` (camera optical frame, metres) of a monocular fit is uncertain
through

- the fit itself (2D keypoint noise through the Jacobian; the tailor's Gauss-Newton
  Hessian scaled by its residual variance), mostly across the viewing ray;
- the hand's size: the same image with a hand ``(1 + e)`` times larger puts it ``(1 + e)``
  times further along its ray, so the size's relative sigma becomes ``(s_L / L)^2 p p^T``
  (``depth_sigma_m`` of :func:`wrist_covariance_m2` replaces it with a known depth sigma);
- the camera: an assumed focal length scales depth only (``(s_f z)^2`` on z), an assumed
  principal point shifts x and y by ``s_c z`` (``s_c`` = principal-point sigma / focal).

:data:`CAMERA_SIGMAS` holds ``(s_f, s_c)`` per position mode; they are inputs of
:func:`wrist_covariance_m2`, not constants baked into it.

A hand fused with a registered depth image is published with the depth stage's own
covariance (its solve holds the same 2D and size prior, so this one is not added again) plus
the camera's terms for a measured depth (:func:`camera_covariance_m2`): the focal length
then scales the offsets across the optical axis instead of the depth.

The confidence is the detector's hand score times the probability that the wrist lies
within :data:`CONFIDENCE_RADIUS_M` of the published position under that covariance.
"""

import functools

import numpy as np
from scipy.linalg import lapack

#: Radius (metres) of the confidence: P(|wrist error| < radius).
CONFIDENCE_RADIUS_M = 0.05
#: Per position mode: (relative sigma of the focal length, principal-point sigma / focal).
#: Assumed FOV: a 60 degree guess for cameras of about 45-90 degrees; weak perspective adds
#: the error of projecting every point at the root's depth.
CAMERA_SIGMAS = {
    'full_intrinsics': (0.01, 0.003),
    'depth_fused': (0.01, 0.003),
    'assumed_fov': (0.25, 0.05),
    'weak_perspective': (0.30, 0.05),
}
#: Samples of the standard normal used to integrate the confidence (deterministic).
_N_SAMPLES = 512


def wrist_covariance_m2(translation_m, fit_covariance_m2, length_rel_sigma, focal_rel_sigma,
                        principal_rel_sigma, depth_sigma_m=None):
    """Return the (3, 3) covariance (m^2) of a wrist position in the camera frame.

    Args:
        translation_m: (3,) wrist position.
        fit_covariance_m2: (3, 3) covariance of the fit at fixed size and camera.
        length_rel_sigma: sigma / mean of the hand length the fit assumed.
        focal_rel_sigma: relative sigma of the focal length.
        principal_rel_sigma: principal-point sigma divided by the focal length.
        depth_sigma_m: sigma of a metric depth of the wrist, or None (then the size's).

    """
    p = np.asarray(translation_m, dtype=np.float64)
    z = max(float(p[2]), 1e-6)
    rel = (float(depth_sigma_m) / z) if depth_sigma_m is not None else float(length_rel_sigma)
    cov = (np.array(fit_covariance_m2, dtype=np.float64) + rel ** 2 * np.outer(p, p)
           + _camera_terms(p, focal_rel_sigma, principal_rel_sigma, depth_measured=False))
    return 0.5 * (cov + cov.T)


def _camera_terms(p, focal_rel_sigma, principal_rel_sigma, depth_measured):
    """Return the (3, 3) covariance an uncertain focal length and principal point add at p."""
    z = max(float(p[2]), 1e-6)
    cov = np.zeros((3, 3))
    if depth_measured:   # x = (u - c) z / f: the focal length scales the lateral offsets
        lateral = np.array([p[0], p[1], 0.0])
        cov += float(focal_rel_sigma) ** 2 * np.outer(lateral, lateral)
    else:                # the hand's size in pixels gives z through f
        cov[2, 2] += (float(focal_rel_sigma) * z) ** 2
    shift = (float(principal_rel_sigma) * z) ** 2
    cov[0, 0] += shift
    cov[1, 1] += shift
    return cov


def camera_covariance_m2(translation_m, mode, depth_measured=True):
    """Return the (3, 3) covariance the camera model of ``mode`` adds to a wrist position.

    ``mode`` is a CameraMode (or its value) whose sigmas (:data:`CAMERA_SIGMAS`) apply; an
    unknown mode counts as weak perspective. With ``depth_measured`` (a depth image gave the
    depth) the focal length scales the offsets across the optical axis; without it, the
    depth. The principal point shifts x and y either way.
    """
    return _camera_terms(np.asarray(translation_m, dtype=np.float64),
                         *_mode_sigmas(mode), depth_measured=depth_measured)


def _mode_sigmas(mode):
    return CAMERA_SIGMAS.get(getattr(mode, 'value', str(mode)), CAMERA_SIGMAS['weak_perspective'])


def last_block_covariance(hessian, cost, n_residuals, translation_m):
    """Return the (3, 3) covariance of the last three parameters of a least-squares fit.

    ``hessian`` (n, n) is the Gauss-Newton ``J^T W J`` and ``cost`` the weighted squared
    residual sum at the solution: covariance = ``cost / (n_residuals - n)`` times the last
    block of the inverse (invariant to a common scale of the weights). Where the Hessian
    cannot be inverted, an isotropic sigma of half the depth of ``translation_m``.
    """
    hess = np.array(hessian, dtype=np.float64)
    n = len(hess)
    variance = max(float(cost), 0.0) / max(int(n_residuals) - n, 1)
    rhs = np.zeros((n, 3))
    rhs[-3:] = np.eye(3)
    hess.flat[::n + 1] += 1e-9 * np.maximum(hess.diagonal(), 1e-9)
    info, solved = 1, None
    if np.isfinite(hess).all() and hess.diagonal().min() > 1e-12:
        _, solved, info = lapack.dposv(hess, rhs)
    if info != 0 or not np.isfinite(solved).all():
        return np.eye(3) * (0.5 * max(float(translation_m[2]), 0.1)) ** 2
    return variance * solved[-3:]


@functools.lru_cache(maxsize=1)
def _normal_samples():
    """Return fixed (N, 3) standard-normal samples."""
    return np.random.default_rng(12345).standard_normal((_N_SAMPLES, 3))


def probability_within(covariance_m2, radius_m=CONFIDENCE_RADIUS_M):
    """Return P(|e| < radius) for e ~ N(0, covariance) (3, 3), by fixed-sample integration."""
    cov = np.asarray(covariance_m2, dtype=np.float64)
    values, vectors = np.linalg.eigh(0.5 * (cov + cov.T))
    sd = np.sqrt(np.maximum(values, 0.0))
    if not np.all(np.isfinite(sd)):
        return 0.0
    samples = _normal_samples() * sd
    return float(np.mean(np.einsum('na,na->n', samples, samples) < radius_m ** 2))


def hand_confidence(score, covariance_m2, radius_m=CONFIDENCE_RADIUS_M):
    """Return the hand's confidence in [0, 1]: ``score`` times P(wrist error < radius)."""
    score = float(np.clip(score, 0.0, 1.0)) if np.isfinite(score) else 0.0
    return score * probability_within(covariance_m2, radius_m)


def position_covariance_m2(translation_m, fit_covariance_m2, length_m, length_sd_m, mode):
    """Return the (3, 3) wrist covariance of a fit: its own, the hand length's and the mode's.

    ``mode`` is a CameraMode (or its value) whose focal and principal-point sigmas
    (:data:`CAMERA_SIGMAS`) apply; an unknown mode counts as weak perspective.
    """
    focal_sd, principal_sd = _mode_sigmas(mode)
    return wrist_covariance_m2(translation_m, fit_covariance_m2,
                               length_sd_m / max(float(length_m), 1e-6), focal_sd, principal_sd)
