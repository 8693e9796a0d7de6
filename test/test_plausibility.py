"""Plausibility gates: each lets a real hand pass and drops its implausible kind, by reason."""

import numpy as np
import pytest

from hand_mesh_ros.core.camera.camera import CameraModel
from hand_mesh_ros.core.config import GatesConfig, TailorConfig
from hand_mesh_ros.core.errors import TailorError
from hand_mesh_ros.core.fitting.plausibility import (bone_length_ratios, check_plausibility,
                                                     hand_size_px, mirrored_2d, REASONS)
from hand_mesh_ros.core.fitting.tailor import HandTailor
from hand_mesh_ros.core.hand.hand_model import load_hand_model
from hand_mesh_ros.core.track import Track, TrackBook

FOCAL_PX = 600.0


@pytest.fixture(scope='module')
def model():
    return load_hand_model()


def _camera():
    k = [FOCAL_PX, 0.0, 320.0, 0.0, FOCAL_PX, 240.0, 0.0, 0.0, 1.0]
    return CameraModel.from_camera_info_fields(640, 480, 'plumb_bob', [0.0] * 5, k,
                                               np.eye(3).ravel(), np.zeros(12))


def _hand(model, depth_m=0.5):
    """Return (joints (21, 3), their pixels, mean-hand reference joints) of a posed hand."""
    pose = model.zero_pose()
    pose[0] = [np.pi, 0.0, 0.0]
    rel = model.forward(pose, model.zero_shape()).keypoints
    joints = rel + np.array([0.02, -0.01, depth_m])
    return joints, _camera().project(joints), rel


def _check(model, joints=None, observed=None, network_rel=None, network_error_px=2.0,
           speed_mps=None, **limits):
    ref_joints, ref_px, rel = _hand(model)
    joints = ref_joints if joints is None else joints
    kwargs = {f: getattr(GatesConfig(), f) for f in (
        'min_depth_m', 'max_depth_m', 'min_bone_ratio', 'max_bone_ratio', 'max_network_error',
        'max_reprojection_error', 'max_speed_mps')}
    kwargs.update(limits)
    return check_plausibility(
        joints_m=joints, keypoints_px=_camera().project(joints),
        observed_px=ref_px if observed is None else observed,
        network_joints_rel_m=rel if network_rel is None else network_rel,
        network_error_px=network_error_px, reference_joints_m=rel, focal_px=FOCAL_PX,
        speed_mps=speed_mps, **kwargs)


def test_a_good_hand_passes_with_its_figures(model):
    reason, figures = _check(model, speed_mps=0.8)
    assert reason is None
    assert figures['depth_m'] == pytest.approx(0.5)
    joints, _, _ = _hand(model)
    expected_px = FOCAL_PX * np.linalg.norm(joints[9] - joints[0]) / joints[0, 2]
    assert figures['hand_size_px'] == pytest.approx(expected_px)
    assert figures['reprojection_error'] == pytest.approx(0.0, abs=1e-9)
    assert figures['bone_ratio_min'] == pytest.approx(1.0)


@pytest.mark.parametrize('depth_m', [0.05, 4.0, -0.3])
def test_outside_the_working_range_fails_on_depth(model, depth_m):
    joints, _, _ = _hand(model, depth_m=depth_m)
    assert _check(model, joints=joints)[0] == 'implausible_depth'
    assert _check(model, joints=joints, min_depth_m=-1.0, max_depth_m=5.0)[0] != (
        'implausible_depth')


def test_a_hand_three_times_too_large_fails_on_bones(model):
    _, _, rel = _hand(model)
    assert _check(model, network_rel=3.0 * rel)[0] == 'implausible_bones'
    assert _check(model, network_rel=3.0 * rel, max_bone_ratio=3.5)[0] is None
    assert _check(model, network_rel=0.3 * rel)[0] == 'implausible_bones'
    assert _check(model, network_rel=0.3 * rel, min_bone_ratio=0.2)[0] is None
    assert bone_length_ratios(2.0 * rel, rel) == pytest.approx(np.full(20, 2.0))


def test_bones_are_judged_on_the_published_hand_not_on_single_network_bones(model):
    joints, _, rel = _hand(model)
    finger = rel.copy()
    finger[8] = finger[7] + 3.0 * (finger[8] - finger[7])  # one fingertip bone 3x
    assert _check(model, network_rel=finger)[0] is None
    # Curled fingers collapsed in the network's 3D: two fingers at 0.3 of their length.
    collapsed = rel.copy()
    for chain in ((5, 6, 7, 8), (9, 10, 11, 12)):
        for k in chain:
            collapsed[k] = rel[0] + 0.3 * (rel[k] - rel[0])
    reason, figures = _check(model, network_rel=collapsed)
    assert reason is None and figures['network_scale'] == pytest.approx(1.0)
    long_finger = joints.copy()
    long_finger[8] = joints[7] + 3.0 * (joints[8] - joints[7])
    assert _check(model, joints=long_finger)[0] == 'implausible_bones'
    assert _check(model, joints=long_finger, max_bone_ratio=3.5)[0] != 'implausible_bones'


