"""Fusion of several cameras' hands (core, no ROS): accuracy, association, time, ids."""

from fusion_scenes import hand_joints_m, observe, two_cameras
import numpy as np
import pytest

from hand_mesh_ros.core.fusion.association import gate_distance2, mahalanobis2
from hand_mesh_ros.core.fusion.fuse import fuse_positions
from hand_mesh_ros.core.fusion.observation import in_frame, observation_problem
from hand_mesh_ros.core.fusion.sync import choose_cameras
from hand_mesh_ros.core.fusion.tracker import HandFuser

PERIOD_NS = 33_333_333


def world_observations(cameras, hands, stamps_ns, rng, track_ids=None, scales=None):
    """Return every camera's observation of every hand, in 'world'.

    ``hands``: [(side, wrist_world_m, rot_world_hand)]; ``stamps_ns``: {camera: stamp}.
    """
    out = []
    for camera, t_world_cam in cameras.items():
        for k, (side, wrist, rot) in enumerate(hands):
            track_id = (track_ids or {}).get(camera, 0) + k + 1
            obs = observe(camera, t_world_cam, wrist, rot, stamps_ns[camera], rng,
                          track_id=track_id, side=side,
                          covariance_scale=(scales or {}).get(camera, 1.0))
            out.append(in_frame(obs, t_world_cam, 'world'))
    return out


def test_fused_wrist_error_is_at_most_0_6_of_the_better_camera():
    rng = np.random.default_rng(1)
    cameras = two_cameras(angle_deg=90.0)
    errors = {'cam_a': [], 'cam_b': [], 'fused': []}
    for trial in range(300):
        truth = np.array([0.0, 0.0, 1.0]) + rng.uniform(-0.15, 0.15, 3)
        # Each camera misjudges its own uncertainty by up to +-30 %.
        scales = {name: rng.uniform(0.7, 1.3) for name in cameras}
        observations = world_observations(cameras, [('right', truth, np.eye(3))],
                                          dict.fromkeys(cameras, 0), rng, scales=scales)
        for obs in observations:
            errors[obs.camera].append(np.linalg.norm(obs.wrist_m - truth))
        hands = HandFuser().fuse(observations, 0)
        assert len(hands) == 1 and hands[0].cameras and len(hands[0].cameras) == 2
        errors['fused'].append(np.linalg.norm(hands[0].wrist_m - truth))
        # The joints follow the fused wrist with the hand's articulation.
        assert np.allclose(hands[0].joints_m - hands[0].wrist_m,
                           hand_joints_m('right'), atol=1e-9)
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


def circle(t_s, centre, radius_m=0.1, speed_rad_s=2.0, phase=0.0):
    angle = phase + speed_rad_s * t_s
    return np.asarray(centre) + radius_m * np.array([np.cos(angle), np.sin(angle), 0.0])


def run_sequence(fuser, cameras, hands_at, n_frames, rng, offsets_ns=None, present=None,
                 track_ids=None, sync_tolerance_s=0.1):
    """Feed ``n_frames`` camera periods through ``fuser`` like the node does; return outputs.

    ``hands_at(t_s)`` -> [(side, wrist, rot)]; ``present(camera, frame)`` -> bool;
    ``track_ids(camera, frame)`` -> the camera's first track id. Returns [(stamp, hands)].
    """
    offsets_ns = offsets_ns or {}
    latest = {}
    outputs = []
    for frame in range(n_frames):
        for camera in cameras:
            if present is not None and not present(camera, frame):
                continue
            stamp = frame * PERIOD_NS + offsets_ns.get(camera, 0)
            ids = {camera: track_ids(camera, frame)} if track_ids else None
            latest[camera] = world_observations(
                {camera: cameras[camera]}, hands_at(stamp * 1e-9), {camera: stamp}, rng,
                track_ids=ids)
        stamps = {camera: obs[0].stamp_ns for camera, obs in latest.items() if obs}
        now_ns = frame * PERIOD_NS + max(offsets_ns.values(), default=0)
        common, used, _ = choose_cameras(stamps, now_ns, 0.5, sync_tolerance_s)
        if common is None:
            continue
        observations = [obs for camera in used for obs in latest[camera]]
        outputs.append((common, fuser.fuse(observations, common)))
    return outputs


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


def mean_error(outputs, truth_at, skip=10):
    return float(np.mean([np.linalg.norm(h.wrist_m - truth_at(stamp * 1e-9))
                          for stamp, hands in outputs[skip:] for h in hands]))


@pytest.mark.parametrize('window_s, limit_m', [(0.25, 0.002), (0.0, None)])
def test_a_20_ms_camera_offset_adds_at_most_2_mm_at_1_m_per_s(window_s, limit_m):
    cameras = two_cameras()
    speed = np.array([0.6, 0.8, 0.0])   # 1 m/s

    def truth_at(t_s):   # back and forth along a line, turning every 0.6 s
        phase = t_s % 1.2
        return np.array([0.0, -0.2, 1.0]) + speed * (min(phase, 1.2 - phase) - 0.3)

    def hands_at(t_s):
        return [('right', truth_at(t_s), np.eye(3))]
    results = {}
    for offset_ns in (0, 20_000_000):
        rng = np.random.default_rng(4)   # the same noise for both runs
        outputs = run_sequence(HandFuser(velocity_window_s=window_s), cameras, hands_at, 240,
                               rng, offsets_ns={'cam_b': offset_ns})
        # Away from the turns (a velocity window after a turn still sees the old motion).
        straight = [(s, h) for s, h in outputs if 0.28 < (s * 1e-9) % 0.6 < 0.58]
        results[offset_ns] = mean_error(straight, truth_at, skip=0)
    added_m = results[20_000_000] - results[0]
    if limit_m is not None:
        assert added_m <= limit_m, results
    else:   # without motion compensation the offset costs several millimetres
        assert added_m > 0.004, results


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
