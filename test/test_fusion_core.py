"""Fusion of several cameras' hands (core, no ROS): accuracy, association, time, ids."""

import numpy as np
import pytest

from hand_mesh_ros.core.fusion.association import gate_distance2, mahalanobis2
from hand_mesh_ros.core.fusion.fuse import fuse_positions
from hand_mesh_ros.core.fusion.motion import fit_velocity
from hand_mesh_ros.core.fusion.observation import observation_problem
from hand_mesh_ros.core.fusion.sync import choose_cameras, output_due
from hand_mesh_ros.core.fusion.tracker import HandFuser
from hand_mesh_ros.tools.bench.bench_fusion import line_truth, offset_error_m, wrist_errors
from hand_mesh_ros.tools.bench.fusion_scenes import (
    circle, hand_joints_m, observe, run_sequence, two_cameras, world_observations)


def test_fused_wrist_error_is_at_most_0_6_of_the_better_camera():
    errors, fused_hands = wrist_errors(trials=300)
    # Every trial: one fused hand from both cameras, the joints following the fused wrist.
    for hands in fused_hands:
        assert len(hands) == 1 and len(hands[0].cameras) == 2
        assert np.allclose(hands[0].joints_m - hands[0].wrist_m, hand_joints_m('right'),
                           atol=1e-9)
    median = {name: float(np.median(values)) for name, values in errors.items()}
    better = min(median['cam_a'], median['cam_b'])
    assert better > 0.015                     # the monocular error the scene is made for
    assert median['fused'] <= 0.6 * better, median


def test_fused_covariance_is_smaller_than_each_and_consistent():
    covariances = [np.diag([1e-5, 1e-5, 9e-4]), np.diag([9e-4, 1e-5, 1e-5])]
    positions = [np.zeros(3), np.array([0.01, 0.0, 0.03])]
    position, covariance = fuse_positions(positions, covariances)
    # Each camera fixes the axis the other is unsure of.
    assert position[0] == pytest.approx(0.0, abs=1e-3)
    assert position[2] == pytest.approx(0.03, abs=1e-3)
    for cov in covariances:
        assert np.all(np.linalg.eigvalsh(cov - covariance) >= -1e-12)


def test_two_hands_two_cameras_give_two_fused_hands_every_frame():
    rng = np.random.default_rng(2)
    cameras = two_cameras()

    def hands_at(t_s):
        return [('right', circle(t_s, [0.0, -0.1, 1.0]), np.eye(3)),
                ('left', circle(t_s, [0.0, 0.15, 1.0], phase=np.pi), np.eye(3))]
    outputs = run_sequence(HandFuser(), cameras, hands_at, 150, rng,
                           offsets_ns={'cam_b': 11_000_000})
    assert len(outputs) == 150
    counts = [len(hands) for _, hands in outputs]
    assert set(counts) == {2}, counts
    assert {tuple(h.fused_id for h in hands) for _, hands in outputs} == {(1, 2)}
    assert all(len(h.cameras) == 2 for _, hands in outputs for h in hands)


def test_two_right_hands_close_together_stay_two_hands():
    rng = np.random.default_rng(3)
    cameras = two_cameras()

    def hands_at(t_s):   # two right hands 12 cm apart, moving together
        centre = circle(t_s, [0.0, 0.0, 1.0], radius_m=0.05)
        return [('right', centre + [0.0, -0.06, 0.0], np.eye(3)),
                ('right', centre + [0.0, 0.06, 0.0], np.eye(3))]
    outputs = run_sequence(HandFuser(), cameras, hands_at, 90, rng)
    assert {len(hands) for _, hands in outputs} == {2}
    for stamp, hands in outputs[10:]:
        truth = [w for _, w, _ in hands_at(stamp * 1e-9)]
        for hand in hands:   # each fused hand is one physical hand, not a blend of two
            assert min(np.linalg.norm(hand.wrist_m - w) for w in truth) < 0.03


