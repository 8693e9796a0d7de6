"""hand_mesh_node in a real rclpy executor, fed and observed over DDS by a second node.

The pipeline here is test data: it returns hands made with the real hand model (a posed
forward pass 0.5 m in front of the camera) for any non-black image and no hand for a black
one. The end-to-end test with the real pipeline is separate.
"""

import os
import random
import subprocess
import sys
import threading
import time

import cv2
import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy', reason='ROS 2 (rclpy) is not installed')

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402,I100
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import CameraInfo, CompressedImage, Image  # noqa: E402
from tf2_msgs.msg import TFMessage  # noqa: E402
from visualization_msgs.msg import Marker, MarkerArray  # noqa: E402

from hand_mesh_ros.core.config import PipelineConfig  # noqa: E402
from hand_mesh_ros.core.errors import HandMeshError  # noqa: E402
from hand_mesh_ros.core.hand.hand_model import load_hand_model  # noqa: E402
from hand_mesh_ros.core.hand.rotations import axis_angle_to_matrix  # noqa: E402
from hand_mesh_ros.core.types import FrameResult, HandEstimate  # noqa: E402
from hand_mesh_ros.msg import HandMeshArray, HandPoseArray  # noqa: E402
from hand_mesh_ros.ros.diagnostics import STEP_NAMES  # noqa: E402
from hand_mesh_ros.ros.image_conversion import rgb_to_image  # noqa: E402
from hand_mesh_ros.ros.node import HandMeshNode  # noqa: E402


MODEL = load_hand_model()
FX, CX, CY = 500.0, 161.0, 118.0


def synthetic_hand(track_id=1, side='right', bad=False):
    """Return a HandEstimate of the real hand model 0.5 m in front of the camera."""
    pose = MODEL.clamp_pose(np.random.default_rng(track_id).normal(0, 0.3, (MODEL.n_bones, 3)))
    out = MODEL.forward(pose, side=side)
    rot = axis_angle_to_matrix(np.array([2.8, 0.2, 0.1]))
    t_cam_hand = np.eye(4)
    t_cam_hand[:3, :3], t_cam_hand[:3, 3] = rot, (0.0, 0.0, 0.5)
    joints = out.joint_centres @ rot.T + t_cam_hand[:3, 3]
    landmarks = out.keypoints @ rot.T + t_cam_hand[:3, 3]
    px = landmarks[:, :2] / landmarks[:, 2:] * FX + (CX, CY)
    if bad:
        joints = joints.copy()
        joints[3, 0] = np.inf
    return HandEstimate(
        track_id=track_id, side=side, side_score=0.9, score=0.95, keypoints_px=px,
        observed_keypoints_px=px, joints_m=joints,
        vertices_m=out.vertices @ rot.T + t_cam_hand[:3, 3], faces=out.faces,
        bone_transforms=t_cam_hand @ out.bone_frames, bone_parents=MODEL.parents,
        bone_names=MODEL.bone_names, pose_coefficients=pose,
        shape_coefficients=MODEL.zero_shape(), hand_model='anny', hand_length_m=0.19,
        confidence=0.5, position_covariance_m2=np.eye(3) * 1e-4,
        reprojection_error_px=0.0, position_mode='full_intrinsics', keypoints_m=landmarks)


class TestPipeline:
    """Test-data pipeline: a hand for non-black images, none for black ones."""

    __test__ = False
    backend_name = 'test-data'

    def __init__(self, config, log=None, delay_s=0.0):
        self.config = config
        self.delay_s = delay_s
        self.frames = []
        self.configs = []
        self.fail_with = None    # exception instance raised by the next process() calls
        self.nan_hand = False

    def process(self, frame):
        self.frames.append(frame)
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.fail_with is not None:
            raise self.fail_with
        mode = 'weak_perspective' if frame.camera is None else frame.camera.mode.value
        hands = []
        if frame.rgb.max() > 0:
            hand = synthetic_hand()
            hands = [HandEstimate(**dict(hand.__dict__, position_mode=mode))]
            if self.nan_hand:
                hands.append(synthetic_hand(track_id=2, side='left', bad=True))
        return FrameResult(stamp_ns=frame.stamp_ns, frame_id=frame.frame_id,
                           image_size=(frame.rgb.shape[1], frame.rgb.shape[0]), hands=hands,
                           position_mode=mode, rejected={'low_score': 1})

    def update_config(self, config):
        self.configs.append(config)
        self.config = config

    def close(self):
        self.frames.append('closed')


