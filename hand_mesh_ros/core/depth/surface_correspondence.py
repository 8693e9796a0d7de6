"""Depth points of a hand and their correspondences on the model's visible surface.

:func:`segment_hand_points` turns a registered depth image into the hand's 3D points: the
pixels of the fitted hand's box (a margin around its projected mesh) on a regular grid
thinned to at most ``max_points``, each kept only when its 3x3 neighbourhood is valid data
(no hole, inside the valid range) and spans no depth step (no flying pixel between a finger
and what is behind it), and its depth is within a band around the fitted hand's depths (the
background behind it and anything far in front are rejected).

:func:`visible_points` decides which model surface points the camera sees at the current
pose: their normal faces the camera and no nearer model point covers them (a z-buffer on a
grid of normalised image coordinates). :func:`match_points` pairs each depth point with its
nearest visible model point and keeps the pair only when the point lies within a gate of the
surface along its normal and beside it tangentially (a point beyond the model's outline, such
as the forearm or the background next to a finger, is no evidence about that finger).
Occluded model points get no depth points, so they are never pulled towards the background.

Units: metres, camera optical frame; pixels of the depth image.
"""

from typing import NamedTuple

import numpy as np
from scipy.spatial import cKDTree

from hand_mesh_ros.core.depth.depth_fusion import depth_sigma_m, sample_depth

#: Default most depth points per hand (the cost of the fit grows with them).
MAX_POINTS = 160
#: Margin of the hand's box in the depth image, fraction of its diagonal.
BOX_MARGIN_REL = 0.1
#: Band of accepted depths around the fitted hand's nearest and farthest points, metres,
#: plus three sensor sigmas.
DEPTH_BAND_M = 0.04
#: A 3x3 neighbourhood spanning more than this (plus four sensor sigmas) is a depth edge.
EDGE_STEP_M = 0.012
#: Every this many mesh vertices outline the hand's box and depth band (a mesh's neighbouring
#: vertices are millimetres apart).
OUTLINE_STEP = 3
#: Cell of the visibility z-buffer, metres at the hand's depth.
ZBUFFER_CELL_M = 0.008
#: A surface point this far behind the nearest point of its cell is hidden, metres.
HIDDEN_DEPTH_M = 0.01


class Matches(NamedTuple):
    """Pairs of depth points and visible model points.

    Attributes:
        point_index: (K,) rows of the depth points.
        surface_index: (K,) ids of the model surface points.
        distance_m: (K,) signed distance of each depth point from the model's tangent plane
            (along the outward normal).

    """

    point_index: np.ndarray
    surface_index: np.ndarray
    distance_m: np.ndarray


def segment_hand_points(depth_image_m, depth_camera, vertices_m, *, min_depth_m, max_depth_m,
                        noise_coeff_per_m, max_points=MAX_POINTS):
    """Return the hand's depth points (N, 3), camera frame, N <= ``max_points``.

    Args:
        depth_image_m: (H, W) float depth along z, metres; 0 / NaN = no data.
        depth_camera: CameraModel of the depth pixels (registered to the colour frame).
        vertices_m: (V, 3) the fitted hand's mesh, camera frame.
        min_depth_m, max_depth_m: valid range of the depth image.
        noise_coeff_per_m: ``c`` of the sensor noise ``sigma_z = c z^2``.
        max_points: most points returned (a regular pixel grid thinned to this many).

    """
    verts = np.asarray(vertices_m, dtype=np.float64)[::OUTLINE_STEP]
    empty = np.zeros((0, 3))
    if not np.isfinite(verts).all() or verts[:, 2].min() <= 0.0 or max_points < 1:
        return empty
    px = depth_camera.project(verts)
    if not np.isfinite(px).all():
        return empty
    height, width = depth_image_m.shape[:2]
    low, high = px.min(axis=0), px.max(axis=0)
    margin = BOX_MARGIN_REL * float(np.linalg.norm(high - low))
    low = np.maximum(np.floor(low - margin), 1)
    high = np.minimum(np.ceil(high + margin), [width - 2, height - 2])
    if np.any(high < low):
        return empty
    area = float(np.prod(high - low + 1))
    # The valid fraction is unknown before sampling: sample twice the budget, thin after.
    stride = max(1, int(np.sqrt(area / (2.0 * max_points))))
    cols, rows = np.meshgrid(np.arange(low[0], high[0] + 1, stride),
                             np.arange(low[1], high[1] + 1, stride))
    grid = np.stack([cols.ravel(), rows.ravel()], axis=1).astype(np.float64)
    z_near, z_far = float(verts[:, 2].min()), float(verts[:, 2].max())
    sigma = float(depth_sigma_m(z_far, noise_coeff_per_m))
    step = np.full(len(grid), EDGE_STEP_M + 4.0 * sigma)
    depth = sample_depth(depth_image_m, grid, min_depth_m, max_depth_m, step)
    band = DEPTH_BAND_M + 3.0 * sigma
    with np.errstate(invalid='ignore'):
        keep = (depth >= z_near - band) & (depth <= z_far + band)
    grid, depth = grid[keep], depth[keep]
    if len(depth) > max_points:
        pick = np.linspace(0, len(depth) - 1, max_points).round().astype(np.int64)
        grid, depth = grid[pick], depth[pick]
    if not len(depth):
        return empty
    rays = depth_camera.undistort_pixels(grid)
    return np.column_stack([rays * depth[:, None], depth])


