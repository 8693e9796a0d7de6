"""Tests of the CameraInfo-based camera model (projection, undistortion, Jacobian, checks)."""

import math

from camera_cases import DISTORTIONS, EYE, NO_P
import cv2
import numpy as np
import pytest

from hand_mesh_ros.core.camera import distortion
from hand_mesh_ros.core.camera.camera import CameraMode, CameraModel
from hand_mesh_ros.core.errors import CameraModelError, HandMeshError

K_SKEW = (600.0, 1.5, 352.0, 0.0, 605.0, 231.0, 0.0, 0.0, 1.0)
K_PLAIN = (600.0, 0.0, 352.0, 0.0, 605.0, 231.0, 0.0, 0.0, 1.0)


def _camera(model, k=K_SKEW, **kwargs):
    return CameraModel.from_camera_info_fields(
        640, 480, model, DISTORTIONS[model], k, EYE, NO_P, **kwargs)


def _points(n=200, seed=0):
    rng = np.random.default_rng(seed)
    depth = rng.uniform(0.3, 1.5, n)
    xy = rng.uniform(-0.45, 0.45, (n, 2)) * depth[:, None]
    return np.column_stack([xy, depth])


def _numeric_jacobian(camera, points, eps=1e-6):
    cols = []
    for axis in range(3):
        delta = np.zeros(3)
        delta[axis] = eps
        cols.append((camera.project(points + delta) - camera.project(points - delta)) / (2 * eps))
    return np.stack(cols, axis=2)


def test_camera_mode_string_values():
    assert CameraMode.FULL_INTRINSICS.value == 'full_intrinsics'
    assert CameraMode.ASSUMED_FOV.value == 'assumed_fov'
    assert CameraMode.WEAK_PERSPECTIVE.value == 'weak_perspective'
    assert _camera('plumb_bob').mode is CameraMode.FULL_INTRINSICS
    assert issubclass(CameraModelError, HandMeshError)


@pytest.mark.parametrize('model', ['plumb_bob', 'rational_polynomial', ''])
def test_projection_matches_opencv(model):
    camera = _camera(model, k=K_PLAIN)
    points = _points()
    expected, _ = cv2.projectPoints(points, np.zeros(3), np.zeros(3), np.array(K_PLAIN)
                                    .reshape(3, 3), np.array(DISTORTIONS[model], dtype=float))
    np.testing.assert_allclose(camera.project(points), expected.reshape(-1, 2), atol=1e-8)


def test_equidistant_matches_opencv_fisheye_with_skew():
    camera = _camera('equidistant')
    points = _points()
    expected, _ = cv2.fisheye.projectPoints(
        points.reshape(-1, 1, 3), np.zeros(3), np.zeros(3), np.array(K_SKEW).reshape(3, 3),
        np.array(DISTORTIONS['equidistant']), alpha=K_SKEW[1] / K_SKEW[0])
    np.testing.assert_allclose(camera.project(points), expected.reshape(-1, 2), atol=1e-8)


@pytest.mark.parametrize('model', list(DISTORTIONS))
@pytest.mark.parametrize('binned', [False, True])
def test_undistort_round_trip_below_1e3_px(model, binned):
    kwargs = {}
    if binned:
        kwargs = {'binning_x': 2, 'binning_y': 2, 'roi': (40, 20, 400, 560, False)}
    camera = _camera(model, **kwargs)
    px = camera.project(_points())
    rays = camera.undistort_pixels(px)
    assert np.all(np.isfinite(rays))
    back = camera.project(np.column_stack([rays, np.ones(len(rays))]))
    assert np.max(np.abs(back - px)) < 1e-3
    assert np.max(np.abs(back - px)) < 1e-6  # in practice Newton converges fully


