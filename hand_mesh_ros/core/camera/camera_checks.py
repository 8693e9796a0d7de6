"""Physical plausibility of a calibrated camera: sane K, invertible lens, possible field of view.

A CameraInfo can be finite and well-formed yet describe no real camera: a focal length of
1e-12 or 1e300 px, a skew of 1e9 px, or ``plumb_bob`` with k1 = 1e6 (which squeezes the whole
image into a fraction of a degree and puts a hand 10 m away). :func:`check_camera_geometry`
refuses such a model with :class:`CameraModelError`, so the node reports the camera_info as
invalid and uses its fallback instead of claiming full intrinsics.

What is checked, on the pixels the model refers to (the published image, i.e. the ROI after
binning), sampled on a grid and on the ellipse inscribed in the image (which touches the
middle of each edge; a fold only in the corners beyond it is tolerated, see
:func:`check_camera_geometry`):

- K: fy / fx within [1 / MAX_ASPECT, MAX_ASPECT]; ``|skew| <= fx`` (pixel axes at least 45
  degrees apart); the principal point of the full-resolution K within one image size of the
  sensor.
- The lens: every sampled pixel in the ellipse can be undistorted (the Newton inversion
  converges); along the ray from the optical axis to each ellipse sample the distorted radius
  strictly increases and the Jacobian determinant of the distortion stays positive
  (monotonic, so invertible); the distortion scales radii by at most MAX_RADIAL_SCALE either
  way (``|x_d| / |x_n|``). ``equidistant`` (fisheye) lenses are checked on their own curve
  theta_d(theta) instead (:func:`check_fisheye`), as a fisheye may see 90 degrees off-axis.
- The field of view: at least MIN_FOV_DEG across each image axis, and no ray of the ellipse
  or of a corner more than MAX_OFF_AXIS_DEG from the optical axis (a pinhole-family model
  cannot see sideways).
"""

import math

import numpy as np

from hand_mesh_ros.core.camera import distortion
from hand_mesh_ros.core.errors import CameraModelError

#: Smallest field of view accepted across each image axis, degrees (a long telephoto is ~1).
MIN_FOV_DEG = 0.1
#: Largest angle of any pixel's ray from the optical axis, degrees.
MAX_OFF_AXIS_DEG = 89.0
#: Largest factor by which the distortion may scale a radius (and smallest, inverted).
MAX_RADIAL_SCALE = 20.0
#: Largest ratio between fy and fx.
MAX_ASPECT = 10.0
#: Grid samples per image axis, and samples along each ray for the monotonicity check.
GRID_SAMPLES = 33
RAY_SAMPLES = 64
#: Samples on the ellipse inscribed in the image (a multiple of 4).
ELLIPSE_SAMPLES = 128


def pixel_grid(width, height, samples=GRID_SAMPLES):
    """Return (samples^2, 2) positions covering ``width`` x ``height`` up to its outer edges.

    Pixel centres are integers, so the image spans -0.5 .. width - 0.5 (a 1-pixel image still
    has a field of view).
    """
    xs = np.linspace(-0.5, float(width) - 0.5, samples)
    ys = np.linspace(-0.5, float(height) - 0.5, samples)
    grid_x, grid_y = np.meshgrid(xs, ys)
    return np.column_stack([grid_x.ravel(), grid_y.ravel()])


def check_intrinsics(camera):
    """Raise CameraModelError for an implausible aspect ratio, skew or principal point."""
    fx, fy, skew = camera.fx, camera.fy, camera.skew
    if not (1.0 / MAX_ASPECT <= fy / fx <= MAX_ASPECT):
        raise CameraModelError(f'fy / fx = {fy / fx:.3g} is not a plausible pixel aspect ratio '
                               f'(fx={fx:g}, fy={fy:g}; allowed 1/{MAX_ASPECT:g} to '
                               f'{MAX_ASPECT:g})')
    if abs(skew) > fx:
        raise CameraModelError(f'skew {skew:g} px is larger than fx {fx:g} px (pixel axes less '
                               'than 45 degrees apart): not a real camera')
    k_full = camera.k_full if camera.k_full is not None else camera.k
    width = camera.calib_width or camera.width
    height = camera.calib_height or camera.height
    cx, cy = float(k_full[0, 2]), float(k_full[1, 2])
    if not (-width <= cx <= 2 * width and -height <= cy <= 2 * height):
        raise CameraModelError(f'principal point ({cx:g}, {cy:g}) is more than one image size '
                               f'outside the {width}x{height} sensor')


