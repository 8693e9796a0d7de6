"""Camera model built from the fields of a full sensor_msgs/CameraInfo.

Semantics follow the CameraInfo documentation and ``image_geometry.PinholeCameraModel``:

- Pixels refer to the image actually published (the *raw*, distorted image), i.e. after the
  camera's binning and region of interest (ROI). ``K`` in CameraInfo is for the full-resolution
  sensor; binning divides the focal lengths, skew and principal point, and the ROI offset
  shifts the principal point: ``cx = (K[0,2] - roi.x_offset) / binning_x``.
- ``D`` and ``distortion_model`` act on normalized coordinates, so they are not changed by
  binning or ROI.
- ``R`` and ``P`` describe the *rectified* image. They are used only when the model is built
  with ``rectified=True`` (pixels of an ``image_rect`` topic): then a camera-frame point X is
  projected as ``P[:, :3] @ (R @ X)`` without distortion.
- 3D points are in the camera optical frame (REP 103: x right, y down, z forward), metres.

Without camera_info the product runs in an assumed field-of-view mode
(:meth:`CameraModel.assumed_fov`) or a weak-perspective mode (no camera model at all; see
:mod:`hand_mesh_ros.core.fitting.root_recovery`); :class:`CameraMode` names the three modes.
"""

from dataclasses import dataclass
import enum
import functools
import math
from typing import Optional, Sequence, Tuple

import numpy as np

from hand_mesh_ros.core.camera import distortion
from hand_mesh_ros.core.camera.camera_checks import check_camera_geometry
from hand_mesh_ros.core.errors import CameraModelError

#: Field of view assumed horizontally when no camera_info is available (typical webcam).
DEFAULT_HFOV_DEG = 60.0

_MODEL_ALIASES = {
    'plumb_bob': distortion.PLUMB_BOB,
    'rational_polynomial': distortion.RATIONAL_POLYNOMIAL,
    'equidistant': distortion.EQUIDISTANT,
    '': distortion.NO_DISTORTION,
    'none': distortion.NO_DISTORTION,
}


def nominal_focal_px(width_px: float, hfov_deg: float = DEFAULT_HFOV_DEG) -> float:
    """Return the pinhole focal length (px) giving ``hfov_deg`` across ``width_px`` pixels."""
    return 0.5 * float(width_px) / math.tan(math.radians(float(hfov_deg)) / 2.0)


def nominal_pinhole(image_size: Optional[Sequence[float]],
                    hfov_deg: float = DEFAULT_HFOV_DEG) -> Tuple[float, np.ndarray]:
    """Return ``(focal_px, centre_px)`` of the nominal camera of an image without calibration.

    The one definition of the camera assumed without camera_info, shared by the assumed-FOV
    model and the weak-perspective mode: focal length giving ``hfov_deg`` across the width,
    principal point at the image centre. ``image_size`` is (width, height) px; ``centre_px``
    is a (2,) array.

    Raises:
        CameraModelError: ``image_size`` is missing or not positive, or ``hfov_deg`` is not
            in (0, 180).

    """
    if image_size is None:
        raise CameraModelError('image_size (width, height) is required without a camera model')
    width, height = float(image_size[0]), float(image_size[1])
    if not (width > 0.0 and height > 0.0):
        raise CameraModelError(f'image_size must be positive, got {tuple(image_size)}')
    if not (0.0 < float(hfov_deg) < 180.0):
        raise CameraModelError(f'hfov_deg must be in (0, 180), got {hfov_deg}')
    return nominal_focal_px(width, hfov_deg), np.array([0.5 * width, 0.5 * height])


class CameraMode(str, enum.Enum):
    """How the camera is known: full intrinsics, an assumed FOV, or weak perspective."""

    FULL_INTRINSICS = 'full_intrinsics'
    ASSUMED_FOV = 'assumed_fov'
    WEAK_PERSPECTIVE = 'weak_perspective'


def _frozen_array(values, shape, name):
    """Return a read-only float copy of ``values`` reshaped to ``shape``."""
    try:
        arr = np.array(values, dtype=float).reshape(shape)
    except (TypeError, ValueError) as exc:
        raise CameraModelError(f'{name} must have {int(np.prod(shape))} numbers') from exc
    arr.setflags(write=False)
    return arr


