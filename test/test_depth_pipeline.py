"""RGB-D through the real pipeline: real colour (ASL video), synthetic consistent depth."""

import numpy as np
import pytest

from hand_mesh_ros.core.config import PipelineConfig
from hand_mesh_ros.core.pipeline import HandMeshPipeline
from hand_mesh_ros.core.types import Frame
from hand_mesh_ros.paths import models_dir
from hand_mesh_ros.tools.evaluation import eval_depth

WITH_DEPTH = 24
WITHOUT_DEPTH = 12
TRUE_SCALE = 1.12


@pytest.fixture(scope='module')
def runs():
    if not (models_dir() / 'hand_mesh_full.onnx').is_file():
        pytest.fail('models missing: run `hand-mesh setup-models` (bootstrap.sh does)')
    config = PipelineConfig().with_values({'model.backend': 'onnxruntime'})
    pipeline = HandMeshPipeline(config)
    video, _ = eval_depth.load_frames(WITH_DEPTH + WITHOUT_DEPTH)
    height, width = video[0][1].shape[:2]
    camera = eval_depth.make_camera(width, height, 900.0)
    try:
        rgb, _ = eval_depth.run_pass(pipeline, video, camera)
        truth, lengths = eval_depth.make_truth(rgb, np.random.default_rng(0), TRUE_SCALE)
        depths, _ = eval_depth.render_depths(truth, camera, np.random.default_rng(1), 0.005,
                                             dropout=(WITH_DEPTH, len(video)))
        fused, timing = eval_depth.run_pass(pipeline, video, camera, depths)
        statuses = [pipeline.process(Frame(rgb=video[0][1], stamp_ns=10 ** 12,
                                           camera=camera, depth=depths[0])).depth.label]
        pipeline.update_config(config.with_values({'depth.enabled': False}))
        disabled, _ = eval_depth.run_pass(pipeline, video, camera, depths)
        pipeline.update_config(config)
        small = np.zeros((height // 2, width // 2), np.float32)
        statuses.append(pipeline.process(Frame(rgb=video[0][1], stamp_ns=2 * 10 ** 12,
                                               camera=camera, depth=small)).depth.label)
        assumed = pipeline.process(Frame(rgb=video[0][1], stamp_ns=3 * 10 ** 12,
                                         depth=depths[0]))
    finally:
        pipeline.close()
    return {'rgb': rgb, 'truth': truth, 'lengths': lengths, 'fused': fused,
            'disabled': disabled, 'timing': timing, 'statuses': statuses,
            'assumed': assumed}


def _errors(runs, key, frames):
    out = []
    for index in frames:
        for scale, hand in runs['truth'][index]:
            got = eval_depth.match(hand, runs[key][index])
            if got is not None:
                out.append((1e3 * np.linalg.norm(got['wrist'] - scale * hand['wrist']), got))
    return out


def test_depth_fusion_recovers_the_true_hand(runs):
    fused = _errors(runs, 'fused', range(5, WITH_DEPTH))
    rgb = _errors(runs, 'rgb', range(5, WITH_DEPTH))
    assert len(fused) >= 0.9 * (WITH_DEPTH - 5)
    assert all(got['fused'] for _, got in fused)
    assert np.median([e for e, _ in fused]) < 5.0
    assert np.median([e for e, _ in rgb]) > 30.0
    assert runs['timing']['fused'] >= 0.9 * runs['timing']['hands']
    assert runs['statuses'][0] == 'fused'


def test_size_stays_metric_when_depth_stops(runs):
    gap = _errors(runs, 'fused', range(WITH_DEPTH, WITH_DEPTH + WITHOUT_DEPTH))
    assert gap and not any(got['fused'] for _, got in gap)
    true_length = next(iter(runs['lengths'].values()))
    sizes = [abs(got['length'] / true_length - 1.0) for _, got in gap]
    assert max(sizes) < 0.03
    # Without metric size the colour-only fit is TRUE_SCALE off in depth.
    assert np.median([e for e, _ in gap]) < 0.5 * np.median(
        [e for e, _ in _errors(runs, 'rgb', range(WITH_DEPTH, WITH_DEPTH + WITHOUT_DEPTH))])


def test_disabled_or_refused_depth_changes_nothing(runs):
    for a, b in zip(runs['rgb'], runs['disabled']):
        assert len(a) == len(b)
        for ha, hb in zip(a, b):
            assert not hb['fused']
            np.testing.assert_allclose(ha['wrist'], hb['wrist'], atol=1e-9)
    assert runs['statuses'][1] == 'depth_size_mismatch'
    assert runs['assumed'].depth.label == 'depth_needs_camera_info'
    assert all(h.position_mode == 'assumed_fov' for h in runs['assumed'].hands)


def test_fused_hands_are_finite_and_keep_their_2d_fit(runs):
    shifts = []
    for hands, rgb_hands in zip(runs['fused'], runs['rgb']):
        for hand in hands:
            assert np.all(np.isfinite(hand['vertices'])) and np.all(np.isfinite(hand['px']))
            other = eval_depth.match(hand, rgb_hands)
            shifts.append(np.linalg.norm(hand['px'] - other['px'], axis=1).mean())
    # Moving the hand along its rays keeps its projection (the colour evidence).
    assert np.median(shifts) < 3.0
