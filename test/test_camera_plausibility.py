"""Real drivers' distortion lengths are accepted; physically impossible cameras are refused."""

import cv2
import numpy as np
import pytest

from hand_mesh_ros.core.camera.camera import CameraModel
from hand_mesh_ros.core.errors import CameraModelError

EYE = tuple(np.eye(3).ravel())
NO_P = (0.0,) * 12
K = (600.0, 0.0, 330.0, 0.0, 605.0, 236.0, 0.0, 0.0, 1.0)
# A real-looking rational lens (numerator and denominator nearly cancel, as OAK-D's do), then
# thin prism and tilt terms: OpenCV's 14-coefficient layout.
D14 = (-3.9, 13.7, 0.0012, -0.0007, 11.2, -3.8, 13.5, 11.6, 0.002, -0.001, 0.0015, 0.0008,
       0.004, -0.003)


def _camera(d, model='rational_polynomial', k=K, width=640, height=480, **kwargs):
    return CameraModel.from_camera_info_fields(width, height, model, d, k, EYE, NO_P, **kwargs)


def _points(n=300, seed=1):
    rng = np.random.default_rng(seed)
    depth = rng.uniform(0.3, 1.5, n)
    xy = rng.uniform(-0.45, 0.45, (n, 2)) * depth[:, None]
    return np.column_stack([xy, depth])


@pytest.mark.parametrize('model', ['plumb_bob', 'rational_polynomial'])
@pytest.mark.parametrize('length', [4, 5, 8, 12, 14])
def test_every_opencv_length_is_accepted_and_projects_like_opencv(model, length):
    d = D14[:length] if length > 5 else (0.11, -0.23, 0.0012, -0.0009, 0.07)[:length]
    camera = _camera(d, model)
    assert camera.d.size == length
    points = _points()
    expected, _ = cv2.projectPoints(points, np.zeros(3), np.zeros(3),
                                    np.array(K).reshape(3, 3), np.array(d, dtype=float))
    np.testing.assert_allclose(camera.project(points), expected.reshape(-1, 2), atol=1e-7)
    # The inverse: undistorting the projections gives back the rays, as OpenCV's does.
    rays = camera.undistort_pixels(expected.reshape(-1, 2))
    np.testing.assert_allclose(rays, points[:, :2] / points[:, 2:], atol=1e-9)


