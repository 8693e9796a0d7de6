"""RGB-D fusion in the core: sampling, robust solve, refusals, the tailor's metric size."""

import dataclasses

import numpy as np
import pytest

from hand_mesh_ros.core.camera.camera import CameraModel
from hand_mesh_ros.core.config import DepthConfig, TailorConfig
from hand_mesh_ros.core.depth import depth_fusion
from hand_mesh_ros.core.depth.depth_stage import (check_depth_image, HandDepthFusion,
                                                  rest_hand_length_m)
from hand_mesh_ros.core.errors import InputError
from hand_mesh_ros.core.fitting import uncertainty
from hand_mesh_ros.core.fitting.tailor import HandTailor
from hand_mesh_ros.core.hand.hand_model import load_hand_model
from hand_mesh_ros.core.track import MetricLength, Track
from hand_mesh_ros.core.types import HandEstimate, POSITION_MODES
from hand_mesh_ros.tools.evaluation import depth_synthesis

FOCAL = 600.0


@pytest.fixture(scope='module')
def model():
    return load_hand_model()


def _camera(width=640, height=480, focal=FOCAL):
    k = [focal, 0.0, width / 2 + 3.1, 0.0, focal, height / 2 - 2.4, 0.0, 0.0, 1.0]
    return CameraModel.from_camera_info_fields(width, height, 'plumb_bob',
                                               [0.05, -0.02, 0.0, 0.0, 0.0], k,
                                               np.eye(3).ravel(), np.zeros(12))


def _hand(model, seed=0, distance=0.6):
    rng = np.random.default_rng(seed)
    pose = rng.uniform(0.3 * model.joint_limits_min_rad, 0.3 * model.joint_limits_max_rad)
    pose[0] = np.array([np.pi, 0.0, 0.0]) + rng.normal(scale=0.3, size=3)
    out = model.forward(pose, model.zero_shape(), side='right')
    t = np.array([0.03, -0.02, distance])
    return out.keypoints + t, out.vertices + t, out.faces, t, pose


def _scene(model, true_scale, seed=0, distance=0.6, camera=None, degrade=True, **kwargs):
    """Return (fitted joints, vertices, t, depth image, camera): truth = fit scaled."""
    camera = camera or _camera()
    joints, verts, faces, t, _ = _hand(model, seed, distance)
    rng = np.random.default_rng(seed + 100)
    clean = depth_synthesis.scene_depth([true_scale * verts], [faces], camera,
                                        depth_synthesis.pixel_rays(camera), rng,
                                        true_scale * t[2])
    depth = depth_synthesis.degrade(clean, rng, **kwargs)[0] if degrade else clean
    return joints, verts, t, depth.astype(np.float32), camera


def _fuse(joints, verts, t, depth, camera, **kwargs):
    args = {'focal_px': FOCAL, 'noise_coeff_per_m': 0.005, 'min_depth_m': 0.1,
            'max_depth_m': 4.0}
    args.update(kwargs)
    return depth_fusion.fuse_depth(joints, verts, t, depth, camera, **args)


@pytest.mark.parametrize('true_scale,distance', [(1.12, 0.5), (0.88, 0.9), (1.05, 1.4)])
def test_recovers_the_true_hand_from_degraded_depth(model, true_scale, distance):
    """Truth: the fitted hand scaled about the camera centre (same projection)."""
    joints, verts, t, depth, camera = _scene(model, true_scale, distance=distance)
    result = _fuse(joints, verts, t, depth, camera)
    assert result.fused, result.reason
    error_mm = 1e3 * np.linalg.norm(result.translation_m - true_scale * t)
    rgb_error_mm = 1e3 * np.linalg.norm(t - true_scale * t)
    assert error_mm < 6.0 and rgb_error_mm > 25.0
    assert abs(result.scale / true_scale - 1.0) < 0.02
    assert np.all(np.linalg.eigvalsh(result.covariance_m2) > 0.0)
    assert np.sqrt(result.covariance_m2[2, 2]) < 0.02


