"""The pipeline's gates on real data: real hands kept, runaways dropped, parameters matter.

Also: ``tailor.enabled`` changes the output, and the fit is resolution invariant with the
network's keypoints mapped exactly into a resized or cropped image.
"""

import cv2
import numpy as np
import pytest

from hand_mesh_ros.core.config import PipelineConfig
from hand_mesh_ros.core.pipeline import HandMeshPipeline
from hand_mesh_ros.core.types import Frame
from hand_mesh_ros.paths import data_dir
from hand_mesh_ros.tools.evaluation import eval_gates, eval_resolution


@pytest.fixture(scope='module')
def pipeline():
    built = HandMeshPipeline(PipelineConfig().with_values({'model.backend': 'onnxruntime'}))
    yield built
    built.close()


@pytest.fixture(scope='module')
def frames():
    return eval_gates.video_frames()


def _run(pipeline, frames, values=None):
    """Return (frames with a hand, rejected counts) over ``frames`` with settings applied."""
    base = pipeline.config
    pipeline.update_config(base.with_values(values or {}))
    pipeline.reset()
    with_hand, rejected = 0, {}
    try:
        for _, stamp, rgb in frames:
            result = pipeline.process(Frame(rgb=rgb, stamp_ns=stamp))
            with_hand += bool(result.hands)
            for reason, count in result.rejected.items():
                rejected[reason] = rejected.get(reason, 0) + count
    finally:
        pipeline.update_config(base)
    return with_hand, rejected


def test_no_real_hand_is_lost_to_the_gates(pipeline, frames):
    real = eval_gates.run_real(pipeline, frames)
    assert real['video_frames'] == 325
    assert real['video_frames_with_hand'] == 325 and real['video_rejected'] == {}
    assert real['hands_jpg_hands'] == 2 and real['hands_jpg_rejected'] == {}
    for row in real['hands_jpg_padded'].values():
        assert row['hands'] == 2 and row['rejected'] == {} and row['refitted_from_2d'] >= 1


@pytest.mark.parametrize('midtrack', [False, True])
@pytest.mark.parametrize('name', eval_gates.MUST_DROP)
def test_injected_runaways_are_never_published(pipeline, frames, name, midtrack):
    row = eval_gates.run_injection(pipeline, frames[:120], name, midtrack)
    assert row['injected'] == 12
    assert row['published'] == 0, row
    assert sum(row['rejected'].values()) == 12


@pytest.mark.parametrize('values, reason', [
    ({'gates.min_depth_m': 0.27}, 'implausible_depth'),
    ({'gates.max_depth_m': 0.24}, 'implausible_depth'),
    ({'gates.min_bone_ratio': 0.99}, 'implausible_bones'),
    ({'gates.max_bone_ratio': 1.0}, 'implausible_bones'),
    ({'gates.max_network_error': 0.05, 'gates.refit_from_2d': False}, 'inconsistent_3d_2d'),
    ({'gates.max_reprojection_error': 0.01, 'gates.refit_from_2d': False},
     'implausible_reprojection'),
    ({'gates.max_network_error': 0.05, 'gates.max_refit_error': 0.001}, 'inconsistent_3d_2d'),
    ({'gates.max_speed_mps': 0.01}, 'implausible_speed'),
])
def test_every_gate_parameter_drops_hands_when_tightened(pipeline, frames, values, reason):
    with_hand, rejected = _run(pipeline, frames[:40], values)
    assert rejected.get(reason, 0) > 0, rejected
    assert with_hand < 40


def test_hands_whose_network_3d_fails_are_refitted_from_2d(pipeline, frames):
    base = pipeline.config
    pipeline.update_config(base.with_values({'gates.max_network_error': 0.05}))
    pipeline.reset()
    sources, errors = [], []
    try:
        for _, stamp, rgb in frames[:20]:
            result = pipeline.process(Frame(rgb=rgb, stamp_ns=stamp))
            assert len(result.hands) == 1 and result.rejected == {}
            sources.append(result.hands[0].shape_source)
            errors += [f['reprojection_error'] for f in result.gate_figures
                       if f['shape_source'] == 'refit_2d' and f['rejected'] is None]
    finally:
        pipeline.update_config(base)
    assert sources.count('refit_2d') >= 10, sources
    assert errors and max(errors) <= base.gates.max_refit_error


@pytest.mark.parametrize('pad_px', [(240, 120, 0, 0), (0, 0, 240, 120)])
def test_padded_hands_jpg_keeps_both_hands(pipeline, pad_px):
    bgr = cv2.imread(str(data_dir() / 'hands.jpg'))
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    height, width = rgb.shape[:2]
    left, top, right, bottom = pad_px
    padded = cv2.copyMakeBorder(rgb, top, bottom, left, right, cv2.BORDER_CONSTANT)
    pmap = eval_resolution.PixelMap(1.0, (-left, -top), (width + left + right,
                                                         height + top + bottom))
    camera = pmap.camera(eval_resolution.scene_camera('hands', width, height))
    for frame_camera in (camera, None):
        pipeline.reset()
        result = pipeline.process(Frame(rgb=padded, stamp_ns=0, camera=frame_camera))
        assert len(result.hands) == 2, result.rejected
        for hand in result.hands:
            assert 0.15 < hand.joints_m[0, 2] < 0.45
            assert hand.reprojection_error_px < 0.05 * np.ptp(hand.observed_keypoints_px[:, 1])


