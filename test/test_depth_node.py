"""hand_mesh_node's depth input over DDS: pairing, units, topic, tolerance, size, refusal.

The node runs in a real executor with a test-data pipeline that records the frames it gets
(the real fusion is tested in test_depth_fusion / test_depth_pipeline / end to end).
"""

import threading
import time

import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy', reason='ROS 2 (rclpy) is not installed')

from rclpy.executors import SingleThreadedExecutor  # noqa: E402,I100
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402

from hand_mesh_ros.core.camera.camera import CameraMode  # noqa: E402,I100
from hand_mesh_ros.core.depth.depth_stage import check_depth_image  # noqa: E402
from hand_mesh_ros.core.errors import InputError  # noqa: E402
from hand_mesh_ros.core.types import DepthOutcome, DepthStatus, FrameResult  # noqa: E402
from hand_mesh_ros.ros.image_conversion import rgb_to_image  # noqa: E402
from hand_mesh_ros.ros.node import HandMeshNode  # noqa: E402

WIDTH, HEIGHT, FX = 320, 240, 300.0


class RecordingPipeline:
    """Records frames; reports the depth outcome the real pipeline would (check_depth_image)."""

    backend_name = 'test-data'

    def __init__(self, config, log=None):
        self.config = config
        self.frames = []

    def process(self, frame):
        self.frames.append(frame)
        depth = DepthOutcome()
        if frame.depth is not None:
            mode = frame.camera.mode.value if frame.camera is not None else 'assumed_fov'
            try:
                check_depth_image(frame.depth, frame.depth_camera, frame.rgb.shape,
                                  frame.camera, mode)
                depth = DepthOutcome(DepthStatus.NOT_FUSED)
            except InputError as exc:
                depth = DepthOutcome(DepthStatus.REFUSED, exc.reason)
        return FrameResult(stamp_ns=frame.stamp_ns, frame_id=frame.frame_id,
                           image_size=(WIDTH, HEIGHT), depth=depth)

    def update_config(self, config):
        self.config = config

    def close(self):
        pass


def _info(stamp_ns, width=WIDTH, height=HEIGHT, fx=FX):
    msg = CameraInfo(width=width, height=height, distortion_model='plumb_bob')
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 10 ** 9)
    msg.header.frame_id = 'cam'
    msg.d = [0.0] * 5
    msg.k = [fx, 0.0, width / 2, 0.0, fx, height / 2, 0.0, 0.0, 1.0]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg.p = [fx, 0.0, width / 2, 0.0, 0.0, fx, height / 2, 0.0, 0.0, 0.0, 1.0, 0.0]
    return msg


def _depth(stamp_ns, value_mm=800, width=WIDTH, height=HEIGHT):
    mm = np.full((height, width), value_mm, '<u2')
    msg = Image(height=height, width=width, encoding='16UC1', step=2 * width)
    msg.data = mm.tobytes()
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 10 ** 9)
    msg.header.frame_id = 'cam'
    return msg


class Harness:
    """The node and a probe node in one context, spinning on a thread."""

    def __init__(self, overrides=()):
        self.context = rclpy.Context()
        rclpy.init(context=self.context)   # ROS_DOMAIN_ID of the environment
        self.pipelines = []

        def factory(config, log=None):
            self.pipelines.append(RecordingPipeline(config, log))
            return self.pipelines[-1]

        self.node = HandMeshNode(pipeline_factory=factory, context=self.context,
                                 parameter_overrides=[Parameter(k, value=v)
                                                      for k, v in overrides])
        self.probe = rclpy.create_node('probe', context=self.context)
        qos = QoSProfile(depth=20, reliability=ReliabilityPolicy.RELIABLE)
        self.pubs = {name: self.probe.create_publisher(kind, topic, qos) for name, kind, topic in
                     (('image', Image, 'image'), ('info', CameraInfo, 'camera_info'),
                      ('depth', Image, 'depth'), ('depth_info', CameraInfo,
                                                  'depth/camera_info'))}
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.executor.add_node(self.probe)
        self.running = True
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()
        self.wait(lambda: self.pubs['image'].get_subscription_count() > 0)

    def _spin(self):
        while self.running:
            self.executor.spin_once(timeout_sec=0.05)

    def wait(self, condition, timeout_s=5.0):
        end = time.monotonic() + timeout_s
        while time.monotonic() < end and not condition():
            time.sleep(0.01)
        return condition()

    def send(self, stamp_ns, depth=None, depth_info=None):
        """Publish (depth info), (depth), camera_info and the image; return its frame."""
        if depth_info is not None:
            self.pubs['depth_info'].publish(depth_info)
        if depth is not None:
            self.pubs['depth'].publish(depth)
        time.sleep(0.05)
        self.pubs['info'].publish(_info(stamp_ns))
        image = rgb_to_image(np.full((HEIGHT, WIDTH, 3), 90, np.uint8))
        image.header.frame_id = 'cam'
        image.header.stamp.sec, image.header.stamp.nanosec = divmod(stamp_ns, 10 ** 9)
        frames = self.pipelines[0].frames
        count = len(frames)
        self.pubs['image'].publish(image)
        assert self.wait(lambda: len(frames) > count)
        return frames[-1]

    def close(self):
        self.running = False
        self.thread.join(5.0)
        self.executor.shutdown(timeout_sec=5.0)
        self.node.close()
        self.node.destroy_node()
        self.probe.destroy_node()
        rclpy.shutdown(context=self.context)


