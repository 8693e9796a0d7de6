"""RGB-D end to end over real DDS: a colour + depth publisher and hand_mesh_node, two processes.

The publisher process also records /hand/poses, like a robot controller would.

Real colour (the ASL video, half size), synthetic consistent depth (the hand fitted from colour,
made 12 % larger and moved along its rays, rendered and degraded like a D435) on the first
frames, then no depth messages at all: the node must fuse while depth arrives (status
DEPTH_FUSED, millimetre wrist error) and fall back to colour with the track's metric size after.
"""

import json
import math
from pathlib import Path
import subprocess
import sys

import cv2
import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy', reason='ROS 2 (rclpy) is not installed: run bootstrap.sh')

from hand_mesh_ros.core.config import PipelineConfig  # noqa: E402,I100
from hand_mesh_ros.core.pipeline import HandMeshPipeline  # noqa: E402
from hand_mesh_ros.paths import models_dir  # noqa: E402
from hand_mesh_ros.ros import processes  # noqa: E402
from hand_mesh_ros.tools.evaluation import eval_depth  # noqa: E402

WITH_DEPTH = 20
WITHOUT_DEPTH = 10
TRUE_SCALE = 1.12
RATE_HZ = 3.0
PUBLISHER = Path(__file__).with_name('rgbd_publisher.py')


@pytest.fixture(scope='module')
def scene(tmp_path_factory):
    """Fit the colour frames, render the true hand's degraded depth; write the .npz."""
    if not (models_dir() / 'hand_mesh_full.onnx').is_file():
        pytest.fail('models missing: run `hand-mesh setup-models` (bootstrap.sh does)')
    video, _ = eval_depth.load_frames(WITH_DEPTH + WITHOUT_DEPTH)
    frames = [(stamp + 10 ** 9, cv2.resize(rgb, (rgb.shape[1] // 2, rgb.shape[0] // 2),
                                           interpolation=cv2.INTER_AREA))
              for stamp, rgb in video]
    height, width = frames[0][1].shape[:2]
    camera = eval_depth.make_camera(width, height, 450.0)
    pipeline = HandMeshPipeline(PipelineConfig().with_values({'model.backend': 'onnxruntime'}))
    try:
        rgb_records, _ = eval_depth.run_pass(pipeline, frames, camera)
    finally:
        pipeline.close()
    truth, _ = eval_depth.make_truth(rgb_records, np.random.default_rng(0), TRUE_SCALE)
    depths, _ = eval_depth.render_depths(truth, camera, np.random.default_rng(1), 0.005,
                                         dropout=(WITH_DEPTH, len(frames)))
    depth_mm = np.zeros((len(frames), height, width), np.uint16)
    for index, depth in enumerate(depths):
        if depth is not None:
            depth_mm[index] = np.rint(depth * 1e3).astype(np.uint16)
    path = tmp_path_factory.mktemp('rgbd') / 'frames.npz'
    np.savez(path, rgb=np.stack([rgb for _, rgb in frames]), depth_mm=depth_mm,
             stamps_ns=np.array([stamp for stamp, _ in frames], np.int64),
             k=np.asarray(camera.k, dtype=np.float64).ravel())
    stamps = [stamp for stamp, _ in frames]
    true_wrist = {stamps[i]: [s * h['wrist'] for s, h in hands] for i, hands in
                  enumerate(truth)}
    rgb_wrist = {stamps[i]: [h['wrist'] for h in hands] for i, hands in enumerate(rgb_records)}
    return {'npz': path, 'stamps': stamps, 'true_wrist': true_wrist, 'rgb_wrist': rgb_wrist}


@pytest.fixture(scope='module')
def outputs(scene, tmp_path_factory):
    """Run the node and the publisher (+ recorder) as processes; return what was received."""
    tmp_path = tmp_path_factory.mktemp('rgbd_node')
    env = processes.dds_environment()
    node_argv = processes.node_command() + [
        '-r', 'depth:=%s' % '/camera/aligned_depth_to_color/image_raw']
    node = processes.ManagedProcess('node', node_argv, tmp_path / 'node.log', env=env)
    try:
        proc = subprocess.run([sys.executable, str(PUBLISHER), str(scene['npz']), str(RATE_HZ),
                               str(tmp_path / 'poses.json')], env=env, timeout=300,
                              capture_output=True, text=True)
        log = node.log_tail(40)
    finally:
        code = node.stop()
    assert proc.returncode == 0, proc.stderr[-3000:]
    poses = json.loads((tmp_path / 'poses.json').read_text())
    return {'poses': poses, 'node_code': code, 'log': log}


def test_every_output_is_stamped_and_finite(scene, outputs):
    poses = outputs['poses']
    assert len(poses) >= 0.8 * len(scene['stamps']), outputs['log']
    for msg in poses:
        assert msg['stamp_ns'] in scene['true_wrist']
        assert msg['frame_id'] == 'camera_color_optical_frame'
        for hand in msg['hands']:
            assert hand['finite'] and all(math.isfinite(v) for v in hand['wrist'])
    assert outputs['node_code'] == 0


def _errors(scene, outputs, frames, key='true_wrist'):
    stamps = {scene['stamps'][i] for i in frames}
    out = []
    for msg in outputs['poses']:
        stamp = msg['stamp_ns']
        if stamp not in stamps or not msg['hands'] or not scene['true_wrist'][stamp]:
            continue
        hand = msg['hands'][0]
        wrist = np.array(hand['wrist'])
        true = scene['true_wrist'][stamp][0]
        rgb = scene['rgb_wrist'][stamp][0]
        out.append((hand['status'], 1e3 * np.linalg.norm(wrist - true),
                    1e3 * np.linalg.norm(rgb - true)))
    return out


def test_depth_fused_while_depth_arrives(scene, outputs):
    rows = _errors(scene, outputs, range(3, WITH_DEPTH))
    assert len(rows) >= 0.7 * (WITH_DEPTH - 3), outputs['log']
    fused = [r for r in rows if r[0] == 3]     # HandPose.POSITION_DEPTH_FUSED
    assert len(fused) >= 0.9 * len(rows)
    assert np.median([r[1] for r in fused]) < 8.0
    assert np.median([r[2] for r in fused]) > 25.0   # the colour-only fit of the same frames


def test_colour_only_with_metric_size_after_depth_stops(scene, outputs):
    rows = _errors(scene, outputs, range(WITH_DEPTH + 1, WITH_DEPTH + WITHOUT_DEPTH))
    assert rows, outputs['log']
    assert all(r[0] == 0 for r in rows)        # POSITION_FULL_INTRINSICS, as without depth
    assert np.median([r[1] for r in rows]) < 0.5 * np.median([r[2] for r in rows])