def visible_points(points_m, normals, cell_m=ZBUFFER_CELL_M, hidden_m=HIDDEN_DEPTH_M):
    """Return a mask (P,) of model surface points (camera frame) that the camera sees.

    A point is seen when its outward normal faces the camera and it is at most ``hidden_m``
    behind the nearest point of its z-buffer cell (cells of ``cell_m`` at the hand's depth,
    on normalised image coordinates).
    """
    depth = points_m[:, 2]
    ok = depth > 0.0
    facing = np.einsum('pa,pa->p', points_m, normals) < 0.0
    if not ok.any():
        return np.zeros(len(points_m), dtype=bool)
    rays = points_m[:, :2] / np.where(ok, depth, 1.0)[:, None]
    cell = cell_m / float(np.mean(depth[ok]))
    cells = np.floor((rays - rays[ok].min(axis=0)) / cell).astype(np.int64)
    cells[~ok] = 0
    n_cols = int(cells[:, 0].max()) + 1
    flat = np.where(ok, cells[:, 1] * n_cols + cells[:, 0], -1)
    # Nearest depth per cell: sort by cell, then the minimum of each run.
    order = np.argsort(flat, kind='stable')
    sorted_cells = flat[order]
    starts = np.flatnonzero(np.r_[True, sorted_cells[1:] != sorted_cells[:-1]])
    nearest = np.minimum.reduceat(np.where(ok, depth, np.inf)[order], starts)
    front = np.empty(len(depth))
    front[order] = np.repeat(nearest, np.diff(np.r_[starts, len(order)]))
    return ok & facing & (depth <= front + hidden_m)


def match_points(points_m, surface_m, normals, visible, gate_m, tangent_gate_m):
    """Pair depth points (N, 3) with their nearest visible surface points (P, 3).

    A pair is kept when the depth point is within ``gate_m`` of the surface point, and its
    offset beside the tangent plane is at most ``tangent_gate_m`` (about the surface points'
    spacing: farther, the point is beyond the model's outline).

    Returns:
        :class:`Matches`.

    """
    seen = np.flatnonzero(visible)
    none = Matches(np.zeros(0, np.intp), np.zeros(0, np.intp), np.zeros(0))
    if not len(seen) or not len(points_m):
        return none
    dist, nearest = cKDTree(surface_m[seen]).query(points_m, distance_upper_bound=gate_m)
    found = np.isfinite(dist)
    if not found.any():
        return none
    rows = np.flatnonzero(found)
    ids = seen[nearest[found]]
    offset = points_m[rows] - surface_m[ids]
    along = np.einsum('ka,ka->k', offset, normals[ids])
    beside = np.sqrt(np.maximum(np.einsum('ka,ka->k', offset, offset) - along * along, 0.0))
    keep = beside <= tangent_gate_m
    return Matches(rows[keep], ids[keep], along[keep])