class Harness:
    """hand_mesh_node + a probe node in one context and one spinning executor."""

    def __init__(self, delay_s=0.0, overrides=(), args=None, outputs=None,
                 pipeline_class=None):
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=random.randint(120, 220), args=args)
        self.pipelines = []

        def factory(config, log=None):
            pipeline = (pipeline_class or TestPipeline)(config, log, delay_s=delay_s)
            self.pipelines.append(pipeline)
            return pipeline

        self.node = HandMeshNode(pipeline_factory=factory, context=self.context,
                                 parameter_overrides=[Parameter(k, value=v) for k, v in overrides])
        self.probe = rclpy.create_node('probe', context=self.context)
        reliable = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        self.image_pub = self.probe.create_publisher(Image, 'image', reliable)
        self.info_pub = self.probe.create_publisher(CameraInfo, 'camera_info', reliable)
        self.got = {'poses': [], 'mesh': [], 'tf': [], 'markers': [], 'diag': [], 'debug': []}
        for key, kind, topic in (('poses', HandPoseArray, '/hand/poses'),
                                 ('mesh', HandMeshArray, '/hand/mesh'),
                                 ('tf', TFMessage, '/tf'),
                                 ('markers', MarkerArray, '/hand/markers'),
                                 ('diag', DiagnosticArray, '/diagnostics'),
                                 ('debug', Image, '/hand/debug_image')):
            if outputs is None or key in outputs:
                self.probe.create_subscription(kind, topic, self.got[key].append,
                                               QoSProfile(depth=100))
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.executor.add_node(self.probe)
        self.running = True
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()
        self.wait(lambda: self.image_pub.get_subscription_count() > 0
                  and self.node._diag_pub.get_subscription_count() > 0)
        if outputs is None or 'poses' in outputs:
            self.wait(lambda: self.node._output_pubs['poses'].get_subscription_count() > 0)

    def _spin(self):
        while self.running:
            self.executor.spin_once(timeout_sec=0.05)

    @property
    def pipeline(self):
        return self.pipelines[0]

    def wait(self, condition, timeout_s=5.0):
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if condition():
                return True
            time.sleep(0.01)
        return condition()

    def send(self, stamp_ns, rgb=None, info=True, image=None):
        if info:
            self.info_pub.publish(camera_info(stamp_ns))
        if image is None:
            image = rgb_to_image(np.full((240, 320, 3), 90, np.uint8) if rgb is None else rgb)
            image.header.frame_id = 'cam_optical'
        image.header.stamp.sec, image.header.stamp.nanosec = divmod(stamp_ns, 10 ** 9)
        self.image_pub.publish(image)

    def close(self):
        self.running = False
        self.thread.join(5.0)
        self.executor.shutdown(timeout_sec=5.0)
        self.node.close()
        self.node.destroy_node()
        self.probe.destroy_node()
        rclpy.shutdown(context=self.context)


def camera_info(stamp_ns, width=320, height=240, fx=FX):
    msg = CameraInfo(width=width, height=height, distortion_model='plumb_bob')
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 10 ** 9)
    msg.header.frame_id = 'cam_optical'
    msg.d = [0.0] * 5
    msg.k = [fx, 0.0, CX, 0.0, fx, CY, 0.0, 0.0, 1.0]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg.p = [fx, 0.0, CX, 0.0, 0.0, fx, CY, 0.0, 0.0, 0.0, 1.0, 0.0]
    return msg


@pytest.fixture
def harness():
    made = []

    def make(**kwargs):
        made.append(Harness(**kwargs))
        return made[-1]

    yield make
    for h in made:
        h.close()


def _stamp(msg):
    return msg.header.stamp.sec * 10 ** 9 + msg.header.stamp.nanosec