def _k_entry(row: int, col: int, doc: str) -> property:
    """Return a read-only property giving ``K[row, col]`` (px) as a float."""
    def entry(self) -> float:
        return float(self.k[row, col])
    entry.__doc__ = doc
    return property(entry)


def _distortion_fields(distortion_model, d):
    """Return (distortion model, D array) of CameraInfo fields; an empty D is no distortion."""
    name = str(distortion_model).strip().lower()
    if name not in _MODEL_ALIASES:
        raise CameraModelError(f'unknown distortion_model {distortion_model!r}')
    d_arr = np.array(list(d), dtype=float).reshape(-1)
    return (_MODEL_ALIASES[name] if d_arr.size else distortion.NO_DISTORTION), d_arr


def _full_roi(roi, width, height):
    """Return (x_offset, y_offset, height, width, do_rectify) of ``roi`` inside the image.

    An roi with a zero width or height is the full image.
    """
    if len(tuple(roi)) != 5:
        raise CameraModelError('roi must be (x_offset, y_offset, height, width, do_rectify)')
    x_off, y_off, roi_h, roi_w, do_rect = roi
    if int(roi_w) == 0 or int(roi_h) == 0:
        x_off, y_off, roi_w, roi_h = 0, 0, width, height
    if width <= 0 or height <= 0:
        raise CameraModelError(f'image size {width}x{height} is not positive')
    if (x_off < 0 or y_off < 0 or x_off + roi_w > width or y_off + roi_h > height):
        raise CameraModelError(
            f'roi (x={x_off}, y={y_off}, {roi_w}x{roi_h}) is outside the '
            f'{width}x{height} image')
    return x_off, y_off, roi_h, roi_w, do_rect


def _check_rectifiable(p_arr, full_roi):
    """Raise CameraModelError where rectified pixels cannot be modelled (roi, stereo right)."""
    if not full_roi:
        raise CameraModelError('rectified=True with a partial roi is not supported')
    if np.any(p_arr[:, 3] != 0.0):
        raise CameraModelError(
            'rectified=True needs P[:, 3] == 0 (a stereo right camera is not supported)')


