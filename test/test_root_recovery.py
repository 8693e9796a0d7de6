"""Tests of absolute root recovery (perspective, assumed FOV, weak perspective) and its eval."""

import json

from camera_cases import DISTORTIONS as D, EYE, NO_P
import cv2
import numpy as np
import pytest

from hand_mesh_ros.core.camera.camera import CameraMode, CameraModel
from hand_mesh_ros.core.errors import CameraModelError, HandMeshError, RootRecoveryError
from hand_mesh_ros.core.fitting.least_squares import damped_step, mean_reprojection_error_px
from hand_mesh_ros.core.fitting.root_recovery import recover_root
from hand_mesh_ros.paths import data_dir
from hand_mesh_ros.tools.evaluation import eval_root

# Off-centre principal point and skew.
K_FULL = (1210.0, 2.5, 700.0, 0.0, 1195.0, 430.0, 0.0, 0.0, 1.0)
ROOT_M = np.array([0.06, -0.035, 0.55])


def _hand(frame=120):
    """Return (21, 3) root-relative joints of a real hand (metres)."""
    with open(data_dir() / 'asl_hand_3d.full.json', encoding='utf-8') as stream:
        joints = np.asarray(json.load(stream)[frame], dtype=float)
    return joints - joints[0]


def _camera(model, binned=False):
    kwargs = {}
    if binned:
        kwargs = {'binning_x': 2, 'binning_y': 2, 'roi': (80, 40, 800, 1100, False)}
    return CameraModel.from_camera_info_fields(1280, 960, model, D[model], K_FULL, EYE, NO_P,
                                               **kwargs)