def test_outputs_carry_image_stamps_and_are_consistent(harness):
    h = harness(overrides=[('output.diagnostics_period_s', 0.2)])
    stamps = [1_000_000_000_123, 1_000_050_000_456, 1_000_100_000_789]
    for i, stamp in enumerate(stamps):
        rgb = np.zeros((240, 320, 3), np.uint8) if i == 2 else None  # last: black, no hand
        h.send(stamp, rgb=rgb)
        assert h.wait(lambda: len(h.got['poses']) == i + 1 and len(h.got['mesh']) == i + 1)
    assert [_stamp(m) for m in h.got['poses']] == stamps
    assert [_stamp(m) for m in h.got['mesh']] == stamps
    assert [len(m.hands) for m in h.got['poses']] == [1, 1, 0]
    assert [len(m.hands) for m in h.got['mesh']] == [1, 1, 0]
    assert all(m.header.frame_id == 'cam_optical' for m in h.got['poses'] + h.got['mesh'])
    # The pipeline got the camera model of the same stamp (not an assumed one).
    frames = h.pipeline.frames
    assert [f.stamp_ns for f in frames] == stamps
    assert frames[0].camera.fx == FX and frames[0].camera.cx == CX
    assert frames[0].frame_id == 'cam_optical' and frames[0].rgb.shape == (240, 320, 3)
    pose = h.got['poses'][0].hands[0]
    assert pose.position_status == 0 and _stamp(pose) == stamps[0]
    # TF: one transform per bone for each frame with a hand, the image stamp, wrist consistent.
    assert h.wait(lambda: len(h.got['tf']) == 2)
    tf_msg = h.got['tf'][0]
    assert len(tf_msg.transforms) == MODEL.n_bones + 5
    assert {_stamp(t) for t in tf_msg.transforms} == {stamps[0]}
    by_child = {t.child_frame_id: t for t in tf_msg.transforms}
    root = by_child['hand_right_' + MODEL.bone_names[0]]
    assert root.header.frame_id == 'cam_optical'
    wrist = by_child['hand_right_wrist']
    assert wrist.header.frame_id == 'hand_right_' + MODEL.bone_names[0]
    joints = np.array([[p.x, p.y, p.z] for p in pose.joints])
    assert np.all(np.isfinite(joints)) and abs(joints[0, 2] - 0.5) < 0.05
    origin = np.array([root.transform.translation.x, root.transform.translation.y,
                       root.transform.translation.z])
    np.testing.assert_allclose(origin, joints[0], atol=1e-6)   # root and wrist coincide
    # Markers: 4 per hand, then DELETE for the lost hand; all in the camera frame.
    assert h.wait(lambda: len(h.got['markers']) == 3)
    first, _, last = h.got['markers']
    assert len(first.markers) == 4 and {m.action for m in first.markers} == {Marker.ADD}
    assert {m.action for m in last.markers} == {Marker.DELETE} and len(last.markers) == 4
    assert all(m.header.frame_id == 'cam_optical' for m in first.markers + last.markers)
    assert all(_stamp(m) == stamps[0] for m in first.markers)
    # Debug image: subscribed, so it is drawn and published with the image stamp.
    assert h.wait(lambda: len(h.got['debug']) == 3)
    debug = h.got['debug'][0]
    assert (debug.width, debug.height, _stamp(debug)) == (320, 240, stamps[0])
    assert np.any(np.frombuffer(debug.data, np.uint8) != 90)       # something was drawn
    assert np.all(np.frombuffer(h.got['debug'][2].data, np.uint8) == 0)  # no hand: unchanged
    # Diagnostics: backend, counts and the camera mode.
    assert h.wait(lambda: any(_diag(m).get('frames_processed') == '3' for m in h.got['diag']))
    values = [_diag(m) for m in h.got['diag'] if _diag(m).get('frames_processed') == '3'][0]
    assert values['backend'] == 'test-data' and values['camera_mode'] == 'full_intrinsics'
    assert values['rejected_hands.low_score'] == '3' and values['frames_dropped'] == '0'
    assert float(values['latency_p50_ms']) > 0.0
    # The node's own steps (no 'receive': these stamps are not wall-clock times).
    assert {k for k in values if k.startswith('step_')} == {
        'step_%s_p50_ms' % name for name in STEP_NAMES if name != 'receive'}
    assert all(float(values['step_%s_p50_ms' % name]) >= 0.0 for name in STEP_NAMES[1:])


