"""camera_source: calibration files, frame readers, and Image + CameraInfo across processes."""

import os
from pathlib import Path
import random
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy', reason='ROS 2 (rclpy) is not installed')

from rclpy.executors import SingleThreadedExecutor  # noqa: E402,I100
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402

from hand_mesh_ros.paths import data_dir  # noqa: E402
from hand_mesh_ros.ros import calibration as calib  # noqa: E402
from hand_mesh_ros.ros.camera_info import camera_model_from_msg  # noqa: E402
from hand_mesh_ros.ros.camera_source import FrameReader  # noqa: E402
from hand_mesh_ros.ros.image_conversion import image_to_rgb  # noqa: E402


ROOT = Path(__file__).resolve().parents[1]
SAMPLE_YAML = ROOT / 'config' / 'camera_sample.yaml'


def test_sample_calibration_parses_into_a_valid_camera_model():
    cal = calib.load_calibration(str(SAMPLE_YAML))
    assert (cal.width, cal.height, cal.camera_name) == (620, 1080, 'asl_sample_assumed')
    assert cal.k[0] == 900.0 and cal.k[2] == 312.4 and cal.k[5] == 534.8
    assert len(cal.d) == 5 and len(cal.p) == 12
    msg = calib.camera_info_msg(cal, Image().header.stamp, 'cam')
    camera = camera_model_from_msg(msg)
    assert (camera.width, camera.height, camera.cx, camera.cy) == (620, 1080, 312.4, 534.8)
    same = calib.load_calibration('file://' + str(SAMPLE_YAML))
    assert same == cal
    packaged = calib.load_calibration('package://hand_mesh_ros/config/camera_sample.yaml')
    assert packaged == cal


def test_bad_calibration_files_raise_a_clear_error(tmp_path):
    with pytest.raises(calib.CalibrationError, match='cannot read'):
        calib.load_calibration(str(tmp_path / 'missing.yaml'))
    bad = tmp_path / 'bad.yaml'
    bad.write_text('image_width: 640\nimage_height: 480\ncamera_matrix: {rows: 3, cols: 3, '
                   'data: [1, 2, 3]}\n')
    with pytest.raises(calib.CalibrationError, match='camera_matrix must have 9'):
        calib.load_calibration(str(bad))
    bad.write_text('image_width: [\n')
    with pytest.raises(calib.CalibrationError, match='not valid YAML'):
        calib.load_calibration(str(bad))


def test_assumed_calibration_is_a_60_degree_centred_pinhole():
    cal = calib.assumed_calibration(640, 480)
    assert cal.assumed and cal.k[0] == pytest.approx(320.0 / np.tan(np.radians(30.0)))
    assert (cal.k[2], cal.k[5]) == (320.0, 240.0)


def test_frame_reader_video_and_folder(tmp_path):
    video = FrameReader(str(data_dir() / 'asl_hand.25fps.mp4'))
    assert video.kind == 'video' and video.native_rate_hz() == 25.0
    first = video.read()
    assert first.shape == (1080, 620, 3) and first.dtype == np.uint8
    video.rewind()
    np.testing.assert_array_equal(video.read(), first)
    video.close()
    for i in range(3):
        cv2.imwrite(str(tmp_path / ('f%02d.png' % i)), np.full((10, 12, 3), i, np.uint8))
    (tmp_path / 'notes.txt').write_text('not an image')
    folder = FrameReader(str(tmp_path))
    frames = [folder.read() for _ in range(4)]
    assert [int(f[0, 0, 0]) for f in frames[:3]] == [0, 1, 2] and frames[3] is None
    with pytest.raises(ValueError):
        FrameReader(str(tmp_path / 'nothing_here'))


def _receive(args, count, timeout_s=40.0):
    """Run camera_source in a child process; return (images, infos, returncode, output)."""
    domain_id = random.randint(120, 220)
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain_id))
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain_id)
    node = rclpy.create_node('receiver', context=context)
    images, infos = [], []
    qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
    node.create_subscription(Image, 'image', images.append, qos)
    node.create_subscription(CameraInfo, 'camera_info', infos.append, qos)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    proc = subprocess.Popen(
        [sys.executable, '-m', 'hand_mesh_ros.ros.camera_source', '--ros-args',
         '-p', 'reliable:=true', '-p', 'wait_for_subscribers:=1'] + args,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=str(ROOT))
    try:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end and (len(images) < count or len(infos) < count):
            executor.spin_once(timeout_sec=0.05)
        output, _ = proc.communicate(timeout=20)
        for _ in range(10):
            executor.spin_once(timeout_sec=0.02)
    finally:
        executor.shutdown()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        node.destroy_node()
        rclpy.shutdown(context=context)
    return images, infos, proc.returncode, output