def test_undistort_agrees_with_opencv_iterative_solver():
    camera = _camera('rational_polynomial', k=K_PLAIN)
    points = _points()
    px = camera.project(points)
    truth = points[:, :2] / points[:, 2:3]
    ours = camera.undistort_pixels(px)
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-12)
    args = (px.reshape(-1, 1, 2), np.array(K_PLAIN).reshape(3, 3),
            np.array(DISTORTIONS['rational_polynomial']))
    if hasattr(cv2, 'undistortPointsIter'):  # OpenCV 4.x
        ref = cv2.undistortPointsIter(*args, None, None, criteria)
    else:  # OpenCV 5.x: criteria became an argument of undistortPoints
        ref = cv2.undistortPoints(*args, criteria=criteria)
    ref = ref.reshape(-1, 2)
    assert np.max(np.abs(ours - truth)) < 1e-9
    assert np.max(np.abs(ref - truth)) < 1e-5  # same answer as OpenCV's iterative solver


def test_undistort_beyond_fold_is_nan_not_garbage():
    # The radial map r (1 - 0.9 r^2) peaks at r = 0.61 (r_d = 0.41): r_d = 0.6 has no preimage.
    xy_d = np.array([[0.6, 0.0], [0.2, 0.0], [np.nan, 1.0]])
    rays = distortion.undistort_normalized(xy_d, 'plumb_bob', (-0.9, 0.0, 0.0, 0.0, 0.0))
    assert np.all(np.isnan(rays[0])) and np.all(np.isnan(rays[2]))
    assert np.all(np.isfinite(rays[1]))
    # A camera whose image reaches beyond that fold is refused, not used with NaN rays.
    with pytest.raises(CameraModelError, match='cannot be inverted at pixel'):
        CameraModel.from_camera_info_fields(
            640, 480, 'plumb_bob', (-0.9, 0.0, 0.0, 0.0, 0.0), K_PLAIN, EYE, NO_P)


@pytest.mark.parametrize('model', list(DISTORTIONS))
def test_jacobian_matches_finite_differences(model):
    camera = _camera(model, binning_x=2, binning_y=1, roi=(10, 30, 420, 600, False))
    points = _points(50)
    px, jac = camera.project_with_jacobian(points)
    np.testing.assert_allclose(camera.project(points), px)
    numeric = _numeric_jacobian(camera, points)
    assert np.max(np.abs(jac - numeric)) < 1e-5 * np.max(np.abs(jac))


def test_jacobian_near_optical_axis_equidistant():
    camera = _camera('equidistant')
    points = np.array([[0.0, 0.0, 0.8], [1e-10, -2e-10, 0.5]])
    _, jac = camera.project_with_jacobian(points)
    assert np.all(np.isfinite(jac))
    np.testing.assert_allclose(jac, _numeric_jacobian(camera, points), rtol=1e-6, atol=1e-6)


def test_binning_and_roi_follow_camera_info_semantics():
    full = _camera('plumb_bob')
    roi = (40, 20, 400, 560, False)  # x_offset, y_offset, height, width, do_rectify
    small = _camera('plumb_bob', binning_x=2, binning_y=4, roi=roi)
    assert small.image_size == (280, 100)
    assert (small.calib_width, small.calib_height) == (640, 480)
    np.testing.assert_allclose([small.fx, small.fy, small.skew], [300.0, 605.0 / 4, 0.75])
    np.testing.assert_allclose([small.cx, small.cy], [(352.0 - 40) / 2, (231.0 - 20) / 4])
    points = _points()
    expected = (full.project(points) - [40.0, 20.0]) / [2.0, 4.0]
    np.testing.assert_allclose(small.project(points), expected, atol=1e-9)
    # binning 0 and 1 both mean "no binning"; an all-zero roi means the full image.
    same = _camera('plumb_bob', binning_x=1, binning_y=0, roi=(0, 0, 0, 0, False))
    np.testing.assert_allclose(same.project(points), full.project(points))


def test_rectified_mode_uses_r_and_p():
    rot = cv2.Rodrigues(np.array([0.02, -0.03, 0.01]))[0]
    p = np.array([[590.0, 0.0, 340.0, 0.0], [0.0, 590.0, 236.0, 0.0], [0.0, 0.0, 1.0, 0.0]])
    camera = CameraModel.from_camera_info_fields(
        640, 480, 'plumb_bob', DISTORTIONS['plumb_bob'], K_SKEW, rot.ravel(), p.ravel(),
        rectified=True)
    points = _points()
    homog = (p @ np.column_stack([points @ rot.T, np.ones(len(points))]).T).T
    expected = homog[:, :2] / homog[:, 2:3]
    px, jac = camera.project_with_jacobian(points)
    np.testing.assert_allclose(px, expected, atol=1e-9)
    np.testing.assert_allclose(jac, _numeric_jacobian(camera, points), rtol=1e-5, atol=1e-4)
    rays = camera.undistort_pixels(px)
    np.testing.assert_allclose(rays, points[:, :2] / points[:, 2:3], atol=1e-10)


