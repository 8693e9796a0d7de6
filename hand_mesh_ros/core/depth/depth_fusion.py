"""Fuse a depth image registered to the colour image into a fitted hand (RGB-D).

From one colour image a hand's distance rests on its size: a hand k times larger and k
times further along the same rays projects to the same pixels. A registered depth image
breaks that ambiguity. Given the tailor's fitted hand (root-relative model points ``r`` and
wrist ``t0``), this module solves for a new wrist position ``t`` and a size factor ``k`` so
that the hand ``t + k r``:

- keeps the tailor's 2D fit: for each of the 21 keypoints with ray ``(a, b)`` through its
  fitted position, ``X - a Z`` and ``Y - b Z`` are zero (linear in ``t`` and ``k``), weighted
  in pixels (focal / depth / sigma_px);
- meets the measured depth of its visible surface: for each visible mesh vertex, the depth
  image at its pixel against the vertex's ``Z`` (linear too), with the sensor noise model
  ``sigma_z = c * z**2`` (stereo depth; ``c`` in 1/m, a D435 is about 0.005) plus a small
  model term, and robust (Tukey) weights;
- agrees with the size prior ``k ~ N(k_prior, sigma_k**2)`` (population spread, or the
  track's metric size once depth has been seen).

The four unknowns enter linearly, so the solve is iteratively reweighted least squares on a
4x4 system; the covariance of ``t`` is the inverse of its information (depth information
capped to a number of independent samples: sensor noise is spatially correlated), plus the
wrist's own uncertainty within the hand (:func:`wrist_lever_covariance`): the fusion moves
and scales the fitted hand rigidly, so a hand whose tilt is wrong puts its wrist wrong by
the tilt times the wrist's distance from the measured surface; the tilt is read off the
depth residuals that the rigid fit leaves (their slope across the rays).

Which pixels are trusted: vertices hidden by the hand itself are removed with a z-buffer of
the fitted mesh splatted on a coarse grid; vertices on the silhouette (one grid cell from
the edge) are dropped, since there the depth may belong to the background or to "flying
pixels" between the two; depth pixels whose 3x3 neighbourhood spans a depth step, or that
are outside the valid range, or 0 / NaN (no data), are not used. The rest are gated around
a robust first estimate of the scale along the rays (the nearest tight cluster of measured /
fitted depth ratios: the background is behind the hand) before the reweighted solve.

Units: metres, pixels of the depth image (which may differ from the colour image when it has
its own camera model), camera optical frame of the colour camera (registered depth).
"""

from dataclasses import dataclass, replace
import functools
import math

import numpy as np

from hand_mesh_ros.core.hand import hand_size

#: Relative spread (1 sigma) of adult hand length (population statistics, both sexes).
HAND_LENGTH_REL_SPREAD = hand_size.population_length_rel_spread()
#: Depth samples treated as independent (sensor noise is correlated across pixels).
INDEPENDENT_DEPTH_SAMPLES = 25
#: Model error of a fitted vertex's depth, as a fraction of the hand length (1 sigma) ...
MODEL_DEPTH_SIGMA_REL = 0.015
#: ... plus this fraction of the vertex's distance from the wrist (pose errors grow along the
#: fingers: the palm is the most trustworthy part of the fitted surface).
MODEL_DEPTH_SIGMA_PER_M = 0.1
#: 2D sigma of the tailor's keypoints as a fraction of the hand's size in pixels.
KEYPOINT_SIGMA_REL = 0.01
#: Coarse z-buffer cells across the hand's extent in pixels.
ZBUFFER_CELLS = 24
#: A vertex within this fraction of the hand length behind the z-buffer is visible.
VISIBLE_DEPTH_REL = 0.05
#: Most depth samples used per hand (evenly thinned above).
MAX_SAMPLES = 240
#: Tukey biweight constant (in robust sigmas).
TUKEY_C = 4.685
#: Share of the depth samples and relative width of the first cluster (robust start).
FRONT_CLUSTER_FRACTION = 0.2
FRONT_CLUSTER_WIDTH = 0.03
#: Size factors outside this range of the prior are not a plausible fusion.
SCALE_RANGE = (0.6, 1.6)