@pytest.mark.parametrize('window_s, limit_m', [(0.15, 0.002), (0.0, None)])
def test_a_20_ms_camera_offset_adds_at_most_2_mm_at_1_m_per_s(window_s, limit_m):
    added_m = offset_error_m(20_000_000, window_s) - offset_error_m(0, window_s)
    if limit_m is not None:
        assert added_m <= limit_m
    else:   # without motion compensation the offset costs several millimetres
        assert added_m > 0.004


def test_a_hand_reversing_at_1_m_per_s_stays_one_fused_hand():
    # The fused track's velocity lags a sudden turn; the cameras' track links hold it.
    outputs = run_sequence(HandFuser(), two_cameras(),
                           lambda t_s: [('right', line_truth(t_s), np.eye(3))], 240,
                           np.random.default_rng(9), offsets_ns={'cam_b': 20_000_000})
    assert [[h.fused_id for h in hands] for _, hands in outputs] == [[1]] * len(outputs)


def test_fused_ids_survive_a_camera_dropping_out_and_coming_back():
    rng = np.random.default_rng(5)
    cameras = two_cameras()

    def hands_at(t_s):
        return [('right', circle(t_s, [0.0, -0.1, 1.0]), np.eye(3)),
                ('left', circle(t_s, [0.0, 0.15, 1.0], phase=1.0), np.eye(3))]

    def present(camera, frame):   # cam_a stops at frame 40, comes back at frame 70
        return camera != 'cam_a' or not 40 <= frame < 70

    def track_ids(camera, frame):   # and comes back with new track ids
        return 100 if camera == 'cam_a' and frame >= 70 else 0
    fuser = HandFuser()
    outputs = run_sequence(fuser, cameras, hands_at, 120, rng, present=present,
                           track_ids=track_ids)
    ids = [tuple(h.fused_id for h in hands) for _, hands in outputs]
    assert set(ids) == {(1, 2)}, ids
    cameras_used = [len(hands[0].cameras) for _, hands in outputs]
    assert cameras_used[:40] == [2] * 40
    assert set(cameras_used[60:70]) == {1}   # only cam_b while cam_a is out
    assert set(cameras_used[75:]) == {2}


def test_a_track_not_fed_for_the_timeout_ends_and_a_new_id_follows():
    rng = np.random.default_rng(6)
    cameras = two_cameras()
    truth = np.array([0.0, 0.0, 1.0])
    fuser = HandFuser(track_timeout_s=0.2)
    first = fuser.fuse(world_observations(cameras, [('right', truth, np.eye(3))],
                                          dict.fromkeys(cameras, 0), rng), 0)
    assert [h.fused_id for h in first] == [1]
    assert fuser.fuse([], 150_000_000) == [] and fuser.track_ids == [1]
    later = fuser.fuse(world_observations(cameras, [('right', truth, np.eye(3))],
                                          dict.fromkeys(cameras, 300_000_000), rng),
                       300_000_000)
    assert [h.fused_id for h in later] == [2]


def test_gate_probability_decides_when_two_views_are_one_hand():
    rng = np.random.default_rng(7)
    cameras = two_cameras()
    truth = np.array([0.0, 0.0, 1.0])
    obs = world_observations(cameras, [('right', truth, np.eye(3))],
                             dict.fromkeys(cameras, 0), rng)
    # cam_b's hand 6 cm away from cam_a's, across both rays: a different hand for a tight
    # gate, the same hand for a loose one.
    far = [obs[0], obs[1].__class__(**dict(obs[1].__dict__,
                                           wrist_m=obs[1].wrist_m + [0.0, 0.0, 0.02]))]
    distance2 = mahalanobis2(far[0].wrist_m, far[0].covariance_m2, far[1].wrist_m,
                             far[1].covariance_m2)
    assert gate_distance2(0.99) < distance2 < gate_distance2(1.0 - 1e-12)
    assert len(HandFuser(gate_probability=0.99).fuse(far, 0)) == 2
    assert len(HandFuser(gate_probability=1.0 - 1e-12).fuse(far, 0)) == 1