def _stamp(msg):
    return msg.header.stamp.sec * 10 ** 9 + msg.header.stamp.nanosec


def test_camera_source_folder_across_processes(tmp_path):
    folder = tmp_path / 'frames'
    folder.mkdir()
    for i in range(25):
        cv2.imwrite(str(folder / ('img%03d.png' % i)), np.full((120, 160, 3), 10 * i, np.uint8))
    yaml_path = tmp_path / 'cal.yaml'
    yaml_path.write_text(
        'image_width: 160\nimage_height: 120\ncamera_name: tiny\n'
        'camera_matrix: {rows: 3, cols: 3, data: [150.0, 0, 81.5, 0, 151.0, 58.5, 0, 0, 1]}\n'
        'distortion_model: plumb_bob\n'
        'distortion_coefficients: {rows: 1, cols: 5, data: [0.01, 0, 0, 0, 0]}\n')
    images, infos, code, output = _receive(
        ['-p', 'source:=%s' % folder, '-p', 'camera_info_url:=%s' % yaml_path,
         '-p', 'max_frames:=20', '-p', 'rate_hz:=50.0', '-p', 'frame_id:=tiny_optical'], 20)
    assert code == 0, output
    assert 'published max_frames=20' in output
    assert len(images) == 20 and len(infos) == 20, output
    assert [_stamp(m) for m in images] == [_stamp(m) for m in infos]
    assert len({_stamp(m) for m in images}) == 20
    for i, msg in enumerate(images):
        assert (msg.width, msg.height, msg.encoding) == (160, 120, 'rgb8')
        assert msg.header.frame_id == 'tiny_optical'
        assert int(image_to_rgb(msg)[60, 80, 0]) == 10 * i
    assert infos[0].k[2] == 81.5 and infos[0].d[0] == 0.01 and infos[0].width == 160


def test_camera_source_without_calibration_publishes_uncalibrated_camera_info():
    images, infos, code, output = _receive(['-p', 'max_frames:=5', '-p', 'rate_hz:=25.0'], 5)
    assert code == 0, output
    assert 'UNCALIBRATED camera_info' in output
    assert len(images) == 5 and len(infos) == 5
    assert [_stamp(m) for m in images] == [_stamp(m) for m in infos]
    assert (images[0].width, images[0].height) == (620, 1080)
    # As a driver without calibration: the size, and K, R, P all zero (never a made-up K
    # that the node would take for full intrinsics).
    assert (infos[0].width, infos[0].height) == (620, 1080)
    assert not any(infos[0].k) and not any(infos[0].p) and not any(infos[0].r)
    assert infos[0].header.frame_id == 'camera_optical_frame'


@pytest.mark.parametrize('sig', [signal.SIGTERM, signal.SIGINT])
def test_camera_source_stops_cleanly_on_sigterm_and_ctrl_c(tmp_path, sig):
    cv2.imwrite(str(tmp_path / 'a.png'), np.zeros((8, 8, 3), np.uint8))
    proc = subprocess.Popen(
        [sys.executable, '-m', 'hand_mesh_ros.ros.camera_source', '--ros-args',
         '-p', 'source:=%s' % tmp_path, '-p', 'loop:=true', '-p', 'rate_hz:=100.0'],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=str(ROOT),
        env=dict(os.environ, ROS_DOMAIN_ID=str(random.randint(120, 220))))
    try:
        deadline = time.monotonic() + 20.0
        lines = []
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if 'publishing folder' in line or not line:
                break
        time.sleep(0.5)
        assert proc.poll() is None, ''.join(lines)   # looping: still running
        proc.send_signal(sig)
        output, _ = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, ''.join(lines) + output
    assert 'Traceback' not in output