@pytest.fixture
def harness():
    made = []

    def make(**kwargs):
        made.append(Harness(**kwargs))
        return made[-1]

    yield make
    for h in made:
        h.close()


def test_depth_is_paired_by_stamp_in_metres(harness):
    h = harness()
    plain = h.send(10 ** 9)
    assert plain.depth is None                       # no depth yet: as without the feature
    frame = h.send(2 * 10 ** 9, depth=_depth(2 * 10 ** 9, 800))
    assert frame.depth is not None and frame.depth.shape == (HEIGHT, WIDTH)
    assert np.allclose(frame.depth, 0.8) and frame.depth_camera is None
    assert frame.camera.mode == CameraMode.FULL_INTRINSICS
    assert h.node.stats.counts['depth_paired'] == 1
    late = h.send(3 * 10 ** 9, depth=_depth(3 * 10 ** 9 + 30_000_000))   # 30 ms off
    assert late.depth is None
    assert h.node.stats.counts['depth_unpaired'] >= 1


def test_tolerance_and_scale_parameters(harness):
    h = harness(overrides=[('input.depth_pairing_tolerance_s', 0.05),
                           ('input.depth_scale_m_per_unit', 0.0001)])
    frame = h.send(10 ** 9, depth=_depth(10 ** 9 + 30_000_000, 8000))
    assert frame.depth is not None and np.allclose(frame.depth, 0.8)


def test_enabled_and_topic_parameters(harness):
    h = harness()
    h.node.set_parameters([Parameter('depth.enabled', value=False)])
    assert h.send(10 ** 9, depth=_depth(10 ** 9)).depth is None
    h.node.set_parameters([Parameter('depth.enabled', value=True)])
    assert h.send(2 * 10 ** 9, depth=_depth(2 * 10 ** 9)).depth is not None
    off = harness(overrides=[('input.depth_topic', '')])
    assert off.node._depth_sub is None
    assert off.send(10 ** 9, depth=_depth(10 ** 9)).depth is None


def test_depth_of_another_size_needs_its_camera_info(harness):
    h = harness()
    small = _depth(10 ** 9, 800, WIDTH // 2, HEIGHT // 2)
    frame = h.send(10 ** 9, depth=small)
    assert frame.depth.shape == (HEIGHT // 2, WIDTH // 2) and frame.depth_camera is None
    assert h.wait(lambda: h.node.stats.bad_input['depth_size_mismatch'] == 1)
    info = _info(2 * 10 ** 9, WIDTH // 2, HEIGHT // 2, FX / 2)
    frame = h.send(2 * 10 ** 9, depth=_depth(2 * 10 ** 9, 800, WIDTH // 2, HEIGHT // 2),
                   depth_info=info)
    assert frame.depth_camera is not None and frame.depth_camera.width == WIDTH // 2
    assert h.node.stats.bad_input['depth_size_mismatch'] == 1
    assert h.node.stats.counts['depth_not_fused'] == 1
    no_info = harness(overrides=[('input.depth_camera_info_topic', '')])
    assert no_info.node._depth_info_sub is None


def test_bad_depth_images_are_counted_and_the_node_keeps_going(harness):
    h = harness()
    bad = _depth(10 ** 9)
    bad.encoding = 'rgb8'
    frame = h.send(10 ** 9, depth=bad)
    assert frame.depth is None
    assert h.node.stats.bad_input['depth_unknown_encoding'] == 1
    assert h.send(2 * 10 ** 9, depth=_depth(2 * 10 ** 9)).depth is not None