@dataclass(frozen=True)
class DepthFusionResult:
    """Outcome of :func:`fuse_depth` (metres, camera optical frame).

    Attributes:
        fused: True when the depth was used (else the other fields repeat the input).
        reason: '' when fused, else why not ('too_few_depth_samples', ...).
        translation_m: (3,) fused wrist position.
        scale: size factor applied to the root-relative hand (1 = unchanged).
        covariance_m2: (3, 3) covariance of ``translation_m``.
        scale_sigma: 1-sigma uncertainty of ``scale`` (relative).
        scale_observed: the size factor the depth alone gives (the size prior of the
            *population* instead of the track's), for feeding the track's metric size.
        scale_observed_sigma: its 1-sigma uncertainty.
        n_samples: depth samples considered (visible, interior, valid pixels).
        n_inliers: samples with a robust weight above one half.

    """

    fused: bool
    reason: str
    translation_m: np.ndarray
    scale: float
    covariance_m2: np.ndarray
    scale_sigma: float
    scale_observed: float
    scale_observed_sigma: float
    n_samples: int
    n_inliers: int


def depth_sigma_m(depth_m, noise_coeff_per_m):
    """Return the sensor's 1-sigma depth noise ``c * z**2`` (metres) at ``depth_m``."""
    z = np.asarray(depth_m, dtype=np.float64)
    return noise_coeff_per_m * z * z


def visible_surface(px, depth_m, extent_px, length_m):
    """Return a mask (V,) of vertices seen by the camera and away from the silhouette.

    Args:
        px: (V, 2) vertex pixels (depth image).
        depth_m: (V,) vertex depths.
        extent_px: the hand's extent in pixels (sets the z-buffer cell size).
        length_m: the hand's length (sets the visibility tolerance).

    """
    cell = max(float(extent_px) / ZBUFFER_CELLS, 1.0)
    finite = np.isfinite(px).all(axis=1) & (depth_m > 0.0)
    mask = np.zeros(len(px), dtype=bool)
    if finite.sum() < 3:
        return mask
    origin = np.min(px[finite], axis=0) - cell
    cells = np.zeros((len(px), 2), dtype=np.int64)
    cells[finite] = np.floor((px[finite] - origin) / cell).astype(np.int64)
    shape = tuple(int(v) + 2 for v in np.max(cells[finite], axis=0)[::-1])
    flat = cells[:, 1] * shape[1] + cells[:, 0]
    zbuf = np.full(shape[0] * shape[1], np.inf)
    np.minimum.at(zbuf, flat[finite], depth_m[finite])
    occupied = np.isfinite(zbuf).reshape(shape)
    # One cell of erosion (4-neighbourhood): the silhouette's cells are not trusted.
    interior = occupied.copy()
    interior[1:, :] &= occupied[:-1, :]
    interior[:-1, :] &= occupied[1:, :]
    interior[:, 1:] &= occupied[:, :-1]
    interior[:, :-1] &= occupied[:, 1:]
    tol = VISIBLE_DEPTH_REL * length_m
    mask[finite] = ((depth_m[finite] <= zbuf[flat[finite]] + tol)
                    & interior.reshape(-1)[flat[finite]])
    return mask


def sample_depth(depth_image_m, px, min_depth_m, max_depth_m, step_m):
    """Return (N,) depths at pixels ``px`` (N, 2); NaN where unusable.

    A pixel is unusable when it is outside the image, has no data (0 / NaN), is outside
    [min_depth_m, max_depth_m], or its 3x3 neighbourhood spans more than ``step_m`` (N,)
    (a depth edge: flying pixels, background behind a finger).
    """
    height, width = depth_image_m.shape[:2]
    cols = np.rint(px[:, 0]).astype(np.int64)
    rows = np.rint(px[:, 1]).astype(np.int64)
    inside = (cols >= 1) & (cols < width - 1) & (rows >= 1) & (rows < height - 1)
    out = np.full(len(px), np.nan)
    if not inside.any():
        return out
    r, c = rows[inside], cols[inside]
    patch = np.stack([depth_image_m[r + dr, c + dc] for dr in (-1, 0, 1) for dc in (-1, 0, 1)],
                     axis=1).astype(np.float64)
    with np.errstate(invalid='ignore'):
        valid = np.all((patch >= min_depth_m) & (patch <= max_depth_m), axis=1)
        span = np.max(patch, axis=1) - np.min(patch, axis=1)
        valid &= span <= step_m[inside]
    centre = patch[:, 4]
    out[np.flatnonzero(inside)[valid]] = centre[valid]
    return out


def densest_ratio(ratios, fraction=0.4):
    """Return the median of the shortest interval holding ``fraction`` of ``ratios`` (N,)."""
    values = np.sort(np.asarray(ratios, dtype=np.float64))
    count = max(int(math.ceil(fraction * len(values))), 1)
    widths = values[count - 1:] - values[:len(values) - count + 1]
    start = int(np.argmin(widths))
    return float(np.median(values[start:start + count]))