def test_a_refit_whose_2d_the_network_explains_mirrored_fails(model):
    joints, _, _ = _hand(model)
    size_px = hand_size_px(joints, FOCAL_PX)
    assert _check(model, network_error_px=None,
                  mirrored_network_error_px=0.5 * size_px)[0] is None
    reason, figures = _check(model, network_error_px=None,
                             mirrored_network_error_px=0.1 * size_px)
    assert reason == 'inconsistent_3d_2d' and figures['mirror_error'] == pytest.approx(0.1)
    assert mirrored_2d(np.array([[0.0, 1.0], [2.0, 3.0]])) == pytest.approx(
        np.array([[2.0, 1.0], [0.0, 3.0]]))


def test_network_3d_that_cannot_explain_its_2d_fails(model):
    joints, _, _ = _hand(model)
    size_px = hand_size_px(joints, FOCAL_PX)
    assert _check(model, network_error_px=0.2 * size_px)[0] is None
    assert _check(model, network_error_px=0.3 * size_px)[0] == 'inconsistent_3d_2d'
    assert _check(model, network_error_px=0.3 * size_px, max_network_error=0.4)[0] is None
    assert _check(model, network_error_px=None)[0] is None  # gate skipped


def test_published_hand_far_from_its_keypoints_fails(model):
    joints, px, _ = _hand(model)
    size_px = hand_size_px(joints, FOCAL_PX)
    shifted = px + np.array([0.3 * size_px, 0.0])
    assert _check(model, observed=shifted)[0] == 'implausible_reprojection'
    assert _check(model, observed=shifted, max_reprojection_error=0.35)[0] is None
    assert _check(model, observed=px + np.array([0.1 * size_px, 0.0]))[0] is None


def test_too_fast_fails_on_speed(model):
    assert _check(model, speed_mps=4.0)[0] is None
    assert _check(model, speed_mps=6.0)[0] == 'implausible_speed'
    assert _check(model, speed_mps=6.0, max_speed_mps=7.0)[0] is None


def test_the_first_failing_gate_names_the_reason(model):
    joints, _, rel = _hand(model, depth_m=5.0)
    reason, _ = _check(model, joints=joints, network_rel=3.0 * rel, speed_mps=50.0)
    assert reason == REASONS[0] == 'implausible_depth'


def test_track_continuity_speed_within_the_gap_only():
    book = TrackBook()
    assert book.get(1).speed_mps([0.0, 0.0, 0.5], 0.0, 0.5) is None
    book.get(1).publish([0.0, 0.0, 0.5], 0.0)
    assert book.get(1).speed_mps([0.0, 0.1, 0.5], 0.04, 0.5) == pytest.approx(2.5)
    assert book.get(1).speed_mps([0.0, 0.1, 0.5], 0.6, 0.5) is None  # too old
    assert book.get(1).speed_mps([0.0, 0.1, 0.5], 0.0, 0.5) is None  # same time
    assert book.get(2).speed_mps([0.0, 0.1, 0.5], 0.04, 0.5) is None
    book.keep_only({2})
    assert book.get(1).speed_mps([0.0, 0.1, 0.5], 0.04, 0.5) is None


def test_tailor_refuses_a_hand_beyond_its_depth_limit(model):
    joints, px, rel = _hand(model, depth_m=2.0)
    tailor = HandTailor(model, TailorConfig(temporal=False))
    pose = model.zero_pose()
    pose[0] = [np.pi, 0.0, 0.0]
    args = (Track(1), px, rel, pose, model.zero_shape(), joints[0], _camera(), 0.0, 'right')
    assert np.all(np.isfinite(tailor.refine(*args, max_depth_m=3.0).translation_m))
    with pytest.raises(TailorError) as info:
        tailor.refine(*args, max_depth_m=1.0)
    assert info.value.reason == 'too_far'


def test_gate_reasons_reach_diagnostics():
    pytest.importorskip('rclpy', reason='ROS 2 (rclpy) is not installed: run bootstrap.sh')
    from hand_mesh_ros.ros import diagnostics as dg
    from hand_mesh_ros.ros.messages import make_header
    stats = dg.NodeStats(clock_ns=lambda: 0)
    stats.count(stats.rejected_hands, 'implausible_speed', 2)
    msg = dg.diagnostic_array(stats.snapshot(), make_header(5, 'cam'), 'onnxruntime')
    values = {kv.key: kv.value for kv in msg.status[0].values}
    assert values['rejected_hands.implausible_speed'] == '2'