def test_speed_gate_looks_back_at_most_max_gap_s(pipeline, frames):
    tight = {'gates.max_speed_mps': 0.0}
    _, rejected = _run(pipeline, frames[:20], dict(tight, **{'gates.max_gap_s': 0.5}))
    assert rejected.get('implausible_speed', 0) >= 15
    with_hand, rejected = _run(pipeline, frames[:20], dict(tight, **{'gates.max_gap_s': 0.01}))
    assert rejected == {} and with_hand == 20


def test_a_hand_that_jumps_is_refitted_not_dropped(pipeline, frames):
    # Three poses 2.4 s apart in the video, sent 40 ms apart: the track's temporal state is
    # wrong for every frame; the refit from scratch must keep the hand.
    images = [cv2.resize(frames[i][2], None, fx=0.4, fy=0.4, interpolation=cv2.INTER_AREA)
              for i in (0, 60, 119)]
    height, width = images[0].shape[:2]
    camera = eval_resolution.PixelMap(1.0, (0.0, 0.0), (width, height)).camera(
        eval_resolution.scene_camera('asl', width, height))
    pipeline.reset()
    results = [pipeline.process(Frame(rgb=images[k % 3], stamp_ns=k * 40_000_000,
                                      camera=camera)) for k in range(15)]
    assert [len(r.hands) for r in results] == [1] * 15, [r.rejected for r in results]


def test_tailor_disabled_publishes_the_network_hand_at_the_recovered_root(pipeline, frames):
    outputs = {}
    base = pipeline.config
    try:
        for enabled in (True, False):
            pipeline.update_config(base.with_values({'tailor.enabled': enabled}))
            pipeline.reset()
            outputs[enabled] = [pipeline.process(Frame(rgb=rgb, stamp_ns=stamp)).hands[0]
                                for _, stamp, rgb in frames[:10]]
    finally:
        pipeline.update_config(base)
    on, off = outputs[True], outputs[False]
    moved_mm = [1e3 * np.abs(a.joints_m - b.joints_m).max() for a, b in zip(on, off)]
    assert min(moved_mm) > 0.5
    model = pipeline.hand_model
    for hand in off:
        rest = model.forward(hand.pose_coefficients, hand.shape_coefficients, side=hand.side)
        assert np.allclose(hand.joints_m - hand.joints_m[0],
                           rest.joint_centres - rest.joint_centres[0],
                           atol=1e-9)
        assert hand.is_finite()


def test_temporal_pose_blend_trades_smoothness_for_drift(pipeline, frames):
    joints = {}
    base = pipeline.config
    try:
        for value in (1.0, 0.0):
            pipeline.update_config(base.with_values({'tailor.temporal_pose_blend': value}))
            pipeline.reset()
            joints[value] = np.array([
                pipeline.process(Frame(rgb=rgb, stamp_ns=stamp)).hands[0].joints_m
                for _, stamp, rgb in frames[:30]])
    finally:
        pipeline.update_config(base)
    rel = {k: v - v[:, :1] for k, v in joints.items()}
    # 1: the prior's centre is the network's pose (its jitter passes); 0: the previous pose.
    acc = {k: np.mean(np.abs(v[2:] - 2.0 * v[1:-1] + v[:-2])) for k, v in rel.items()}
    assert acc[1.0] > 1.2 * acc[0.0]


def test_exact_keypoints_give_the_same_root_at_every_resolution(pipeline):
    for scene in ('hands', 'asl'):
        figures = eval_resolution.evaluate_scene(pipeline, scene)
        for name in eval_resolution.TRANSFORMS:
            row = figures['exact'][name]
            assert row['missed'] == 0 and row['hands'] == figures['hands_at_1x'] > 0
            assert row['max_pct_of_depth'] < 0.01, (scene, name, row)
        for name, row in figures['pipeline'].items():
            assert row['missed'] == 0, (scene, name, row)


def test_pixel_map_transforms_camera_and_points_alike():
    bgr = cv2.imread(str(data_dir() / 'hands.jpg'))
    height, width = bgr.shape[:2]
    camera = eval_resolution.scene_camera('hands', width, height)
    points = np.array([[10.0, 20.0, 0.4], [-0.05, 0.03, 0.7]])
    for name in eval_resolution.TRANSFORMS + ('pad_4',):
        pmap = eval_resolution.pixel_map(name, width, height)
        moved = pmap.camera(camera)
        assert np.allclose(moved.project(points), pmap.points(camera.project(points)))
        assert pmap.image(bgr).shape[:2] == (pmap.size[1], pmap.size[0])
