"""Rectified images (input.rectified): P for the pixels, D and R left out; the _rect warning.

The process test treats the sample video's first frames, at half size (a 0.5 MB image: three
nodes on a loaded 2-core machine), as raw images of a webcam-like lens (K with the principal
point well off the hand, barrel distortion D) and makes their rectified
images with OpenCV (``initUndistortRectifyMap`` to the camera_info's P), as image_proc does.
One camera_info (K, D, P) goes with both streams, as a driver publishes it. Three
hand_mesh_node processes run in three namespaces: raw images with input.rectified false,
rectified images on ``image_rect`` with input.rectified true, and rectified images with
input.rectified left false (the mix-up it warns about). This process is their camera driver:
it publishes each frame to all three (one stamp per frame) and the next one once every node
has answered, so every frame is compared with itself. Frame by frame, the rectified camera's
wrist is the raw camera's within 1 % of its depth (median over the frames); the mix-up's is
more than twice as far off.
"""

import sys
import time

import cv2
from dds_cell import isolated_environment, require_models
import numpy as np
import pytest

from hand_mesh_ros.core.errors import CameraModelError
from hand_mesh_ros.paths import data_dir
from hand_mesh_ros.ros import processes
from hand_mesh_ros.ros.rectified_input import rect_topic_warning

rclpy = pytest.importorskip('rclpy', reason='ROS 2 (rclpy) is not installed')
sensor_msgs = pytest.importorskip('sensor_msgs.msg', reason='ROS 2 messages missing')

from hand_mesh_ros.ros.camera_info import camera_model_from_msg  # noqa: E402,I100

K = np.array([[450.0, 0.0, 100.0], [0.0, 450.0, 190.0], [0.0, 0.0, 1.0]])
D = np.array([-0.12, 0.08, 0.0008, -0.0012, 0.0])
SIZE = (310, 540)
FRAMES = 12


def _rectified_k():
    new_k, _ = cv2.getOptimalNewCameraMatrix(K, D, SIZE, 0.0)
    return new_k


def _info():
    p = np.zeros((3, 4))
    p[:, :3] = _rectified_k()
    msg = sensor_msgs.CameraInfo(width=SIZE[0], height=SIZE[1], distortion_model='plumb_bob')
    msg.k, msg.d = K.ravel().tolist(), D.tolist()
    msg.r, msg.p = np.eye(3).ravel().tolist(), p.ravel().tolist()
    return msg


@pytest.mark.parametrize('topic, rectified, warns', [
    ('/camera/color/image_rect', False, True), ('/oak/rgb/image_rect/compressed', False, True),
    ('/cam/image_rect_color', False, True), ('/camera/color/image_raw', False, False),
    ('/camera/color/image_rect', True, False), ('/image', False, False)])
def test_rect_topic_warning(topic, rectified, warns):
    warning = rect_topic_warning(topic, rectified)
    assert bool(warning) is warns
    if warns:
        assert topic in warning and 'input.rectified:=true' in warning


def test_rectified_model_uses_p_and_drops_d_and_r():
    info = _info()
    info.r = [0.9998, -0.02, 0.0, 0.02, 0.9998, 0.0, 0.0, 0.0, 1.0]
    raw = camera_model_from_msg(info)
    rect = camera_model_from_msg(info, rectified=True)
    assert raw.d.size == 5 and np.allclose(raw.k, K) and not raw.rectified
    assert rect.rectified and rect.d.size == 0
    np.testing.assert_allclose(rect.k, _rectified_k())
    np.testing.assert_allclose(rect.r_proj_cam, np.eye(3))
    point = np.array([[0.05, -0.03, 0.6]])
    expected = (_rectified_k() @ point[0])[:2] / point[0, 2]
    np.testing.assert_allclose(rect.project(point)[0], expected, atol=1e-9)
    info.p = [0.0] * 12
    with pytest.raises(CameraModelError, match='input.rectified is true but camera_info P'):
        camera_model_from_msg(info, rectified=True)


def _video_frames():
    capture = cv2.VideoCapture(str(data_dir() / 'asl_hand.25fps.mp4'))
    frames = [capture.read()[1] for _ in range(FRAMES)]
    capture.release()
    assert all(f is not None and f.shape[1::-1] == (2 * SIZE[0], 2 * SIZE[1]) for f in frames)
    return [cv2.resize(f, SIZE, interpolation=cv2.INTER_AREA) for f in frames]


def _start_node(name, rectified, env, tmp_path):
    image_topic = 'image_rect' if 'rect' in name else 'image'
    argv = [sys.executable, '-m', 'hand_mesh_ros.ros.node', '--ros-args',
            '--params-file', str(processes.config_file('hand_mesh.yaml')),
            '-p', 'input.rectified:=%s' % ('true' if rectified else 'false'),
            '-r', '__ns:=/%s' % name, '-r', 'image:=%s' % image_topic]
    return processes.ManagedProcess(name, argv, tmp_path / (name + '.log'), env)


