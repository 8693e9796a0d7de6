"""Articulated depth fit: pose, size and position of the hand fitted to its depth surface."""

import dataclasses
import math

import numpy as np
import pytest

from hand_mesh_ros.core.camera.camera import CameraModel
from hand_mesh_ros.core.config import DepthConfig
from hand_mesh_ros.core.depth.articulated_fit import fit_hand_to_depth
from hand_mesh_ros.core.depth.articulated_stage import ArticulatedDepthStage
from hand_mesh_ros.core.depth.depth_stage import HandDepthFusion
from hand_mesh_ros.core.depth.surface_correspondence import (segment_hand_points,
                                                             visible_points)
from hand_mesh_ros.core.depth.surface_model import HandSurface
from hand_mesh_ros.core.fitting.tailor import HandTailor
from hand_mesh_ros.core.fitting.tailor_terms import rotation_log
from hand_mesh_ros.core.fitting.uncertainty import camera_covariance_m2, hand_confidence
from hand_mesh_ros.core.hand.hand_model import load_hand_model
from hand_mesh_ros.core.hand.rotations import axis_angle_to_matrix
from hand_mesh_ros.core.track import MetricLength, Track
from hand_mesh_ros.tools.evaluation import depth_scenes, depth_synthesis

FOCAL = 600.0
NOISE = 0.005


@pytest.fixture(scope='module')
def parts():
    model = load_hand_model()
    tailor = HandTailor(model)
    return model, tailor, HandSurface(model, tailor.free_bones)


def _camera():
    k = [FOCAL, 0.0, 323.1, 0.0, FOCAL, 237.6, 0.0, 0.0, 1.0]
    return CameraModel.from_camera_info_fields(640, 480, 'plumb_bob',
                                               [0.05, -0.02, 0.0, 0.0, 0.0], k,
                                               np.eye(3).ravel(), np.zeros(12))


def _true_pose(model, rng, root):
    pose = rng.uniform(0.3 * model.joint_limits_min_rad, 0.3 * model.joint_limits_max_rad)
    pose[0] = root
    pose[1] = 0.0
    return pose


def _fit(parts, case, camera, points=None):
    model, tailor, surface = parts
    est = case.estimate
    translation = est.keypoints_m[0] - model.forward(est.pose_coefficients,
                                                     est.shape_coefficients).keypoints[0]
    if points is None:
        points = segment_hand_points(case.depth_m, camera, est.vertices_m, min_depth_m=0.1,
                                     max_depth_m=4.0, noise_coeff_per_m=NOISE)
    return fit_hand_to_depth(surface, est.side, est.pose_coefficients,
                             est.shape_coefficients, translation, points, camera,
                             case.observed_px, size=tailor.size, noise_coeff_per_m=NOISE)


def _errors_mm(joints_m, case):
    err = 1e3 * np.linalg.norm(joints_m - case.true_joints_m, axis=1)
    return err[0], err.mean()


def _case(parts, seed, distance=0.6, finger_deg=8.0, global_deg=10.0, length_factor=1.0,
          root=None, side='right'):
    model, tailor, _ = parts
    rng = np.random.default_rng(seed)
    root = (np.array([math.pi, 0.0, 0.0]) + rng.normal(scale=0.3, size=3)
            if root is None else root)
    pose = _true_pose(model, rng, root)
    return depth_scenes.perturbed_case(
        model, tailor.size, _camera(), rng, pose, model.zero_shape(),
        np.array([0.03, -0.02, distance]), finger_deg=finger_deg, global_deg=global_deg,
        length_factor=length_factor, side=side)


def test_surface_equals_the_skinned_model_on_both_sides(parts):
    model, _, surface = parts
    pose = _true_pose(model, np.random.default_rng(1), np.array([2.5, 0.3, 0.1]))
    shape = np.linspace(-0.5, 0.5, model.n_shapes)
    posed = surface.kinematics.pose(pose, shape)
    rel, normals = surface.surface(posed, shape, surface.rest_points(shape))
    for side, mirror in (('right', 1.0), ('left', -1.0)):
        out = model.forward(pose, shape, side=side)
        expected = out.vertices[surface.vertex_index]
        assert np.abs(rel * [mirror, 1.0, 1.0] - expected).max() < 1e-12
    assert np.allclose(np.linalg.norm(normals, axis=1), 1.0)
    assert 300 < len(surface.vertex_index) < model.n_vertices