def _ray_angles_deg(xy_n):
    """Return the angle (degrees) of each normalized ray from the optical axis."""
    return np.degrees(np.arctan(np.hypot(xy_n[:, 0], xy_n[:, 1])))


def _angle_between_deg(a, b):
    """Return the angle (degrees) between the rays of normalized points ``a`` and ``b``."""
    ray_a, ray_b = np.append(a, 1.0), np.append(b, 1.0)
    cos = ray_a @ ray_b / (np.linalg.norm(ray_a) * np.linalg.norm(ray_b))
    return math.degrees(math.acos(min(1.0, max(-1.0, float(cos)))))


def ellipse_pixels(width, height, samples=ELLIPSE_SAMPLES):
    """Return (samples, 2) pixels on the ellipse inscribed in the image (touching each edge).

    Samples 0, samples / 4, samples / 2 and 3 samples / 4 are the middles of the right,
    bottom, left and top edges (outer pixel edges, as in :func:`pixel_grid`).
    """
    angles = np.arange(samples) * (2.0 * np.pi / samples)
    centre_x, centre_y = (width - 1) / 2.0, (height - 1) / 2.0
    return np.column_stack([centre_x + width / 2.0 * np.cos(angles),
                            centre_y + height / 2.0 * np.sin(angles)])


def inside_ellipse(px, width, height):
    """Return a (N,) mask of the pixels strictly inside the image's inscribed ellipse."""
    u = (px[:, 0] - (width - 1) / 2.0) / (width / 2.0)
    v = (px[:, 1] - (height - 1) / 2.0) / (height / 2.0)
    return u * u + v * v < 1.0


def check_field_of_view(camera, ellipse_n, corners_n):
    """Raise CameraModelError when the image's field of view is not physically possible.

    ``ellipse_n``: (ELLIPSE_SAMPLES, 2) rays of :func:`ellipse_pixels`; ``corners_n``: (M, 2)
    finite rays of image corners.
    """
    rays = np.concatenate([ellipse_n, corners_n])
    angles = _ray_angles_deg(rays)
    worst = int(np.argmax(angles))
    if angles[worst] > MAX_OFF_AXIS_DEG:
        raise CameraModelError(
            f'pixels look {angles[worst]:.2f} degrees off the optical axis (at most '
            f'{MAX_OFF_AXIS_DEG:g}): impossible field of view (fx={camera.fx:g}, '
            f'fy={camera.fy:g})')
    quarter = ELLIPSE_SAMPLES // 4
    hfov = _angle_between_deg(ellipse_n[0], ellipse_n[2 * quarter])
    vfov = _angle_between_deg(ellipse_n[quarter], ellipse_n[3 * quarter])
    if min(hfov, vfov) < MIN_FOV_DEG:
        raise CameraModelError(
            f'field of view {hfov:.3g} x {vfov:.3g} degrees is not physically possible (at '
            f'least {MIN_FOV_DEG:g}; fx={camera.fx:g}, fy={camera.fy:g})')


def check_lens(camera, ellipse_n, inner_n):
    """Raise CameraModelError when the distortion is not monotonic or implausibly strong.

    ``ellipse_n``: (ELLIPSE_SAMPLES, 2) finite rays of :func:`ellipse_pixels`; ``inner_n``:
    (N, 2) finite rays of the grid pixels inside that ellipse.
    """
    if camera.rectified or camera.distortion_model == distortion.NO_DISTORTION:
        return
    # Rays from the optical axis to the ellipse sweep it: along each, the distorted radius
    # must increase; every point of the rays and of the grid is checked for a positive
    # Jacobian determinant and a plausible radial scale.
    steps = np.linspace(0.0, 1.0, RAY_SAMPLES + 1)[1:]
    rays = (steps[:, None, None] * ellipse_n[None, :, :]).reshape(-1, 2)
    points = np.concatenate([rays, inner_n])
    distorted, jac = distortion.distort_with_jacobian(points, camera.distortion_model, camera.d)
    det = jac[:, 0, 0] * jac[:, 1, 1] - jac[:, 0, 1] * jac[:, 1, 0]
    radius_d = np.hypot(distorted[:, 0], distorted[:, 1])
    radius_n = np.hypot(points[:, 0], points[:, 1])
    along_d = radius_d[:rays.shape[0]].reshape(RAY_SAMPLES, -1)
    along_n = radius_n[:rays.shape[0]].reshape(RAY_SAMPLES, -1)
    folded = not np.all(np.isfinite(det) & (det > 0.0))
    folded |= bool(np.any(~np.all(np.diff(along_d, axis=0) > 0.0, axis=0)
                          & (along_n[-1] > 1e-9)))
    if folded:
        raise CameraModelError(
            f'{camera.distortion_model} distortion {_coefficients(camera)} is not monotonic '
            'over the image (it folds back: several directions would map to one pixel)')
    with np.errstate(divide='ignore', invalid='ignore'):
        scale = np.where(radius_n > 1e-9, radius_d / radius_n, 1.0)
    worst = float(np.max(np.maximum(scale, 1.0 / scale)))
    if not worst <= MAX_RADIAL_SCALE:
        raise CameraModelError(
            f'{camera.distortion_model} distortion {_coefficients(camera)} scales the image '
            f'by {worst:.3g}x (at most {MAX_RADIAL_SCALE:g}x): no real lens does')