def test_assumed_fov_places_half_fov_at_image_edge():
    camera = CameraModel.assumed_fov(640, 480, hfov_deg=60.0)
    assert camera.mode is CameraMode.ASSUMED_FOV
    assert (camera.cx, camera.cy) == (320.0, 240.0)
    edge = camera.project(np.array([[math.tan(math.radians(30.0)), 0.0, 1.0]]))
    np.testing.assert_allclose(edge, [[640.0, 240.0]], atol=1e-9)
    with pytest.raises(CameraModelError):
        CameraModel.assumed_fov(640, 480, hfov_deg=180.0)


def test_model_arrays_are_read_only_and_inputs_untouched():
    k = list(K_SKEW)
    camera = CameraModel.from_camera_info_fields(640, 480, 'plumb_bob',
                                                 list(DISTORTIONS['plumb_bob']), k, EYE, NO_P)
    assert k == list(K_SKEW)
    with pytest.raises(ValueError):
        camera.k[0, 0] = 1.0
    points = _points(5)
    copy = points.copy()
    camera.project_with_jacobian(points)
    np.testing.assert_array_equal(points, copy)


def _bad_k(index, value):
    k = list(K_SKEW)
    k[index] = value
    return k


@pytest.mark.parametrize('kwargs, message', [
    ({'k': (0.0,) * 9}, 'focal'),
    ({'k': _bad_k(0, float('nan'))}, 'NaN'),
    ({'k': _bad_k(2, float('inf'))}, 'NaN'),
    ({'k': _bad_k(4, -605.0)}, 'focal'),
    ({'k': _bad_k(8, 0.0)}, 'last row'),
    ({'k': (1.0, 2.0)}, 'k must have 9'),
    ({'distortion_model': 'kannala_brandt'}, 'unknown distortion_model'),
    ({'d': (0.1, 0.0, 0.0)}, 'needs 4 or 5 or 8 or 12 or 14 coefficients'),
    ({'distortion_model': 'rational_polynomial', 'd': (0.1,) * 6}, 'got 6'),
    ({'distortion_model': 'equidistant'}, 'needs 4 coefficients in D, got 5'),
    ({'d': (0.1, float('nan'), 0.0, 0.0, 0.0)}, 'NaN'),
    ({'width': 0}, 'not positive'),
    ({'roi': (100, 0, 480, 600, False)}, 'outside'),
    ({'r': (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0)}, 'rotation'),
    ({'p': (-5.0, 0, 320, 0, 0, 500, 240, 0, 0, 0, 1, 0)}, 'P has'),
    ({'p': (500.0, 0, 320, -30.0, 0, 500, 240, 0, 0, 0, 1, 0), 'rectified': True}, 'stereo'),
    ({'roi': (10, 10, 100, 100, True), 'p': (500.0, 0, 320, 0, 0, 500, 240, 0, 0, 0, 1, 0),
      'rectified': True}, 'partial roi'),
])
def test_validation_errors(kwargs, message):
    fields = {'width': 640, 'height': 480, 'distortion_model': 'plumb_bob',
              'd': DISTORTIONS['plumb_bob'], 'k': K_SKEW, 'r': EYE, 'p': NO_P}
    fields.update(kwargs)
    with pytest.raises(CameraModelError, match=message):
        CameraModel.from_camera_info_fields(**fields)


def test_empty_d_means_no_distortion_and_size_check():
    camera = CameraModel.from_camera_info_fields(640, 480, 'plumb_bob', [], K_PLAIN, EYE, NO_P)
    assert camera.distortion_model == 'none'
    camera.check_image_size(640, 480)
    with pytest.raises(CameraModelError, match='expects 640x480'):
        camera.check_image_size(320, 240)