def front_cluster_ratio(ratios, width_rel, fraction=FRONT_CLUSTER_FRACTION):
    """Return the median of the nearest cluster of ``ratios`` (N,) holding ``fraction``.

    A cluster is ``fraction`` of the sorted values within ``width_rel`` (relative) of its
    smallest; the first (nearest) one found wins; without any, the densest interval.
    """
    values = np.sort(np.asarray(ratios, dtype=np.float64))
    count = max(int(math.ceil(fraction * len(values))), 1)
    lows = values[:len(values) - count + 1]
    widths = values[count - 1:] - lows
    tight = np.flatnonzero(widths <= width_rel * lows)
    if not len(tight):
        return densest_ratio(values)
    low = lows[tight[0]]
    return float(np.median(values[(values >= low) & (values <= low * (1.0 + width_rel))]))


def _solve(rows_a, rhs, prior_k, sigma_k):
    """Return (theta (4,), covariance (4, 4)) of weighted rows plus the size prior."""
    hess = rows_a.T @ rows_a
    grad = rows_a.T @ rhs
    hess[3, 3] += 1.0 / sigma_k ** 2
    grad[3] += prior_k / sigma_k ** 2
    cov = np.linalg.inv(hess)
    return cov @ grad, cov


def surface_depth_samples(verts, px, depth_image_m, length_m, noise_coeff_per_m,
                          min_depth_m, max_depth_m):
    """Return (vertex indices (N,), measured depths (N,)) of the visible, usable surface.

    ``verts`` (V, 3) are the fitted vertices, ``px`` (V, 2) their depth-image pixels.
    """
    extent_px = float(np.linalg.norm(np.ptp(px, axis=0)))
    index = np.flatnonzero(visible_surface(px, verts[:, 2], extent_px, length_m))
    if len(index) > MAX_SAMPLES:
        index = index[np.linspace(0, len(index) - 1, MAX_SAMPLES).astype(np.int64)]
    z_model = verts[index, 2]
    step = 4.0 * depth_sigma_m(z_model, noise_coeff_per_m) + 0.15 * length_m
    depth = sample_depth(depth_image_m, px[index], min_depth_m, max_depth_m, step)
    good = np.isfinite(depth)
    return index[good], depth[good]


def initial_depth_weights(depth, z_model, rel, length_m, wrist_depth_m, noise_coeff_per_m):
    """Return (0/1 weights (N,), sample sigmas (N,), robust scale along the rays).

    The scale comes from the measured / fitted depth ratios: the nearest tight cluster
    holding a fifth of them (the background behind misplaced fingers may be most samples and
    tighter than the hand, but it is always behind it). ``rel`` (N, 3) are the samples'
    vertices relative to the wrist.
    """
    s0 = front_cluster_ratio(depth / z_model,
                             FRONT_CLUSTER_WIDTH + 3.0 * noise_coeff_per_m * wrist_depth_m)
    model_sigma = (MODEL_DEPTH_SIGMA_REL * length_m
                   + MODEL_DEPTH_SIGMA_PER_M * np.linalg.norm(rel, axis=1))
    sigma_i = np.sqrt(depth_sigma_m(depth, noise_coeff_per_m) ** 2 + model_sigma ** 2)
    resid = depth - s0 * z_model
    mad = 1.4826 * float(np.median(np.abs(resid / sigma_i)))
    weights = (np.abs(resid / sigma_i) <= 3.0 * max(mad, 1.0)).astype(np.float64)
    return weights, sigma_i, s0


def keypoint_ray_rows(joints, t0, pix_w):
    """Return the (42, 4) rows keeping each keypoint on its ray, weighted by ``pix_w`` (21,).

    Unknowns (t_x, t_y, t_z, k): ``X - a Z = 0`` and ``Y - b Z = 0`` for the hand ``t + k r``.
    """
    kp_rel = joints - t0
    rays = joints[:, :2] / joints[:, 2:3]
    rows2d = np.zeros((42, 4))
    rows2d[0::2, 0] = 1.0
    rows2d[0::2, 2] = -rays[:, 0]
    rows2d[0::2, 3] = kp_rel[:, 0] - rays[:, 0] * kp_rel[:, 2]
    rows2d[1::2, 1] = 1.0
    rows2d[1::2, 2] = -rays[:, 1]
    rows2d[1::2, 3] = kp_rel[:, 1] - rays[:, 1] * kp_rel[:, 2]
    return rows2d * np.repeat(pix_w, 2)[:, None]