def test_outputs_nobody_subscribed_to_are_not_built(harness, monkeypatch):
    from hand_mesh_ros.ros import debug_image, messages, tf_frames
    built = []
    for module, name in ((messages, 'mesh_array_msg'), (messages, 'pose_array_msg'),
                         (tf_frames, 'tf_message'), (debug_image, 'draw_hands')):
        def spy(*args, _name=name, _real=getattr(module, name), **kwargs):
            built.append(_name)
            return _real(*args, **kwargs)
        monkeypatch.setattr(module, name, spy)
    h = harness(outputs=('poses', 'diag'))
    h.send(1_000_000_000_000)
    assert h.wait(lambda: len(h.got['poses']) == 1 and len(h.got['poses'][0].hands) == 1)
    assert h.wait(lambda: any(_diag(m).get('frames_processed') == '1' for m in h.got['diag']))
    assert built == ['pose_array_msg']      # no mesh, TF, markers or debug image was built
    assert not h.node._outputs.markers.has_live_markers


def _diag(msg):
    return {kv.key: kv.value for kv in msg.status[0].values}


def test_bad_images_are_counted_and_the_node_keeps_running(harness):
    h = harness()
    bad = []
    unknown = rgb_to_image(np.full((8, 8, 3), 5, np.uint8))
    unknown.encoding = '32FC1'
    bad.append(unknown)
    short = rgb_to_image(np.full((8, 8, 3), 5, np.uint8))
    short.step = 10
    bad.append(short)
    truncated = rgb_to_image(np.full((8, 8, 3), 5, np.uint8))
    truncated.data = bytes(truncated.data)[:50]
    bad.append(truncated)
    bad.append(Image(width=0, height=0, encoding='rgb8', step=0))
    bad.append(Image(width=7680, height=4320, encoding='rgb8', step=7680 * 3))
    for i, msg in enumerate(bad):
        h.send(10 ** 9 + i, image=msg, info=False)
        assert h.wait(lambda: sum(h.node.stats.bad_input.values()) == i + 1)
    assert dict(h.node.stats.bad_input) == {
        'image_unknown_encoding': 1, 'image_bad_step': 1, 'image_truncated': 1,
        'image_empty': 1, 'image_too_large': 1}
    assert h.got['poses'] == [] and h.pipeline.frames == []   # nothing published for them
    h.send(2 * 10 ** 9, info=False)                            # still alive; no camera_info
    assert h.wait(lambda: len(h.got['poses']) == 1)
    assert h.got['poses'][0].hands[0].position_status == 1     # assumed_fov fallback
    assert h.pipeline.frames[0].camera.mode.value == 'assumed_fov'
    assert h.node.stats.bad_input['camera_info_missing'] == 1


def test_bad_camera_info_falls_back_and_nan_hands_are_never_published(harness):
    h = harness(overrides=[('camera.fallback_mode', 'weak_perspective')])
    h.pipeline.nan_hand = True
    info = camera_info(5, fx=float('nan'))
    h.info_pub.publish(info)
    h.send(5, info=False)
    assert h.wait(lambda: len(h.got['poses']) == 1 and len(h.got['tf']) == 1)
    assert h.pipeline.frames[0].camera is None
    pose_msg = h.got['poses'][0]
    assert [p.side for p in pose_msg.hands] == [1]        # the NaN left hand was dropped
    assert pose_msg.hands[0].position_status == 2
    assert len(h.got['mesh'][0].hands) == 1
    assert len(h.got['tf'][0].transforms) == MODEL.n_bones + 5
    assert h.node.stats.rejected_hands['non_finite'] == 1
    assert h.node.stats.bad_input['camera_info_invalid'] == 1


def test_pipeline_errors_publish_nothing_and_do_not_stop_the_node(harness):
    h = harness()
    h.pipeline.fail_with = HandMeshError('model input mismatch')
    h.send(1)
    assert h.wait(lambda: h.node.stats.errors['pipeline_HandMeshError'] == 1)
    h.pipeline.fail_with = RuntimeError('a bug')
    h.send(2)
    assert h.wait(lambda: len(h.pipeline.frames) == 2)
    h.send(3)
    assert h.wait(lambda: h.node.stats.errors['unexpected_RuntimeError'] == 2)
    assert h.got['poses'] == []
    h.pipeline.fail_with = None
    h.send(4)
    assert h.wait(lambda: len(h.got['poses']) == 1)
    assert _stamp(h.got['poses'][0]) == 4