def test_fit_recovers_perturbed_hands(parts):
    """8 deg fingers, 10 deg global rotation: joint errors fall from about 20 mm to 2-3."""
    camera = _camera()
    before, after = [], []
    for seed in range(6):
        case = _case(parts, seed)
        result = _fit(parts, case, camera)
        assert result.fitted, result.reason
        out = parts[0].forward(result.pose_aa, result.shape, side='right')
        before.append(_errors_mm(case.estimate.joints_m, case))
        after.append(_errors_mm(out.joint_centres + result.translation_m, case))
    before, after = np.median(before, axis=0), np.median(after, axis=0)
    assert before[1] > 12.0
    assert after[0] < 4.0 and after[1] < 4.0


def test_left_hands_are_fitted_mirrored(parts):
    camera = _camera()
    case = _case(parts, 2, side='left')
    result = _fit(parts, case, camera)
    assert result.fitted
    out = parts[0].forward(result.pose_aa, result.shape, side='left')
    wrist, mean = _errors_mm(out.joint_centres + result.translation_m, case)
    assert mean < 0.4 * _errors_mm(case.estimate.joints_m, case)[1] and wrist < 6.0


def test_stage_switch_changes_the_fused_hand(parts):
    """depth.articulated: the fused hand is refitted; off, only its distance and size move."""
    model, tailor, _ = parts
    camera = _camera()
    case = _case(parts, 4, length_factor=1.08)
    results = {}
    for articulated in (False, True):
        stage = HandDepthFusion(model)
        fused, fusion = stage.apply(case.estimate, case.depth_m, camera, camera,
                                    DepthConfig(articulated=articulated), MetricLength(),
                                    tailor.size, tailor.free_bones)
        assert fusion.fused and fused.position_mode == 'depth_fused'
        assert np.isfinite(fused.position_covariance_m2).all() and fused.is_finite()
        results[articulated] = _errors_mm(fused.joints_m, case)
    assert results[True][1] < 5.0 < results[False][1]
    assert results[True][0] < results[False][0]


def test_stage_covariance_is_the_depth_fits_own_plus_the_camera_terms(parts):
    """The fitted hand's wrist covariance is the depth fit's own plus the camera's terms.

    It holds the fit's 2D, depth and priors and is not combined with the colour fit's (the
    same 2D): the colour covariance does not change it. The camera mode's terms do: an
    assumed-FOV camera's uncertain principal point widens it across the ray.
    """
    model, tailor, _ = parts
    camera = _camera()
    case = _case(parts, 4)
    published = []
    for colour in (np.diag([1e-8, 2e-8, 1e-2]), np.eye(3) * 1e-4):
        estimate = dataclasses.replace(case.estimate, position_covariance_m2=colour)
        fitted, result = ArticulatedDepthStage(model).apply(
            estimate, case.depth_m, camera, camera, DepthConfig(), tailor.free_bones,
            tailor.size, 'full_intrinsics')
        assert result.fitted
        expected = result.covariance_m2 + camera_covariance_m2(result.translation_m,
                                                               'full_intrinsics')
        np.testing.assert_allclose(fitted.position_covariance_m2, expected)
        assert fitted.confidence == pytest.approx(hand_confidence(estimate.score, expected))
        published.append(fitted.position_covariance_m2)
    np.testing.assert_allclose(published[0], published[1])
    assumed, _ = ArticulatedDepthStage(model).apply(
        case.estimate, case.depth_m, camera, camera, DepthConfig(), tailor.free_bones,
        tailor.size, 'assumed_fov')
    widened = assumed.position_covariance_m2 - published[0]
    assert widened[0, 0] > 1e-4 and widened[1, 1] > 1e-4


@pytest.mark.parametrize('articulated', [False, True])
def test_depth_covariance_holds_most_wrists_of_perturbed_hands(parts, articulated):
    """Most true wrists lie in the 95 % ellipsoid of the published covariance.

    The true hands' fingers (8 deg) and tilt (10 deg) differ from the estimate; a covariance
    of the translation alone, blind to the tilt, held few of them.
    """
    model, tailor, _ = parts
    camera = _camera()
    inside = []
    for seed in range(16):
        case = _case(parts, 100 + seed, distance=0.5 + 0.05 * (seed % 6))
        fused, fusion = HandDepthFusion(model).apply(
            case.estimate, case.depth_m, camera, camera, DepthConfig(articulated=articulated),
            MetricLength(), tailor.size, tailor.free_bones)
        assert fusion.fused
        error = fused.joints_m[0] - case.true_joints_m[0]
        inside.append(error @ np.linalg.solve(fused.position_covariance_m2, error) <= 7.815)
    # Measured: 13 and 15 of 16; the translation-only covariance of the distance fusion
    # held 6 of 16.
    assert np.mean(inside) >= (0.8 if articulated else 0.6)