def test_fourteen_coefficient_jacobian_matches_finite_differences():
    camera = _camera(D14)
    points = _points(50)
    _, jac = camera.project_with_jacobian(points)
    eps = 1e-6
    numeric = np.stack([(camera.project(points + eps * np.eye(3)[i])
                         - camera.project(points - eps * np.eye(3)[i])) / (2 * eps)
                        for i in range(3)], axis=2)
    np.testing.assert_allclose(jac, numeric, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize('d, model', [
    ((), 'plumb_bob'),
    ((0.05, -0.021, 0.0032, -0.0011), 'equidistant'),
    ((-0.28, 0.07, 0.0, 0.0, 0.0), 'plumb_bob'),                    # strong barrel, no fold
    ((0.6, 0.3, 0.0, 0.0, 0.02, 0.9, 0.4, 0.05), 'rational_polynomial'),
])
def test_real_lenses_are_accepted(d, model):
    assert _camera(d, model).width == 640


def test_a_wide_fisheye_seeing_beyond_the_hemisphere_is_accepted():
    # 200 px/rad over 1280 px: the corners are ~2.3 rad off-axis (no normalized ray there).
    k = (200.0, 0.0, 640.0, 0.0, 200.0, 400.0, 0.0, 0.0, 1.0)
    camera = _camera((0.01, -0.002, 0.0, 0.0), 'equidistant', k=k, width=1280, height=800)
    assert np.isnan(camera.undistort_pixels([[0.0, 0.0]])).all()
    assert np.isfinite(camera.undistort_pixels([[640.0, 400.0]])).all()


def _k(fx=600.0, fy=None, skew=0.0, cx=330.0, cy=236.0):
    return (fx, skew, cx, 0.0, fx if fy is None else fy, cy, 0.0, 0.0, 1.0)


IMPOSSIBLE = {
    # name: (k, d, model, words of the error)
    'fx_1e-12': (_k(1e-12, 605.0), (), 'plumb_bob', 'aspect'),
    'both_1e-12': (_k(1e-12), (), 'plumb_bob', 'off the optical axis'),
    'fx_1e12': (_k(1e12), (), 'plumb_bob', 'field of view'),
    'fx_1e300': (_k(1e300), (), 'plumb_bob', 'field of view'),
    'skew_1e9': (_k(skew=1e9), (), 'plumb_bob', 'skew'),
    'principal_point_1e9': (_k(cx=1e9), (), 'plumb_bob', 'principal point'),
    'k1_1e6': (K, (1e6, 0.0, 0.0, 0.0, 0.0), 'plumb_bob', 'scales the image'),
    'k1_fold': (K, (-0.9, 0.0, 0.0, 0.0, 0.0), 'plumb_bob', 'cannot be inverted'),
    'k2_fold_inside': (K, (0.0, -2.0, 0.0, 0.0, 0.0), 'plumb_bob', 'inverted'),
    'rational_pole': (K, (0.0, 0.0, 0.0, 0.0, 0.0, -4.0, 0.0, 0.0), 'rational_polynomial',
                      'distortion'),
    'tilt_90_deg': (K, (0.0,) * 12 + (1.5707, 0.0), 'rational_polynomial', 'distortion'),
    'fisheye_k1_1e6': (K, (1e6, 0.0, 0.0, 0.0), 'equidistant', 'scales the image'),
    'fisheye_fold': (K, (-0.5, 0.0, 0.0, 0.0), 'equidistant', 'not monotonic'),
}


@pytest.mark.parametrize('name', sorted(IMPOSSIBLE))
def test_physically_impossible_cameras_are_refused(name):
    k, d, model, words = IMPOSSIBLE[name]
    with pytest.raises(CameraModelError, match=words):
        _camera(d, model, k=k)


def test_the_check_follows_the_roi():
    # A barrel lens folding at r = 0.577 / r_d = 0.385: the full 640 px image reaches
    # beyond it, a 200x200 ROI around the principal point does not.
    d = (-1.0, 0.0, 0.0, 0.0, 0.0)
    with pytest.raises(CameraModelError, match='inverted'):
        _camera(d, 'plumb_bob', k=_k(fx=400.0, cx=320.0, cy=240.0))
    camera = _camera(d, 'plumb_bob', k=_k(fx=400.0, cx=320.0, cy=240.0),
                     roi=(220, 140, 200, 200, False))
    assert camera.image_size == (200, 200)


@pytest.mark.parametrize('width, height', [(1, 1), (2, 1), (33, 17)])
def test_tiny_images_of_a_real_camera_are_accepted(width, height):
    from hand_mesh_ros.core.camera.camera import nominal_focal_px
    focal = nominal_focal_px(width, 60.0)
    k = (focal, 0.0, (width - 1) / 2.0, 0.0, focal, (height - 1) / 2.0, 0.0, 0.0, 1.0)
    camera = _camera((0.0,) * 5, 'plumb_bob', k=k, width=width, height=height)
    assert camera.image_size == (width, height)


@pytest.mark.parametrize('width, height, d, k', [
    # Calibrations fitted without corner data: the model folds just inside the corners.
    (1920, 1080, (-0.27, 0.09, 0.0, 0.0, -0.012), (880.0, 0.0, 960.0, 0.0, 880.0, 540.0, 0, 0, 1)),
    (640, 480, (-0.45, 0.25, 0.0, 0.0, -0.08), (500.0, 0.0, 320.0, 0.0, 500.0, 240.0, 0, 0, 1)),
])
def test_a_fold_only_in_the_corners_is_tolerated_and_those_pixels_have_no_ray(
        width, height, d, k):
    camera = _camera(d, 'plumb_bob', k=k, width=width, height=height)
    rays = camera.undistort_pixels([[0.0, 0.0], [width / 2.0, height / 2.0], [0.0, height / 2]])
    assert np.isnan(rays[0]).all() and np.isfinite(rays[1:]).all()