@dataclass(frozen=True, eq=False)
class CameraModel:
    """A calibrated (or assumed) camera: projection with distortion, and its inverse.

    Attributes
    ----------
    width, height: size in px of the image the pixels refer to (after binning and ROI).
    k: (3, 3) intrinsic matrix for those pixels (skew in ``k[0, 1]``).
    distortion_model: 'plumb_bob', 'rational_polynomial', 'equidistant' or 'none'.
    d: (M,) distortion coefficients in CameraInfo order.
    r_proj_cam: (3, 3) rotation applied to camera-frame points before projection
        (identity for raw images; CameraInfo ``R`` when ``rectified``).
    mode: :class:`CameraMode`.
    rectified: True when pixels refer to the rectified image (``R``/``P`` used).
    calib_width, calib_height, k_full, r, p, binning_x, binning_y, roi: the CameraInfo
        fields as given (``k_full``, ``r``: (3, 3); ``p``: (3, 4); ``roi``: (x_offset,
        y_offset, height, width, do_rectify)).

    """

    width: int
    height: int
    k: np.ndarray
    distortion_model: str
    d: np.ndarray
    r_proj_cam: np.ndarray
    mode: CameraMode = CameraMode.FULL_INTRINSICS
    rectified: bool = False
    calib_width: int = 0
    calib_height: int = 0
    k_full: np.ndarray = None
    r: np.ndarray = None
    p: np.ndarray = None
    binning_x: int = 1
    binning_y: int = 1
    roi: tuple = (0, 0, 0, 0, False)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_camera_info_fields(cls, width: int, height: int, distortion_model: str,
                                d: Sequence[float], k: Sequence[float], r: Sequence[float],
                                p: Sequence[float], binning_x: int = 0, binning_y: int = 0,
                                roi: Tuple[int, int, int, int, bool] = (0, 0, 0, 0, False), *,
                                rectified: bool = False,
                                mode: CameraMode = CameraMode.FULL_INTRINSICS
                                ) -> 'CameraModel':
        """Build and validate a model from the fields of a sensor_msgs/CameraInfo.

        Parameters
        ----------
        width, height
            CameraInfo ``width``/``height`` (full-resolution calibration size).
        distortion_model
            CameraInfo ``distortion_model`` string.
        d
            CameraInfo ``d`` (sequence of float; empty means no distortion).
        k
            CameraInfo ``k`` (9 floats, row-major 3x3).
        r
            CameraInfo ``r`` (9 floats; all zeros is read as identity).
        p
            CameraInfo ``p`` (12 floats, row-major 3x4; may be all zeros for raw use).
        binning_x, binning_y
            CameraInfo binning (0 and 1 both mean no binning).
        roi
            (x_offset, y_offset, height, width, do_rectify) of CameraInfo ``roi``;
            all zeros means the full image.
        rectified
            Pixels refer to the rectified image (use ``R`` and ``P``).
        mode
            The :class:`CameraMode` to report (full intrinsics unless assumed).

        Raises
        ------
        CameraModelError: for any invalid or unsupported combination of fields, and (full
            intrinsics) for a physically impossible camera
            (:func:`hand_mesh_ros.core.camera.camera_checks.check_camera_geometry`).

        """
        model, d_arr = _distortion_fields(distortion_model, d)
        k_full = _frozen_array(k, (3, 3), 'k')
        r_arr = _frozen_array(r, (3, 3), 'r')
        p_arr = _frozen_array(p, (3, 4), 'p')
        width, height = int(width), int(height)
        x_off, y_off, roi_h, roi_w, do_rect = _full_roi(roi, width, height)
        full_roi = int(roi[2]) == 0 or int(roi[3]) == 0   # all zeros: the full image
        bx = int(binning_x) if int(binning_x) > 0 else 1
        by = int(binning_y) if int(binning_y) > 0 else 1
        r_proj_cam = r_arr if (rectified and np.any(r_arr != 0.0)) else np.eye(3)
        if rectified:
            _check_rectifiable(p_arr, full_roi)
            k_src = np.array(p_arr[:, :3])
            model, d_arr = distortion.NO_DISTORTION, np.zeros(0)
        else:
            k_src = np.array(k_full)
        k_eff = k_src.copy()
        k_eff[0, :] = (k_src[0, :] - np.array([0.0, 0.0, x_off]) * k_src[2, :]) / bx
        k_eff[1, :] = (k_src[1, :] - np.array([0.0, 0.0, y_off]) * k_src[2, :]) / by
        camera = cls(
            width=int(roi_w) // bx, height=int(roi_h) // by,
            k=_frozen_array(k_eff, (3, 3), 'k'), distortion_model=model,
            d=_frozen_array(d_arr, (d_arr.size,), 'd'),
            r_proj_cam=_frozen_array(r_proj_cam, (3, 3), 'r'), mode=CameraMode(mode),
            rectified=bool(rectified), calib_width=width, calib_height=height, k_full=k_full,
            r=r_arr, p=p_arr, binning_x=bx, binning_y=by,
            roi=(int(x_off), int(y_off), int(roi_h), int(roi_w), bool(do_rect)))
        camera.validate()
        if camera.mode is CameraMode.FULL_INTRINSICS:
            check_camera_geometry(camera)
        return camera

    @classmethod
    def assumed_fov(cls, width: int, height: int,
                    hfov_deg: float = DEFAULT_HFOV_DEG) -> 'CameraModel':
        """Build the documented no-camera_info model: given horizontal FOV, centred, no distortion.

        ``fx = fy = (width / 2) / tan(hfov / 2)``, ``cx = width / 2``, ``cy = height / 2``;
        ``mode`` is :attr:`CameraMode.ASSUMED_FOV`.
        """
        focal_px, (cx, cy) = nominal_pinhole((width, height), hfov_deg)
        k = [focal_px, 0.0, cx, 0.0, focal_px, cy, 0.0, 0.0, 1.0]
        return cls.from_camera_info_fields(
            width, height, '', [], k, np.eye(3).ravel(), np.zeros(12),
            mode=CameraMode.ASSUMED_FOV)

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        """Check the model; raise :class:`CameraModelError` describing the first problem."""
        for name in ('k', 'd', 'r_proj_cam'):
            if not np.all(np.isfinite(getattr(self, name))):
                raise CameraModelError(f'{name} contains NaN or inf')
        for name in ('k_full', 'r', 'p'):
            value = getattr(self, name)
            if value is not None and not np.all(np.isfinite(value)):
                raise CameraModelError(f'{name} contains NaN or inf')
        if self.width <= 0 or self.height <= 0:
            raise CameraModelError(f'image size {self.width}x{self.height} is not positive')
        if not (self.fx > 0.0 and self.fy > 0.0):
            raise CameraModelError(
                f'focal lengths must be positive (fx={self.fx}, fy={self.fy}); an all-zero K '
                'means an uncalibrated camera')
        if not np.allclose(self.k[2], [0.0, 0.0, 1.0]) or self.k[1, 0] != 0.0:
            raise CameraModelError(f'K must be upper triangular with last row [0, 0, 1]: '
                                   f'{self.k.tolist()}')
        accepted = distortion.ACCEPTED_LENGTHS.get(self.distortion_model)
        if accepted is None:
            raise CameraModelError(f'unknown distortion model {self.distortion_model!r}')
        if self.d.size not in accepted:
            raise CameraModelError(
                f'{self.distortion_model} needs {" or ".join(map(str, accepted))} coefficients '
                f'in D, got {self.d.size}')
        rot = self.r_proj_cam
        if not np.allclose(rot @ rot.T, np.eye(3), atol=1e-6) or np.linalg.det(rot) <= 0.0:
            raise CameraModelError('R is not a rotation matrix')
        if self.r is not None and np.any(self.r != 0.0):
            if not np.allclose(self.r @ self.r.T, np.eye(3), atol=1e-6):
                raise CameraModelError('R is not a rotation matrix')
        if self.p is not None and np.any(self.p != 0.0):
            if not (self.p[0, 0] > 0.0 and self.p[1, 1] > 0.0):
                raise CameraModelError('P has a non-positive focal length')

    def check_image_size(self, width: int, height: int) -> None:
        """Raise :class:`CameraModelError` if an image's size differs from the model's."""
        if (int(width), int(height)) != (self.width, self.height):
            raise CameraModelError(
                f'image is {width}x{height} but camera_info (after binning/roi) expects '
                f'{self.width}x{self.height}')

    # ------------------------------------------------------------------ properties
    fx = _k_entry(0, 0, 'Return the horizontal focal length in px.')
    fy = _k_entry(1, 1, 'Return the vertical focal length in px.')
    cx = _k_entry(0, 2, 'Return the principal point x in px.')
    cy = _k_entry(1, 2, 'Return the principal point y in px.')
    skew = _k_entry(0, 1, 'Return the skew term ``K[0, 1]`` in px.')

    @property
    def image_size(self) -> Tuple[int, int]:
        """Return (width, height) in px of the image the pixels refer to."""
        return (self.width, self.height)

    # ------------------------------------------------------------------ projection
    def to_projection_frame(self, points_cam_m: np.ndarray) -> np.ndarray:
        """Return (N, 3) points rotated into the projection frame (by R when rectified)."""
        points = np.asarray(points_cam_m, dtype=float).reshape(-1, 3)
        if self.rectified:
            points = points @ self.r_proj_cam.T
        return points

    def project(self, points_cam_m: np.ndarray) -> np.ndarray:
        """Project camera-frame points to pixels, with distortion.

        Parameters
        ----------
        points_cam_m
            (N, 3) points in the camera optical frame, metres, z > 0.

        Returns
        -------
        (N, 2) pixel coordinates in the image the model refers to. Points with z <= 0
        have no meaningful projection (the values are not finite or not meaningful).

        """
        points = self.to_projection_frame(points_cam_m)
        with np.errstate(divide='ignore', invalid='ignore'):
            xy_n = points[:, :2] / points[:, 2:3]
            xy_d = distortion.distort(xy_n, self.distortion_model, self.d)
            return xy_d @ self.k[:2, :2].T + self.k[:2, 2]

    def project_with_jacobian(self, points_cam_m: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Return :meth:`project`'s pixels (N, 2) and their analytic Jacobian (N, 2, 3).

        The Jacobian is d(px) / d(point) in px per metre, for (N, 3) camera-frame points
        ``points_cam_m`` with z > 0.
        """
        points = self.to_projection_frame(points_cam_m)
        k2 = self.k[:2, :2]
        with np.errstate(divide='ignore', invalid='ignore'):
            inv_z = 1.0 / points[:, 2]
            xy_n = points[:, :2] * inv_z[:, None]
            xy_d, jac_dist = distortion.distort_with_jacobian(
                xy_n, self.distortion_model, self.d)
            px = xy_d @ k2.T + self.k[:2, 2]
            # d(px)/d(xy_n) = K[:2, :2] @ jac_dist, then the chain through xy_n = (x, y) / z.
            jac_px = k2 @ jac_dist
            jac = np.empty((points.shape[0], 2, 3))
            np.multiply(jac_px, inv_z[:, None, None], out=jac[:, :, :2])
            np.matmul(jac_px, xy_n[:, :, None], out=jac[:, :, 2:])
            jac[:, :, 2:] *= -inv_z[:, None, None]
        if self.rectified:
            jac = jac @ self.r_proj_cam
        return px, jac

    def undistort_pixels(self, px: np.ndarray) -> np.ndarray:
        """Turn pixels into normalized rays (x/z, y/z) in the camera optical frame.

        Parameters
        ----------
        px
            (N, 2) pixel coordinates in the image the model refers to.

        Returns
        -------
        (N, 2) normalized coordinates; rows are NaN where the pixel is not finite, the
        distortion cannot be inverted there, or the ray points backwards.

        """
        px = np.asarray(px, dtype=float).reshape(-1, 2)
        fx, fy, cx, cy, s = self.fx, self.fy, self.cx, self.cy, self.skew
        y_d = (px[:, 1] - cy) / fy
        x_d = (px[:, 0] - cx - s * y_d) / fx
        xy_n = distortion.undistort_normalized(
            np.stack([x_d, y_d], axis=1), self.distortion_model, self.d)
        if self.rectified:
            rays = np.concatenate([xy_n, np.ones((xy_n.shape[0], 1))], axis=1)
            rays = rays @ self.r_proj_cam  # R^T applied to each row vector
            with np.errstate(divide='ignore', invalid='ignore'):
                xy_n = rays[:, :2] / rays[:, 2:3]
            xy_n[~(rays[:, 2] > 0.0)] = np.nan
        return xy_n


#: The values of ``camera.fallback_mode``: what to do for an image without usable camera_info.
FALLBACK_MODES = (CameraMode.ASSUMED_FOV.value, CameraMode.WEAK_PERSPECTIVE.value)


@functools.lru_cache(maxsize=8)
def fallback_camera(width: int, height: int, fallback_mode: str,
                    hfov_deg: float = DEFAULT_HFOV_DEG
                    ) -> Tuple[Optional[CameraModel], CameraMode]:
    """Return ``(camera, mode)`` for a ``width`` x ``height`` image without usable camera_info.

    The one place that decides the fallback (the ROS node's camera resolver and the
    pipeline both ask here). ``fallback_mode`` is one of :data:`FALLBACK_MODES`:
    'assumed_fov' gives :meth:`CameraModel.assumed_fov` (memoised: models are immutable),
    'weak_perspective' gives ``None`` (root recovery and tailor then use
    :func:`nominal_pinhole`). ``mode`` is the :class:`CameraMode`.

    Raises:
        ValueError: unknown ``fallback_mode``.
        CameraModelError: the size or FOV is not usable.

    """
    if fallback_mode == CameraMode.WEAK_PERSPECTIVE.value:
        return None, CameraMode.WEAK_PERSPECTIVE
    if fallback_mode != CameraMode.ASSUMED_FOV.value:
        raise ValueError(f'fallback_mode must be one of {FALLBACK_MODES}, got {fallback_mode!r}')
    camera = CameraModel.assumed_fov(int(width), int(height), float(hfov_deg))
    return camera, CameraMode.ASSUMED_FOV