def test_choose_cameras_leaves_out_stale_and_out_of_sync_cameras():
    stamps = {'a': 1_000_000_000, 'b': 950_000_000, 'c': 400_000_000}
    common, used, left_out = choose_cameras(stamps, 1_010_000_000, 0.5, 0.03)
    assert common == 1_000_000_000 and used == ['a']
    assert left_out == {'b': 'out_of_sync', 'c': 'stale'}
    common, used, left_out = choose_cameras(stamps, 1_010_000_000, 0.0, 0.1)
    assert used == ['a', 'b'] and left_out == {'c': 'out_of_sync'}


def test_an_output_waits_for_every_live_camera_up_to_max_wait():
    ms = 1_000_000
    both_new = {'a': 100 * ms, 'b': 110 * ms}
    one_new = {'a': 100 * ms, 'b': None}
    assert output_due(both_new, 111 * ms, 0.05)
    assert not output_due({'a': None, 'b': None}, 500 * ms, 0.05)
    assert not output_due(one_new, 140 * ms, 0.05)     # b is 40 ms late: wait for it
    assert output_due(one_new, 150 * ms, 0.05)         # waited 50 ms: go without b
    assert output_due(one_new, 100 * ms, 0.0)          # 0: never wait


def test_velocity_weights_each_position_by_its_information():
    """A one-camera output, off along that camera's ray, barely moves the slope there."""
    stamps = np.arange(5) * 33_333_333
    truth_v = np.array([0.2, -0.1, 0.0])
    positions = np.outer(stamps * 1e-9, truth_v)
    tight = np.eye(3) * 0.003 ** 2
    covariances = np.array([tight] * 5)
    positions[4, 0] += 0.07                               # 2 sigma of a 35 mm depth sigma
    covariances[4] = np.diag([0.035 ** 2, 0.003 ** 2, 0.003 ** 2])
    velocity, covariance = fit_velocity(stamps, positions, covariances, 0.2, stamps[-1])
    assert np.linalg.norm(velocity - truth_v) < 0.05
    # The slope's covariance is the fit's: equal covariances give C / sum((t - mean t)^2).
    _, equal = fit_velocity(stamps, positions, np.array([tight] * 5), 0.2, stamps[-1])
    t = stamps * 1e-9
    np.testing.assert_allclose(equal, tight / np.sum((t - t.mean()) ** 2), rtol=1e-9)


@pytest.mark.parametrize('change, reason', [
    ({'covariance_m2': np.full((3, 3), np.nan)}, 'non_finite_covariance'),
    ({'covariance_m2': np.diag([1e-4, -1e-4, 1e-4])}, 'covariance_not_positive'),
    ({'covariance_m2': np.array([[1e-4, 1e-5, 0], [0, 1e-4, 0], [0, 0, 1e-4]])},
     'covariance_not_symmetric'),
    ({'covariance_m2': np.eye(3) * 4.0}, 'covariance_too_large'),
    ({'wrist_m': np.array([np.inf, 0.0, 1.0])}, 'non_finite_wrist'),
    ({'joints_m': np.zeros((20, 3))}, 'joints_shape'),
    ({'rotation': np.eye(3) * 2.0}, 'rotation_not_orthonormal'),
    ({'side': 'middle'}, 'unknown_side'),
])
def test_observation_problem_refuses_what_fusion_cannot_use(change, reason):
    rng = np.random.default_rng(8)
    obs = observe('cam_a', two_cameras()['cam_a'], np.array([0.0, 0.0, 1.0]), np.eye(3), 0,
                  rng)
    assert observation_problem(obs) == ''
    assert observation_problem(obs.__class__(**dict(obs.__dict__, **change))) == reason
