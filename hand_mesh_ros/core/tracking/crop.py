"""Rotated hand regions and the affine crops that feed the networks.

Conventions: raw-image pixels with continuous coordinates (the centre of pixel ``(i, j)`` is at
``(i + 0.5, j + 0.5)``); x right, y down. A :class:`RotatedRect` rotation is in radians,
positive clockwise on screen (y down), and maps the rect's local axes to the image by
``image = centre + R(rotation) @ local`` with ``R = [[cos, -sin], [sin, cos]]``. A crop of size
``S`` maps local ``(u, v)`` in ``[-w/2, w/2] x [-h/2, h/2]`` to crop coordinates
``(S * (u / w + 0.5), S * (v / h + 0.5))``, so the crop's "up" is the rect's local ``-v``.
"""

from dataclasses import dataclass

import cv2
import numpy as np

from hand_mesh_ros.core.hand.rotations import rotation_about_z


@dataclass(frozen=True)
class RotatedRect:
    """A rotated rectangle in raw-image pixels."""

    center_x_px: float
    center_y_px: float
    width_px: float
    height_px: float
    rotation_rad: float = 0.0

    def corners_px(self):
        """Return the four corners, (4, 2) float64, clockwise from the local top-left."""
        half = np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]])
        local = half * np.array([self.width_px, self.height_px])
        rot = rotation_about_z(self.rotation_rad)[:2, :2]
        return local @ rot.T + np.array([self.center_x_px, self.center_y_px])

    def area_px2(self):
        """Return the area in square pixels."""
        return float(self.width_px * self.height_px)


def normalize_radians(angle_rad):
    """Wrap an angle to [-pi, pi)."""
    return float((angle_rad + np.pi) % (2.0 * np.pi) - np.pi)


def transform_rect(rect, scale_x=1.0, scale_y=1.0, shift_x=0.0, shift_y=0.0, square_long=True):
    """Shift, square and scale a rect the way MediaPipe's RectTransformationCalculator does.

    The shift is a fraction of the rect's width/height along its own rotated axes; squaring
    uses the longer side (pixels, so the image aspect ratio is already accounted for); the
    scale is applied last.
    """
    rot = rotation_about_z(rect.rotation_rad)[:2, :2]
    shift = rot @ [rect.width_px * shift_x, rect.height_px * shift_y]
    center_x, center_y = rect.center_x_px + shift[0], rect.center_y_px + shift[1]
    width, height = rect.width_px, rect.height_px
    if square_long:
        width = height = max(width, height)
    return RotatedRect(float(center_x), float(center_y), float(width * scale_x),
                       float(height * scale_y), normalize_radians(rect.rotation_rad))


def _apply_affine(matrix, points):
    pts = np.asarray(points, dtype=np.float64)
    return pts @ matrix[:, :2].T + matrix[:, 2]


@dataclass(frozen=True)
class CropTransform:
    """Affine maps between a crop (continuous crop px) and the raw image (continuous px).

    ``crop_to_image`` and ``image_to_crop`` are (2, 3) float64 matrices acting on column
    vectors ``[x, y, 1]``.
    """

    crop_to_image: np.ndarray
    image_to_crop: np.ndarray
    crop_size_px: int
    rotation_rad: float
    image_px_per_crop_px: float

    def to_image(self, points_crop_px):
        """Map (N, 2) crop points to raw-image pixels, returning (N, 2) float64."""
        return _apply_affine(self.crop_to_image, points_crop_px)

    def to_crop(self, points_image_px):
        """Map (N, 2) raw-image points to crop pixels, returning (N, 2) float64."""
        return _apply_affine(self.image_to_crop, points_image_px)


def crop_transform(rect, crop_size_px):
    """Return the :class:`CropTransform` that maps ``rect`` onto a square crop.

    The rect should be square (MediaPipe's hand ROIs are); a non-square rect is stretched.
    """
    size = float(crop_size_px)
    sx = rect.width_px / size
    sy = rect.height_px / size
    # image = centre + R @ diag(sx, sy) @ (crop - size / 2)
    linear = rotation_about_z(rect.rotation_rad)[:2, :2] @ np.diag([sx, sy])
    offset = np.array([rect.center_x_px, rect.center_y_px]) - linear @ np.array([size, size]) / 2
    crop_to_image = np.hstack([linear, offset[:, None]])
    inv_linear = np.linalg.inv(linear)
    image_to_crop = np.hstack([inv_linear, (-inv_linear @ offset)[:, None]])
    return CropTransform(crop_to_image, image_to_crop, int(crop_size_px),
                         float(rect.rotation_rad), float(np.sqrt(abs(np.linalg.det(linear)))))


def warp_crop(image, rect, crop_size_px, border_value=0):
    """Cut ``rect`` out of ``image`` (H, W[, C]) into a (S, S[, C]) crop by an affine warp.

    Pixels outside the image are filled with ``border_value``. Returns ``(crop, transform)``.
    The input image is not modified.
    """
    transform = crop_transform(rect, crop_size_px)
    # cv2 works on pixel indices (centre of pixel i at i): index = continuous - 0.5.
    to_index = np.array([[1.0, 0.0, -0.5], [0.0, 1.0, -0.5], [0.0, 0.0, 1.0]])
    from_index = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])
    full = np.vstack([transform.crop_to_image, [0.0, 0.0, 1.0]])
    index_map = (to_index @ full @ from_index)[:2]
    crop = cv2.warpAffine(image, index_map, (int(crop_size_px), int(crop_size_px)),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=border_value)
    return crop, transform


def rotated_rect_iou(rect_a, rect_b):
    """Return the intersection-over-union of two rotated rects (0 when either is empty)."""
    area_a, area_b = rect_a.area_px2(), rect_b.area_px2()
    if area_a <= 0.0 or area_b <= 0.0:
        return 0.0
    poly_a = rect_a.corners_px().astype(np.float32)
    poly_b = rect_b.corners_px().astype(np.float32)
    inter, _ = cv2.intersectConvexConvex(poly_a, poly_b)
    inter = max(float(inter), 0.0)
    union = area_a + area_b - inter
    return inter / union if union > 0.0 else 0.0