def _rectified_camera():
    rot = cv2.Rodrigues(np.array([0.03, -0.02, 0.015]))[0]
    p = (1150.0, 0.0, 660.0, 0.0, 0.0, 1150.0, 470.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    return CameraModel.from_camera_info_fields(1280, 960, 'plumb_bob', D['plumb_bob'], K_FULL,
                                               rot.ravel(), p, rectified=True)


CAMERAS = [(model, binned) for model in D for binned in (False, True)]


@pytest.mark.parametrize('model, binned', CAMERAS)
@pytest.mark.parametrize('robust', ['huber', 'cauchy', None])
def test_noise_free_root_error_below_0_1_mm(model, binned, robust):
    camera = _camera(model, binned)
    joints = _hand()
    keypoints = camera.project(ROOT_M + joints)
    result = recover_root(keypoints, joints, camera, robust=robust)
    assert np.linalg.norm(result.translation_m - ROOT_M) < 1e-4
    assert result.mode is CameraMode.FULL_INTRINSICS
    assert result.mean_reprojection_error_px < 1e-6
    assert result.inlier_mask.all() and result.valid_mask.all()
    assert result.scale_px_per_m is None


def test_noise_free_rectified_and_assumed_fov():
    joints = _hand(30)
    for camera in (_rectified_camera(), CameraModel.assumed_fov(640, 480)):
        keypoints = camera.project(ROOT_M + joints)
        result = recover_root(keypoints, joints, camera)
        assert np.linalg.norm(result.translation_m - ROOT_M) < 1e-4
        assert result.mode is camera.mode
    assert result.mode is CameraMode.ASSUMED_FOV


def test_centred_principal_point_approximation_is_biased():
    """The reason for full intrinsics: assuming cx, cy at the centre moves the root."""
    camera = _camera('plumb_bob')
    joints = _hand()
    keypoints = camera.project(ROOT_M + joints)
    centred = CameraModel.from_camera_info_fields(
        1280, 960, 'plumb_bob', D['plumb_bob'],
        (1210.0, 0.0, 640.0, 0.0, 1195.0, 480.0, 0.0, 0.0, 1.0), EYE, NO_P)
    wrong = recover_root(keypoints, joints, centred)
    assert np.linalg.norm(wrong.translation_m - ROOT_M) > 0.01


@pytest.mark.parametrize('robust', ['huber', 'cauchy'])
def test_outliers_are_rejected(robust):
    camera = _camera('plumb_bob', binned=True)
    joints = _hand()
    rng = np.random.default_rng(3)
    keypoints = camera.project(ROOT_M + joints) + rng.normal(scale=0.5, size=(21, 2))
    moved = [4, 12, 17]
    keypoints[moved] += np.array([[40.0, 0.0], [0.0, -40.0], [28.3, 28.3]])
    plain = recover_root(keypoints, joints, camera, robust=None)
    robust_result = recover_root(keypoints, joints, camera, robust=robust)
    plain_err = np.linalg.norm(plain.translation_m - ROOT_M)
    robust_err = np.linalg.norm(robust_result.translation_m - ROOT_M)
    assert plain_err > 0.02
    assert robust_err < 0.003
    assert robust_err < 0.1 * plain_err
    assert not robust_result.inlier_mask[moved].any()
    assert robust_result.inlier_mask.sum() == 18
    assert plain.inlier_mask.all()
    assert np.all(robust_result.residuals_px[moved] > 30.0)


def test_many_gross_outliers_do_not_break_the_start():
    """8 of 21 keypoints thrown 150-400 px away: plain LS fails, LMedS + robust LM is exact."""
    camera = _camera('equidistant')
    joints = _hand(200)
    rng = np.random.default_rng(8)
    keypoints = camera.project(ROOT_M + joints)
    moved = rng.choice(21, 8, replace=False)
    angle = rng.uniform(0.0, 2.0 * np.pi, 8)
    keypoints[moved] += rng.uniform(150.0, 400.0, (8, 1)) * np.column_stack(
        [np.cos(angle), np.sin(angle)])
    for robust in ('huber', 'cauchy'):
        result = recover_root(keypoints, joints, camera, robust=robust)
        assert np.linalg.norm(result.translation_m - ROOT_M) < 1e-4
        np.testing.assert_array_equal(np.flatnonzero(~result.inlier_mask), np.sort(moved))
    try:
        plain = recover_root(keypoints, joints, camera, robust=None)
    except RootRecoveryError:
        return  # plain least squares may not even find a solution in front of the camera
    assert np.linalg.norm(plain.translation_m - ROOT_M) > 0.05


def test_depth_range_is_enforced():
    camera = _camera('plumb_bob')
    joints = _hand()
    far = np.array([0.1, 0.0, 12.0])
    keypoints = camera.project(far + joints)
    with pytest.raises(RootRecoveryError) as info:
        recover_root(keypoints, joints, camera)
    assert info.value.reason == 'too_far'
    result = recover_root(keypoints, joints, camera, max_depth_m=20.0)
    assert np.linalg.norm(result.translation_m - far) < 1e-3


def test_weights_and_nan_keypoints():
    camera = _camera('rational_polynomial')
    joints = _hand()
    keypoints = camera.project(ROOT_M + joints)
    keypoints[5] += 100.0
    weights = np.ones(21)
    weights[5] = 0.0
    result = recover_root(keypoints, joints, camera, weights=weights, robust=None)
    assert np.linalg.norm(result.translation_m - ROOT_M) < 1e-4
    assert not result.valid_mask[5] and not result.inlier_mask[5]
    keypoints[[2, 9]] = np.nan
    original = keypoints.copy()
    result = recover_root(keypoints, joints, camera, weights=weights)
    assert np.linalg.norm(result.translation_m - ROOT_M) < 1e-4
    assert result.valid_mask.sum() == 18
    assert np.all(np.isfinite(result.residuals_px))
    np.testing.assert_array_equal(keypoints, original)  # inputs are not mutated


def test_degenerate_inputs_raise_instead_of_nan():
    camera = _camera('plumb_bob')
    joints = _hand()
    keypoints = camera.project(ROOT_M + joints)
    cases = [
        (np.tile(keypoints[:1], (21, 1)), joints, 'degenerate'),
        (keypoints, np.zeros((21, 3)), 'degenerate'),
        (np.full((21, 2), np.nan), joints, 'too_few_keypoints'),
        (np.where(np.arange(21)[:, None] < 18, np.nan, keypoints), joints,
         'too_few_keypoints'),
    ]
    # A hand behind the camera: the pinhole image of points with negative depth.
    behind = ROOT_M * [1.0, 1.0, -1.0] + joints
    behind_px = behind[:, :2] / behind[:, 2:3] * [1210.0, 1195.0] + [700.0, 430.0]
    no_dist = CameraModel.from_camera_info_fields(1280, 960, '', [], K_FULL, EYE, NO_P)
    for kp, jts, reason in cases:
        with pytest.raises(RootRecoveryError) as info:
            recover_root(kp, jts, camera)
        assert info.value.reason == reason
        assert isinstance(info.value, HandMeshError)
    with pytest.raises(RootRecoveryError) as info:
        recover_root(behind_px, joints, no_dist)
    assert info.value.reason == 'behind_camera'


def test_argument_errors():
    joints = _hand()
    with pytest.raises(ValueError):
        recover_root(np.zeros((20, 2)), joints, None, image_size=(640, 480))
    with pytest.raises(CameraModelError, match='image_size'):
        recover_root(np.random.default_rng(0).normal(size=(21, 2)), joints, None)
    with pytest.raises(ValueError, match='robust'):
        recover_root(np.zeros((21, 2)), joints, CameraModel.assumed_fov(640, 480), robust='l1')


def test_weak_perspective_recovers_scale_and_offset():
    joints = _hand()
    scale, offset = 850.0, np.array([301.0, 222.0])
    keypoints = scale * joints[:, :2] + offset
    result = recover_root(keypoints, joints, None, image_size=(640, 480), hfov_deg=60.0)
    assert result.mode is CameraMode.WEAK_PERSPECTIVE
    assert abs(result.scale_px_per_m - scale) < 1e-6
    np.testing.assert_allclose(result.offset_px, offset, atol=1e-6)
    focal_px = 320.0 / np.tan(np.radians(30.0))
    np.testing.assert_allclose(result.translation_m,
                               [(301.0 - 320.0) / scale, (222.0 - 240.0) / scale,
                                focal_px / scale], atol=1e-9)


def test_weak_perspective_matches_a_far_perspective_camera():
    joints = _hand()
    camera = CameraModel.from_camera_info_fields(
        640, 480, '', [], (615.0, 0.0, 320.0, 0.0, 615.0, 240.0, 0.0, 0.0, 1.0), EYE, NO_P)
    root = np.array([0.1, 0.05, 1.2])
    keypoints = camera.project(root + joints)
    keypoints[7] += [0.0, 60.0]  # one outlier the robust fit must drop
    result = recover_root(keypoints, joints, None, image_size=(640, 480))
    assert abs(result.scale_px_per_m / (615.0 / 1.2) - 1.0) < 0.03
    assert not result.inlier_mask[7]
    np.testing.assert_allclose(result.offset_px, camera.project(root[None])[0], atol=2.0)


def test_eval_table_full_intrinsics_beats_fixed_focal():
    table = eval_root.root_error_table(seed=1, n_trials=6)
    assert len(table['cells']) == len(table['noise_px']) * len(table['distance_m']) == 16
    for cell in table['cells']:
        ours = cell['full_intrinsics']
        assert ours['failures'] == 0
        assert ours['median_mm'] <= ours['p90_mm']
        assert ours['median_mm'] < cell['fixed_focal']['median_mm'] / 10.0
        assert ours['median_mm'] < cell['assumed_fov']['median_mm']
    first = table['cells'][0]  # 0.5 px noise, 0.3 m
    assert first['full_intrinsics']['median_mm'] < 2.0


def test_the_damped_step_solves_marquardts_system_and_refuses_an_indefinite_one():
    rng = np.random.default_rng(3)
    jac, resid = rng.normal(size=(10, 4)), rng.normal(size=10)
    hess, half_gradient = jac.T @ jac, jac.T @ resid
    kept = hess.copy()
    step = damped_step(hess, half_gradient, 0.1, 1e-9, ridge=1e-6)
    damped = hess + np.diag(0.1 * np.maximum(hess.diagonal(), 1e-9) + 1e-6)
    np.testing.assert_allclose(step, -np.linalg.solve(damped, half_gradient), rtol=1e-10)
    np.testing.assert_array_equal(hess, kept)
    assert damped_step(-np.eye(3), np.ones(3), 0.0, 0.0) is None


def test_mean_reprojection_error_counts_the_used_keypoints_only():
    observed = np.zeros((4, 2))
    keypoints = np.array([[3.0, 4.0], [0.0, 1.0], [100.0, 0.0], [0.0, 0.0]])
    assert mean_reprojection_error_px(keypoints, observed) == pytest.approx(26.5)
    used = np.array([True, True, False, True])
    assert mean_reprojection_error_px(keypoints, observed, used) == pytest.approx(2.0)
    assert np.isnan(mean_reprojection_error_px(keypoints, observed, np.zeros(4, bool)))


def test_eval_root_prints_its_table_then_one_json_object(capsys):
    assert eval_root.main(['--trials', '2', '--json']) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith('root error (mm), 2 trials per cell')
    table = json.loads(json.dumps(eval_root.root_error_table(seed=0, n_trials=2)))
    assert json.loads(lines[-1]) == table
    assert eval_root.main(['--trials', '2']) == 0
    assert not capsys.readouterr().out.strip().splitlines()[-1].startswith('{')