def test_latest_frame_wins_and_drops_are_counted(harness):
    h = harness(delay_s=0.2)
    for i in range(12):
        h.send(100 + i)
        time.sleep(0.02)
    stats = h.node.stats
    assert h.wait(lambda: stats.counts['processed'] + stats.counts['dropped'] == 12,
                  timeout_s=8.0)
    assert stats.counts['received'] == 12
    assert stats.counts['dropped'] >= 6
    processed = [f.stamp_ns for f in h.pipeline.frames]
    assert processed[-1] == 111                     # the newest image is always processed
    assert processed == sorted(processed)
    assert h.wait(lambda: len(h.got['poses']) == len(processed))   # delivery after counting
    assert [_stamp(m) for m in h.got['poses']] == processed


def test_parameters_are_validated_and_applied_at_run_time(harness):
    h = harness(overrides=[('detection.max_hands', 3), ('output.tf_prefix', 'hm')])
    assert h.pipeline.config.detection.max_hands == 3
    results = h.node.set_parameters([Parameter('detection.min_detection_score', value=1.5)])
    assert not results[0].successful
    results = h.node.set_parameters([Parameter('model.variant', value='lite')])
    assert not results[0].successful
    results = h.node.set_parameters([Parameter('camera.fallback_mode', value='magic')])
    assert not results[0].successful and 'one of' in results[0].reason
    results = h.node.set_parameters([Parameter('output.tf_prefix', value='9bad name')])
    assert not results[0].successful
    results = h.node.set_parameters([Parameter('detection.min_detection_score', value=0.7),
                                     Parameter('tailor.w_twist', value=3.0)])
    assert all(r.successful for r in results)
    assert h.node.get_parameter('tailor.w_twist').value == 3.0
    h.send(7)
    assert h.wait(lambda: len(h.got['tf']) == 1)
    config = h.pipeline.configs[-1]
    assert config.detection.min_detection_score == 0.7 and config.tailor.w_twist == 3.0
    assert config.detection.max_hands == 3
    assert h.got['tf'][0].transforms[0].child_frame_id.startswith('hm_right_')
    assert h.node.set_parameters([Parameter('output.tf_prefix', value='hx')])[0].successful
    h.send(8)
    assert h.wait(lambda: len(h.got['tf']) == 2)
    assert h.got['tf'][1].transforms[0].child_frame_id.startswith('hx_right_')


def test_the_params_file_is_accepted_by_rcl_at_start_up(harness):
    h = harness(args=['--ros-args', '--params-file', 'config/hand_mesh.yaml'])
    assert h.node.get_parameter('model.variant').value == 'full'
    assert h.node.get_parameter('tailor.w_joints3d').value == PipelineConfig().tailor.w_joints3d
    assert h.node.get_parameter('input.max_image_pixels').value == 4096 * 4096


def test_node_process_with_missing_models_exits_with_one_clear_error(tmp_path):
    proc = subprocess.run(
        [sys.executable, '-m', 'hand_mesh_ros.ros.node', '--ros-args',
         '-p', 'model.models_dir:=%s' % (tmp_path / 'no_models_here')],
        capture_output=True, text=True, timeout=60,
        env=dict(os.environ, ROS_DOMAIN_ID=str(random.randint(120, 220))))
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output
    assert 'cannot start' in output and 'no_models_here' in output
    assert 'Traceback' not in output


def test_compressed_input_is_decoded(harness):
    h = harness(overrides=[('input.compressed', True)])
    pub = h.probe.create_publisher(CompressedImage, 'image/compressed',
                                   QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
    assert h.wait(lambda: pub.get_subscription_count() > 0)
    rgb = np.zeros((240, 320, 3), np.uint8)
    rgb[:, :, 0] = 200
    ok, png = cv2.imencode('.png', rgb[:, :, ::-1])
    msg = CompressedImage(format='png')
    msg.header.frame_id = 'cam_optical'
    msg.header.stamp.sec, msg.header.stamp.nanosec = 3, 44
    msg.data = png.tobytes()
    h.info_pub.publish(camera_info(3 * 10 ** 9 + 44))
    pub.publish(msg)
    assert h.wait(lambda: len(h.got['poses']) == 1)
    assert _stamp(h.got['poses'][0]) == 3 * 10 ** 9 + 44
    np.testing.assert_array_equal(h.pipeline.frames[0].rgb, rgb)
    assert h.pipeline.frames[0].camera.fx == FX
    msg.data = b'garbage' * 3
    pub.publish(msg)
    assert h.wait(lambda: h.node.stats.bad_input['image_unsupported_format'] == 1)