def _background_case(parts, hide_bone_prefix):
    """Return (case, camera): the estimate is the truth, one finger missing from the depth."""
    model, tailor, _ = parts
    camera = _camera()
    rng = np.random.default_rng(7)
    pose = _true_pose(model, rng, np.array([math.pi, 0.0, 0.0]))
    pose[[i for i, n in enumerate(model.bone_names) if n.startswith('index')]] = 0.0
    t = np.array([0.0, 0.0, 0.5])
    true = model.forward(pose, model.zero_shape())
    hidden = np.isin(np.argmax(model.skin_weights, axis=1),
                     [i for i, n in enumerate(model.bone_names)
                      if n.startswith(hide_bone_prefix)])
    faces = true.faces[~hidden[true.faces].any(axis=1)]
    rays = depth_synthesis.pixel_rays(camera)
    wall = depth_synthesis.plane_depth(rays, np.array([0.0, 0.0, 1.0]), 0.5 + 0.035)
    depth = depth_synthesis.render_mesh_depth(true.vertices + t, faces, camera, wall)
    observed = camera.project(true.keypoints + t)
    estimate = depth_scenes.hand_estimate(model, pose, model.zero_shape(), t, camera,
                                          observed)
    case = depth_scenes.PerturbedCase(true.joint_centres + t, depth.astype(np.float32),
                                      observed, estimate)
    return case, camera, hidden


def test_parts_without_depth_are_not_pulled_to_the_background(parts):
    """The index finger is missing from the depth (a wall 3.5 cm behind the hand shows)."""
    case, camera, hidden = _background_case(parts, 'index')
    result = _fit(parts, case, camera)
    assert result.fitted
    out = parts[0].forward(result.pose_aa, result.shape, side='right')
    moved_mm = 1e3 * np.linalg.norm(out.vertices + result.translation_m
                                    - case.estimate.vertices_m, axis=1)
    assert moved_mm[hidden].max() < 3.0
    assert _errors_mm(out.joint_centres + result.translation_m, case)[1] < 1.5


def test_hidden_surface_is_not_visible(parts):
    """Back-facing points and points behind a nearer surface are not visible."""
    model, _, surface = parts
    shape = model.zero_shape()
    palm_side = surface.rest_normals[:, 2] > 0.5  # +z of the hand frame: out of the palm
    for root in (np.zeros(3), np.array([0.0, math.pi, 0.0])):
        pose = model.zero_pose()
        pose[0] = root
        rel, normals = surface.surface(surface.kinematics.pose(pose, shape), shape,
                                       surface.rest_points(shape))
        points = rel + [0.0, 0.0, 0.5]
        visible = visible_points(points, normals)
        palm_faces_camera = normals[palm_side, 2].mean() < 0.0
        seen = np.mean(visible[palm_side])
        assert seen > 0.6 if palm_faces_camera else seen < 0.05
        # The same hand 3 cm behind itself is hidden entirely.
        both = visible_points(np.vstack([points, points + [0.0, 0.0, 0.03]]),
                              np.vstack([normals, normals]))
        assert np.mean(both[:len(points)] == visible) > 0.95
        assert np.mean(both[len(points):]) < 0.05


def test_covariance_is_wider_edge_on_than_face_on(parts):
    """Seen edge-on, fewer depth points and a narrow strip of surface pin the wrist less."""
    camera = _camera()
    variance = {}
    for name, turn_deg in (('face_on', 0.0), ('edge_on', 90.0)):
        turn = axis_angle_to_matrix(np.array([[0.0, math.radians(turn_deg), 0.0]]))[0]
        root = rotation_log(turn @ axis_angle_to_matrix(np.array([[math.pi, 0.0, 0.0]]))[0])
        traces = []
        for seed in (3, 4, 5):
            case = _case(parts, seed, root=root, finger_deg=0.0, global_deg=0.0)
            result = _fit(parts, case, camera)
            assert result.fitted, result.reason
            assert np.all(np.linalg.eigvalsh(result.covariance_m2) > 0.0)
            traces.append(np.trace(result.covariance_m2))
        variance[name] = np.mean(traces)
    assert variance['edge_on'] > 1.15 * variance['face_on']
    assert math.sqrt(variance['face_on']) < 0.006