class DepthSystem:
    """The weighted linear system of the fusion: 2D ray rows plus depth rows (whitened)."""

    def __init__(self, rows2d, depth, rel, sigma_i):
        """Build the depth rows ``t_z + k r_z = depth`` divided by their sigmas."""
        self.rows2d = rows2d
        self.rows_d = np.zeros((len(depth), 4))
        self.rows_d[:, 2] = 1.0
        self.rows_d[:, 3] = rel[:, 2]
        self.rows_d /= sigma_i[:, None]
        self.rhs_d = depth / sigma_i

    def weighted(self, weights):
        """Return (rows, rhs) with the depth rows scaled by robust ``weights`` (N,).

        The depth rows count as at most INDEPENDENT_DEPTH_SAMPLES independent samples.
        """
        used = max(float(weights.sum()), 1.0)
        sw = np.sqrt(weights * min(1.0, INDEPENDENT_DEPTH_SAMPLES / used))
        return (np.vstack([self.rows2d, self.rows_d * sw[:, None]]),
                np.concatenate([np.zeros(len(self.rows2d)), self.rhs_d * sw]))

    def tukey_weights(self, theta, weights):
        """Return Tukey biweights (N,) of the depth residuals at ``theta`` (4,)."""
        norm = self.rhs_d - self.rows_d @ theta
        used = weights > 0
        scale = max(1.4826 * float(np.median(np.abs(norm[used]))) if np.any(used) else 1.0,
                    1.0)
        u = norm / (TUKEY_C * scale)
        return np.where(np.abs(u) < 1.0, (1.0 - u * u) ** 2, 0.0)


def fuse_depth(keypoints_m, vertices_m, translation_m, depth_image_m, depth_camera, *,
               focal_px, noise_coeff_per_m, min_depth_m, max_depth_m, prior_scale=1.0,
               prior_scale_sigma=HAND_LENGTH_REL_SPREAD, keypoint_sigma_px=None,
               iterations=3, min_samples=20):
    """Fuse a registered depth image into one fitted hand; see the module docstring.

    Args:
        keypoints_m: (21, 3) the tailor's landmark-convention keypoints, camera frame.
        vertices_m: (V, 3) the fitted mesh's vertices, camera frame.
        translation_m: (3,) the fitted wrist (root of ``keypoints_m`` and ``vertices_m``).
        depth_image_m: (H, W) float depth in metres along z; 0 or NaN = no data.
        depth_camera: a CameraModel of the depth image's pixels (registered: the colour
            camera's optical frame; its own size and intrinsics).
        focal_px: focal length of the colour image (weights the 2D term in its pixels).
        noise_coeff_per_m: ``c`` of the sensor noise ``sigma_z = c z^2``.
        min_depth_m, max_depth_m: valid range of the depth image.
        prior_scale, prior_scale_sigma: expected size factor (the track's metric size / the
            fitted size) and its 1-sigma relative uncertainty.
        keypoint_sigma_px: 2D sigma of the keypoints (default: relative to the hand's size).
        iterations, min_samples: reweighting iterations; fewer usable depth inliers than
            ``min_samples`` leave the hand unfused.

    Returns a :class:`DepthFusionResult` (finite numbers; ``fused`` False when not used).

    """
    joints = np.asarray(keypoints_m, dtype=np.float64)
    verts = np.asarray(vertices_m, dtype=np.float64)
    t0 = np.asarray(translation_m, dtype=np.float64).reshape(3)
    length = float(hand_size.hand_length_m(joints))
    unfused = functools.partial(_unfused, t0)
    if not (np.all(np.isfinite(joints)) and np.all(np.isfinite(verts)) and t0[2] > 0.0
            and length > 0.0):
        return unfused('bad_hand')
    px = depth_camera.project(verts)
    if not np.all(np.isfinite(px)):
        return unfused('hand_outside_depth_image')
    index, depth = surface_depth_samples(verts, px, depth_image_m, length, noise_coeff_per_m,
                                         min_depth_m, max_depth_m)
    n_samples = len(index)
    if n_samples < min_samples:
        return unfused('too_few_depth_samples', n_samples)
    rel = verts[index] - t0
    weights, sigma_i, s0 = initial_depth_weights(depth, verts[index, 2], rel, length, t0[2],
                                                 noise_coeff_per_m)
    if keypoint_sigma_px is None:
        keypoint_sigma_px = _relative_keypoint_sigma_px(px, focal_px, depth_camera.fx)
    system = DepthSystem(
        keypoint_ray_rows(joints, t0, focal_px / (s0 * joints[:, 2] * keypoint_sigma_px)),
        depth, rel, sigma_i)
    prior_sigma = max(float(prior_scale_sigma), 1e-4)
    for _ in range(max(int(iterations), 1)):
        theta, _ = _solve(*system.weighted(weights), prior_scale, prior_sigma)
        weights = system.tukey_weights(theta, weights)
    n_inliers = int(np.sum(weights > 0.5))
    if n_inliers < min_samples:
        return unfused('too_few_depth_inliers', n_samples, n_inliers)
    reason, fused = _final_solve(system.weighted(weights), prior_scale, prior_sigma,
                                 min_depth_m, max_depth_m, n_samples, n_inliers)
    return (unfused(reason, n_samples, n_inliers) if fused is None
            else _with_tilt_covariance(fused, rel[weights > 0.5], depth[weights > 0.5]))