def test_background_flying_pixels_and_misregistration_do_not_bias(model):
    """Heavy degradation (20 % holes, 2 px shift, flying pixels): still millimetres."""
    joints, verts, t, depth, camera = _scene(model, 1.1, seed=3, hole_fraction=(0.2, 0.2),
                                             shift_px=(2.0, 2.0))
    result = _fuse(joints, verts, t, depth, camera)
    assert result.fused
    assert 1e3 * np.linalg.norm(result.translation_m - 1.1 * t) < 8.0
    # The naive answer, the median depth under the keypoints, is pulled by the background.
    px = np.rint(camera.project(1.1 * joints)).astype(int)
    naive = np.median(depth[px[:, 1], px[:, 0]][depth[px[:, 1], px[:, 0]] > 0])
    assert abs(naive - 1.1 * joints[:, 2].mean()) > abs(result.translation_m[2] - 1.1 * t[2])


def test_no_depth_leaves_the_hand_unfused(model):
    joints, verts, t, depth, camera = _scene(model, 1.1)
    result = _fuse(joints, verts, t, np.zeros_like(depth), camera)
    assert not result.fused and result.reason == 'too_few_depth_samples'
    np.testing.assert_array_equal(result.translation_m, t)
    nan = np.full_like(depth, np.nan)
    assert not _fuse(joints, verts, t, nan, camera).fused


def test_valid_range_and_noise_coefficient_change_the_result(model):
    joints, verts, t, depth, camera = _scene(model, 1.1, distance=0.8)
    assert not _fuse(joints, verts, t, depth, camera, max_depth_m=0.7).fused
    assert not _fuse(joints, verts, t, depth, camera, min_depth_m=1.2).fused
    quiet = _fuse(joints, verts, t, depth, camera, noise_coeff_per_m=0.001)
    noisy = _fuse(joints, verts, t, depth, camera, noise_coeff_per_m=0.05)
    assert noisy.covariance_m2[2, 2] > 4.0 * quiet.covariance_m2[2, 2]


def test_self_occluded_vertices_are_not_sampled(model):
    """Two parallel squares of points: the rear one is hidden, the front one's rim too."""
    grid = np.stack(np.meshgrid(np.linspace(-0.05, 0.05, 30), np.linspace(-0.05, 0.05, 30)),
                    -1).reshape(-1, 2)
    front = np.column_stack([grid, np.full(len(grid), 0.5)])
    back = np.column_stack([grid, np.full(len(grid), 0.55)])
    points = np.vstack([front, back])
    camera = _camera()
    mask = depth_fusion.visible_surface(camera.project(points), points[:, 2], 120.0, 0.18)
    assert not mask[len(grid):].any()
    assert 0.5 < mask[:len(grid)].mean() < 1.0   # the rim (silhouette) is dropped


def test_sample_depth_rejects_edges_holes_and_range():
    depth = np.full((20, 20), 0.6, np.float32)
    depth[:, 10:] = 1.2
    depth[5, 3] = 0.0
    px = np.array([[3.0, 10.0], [9.0, 10.0], [15.0, 10.0], [3.0, 4.0], [0.0, 0.0]])
    out = depth_fusion.sample_depth(depth, px, 0.1, 1.0, np.full(5, 0.05))
    assert out[0] == pytest.approx(0.6)
    assert np.isnan(out[1])       # next to the step
    assert np.isnan(out[2])       # beyond max_depth_m
    assert np.isnan(out[3])       # a hole in the neighbourhood
    assert np.isnan(out[4])       # on the border