class _Driver:
    """Publish Image + CameraInfo into each namespace; collect each node's hand/poses."""

    def __init__(self, domain, cases):
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from hand_mesh_ros.msg import HandPoseArray
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain)
        self.node = rclpy.create_node('rect_driver', context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        reliable = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        self.answers = {name: {} for name in cases}   # name -> {stamp sec: HandPoseArray}
        self.publishers = {}
        for name in cases:
            image_topic = '/%s/%s' % (name, 'image_rect' if 'rect' in name else 'image')
            self.publishers[name] = (
                self.node.create_publisher(sensor_msgs.Image, image_topic, reliable),
                self.node.create_publisher(sensor_msgs.CameraInfo, '/%s/camera_info' % name,
                                           reliable))
            self.node.create_subscription(
                HandPoseArray, '/%s/hand/poses' % name,
                lambda msg, name=name: self.answers[name].update({msg.header.stamp.sec: msg}),
                reliable)

    def send(self, name, bgr, stamp_s):
        from builtin_interfaces.msg import Time
        from hand_mesh_ros.ros.image_conversion import rgb_to_image
        stamp = Time(sec=stamp_s)
        info = _info()
        info.header.stamp, info.header.frame_id = stamp, 'camera_optical_frame'
        image_pub, info_pub = self.publishers[name]
        info_pub.publish(info)
        image_pub.publish(rgb_to_image(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), stamp=stamp,
                                       frame_id='camera_optical_frame'))

    def run(self, images_by_case, children, timeout_s=240.0):
        """Send frame i to every node until each answered it; then frame i + 1."""
        deadline = time.monotonic() + timeout_s
        for index in range(FRAMES):
            stamp_s = 1000 + index
            while any(stamp_s not in self.answers[n] for n in images_by_case):
                assert time.monotonic() < deadline, (
                    {n: len(a) for n, a in self.answers.items()},
                    {c.name: c.log_tail(40) for c in children})
                for name, images in images_by_case.items():
                    if stamp_s not in self.answers[name]:
                        self.send(name, images[index], stamp_s)
                resend = time.monotonic() + 3.0
                while (time.monotonic() < resend
                       and any(stamp_s not in self.answers[n] for n in images_by_case)):
                    self.executor.spin_once(timeout_sec=0.05)
                    assert all(c.running() for c in children), [c.log_tail() for c in children]

    def close(self):
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


def _wrists(answers):
    """Return (FRAMES, 3): the wrist of each frame's hand (one hand per frame)."""
    stamps = sorted(answers)
    assert all(len(answers[s].hands) == 1 for s in stamps), [len(answers[s].hands)
                                                             for s in stamps]
    return np.array([[answers[s].hands[0].wrist_pose.position.x,
                      answers[s].hands[0].wrist_pose.position.y,
                      answers[s].hands[0].wrist_pose.position.z] for s in stamps])


@pytest.mark.slow
def test_raw_with_d_and_rectified_with_p_give_the_same_wrist(tmp_path):
    require_models()
    raw = _video_frames()
    map_x, map_y = cv2.initUndistortRectifyMap(K, D, np.eye(3), _rectified_k(), SIZE,
                                               cv2.CV_32FC1)
    rect = [cv2.remap(bgr, map_x, map_y, cv2.INTER_LINEAR) for bgr in raw]
    cases = {'raw': (raw, False), 'rect': (rect, True), 'rect_wrong': (rect, False)}
    env, domain = isolated_environment(shared_memory=True)
    children = [_start_node(name, rectified, env, tmp_path)
                for name, (_, rectified) in cases.items()]
    driver = _Driver(domain, cases)
    try:
        driver.run({name: images for name, (images, _) in cases.items()}, children)
    finally:
        for child in children:
            child.stop()
        driver.close()
    logs = {c.name: c.log_path.read_text() for c in children}
    wrists = {name: _wrists(answers) for name, answers in driver.answers.items()}
    depth_m = wrists['raw'][:, 2]
    right = np.linalg.norm(wrists['rect'] - wrists['raw'], axis=1) / depth_m
    wrong = np.linalg.norm(wrists['rect_wrong'] - wrists['raw'], axis=1) / depth_m
    assert np.median(right) < 0.01, (right, wrists)
    assert np.median(wrong) > 2.0 * np.median(right), (right, wrong)
    assert 'looks rectified but input.rectified is false' in logs['rect_wrong']
    assert 'looks rectified' not in logs['rect'] + logs['raw']