def _coefficients(camera):
    """Return the distortion coefficients as a short string for messages."""
    return '[' + ', '.join('%.4g' % v for v in camera.d) + ']'


def check_fisheye(camera):
    """Check an ``equidistant`` lens: theta_d(theta) increasing and of plausible scale.

    A fisheye may see 90 degrees and beyond; pixels past the hemisphere simply have no
    normalized ray (NaN, their hands are dropped), so only the lens curve up to the image's
    largest distorted radius (or 90 degrees) is checked.
    """
    k_inv = np.linalg.inv(camera.k)
    px = pixel_grid(camera.width, camera.height)
    xy_d = px @ k_inv[:2, :2].T + k_inv[:2, 2]
    radius_max = float(np.max(np.hypot(xy_d[:, 0], xy_d[:, 1])))
    theta = np.linspace(1e-6, math.pi / 2 - 1e-6, 2000)
    theta_d = theta * (1.0 + theta ** 2 * (camera.d[0] + theta ** 2 * (
        camera.d[1] + theta ** 2 * (camera.d[2] + theta ** 2 * camera.d[3]))))
    inside = np.concatenate([[True], theta_d[:-1] < radius_max])
    if not np.all(np.diff(theta_d)[inside[1:]] > 0.0):
        raise CameraModelError(
            f'equidistant distortion {_coefficients(camera)} is not monotonic over the image '
            '(it folds back: several directions would map to one pixel)')
    scale = theta_d[inside] / theta[inside]
    worst = float(np.max(np.maximum(scale, 1.0 / scale)))
    if not worst <= MAX_RADIAL_SCALE:
        raise CameraModelError(
            f'equidistant distortion {_coefficients(camera)} scales the image by {worst:.3g}x '
            f'(at most {MAX_RADIAL_SCALE:g}x): no real lens does')
    if radius_max < math.radians(MIN_FOV_DEG) / 2.0:
        raise CameraModelError(
            f'field of view below {MIN_FOV_DEG:g} degrees is not physically possible '
            f'(fx={camera.fx:g}, fy={camera.fy:g})')


def _undistort_or_refuse(camera, px, where):
    """Return the rays of pixels ``px``; refuse the camera if one cannot be undistorted."""
    xy_n = camera.undistort_pixels(px)
    bad = ~np.all(np.isfinite(xy_n), axis=1)
    if np.any(bad):
        u, v = px[int(np.argmax(bad))]
        raise CameraModelError(
            f'{camera.distortion_model} distortion {_coefficients(camera)} cannot be inverted '
            f'at pixel ({u:.0f}, {v:.0f}) of the {camera.width}x{camera.height} image ({where}; '
            'beyond the fold of the lens model)')
    return xy_n


def check_camera_geometry(camera):
    """Raise CameraModelError unless ``camera`` describes a physically possible camera.

    The lens must be invertible and monotonic over the ellipse inscribed in the image (full
    width and full height); a fold only in the corners beyond it is tolerated, as calibrations
    fitted without corner data often have one: pixels there have no ray (NaN) and hands there
    are dropped.
    """
    check_intrinsics(camera)
    with np.errstate(all='ignore'):
        if camera.distortion_model == distortion.EQUIDISTANT and not camera.rectified:
            check_fisheye(camera)
            return
        width, height = camera.width, camera.height
        ellipse_n = _undistort_or_refuse(camera, ellipse_pixels(width, height),
                                         'on the image edges')
        grid = pixel_grid(width, height)
        inner_n = _undistort_or_refuse(camera, grid[inside_ellipse(grid, width, height)],
                                       'inside the image')
        check_lens(camera, ellipse_n, inner_n)
        corners = np.array([[-0.5, -0.5], [width - 0.5, -0.5], [-0.5, height - 0.5],
                            [width - 0.5, height - 0.5]])
        corners_n = camera.undistort_pixels(corners)
        check_field_of_view(camera, ellipse_n,
                            corners_n[np.all(np.isfinite(corners_n), axis=1)])
