"""Synthetic but consistent depth images for real colour frames (the RGB-D proof).

A fitted hand mesh is rendered with a z-buffer into a depth image registered to the colour
camera (every triangle is sampled densely in 3D, each sample projected through the camera
model and kept where it is the nearest), in front of a tilted background plane; the image is
then degraded like a stereo depth sensor (Intel RealSense D435 class):

- depth noise ``sigma = c z^2``, half white and half spatially correlated (blurred);
- 5-20 % holes: blobs and single pixels set to 0 (no data);
- flying pixels: at depth edges, values between the foreground and the background;
- 1-2 px misregistration between the depth and the colour image;
- quantisation to millimetres (the ``16UC1`` encoding of real drivers).
"""

import math

import cv2
import numpy as np


def pixel_rays(camera):
    """Return (H, W, 2) normalized rays (x/z, y/z) of every pixel centre of ``camera``."""
    cols, rows = np.meshgrid(np.arange(camera.width, dtype=np.float64),
                             np.arange(camera.height, dtype=np.float64))
    rays = camera.undistort_pixels(np.stack([cols.ravel(), rows.ravel()], axis=1))
    return rays.reshape(camera.height, camera.width, 2)


def plane_depth(rays, normal, distance_m):
    """Return (H, W) z of the plane ``normal . P = distance_m`` along each pixel's ray."""
    denom = rays[..., 0] * normal[0] + rays[..., 1] * normal[1] + normal[2]
    with np.errstate(divide='ignore', invalid='ignore'):
        z = distance_m / denom
    return np.where(np.isfinite(z) & (z > 0.0), z, 0.0)


def render_mesh_depth(vertices_m, faces, camera, depth_m=None):
    """Z-buffer render (H, W) of a triangle mesh's z (metres) into ``depth_m`` (or zeros).

    Each triangle is sampled with a barycentric grid fine enough for about two samples per
    pixel along its longest projected edge; samples are projected with the camera model
    (distortion included) and the nearest one per pixel is kept.
    """
    height, width = camera.height, camera.width
    zbuf = np.full(height * width, np.inf)
    if depth_m is not None:
        background = np.asarray(depth_m, dtype=np.float64).ravel()
        zbuf = np.where(background > 0.0, background, np.inf)
    verts = np.asarray(vertices_m, dtype=np.float64)
    tris = verts[np.asarray(faces)]                        # (F, 3, 3)
    px = camera.project(tris.reshape(-1, 3)).reshape(-1, 3, 2)
    edge = np.max(np.linalg.norm(px - np.roll(px, 1, axis=1), axis=2), axis=1)
    steps = np.clip(np.ceil(2.0 * np.nan_to_num(edge, nan=0.0)), 1, 256).astype(np.int64)
    for n in np.unique(steps):
        group = tris[steps == n]
        i, j = np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing='ij')
        keep = i + j <= n
        a, b = i[keep] / n, j[keep] / n
        bary = np.stack([1.0 - a - b, a, b], axis=1)        # (M, 3)
        points = np.einsum('mk,fkc->fmc', bary, group).reshape(-1, 3)
        uv = np.rint(camera.project(points))
        ok = (np.isfinite(uv).all(axis=1) & (uv[:, 0] >= 0) & (uv[:, 0] < width)
              & (uv[:, 1] >= 0) & (uv[:, 1] < height) & (points[:, 2] > 0.0))
        flat = (uv[ok, 1] * width + uv[ok, 0]).astype(np.int64)
        np.minimum.at(zbuf, flat, points[ok, 2])
    zbuf[~np.isfinite(zbuf)] = 0.0
    return zbuf.reshape(height, width)


def degrade(depth_m, rng, *, noise_coeff_per_m=0.005, hole_fraction=(0.05, 0.2),
            shift_px=(1.0, 2.0), edge_step_m=0.03):
    """Return (depth float32 m, depth uint16 mm, info): ``depth_m`` degraded like a sensor.

    Args:
        depth_m: (H, W) clean depth, metres (0 = no data).
        rng: numpy Generator.
        noise_coeff_per_m: ``c`` of ``sigma = c z^2``.
        hole_fraction: range of the fraction of pixels made holes.
        shift_px: range of the misregistration length in pixels (random direction).
        edge_step_m: a 3x3 depth span above this is an edge (where flying pixels appear).

    """
    height, width = depth_m.shape
    angle = rng.uniform(0.0, 2.0 * math.pi)
    length = rng.uniform(*shift_px)
    dx, dy = length * math.cos(angle), length * math.sin(angle)
    shifted = cv2.warpAffine(depth_m.astype(np.float32), np.float32([[1, 0, dx], [0, 1, dy]]),
                             (width, height), flags=cv2.INTER_NEAREST,
                             borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    out = shifted.astype(np.float64)
    kernel = np.ones((3, 3), np.uint8)
    valid = out > 0.0
    near = cv2.erode(np.where(valid, out, 1e3).astype(np.float32), kernel)
    far = cv2.dilate(out.astype(np.float32), kernel)
    edge = valid & (far - near > edge_step_m) & (near < 1e3)
    flying = edge & (rng.random(out.shape) < 0.6)
    mix = rng.random(out.shape)
    out[flying] = (near + mix * (far - near))[flying]
    sigma = noise_coeff_per_m * out * out
    white = rng.standard_normal(out.shape)
    smooth = cv2.GaussianBlur(rng.standard_normal(out.shape).astype(np.float32), (0, 0), 2.5)
    smooth /= max(float(np.std(smooth)), 1e-9)
    out = out + sigma * (math.sqrt(0.5) * white + math.sqrt(0.5) * smooth)
    holes_target = rng.uniform(*hole_fraction)
    field = cv2.resize(rng.random((max(height // 24, 2), max(width // 24, 2))).astype(
        np.float32), (width, height), interpolation=cv2.INTER_CUBIC)
    blobs = field < np.quantile(field, 0.7 * holes_target)
    speckle = rng.random(out.shape) < 0.3 * holes_target
    out[blobs | speckle | ~(out > 0.0)] = 0.0
    depth_mm = np.clip(np.rint(out * 1e3), 0, 65535).astype(np.uint16)
    info = {'shift_px': (dx, dy), 'hole_fraction': float(np.mean(depth_mm == 0)),
            'flying_pixels': int(flying.sum())}
    return depth_mm.astype(np.float32) * 1e-3, depth_mm, info


def scene_depth(vertices_list, faces_list, camera, rays, rng, wrist_depth_m):
    """Return the clean (H, W) depth of meshes in front of a random tilted background plane."""
    tilt = math.radians(rng.uniform(0.0, 20.0))
    azimuth = rng.uniform(0.0, 2.0 * math.pi)
    normal = np.array([math.sin(tilt) * math.cos(azimuth), math.sin(tilt) * math.sin(azimuth),
                       math.cos(tilt)])
    distance = (wrist_depth_m + rng.uniform(0.25, 0.6)) * normal[2]
    depth = plane_depth(rays, normal, distance)
    for vertices, faces in zip(vertices_list, faces_list):
        depth = render_mesh_depth(vertices, faces, camera, depth)
    return depth
