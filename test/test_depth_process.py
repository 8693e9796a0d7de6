"""``hand-mesh process`` on a bag with a registered depth topic: fused frames are marked."""

import csv
import json

import cv2
import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy', reason='ROS 2 (rclpy) is not installed')

from hand_mesh_ros.core.config import PipelineConfig  # noqa: E402,I100
from hand_mesh_ros.core.pipeline import HandMeshPipeline  # noqa: E402
from hand_mesh_ros.paths import models_dir  # noqa: E402
from hand_mesh_ros.ros.bag_io import BagWriter  # noqa: E402
from hand_mesh_ros.ros.calibration import Calibration, camera_info_msg  # noqa: E402
from hand_mesh_ros.ros.image_conversion import rgb_to_image  # noqa: E402
from hand_mesh_ros.ros.messages import ns_to_time  # noqa: E402
from hand_mesh_ros.tools.evaluation import eval_depth  # noqa: E402
from hand_mesh_ros.tools.process import process  # noqa: E402
from hand_mesh_ros.tools.process.process_inputs import (  # noqa: E402
    choose_depth_topic, choose_topics)

FRAMES = 16
WITH_DEPTH = 10
FRAME_ID = 'cam_color_optical'
DEPTH_TOPIC = '/cam/aligned_depth_to_color/image_raw'


def _depth_msg(depth_m, stamp_ns):
    from sensor_msgs.msg import Image
    mm = np.rint(depth_m * 1e3).astype('<u2')
    msg = Image(height=mm.shape[0], width=mm.shape[1], encoding='16UC1', step=2 * mm.shape[1])
    msg.data = mm.tobytes()
    msg.header.stamp = ns_to_time(stamp_ns)
    msg.header.frame_id = FRAME_ID
    return msg


@pytest.fixture(scope='module')
def bag(tmp_path_factory):
    if not (models_dir() / 'hand_mesh_full.onnx').is_file():
        pytest.fail('models missing: run `hand-mesh setup-models` (bootstrap.sh does)')
    video, _ = eval_depth.load_frames(FRAMES)
    frames = [(stamp + 10 ** 9, cv2.resize(rgb, (rgb.shape[1] // 2, rgb.shape[0] // 2)))
              for stamp, rgb in video]
    height, width = frames[0][1].shape[:2]
    camera = eval_depth.make_camera(width, height, 450.0)
    pipeline = HandMeshPipeline(PipelineConfig().with_values({'model.backend': 'onnxruntime'}))
    try:
        records, _ = eval_depth.run_pass(pipeline, frames, camera)
    finally:
        pipeline.close()
    truth, _ = eval_depth.make_truth(records, np.random.default_rng(0), 1.1)
    depths, _ = eval_depth.render_depths(truth, camera, np.random.default_rng(1), 0.005,
                                         dropout=(WITH_DEPTH, FRAMES))
    calibration = Calibration(width=width, height=height, camera_name='test',
                              distortion_model='plumb_bob', d=(0.0,) * 5,
                              k=tuple(np.asarray(camera.k, dtype=float).ravel()),
                              r=tuple(np.eye(3).ravel()),
                              p=(camera.fx, 0.0, camera.cx, 0.0, 0.0, camera.fy, camera.cy, 0.0,
                                 0.0, 0.0, 1.0, 0.0))
    path = tmp_path_factory.mktemp('depth_bag') / 'bag'
    with BagWriter(path, storage='mcap') as writer:
        for (stamp_ns, rgb), depth in zip(frames, depths):
            stamp = ns_to_time(stamp_ns)
            writer.write_message('/cam/camera_info',
                                 camera_info_msg(calibration, stamp, FRAME_ID), stamp_ns)
            if depth is not None:
                writer.write_message(DEPTH_TOPIC, _depth_msg(depth, stamp_ns), stamp_ns)
            writer.write_message('/cam/image_raw', rgb_to_image(rgb, stamp, FRAME_ID), stamp_ns)
    return path


def test_depth_topic_is_chosen_beside_the_colour_topic():
    topics = {'/cam/image_raw': ('sensor_msgs/msg/Image', 3),
              DEPTH_TOPIC: ('sensor_msgs/msg/Image', 3),
              '/cam/camera_info': ('sensor_msgs/msg/CameraInfo', 3)}
    assert choose_topics(topics) == ('/cam/image_raw', '/cam/camera_info')
    assert choose_depth_topic(topics, None, '/cam/image_raw') == DEPTH_TOPIC
    assert choose_depth_topic(topics, '', '/cam/image_raw') is None


def test_process_marks_fused_frames(bag, tmp_path, capsys):
    out = tmp_path / 'out'
    code = process.main([str(bag), '--out', str(out), '--backend', 'onnxruntime',
                         '--no-video', '--no-progress', '--json'])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary['depth_frames'].get('fused', 0) >= WITH_DEPTH - 2
    assert summary['depth_frames'].get('none', 0) == FRAMES - WITH_DEPTH
    records = [json.loads(line) for line in (out / 'hands.jsonl').read_text().splitlines()]
    by_frame = {r['frame']: r for r in records}
    assert by_frame[FRAMES - 1]['depth'] == ''
    fused = [r for r in records if r['depth'] == 'fused']
    assert all(h['position_mode'] == 'depth_fused' for r in fused for h in r['hands'])
    with open(out / 'hands.csv', newline='') as stream:
        modes = [row['position_mode'] for row in csv.DictReader(stream)]
    assert 'depth_fused' in modes and 'full_intrinsics' in modes