def test_size_direction_is_a_uniform_scale(model):
    """scaled_estimate relies on it: the rescaled shape poses to the scaled hand (< 1 mm)."""
    tailor = HandTailor(model)
    rng = np.random.default_rng(1)
    pose = rng.normal(0.0, 0.2, (model.n_bones, 3))
    shape = rng.normal(0.0, 0.5, model.n_shapes)
    out = model.forward(pose, shape, side='left')
    scaled = tailor.size.with_length(shape, 1.1 * tailor.size.length_m(shape))
    out2 = model.forward(pose, scaled, side='left')
    assert np.abs(out2.vertices - 1.1 * out.vertices).max() < 1e-3
    assert rest_hand_length_m(model, scaled) == pytest.approx(
        1.1 * rest_hand_length_m(model, shape), rel=5e-3)


def test_check_depth_refuses_what_it_cannot_use():
    camera = _camera()
    rgb_shape = (480, 640, 3)
    depth = np.ones((480, 640), np.float32)
    assert check_depth_image(depth, None, rgb_shape, camera, 'full_intrinsics') is camera
    with pytest.raises(InputError) as err:
        check_depth_image(np.ones((240, 320), np.float32), None, rgb_shape, camera,
                          'full_intrinsics')
    assert err.value.reason == 'depth_size_mismatch'
    small = _camera(320, 240, FOCAL / 2)
    assert check_depth_image(np.ones((240, 320), np.float32), small, rgb_shape, camera,
                             'full_intrinsics') is small
    with pytest.raises(InputError) as err:
        check_depth_image(depth, None, rgb_shape, camera, 'assumed_fov')
    assert err.value.reason == 'depth_needs_camera_info'
    with pytest.raises(InputError) as err:
        check_depth_image(depth.astype(np.uint16), None, rgb_shape, camera, 'full_intrinsics')
    assert err.value.reason == 'depth_bad_array'
    assert 'depth_fused' in POSITION_MODES


def test_depth_of_another_size_through_its_own_camera(model):
    """A half-resolution depth image with its own K gives the same answer."""
    joints, verts, t, _, _ = _scene(model, 1.1, degrade=False)
    small = _camera(320, 240, FOCAL / 2)
    _, _, _, depth_small, _ = _scene(model, 1.1, camera=small, degrade=False)
    result = _fuse(joints, verts, t, depth_small, small)
    assert result.fused
    assert 1e3 * np.linalg.norm(result.translation_m - 1.1 * t) < 5.0


def test_tailor_keeps_the_observed_metric_length(model):
    tailor = HandTailor(model, TailorConfig(temporal=True))
    camera = _camera()
    joints, _, _, t, pose = _hand(model, 2)
    shape = model.zero_shape()
    rel = joints - joints[0]
    px = camera.project(joints)
    track = Track(7)
    first = tailor.refine(track, px, rel, pose, shape, t, camera, 0.0, 'right')
    length = tailor.size.length_m(first.shape)
    track.metric_length.observe(1.1 * length, 0.001)
    second = tailor.refine(track, px, rel, first.pose_aa, first.shape, t, camera, 0.04,
                           'right')
    assert second.hand_length_m == pytest.approx(1.1 * length, rel=0.01)
    # Depth follows the larger size (the temporal prior slows the move over a frame).
    assert second.translation_m[2] > first.translation_m[2] + 0.015
    track.reset()
    third = tailor.refine(track, px, rel, pose, shape, t, camera, 0.08, 'right')
    assert third.hand_length_m == pytest.approx(length, rel=0.01)


def test_track_size_converges_and_is_forgotten(model):
    track = Track(1)
    rng = np.random.default_rng(0)
    for _ in range(30):
        track.metric_length.observe(0.19 + rng.normal(0.0, 0.006), 0.006)
    length, sigma = track.metric_length.belief()
    assert abs(length - 0.19) < 0.004 and sigma < 0.002
    track.reset()
    assert track.metric_length.belief() is None
    assert Track(2).metric_length.belief() is None
    assert DepthConfig().enabled