def test_unusable_input_leaves_the_hand_unfitted(parts):
    camera = _camera()
    case = _case(parts, 5)
    est = case.estimate
    for points in (np.zeros((0, 3)), np.full((200, 3), np.nan)):
        result = _fit(parts, case, camera, points)
        assert not result.fitted and result.reason == 'too_few_depth_points'
        assert np.array_equal(result.pose_aa, est.pose_coefficients)
    empty = segment_hand_points(np.zeros((480, 640), np.float32), camera, est.vertices_m,
                                min_depth_m=0.1, max_depth_m=4.0, noise_coeff_per_m=NOISE)
    assert empty.shape == (0, 3)
    nan_depth = segment_hand_points(np.full((480, 640), np.nan, np.float32), camera,
                                    est.vertices_m, min_depth_m=0.1, max_depth_m=4.0,
                                    noise_coeff_per_m=NOISE)
    assert nan_depth.shape == (0, 3)
    bad = est.pose_coefficients.copy()
    bad[3, 0] = np.nan
    result = fit_hand_to_depth(parts[2], 'right', bad, est.shape_coefficients,
                               est.keypoints_m[0], np.ones((50, 3)), camera, case.observed_px,
                               size=parts[1].size, noise_coeff_per_m=NOISE)
    assert not result.fitted and result.reason == 'bad_hand'
    # Keypoints missing (NaN rows) are ignored; the fit still runs on the depth.
    observed = case.observed_px.copy()
    observed[5:12] = np.nan
    partial = depth_scenes.PerturbedCase(case.true_joints_m, case.depth_m, observed, est)
    result = _fit(parts, partial, camera)
    assert result.fitted and np.isfinite(result.covariance_m2).all()


def _tailor_frame(parts, track, case, camera, timestamp_s):
    """Return the tailor's colour-only estimate of ``case``'s network hand on ``track``."""
    model, tailor, _ = parts
    est = case.estimate
    start = est.keypoints_m[0] - model.forward(est.pose_coefficients, est.shape_coefficients,
                                               side=est.side).keypoints[0]
    refined = tailor.refine(track, case.observed_px, est.keypoints_m - est.keypoints_m[0],
                            est.pose_coefficients, est.shape_coefficients, start, camera,
                            timestamp_s, est.side, temporal=True)
    return depth_scenes.hand_estimate(model, refined.pose_aa, refined.shape,
                                      refined.translation_m, camera, case.observed_px,
                                      est.side, track.track_id, refined.hand_length_m)


def test_the_fitted_pose_seeds_the_next_colour_frame(parts):
    """A depth frame's fitted pose, kept in the track, improves the next colour-only frame.

    Root-relative joint error of the second (colour-only) frame, with and without the
    depth-fitted pose as the track's last pose (12 deg finger perturbations).
    """
    model, tailor, _ = parts
    camera = _camera()
    errors = {False: [], True: []}
    for seed in (0, 1, 3):
        case = _case(parts, seed, finger_deg=12.0)
        true_rel = case.true_joints_m - case.true_joints_m[0]
        for seeded in (False, True):
            track = Track(5)
            first = _tailor_frame(parts, track, case, camera, 0.0)
            fused, fusion = HandDepthFusion(model).apply(
                first, case.depth_m, camera, camera, DepthConfig(), track.metric_length,
                tailor.size, tailor.free_bones)
            assert fusion.fused
            if seeded:
                track.seed_pose(fused.pose_coefficients)
                assert np.array_equal(track.fit.pose, fused.pose_coefficients)
            second = _tailor_frame(parts, track, case, camera, 1.0 / 30.0)
            rel = second.joints_m - second.joints_m[0]
            errors[seeded].append(1e3 * np.linalg.norm(rel - true_rel, axis=1).mean())
    assert all(a < b for a, b in zip(errors[True], errors[False]))
    assert np.mean(errors[True]) < 0.85 * np.mean(errors[False])
    unfitted = Track(6)
    unfitted.seed_pose(model.zero_pose())       # no fit state yet: nothing to seed
    assert unfitted.fit is None
