"""Tests for rotated rects, affine crops and their inverse transforms."""

import numpy as np
import pytest

from hand_mesh_ros.core.tracking.crop import (crop_transform, normalize_radians, rotated_rect_iou,
                                              RotatedRect, transform_rect, warp_crop)


def test_point_crop_image_round_trip_within_1e4_px():
    rng = np.random.default_rng(3)
    for _ in range(20):
        rect = RotatedRect(*rng.uniform(50, 600, 2), *np.repeat(rng.uniform(20, 400), 2),
                           rng.uniform(-np.pi, np.pi))
        transform = crop_transform(rect, 224)
        pts_image = rng.uniform(-100, 700, (50, 2))
        back = transform.to_image(transform.to_crop(pts_image))
        assert np.max(np.abs(back - pts_image)) < 1e-4
        pts_crop = rng.uniform(0, 224, (50, 2))
        assert np.max(np.abs(transform.to_crop(transform.to_image(pts_crop)) - pts_crop)) < 1e-4


def test_crop_corners_and_orientation():
    # 90 deg: the crop's up (-y) points along +x in the image.
    rect = RotatedRect(100.0, 50.0, 40.0, 40.0, np.pi / 2)
    transform = crop_transform(rect, 20)
    np.testing.assert_allclose(transform.to_image([[10.0, 10.0]]), [[100.0, 50.0]], atol=1e-9)
    np.testing.assert_allclose(transform.to_image([[10.0, 0.0]]), [[120.0, 50.0]], atol=1e-9)
    np.testing.assert_allclose(transform.to_image([[20.0, 10.0]]), [[100.0, 70.0]], atol=1e-9)
    assert transform.image_px_per_crop_px == pytest.approx(2.0)
    np.testing.assert_allclose(transform.to_image([[0, 0], [20, 0], [20, 20], [0, 20]]),
                               rect.corners_px(), atol=1e-9)


def test_warp_crop_samples_the_right_pixels():
    image = np.arange(40 * 60, dtype=np.float32).reshape(40, 60)
    # Unrotated, one image pixel per crop pixel: an exact sub-array.
    crop, _ = warp_crop(image, RotatedRect(30.0, 20.0, 16.0, 16.0, 0.0), 16)
    np.testing.assert_array_equal(crop, image[12:28, 22:38])
    # Rotated by +90 deg: crop row 0 is the rect's image column x=37 (the fingers' side).
    crop_r, _ = warp_crop(image, RotatedRect(30.0, 20.0, 16.0, 16.0, np.pi / 2), 16)
    np.testing.assert_allclose(crop_r, np.rot90(image[12:28, 22:38], k=1), atol=1e-3)
    # Outside the image the border is zero; the input is untouched.
    before = image.copy()
    crop_out, _ = warp_crop(image, RotatedRect(-50.0, -50.0, 10.0, 10.0), 10)
    assert not crop_out.any()
    np.testing.assert_array_equal(image, before)


def test_transform_rect_shift_square_scale():
    rect = RotatedRect(100.0, 100.0, 40.0, 20.0, 0.0)
    out = transform_rect(rect, scale_x=2.0, scale_y=2.0, shift_y=-0.5)
    assert (out.center_x_px, out.center_y_px) == pytest.approx((100.0, 90.0))
    assert (out.width_px, out.height_px) == pytest.approx((80.0, 80.0))
    turned = transform_rect(RotatedRect(0.0, 0.0, 10.0, 10.0, np.pi / 2), shift_y=-1.0)
    assert (turned.center_x_px, turned.center_y_px) == pytest.approx((10.0, 0.0))
    assert normalize_radians(3 * np.pi / 2) == pytest.approx(-np.pi / 2)


def test_rotated_rect_iou():
    a = RotatedRect(0.0, 0.0, 10.0, 10.0)
    assert rotated_rect_iou(a, a) == pytest.approx(1.0)
    assert rotated_rect_iou(a, RotatedRect(5.0, 0.0, 10.0, 10.0)) == pytest.approx(1 / 3)
    assert rotated_rect_iou(a, RotatedRect(50.0, 0.0, 10.0, 10.0)) == 0.0
    diamond = RotatedRect(0.0, 0.0, 10.0, 10.0, np.pi / 4)
    inter = 100.0 - 4 * (5 * np.sqrt(2) - 5) ** 2
    assert rotated_rect_iou(a, diamond) == pytest.approx(inter / (200.0 - inter), rel=1e-4)