def test_densest_ratio_ignores_a_majority_of_background():
    rng = np.random.default_rng(0)
    hand = 1.1 + rng.normal(0.0, 0.005, 40)
    background = rng.uniform(1.4, 2.2, 60)         # 60 % of the samples behind the hand
    ratios = np.concatenate([hand, background])
    assert abs(depth_fusion.densest_ratio(ratios) - 1.1) < 0.01
    assert abs(np.median(ratios) - 1.1) > 0.2       # what a median would have given
    # A flat background can be tighter than the hand (pose mismatch spreads the hand's
    # ratios): the nearest cluster is the hand.
    spread_hand = 1.1 + rng.normal(0.0, 0.01, 30)
    wall = 1.6 + rng.normal(0.0, 0.001, 70)
    both = np.concatenate([spread_hand, wall])
    assert abs(depth_fusion.front_cluster_ratio(both, 0.03) - 1.1) < 0.01
    assert abs(depth_fusion.densest_ratio(both) - 1.6) < 0.01


def _fitted_estimate(model, joints, verts, t, camera, covariance_m2):
    """Return a HandEstimate of the fitted hand of ``_scene`` with ``covariance_m2``."""
    _, _, _, _, pose = _hand(model, 0)
    out = model.forward(pose, model.zero_shape(), side='right')
    bones = np.array(out.bone_frames)
    bones[:, :3, 3] += t
    values = {
        'track_id': 3, 'side': 'right', 'side_score': 1.0, 'score': 1.0,
        'keypoints_px': camera.project(joints), 'observed_keypoints_px': camera.project(joints),
        'joints_m': joints, 'vertices_m': verts, 'faces': out.faces, 'bone_transforms': bones,
        'bone_parents': model.parents, 'bone_names': model.bone_names,
        'pose_coefficients': pose, 'shape_coefficients': model.zero_shape(),
        'hand_model': 'anny', 'hand_scale_m': 0.1, 'hand_length_m': 0.1,
        'reprojection_error_px': 0.0, 'position_mode': 'full_intrinsics', 'confidence': 0.5,
        'position_covariance_m2': covariance_m2, 'keypoints_m': joints,
        'shape_source': 'network'}
    names = [f.name for f in dataclasses.fields(HandEstimate)]
    return HandEstimate(**{name: values[name] for name in names})


def test_an_outlying_length_is_not_fed_to_the_track(model):
    """After a track's length is known, one frame's wildly different depth fit is gated."""
    joints, verts, t, depth, camera = _scene(model, 1.1)
    stage = HandDepthFusion(model)
    tailor = HandTailor(model)
    est = _fitted_estimate(model, joints, verts, t, camera, np.eye(3))
    names = [f.name for f in dataclasses.fields(HandEstimate)]
    length = tailor.size.length_m(est.shape_coefficients)
    metric = MetricLength()
    metric.observe(0.8 * length, 0.002)
    fused, result = stage.apply(est, depth, camera, camera, DepthConfig(), metric, tailor.size,
                                tailor.free_bones)
    assert result.fused and fused.position_mode == 'depth_fused'
    assert metric.belief()[0] == pytest.approx(0.8 * length)
    assert metric.belief()[1] == pytest.approx(0.002)      # nothing fed to the track
    # Without that wrong history the same frame is fed (and the scale is the true one).
    fresh = MetricLength()
    fused, result = stage.apply(est, depth, camera, camera, DepthConfig(articulated=False),
                                fresh, tailor.size, tailor.free_bones)
    assert fresh.belief()[0] == pytest.approx(1.1 * length, rel=0.02)
    size_field = 'hand_length_m' if 'hand_length_m' in names else 'hand_scale_m'
    assert getattr(fused, size_field) == pytest.approx(0.1 * result.scale)
    assert 1e3 * np.linalg.norm(fused.joints_m[0] - 1.1 * t) < 6.0