def _relative_keypoint_sigma_px(px, focal_px, depth_fx):
    """Return the 2D keypoint sigma in colour pixels: relative to the hand's size there."""
    return (KEYPOINT_SIGMA_REL * float(np.linalg.norm(np.ptp(px, axis=0)))
            * focal_px / max(depth_fx, 1e-9))


def _with_tilt_covariance(fused, rel, depth):
    """Return ``fused`` with the wrist covariance of the tilt its inlier residuals show."""
    residual = depth - (fused.translation_m[2] + fused.scale * rel[:, 2])
    lever = wrist_lever_covariance(fused.scale * rel, residual)
    return replace(fused, covariance_m2=fused.covariance_m2 + lever)


def wrist_lever_covariance(rel_m, residual_m):
    """Return the (3, 3) covariance of the wrist from a tilt the rigid fit cannot remove.

    Args:
        rel_m: (N, 3) the fused hand's surface samples relative to its wrist.
        residual_m: (N,) their depth residuals after the fit (measured minus fitted).

    A hand tilted by a small angle against its model leaves depth residuals that grow
    linearly across the rays: the plane ``a x + b y + c`` fitted to them gives the tilt
    (``a``, ``b`` in radians, less the slope variance the residuals' scatter alone gives).
    The tilt's axis is unknown, so each axis gets the variance ``(a^2 + b^2) / 2``; the
    wrist, ``L`` from the samples' centre, moves with covariance
    ``(a^2 + b^2) / 2 (|L|^2 I - L L^T)``.
    """
    if len(rel_m) < 4:
        return np.zeros((3, 3))
    centre = rel_m.mean(axis=0)
    across = rel_m[:, :2] - centre[:2]
    design = np.column_stack([across, np.ones(len(rel_m))])
    coeffs, *_ = np.linalg.lstsq(design, residual_m, rcond=None)
    scatter2 = float(np.mean((residual_m - design @ coeffs) ** 2))
    spread = np.sum(across ** 2, axis=0)
    if spread.min() <= 0.0:
        return np.zeros((3, 3))
    tilt2 = 0.5 * float(np.sum(coeffs[:2] ** 2 - scatter2 / spread))
    if tilt2 <= 0.0:
        return np.zeros((3, 3))
    lever = -centre
    return tilt2 * (float(lever @ lever) * np.eye(3) - np.outer(lever, lever))


def _unfused(t0, reason, n_samples=0, n_inliers=0):
    """Return the DepthFusionResult of a hand left unfused (``reason``) at wrist ``t0``."""
    sigma = HAND_LENGTH_REL_SPREAD
    return DepthFusionResult(False, reason, t0.copy(), 1.0, np.full((3, 3), np.nan), sigma,
                             1.0, sigma, n_samples, n_inliers)


def _final_solve(system, prior_scale, prior_sigma, min_depth_m, max_depth_m, n_samples,
                 n_inliers):
    """Return ('', DepthFusionResult) of the weighted ``system`` (rows, rhs), or (reason, None).

    The depth's own evidence on the size is the same rows with the population prior.
    """
    theta, cov = _solve(*system, prior_scale, prior_sigma)
    theta_obs, cov_obs = _solve(*system, 1.0, HAND_LENGTH_REL_SPREAD)
    if not np.all(np.isfinite(np.concatenate([theta, theta_obs, cov.ravel(),
                                              cov_obs.ravel()]))):
        return 'non_finite', None
    k = float(theta[3])
    if not (SCALE_RANGE[0] * prior_scale < k < SCALE_RANGE[1] * prior_scale
            and min_depth_m <= theta[2] <= max_depth_m):
        return 'implausible_depth_fit', None
    return '', DepthFusionResult(
        True, '', theta[:3].copy(), k, cov[:3, :3].copy(), math.sqrt(cov[3, 3]),
        float(theta_obs[3]), math.sqrt(cov_obs[3, 3]), n_samples, n_inliers)