def test_fused_covariance_is_the_fusions_own_plus_the_camera_terms(model):
    """The fused covariance is the fusion's own plus the camera model's terms.

    The fusion solves the 2D, the depth and the size prior together; the colour fit's
    covariance (the same 2D, the same prior) is not added to it again. The camera's terms
    are: an assumed-FOV camera's principal point widens the fused position across the ray.
    """
    joints, verts, t, depth, camera = _scene(model, 1.1)
    tailor = HandTailor(model)
    published = {}
    for mode, fit_cov in (('full_intrinsics', np.diag([1e-8, 2e-8, 1e-2])),
                          ('full_intrinsics', np.eye(3) * 1e-4), ('assumed_fov', None)):
        est = _fitted_estimate(model, joints, verts, t, camera,
                               np.eye(3) * 1e-4 if fit_cov is None else fit_cov)
        est = dataclasses.replace(est, position_mode=mode)
        fused, result = HandDepthFusion(model).apply(
            est, depth, camera, camera, DepthConfig(articulated=False), MetricLength(),
            tailor.size, tailor.free_bones)
        assert result.fused
        expected = result.covariance_m2 + uncertainty.camera_covariance_m2(
            result.translation_m, mode)
        np.testing.assert_allclose(fused.position_covariance_m2, expected)
        assert fused.confidence == pytest.approx(
            uncertainty.hand_confidence(est.score, expected))
        published.setdefault(mode, []).append(fused.position_covariance_m2)
    np.testing.assert_allclose(*published['full_intrinsics'])
    widened = published['assumed_fov'][0] - published['full_intrinsics'][0]
    assert widened[0, 0] > 1e-4 and widened[1, 1] > 1e-4


def test_camera_terms_scale_depth_or_lateral_offsets():
    p = np.array([0.2, -0.1, 1.0])
    colour = uncertainty.camera_covariance_m2(p, 'assumed_fov', depth_measured=False)
    depth = uncertainty.camera_covariance_m2(p, 'assumed_fov', depth_measured=True)
    focal, principal = uncertainty.CAMERA_SIGMAS['assumed_fov']
    assert colour[2, 2] == pytest.approx((focal * 1.0) ** 2)
    assert depth[2, 2] == 0.0
    assert depth[0, 0] == pytest.approx((focal * 0.2) ** 2 + principal ** 2)
    assert depth[0, 1] == pytest.approx(focal ** 2 * 0.2 * -0.1)


def test_wrist_lever_covariance_reads_a_tilt_off_the_residuals():
    """A tilt the residuals show becomes the wrist's covariance; noise alone gives about 0.

    A patch tilted by a about an axis across the rays leaves residuals a x: the wrist, L
    from the patch's centre, gets a^2 / 2 (|L|^2 I - L L^T).
    """
    grid = np.stack(np.meshgrid(np.linspace(-0.04, 0.04, 9), np.linspace(-0.04, 0.04, 9)),
                    axis=-1).reshape(-1, 2)
    rel = np.column_stack([grid, np.zeros(len(grid))]) + [0.0, -0.08, 0.0]
    tilt = np.radians(6.0)
    wrist_from_centre = np.array([0.0, 0.08, 0.0])
    expected = 0.5 * tilt ** 2 * (wrist_from_centre @ wrist_from_centre * np.eye(3)
                                  - np.outer(wrist_from_centre, wrist_from_centre))
    lever = depth_fusion.wrist_lever_covariance(rel, tilt * grid[:, 0] + 0.004)
    np.testing.assert_allclose(lever, expected, rtol=1e-9, atol=1e-15)
    noise = np.random.default_rng(0).normal(scale=0.002, size=len(rel))
    noisy = depth_fusion.wrist_lever_covariance(rel, tilt * grid[:, 0] + noise)
    np.testing.assert_allclose(noisy, expected, rtol=0.2, atol=1e-7)
    calm = depth_fusion.wrist_lever_covariance(rel, noise)
    assert np.sqrt(np.trace(calm)) < 0.1 * np.sqrt(np.trace(expected))
