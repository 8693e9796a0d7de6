"""Two cameras, two nodes, two namespaces: separate processes over real DDS, no cross-talk.

camera_source and hand_mesh_node run in /cam_a (the sample video's first frames) and in /cam_b
(the two-hand photo hands.jpg, another frame id), both downscaled so that the middleware's
default transports carry them, started as a user would with ``-r __ns:=/cam_x`` and no topic
remapping: the relative topics (image, camera_info, hand/poses ...) resolve inside each
namespace. This test process subscribes like a controller and RViz: each namespace's outputs
come from its own camera only, both nodes publish hands, their TF child frames never meet and
every frame on /tf has exactly one parent. Then /cam_b is given /cam_a's tf prefix at run
time and both nodes' /diagnostics report the clash.
"""

import sys
import time

import cv2
from dds_cell import isolated_environment, require_models
import pytest

rclpy = pytest.importorskip('rclpy', reason='ROS 2 (rclpy) is not installed: run bootstrap.sh')

from hand_mesh_ros.paths import data_dir  # noqa: E402
from hand_mesh_ros.ros import processes  # noqa: E402

FRAMES = 12
SCALE = 0.35
FRAME_IDS = {'cam_a': 'cam_a_color_optical_frame', 'cam_b': 'cam_b_color_optical_frame'}


def _write_frames(folder, photo):
    """Write FRAMES real hand images: the sample video's first frames, or the photo."""
    folder.mkdir()
    capture = cv2.VideoCapture(str(data_dir() / 'asl_hand.25fps.mp4'))
    for index in range(FRAMES):
        ok, bgr = capture.read()
        assert ok
        if photo:
            bgr = cv2.imread(str(data_dir() / 'hands.jpg'))
        small = cv2.resize(bgr, None, fx=SCALE, fy=SCALE, interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(folder / ('%03d.png' % index)), small)
    capture.release()


def _parents_by_child(tf_messages):
    """Return {child frame id: set of parent frame ids} over every /tf message."""
    parents = {}
    for msg in tf_messages:
        for transform in msg.transforms:
            parents.setdefault(transform.child_frame_id, set()).add(transform.header.frame_id)
    return parents


def _tree_below(root, parents):
    """Return the frames whose chain of parents reaches ``root``."""
    below, grown = set(), True
    while grown:
        grown = False
        for child, of in parents.items():
            if child not in below and (root in of or of & below):
                below.add(child)
                grown = True
    return below


def _start(name, argv, tmp_path, env):
    return processes.ManagedProcess(name, argv, tmp_path / ('%s.log' % name), env)


class _Controller:
    """This process's view of the robot cell: poses per namespace, /tf and /diagnostics."""

    def __init__(self, domain):
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from tf2_msgs.msg import TFMessage
        from hand_mesh_ros.msg import HandPoseArray
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain)
        self.node = rclpy.create_node('namespace_probe', context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.poses = {'/cam_a/hand/poses': [], '/cam_b/hand/poses': [], '/hand/poses': []}
        self.tf = []
        self.diagnostics = {}
        reliable = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        for topic in self.poses:
            self.node.create_subscription(
                HandPoseArray, topic, lambda msg, topic=topic: self.poses[topic].append(msg),
                reliable)
        self.node.create_subscription(TFMessage, '/tf', self.tf.append, QoSProfile(depth=100))
        self.node.create_subscription(DiagnosticArray, '/diagnostics', lambda msg: (
            self.diagnostics.update({s.name: s for s in msg.status})), 10)

    def with_hands(self, cam):
        return [m for m in self.poses['/%s/hand/poses' % cam] if m.hands]

    def spin_until(self, predicate, children, timeout_s):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not predicate():
            self.executor.spin_once(timeout_sec=0.1)
            dead = [c.name for c in children if not c.running()]
            assert not dead, '%s exited:\n%s' % (dead, '\n'.join(
                c.log_tail() for c in children if not c.running()))
        return predicate()

    def set_parameter(self, fqn, name, value):
        from rclpy.parameter import Parameter
        from rclpy.parameter_client import AsyncParameterClient
        client = AsyncParameterClient(self.node, fqn)
        assert client.wait_for_services(timeout_sec=30.0)
        future = client.set_parameters([Parameter(name, value=value)])
        self.executor.spin_until_future_complete(future, timeout_sec=20.0)
        return future.result().results[0]

    def close(self):
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


def _start_camera(cam, tmp_path, env):
    """Start camera_source and hand_mesh_node in /<cam>; return the two processes."""
    _write_frames(tmp_path / cam, photo=(cam == 'cam_b'))
    node_argv = [sys.executable, '-m', 'hand_mesh_ros.ros.node', '--ros-args',
                 '--params-file', str(processes.config_file('hand_mesh.yaml')),
                 '-r', '__ns:=/%s' % cam]
    source_argv = [sys.executable, '-m', 'hand_mesh_ros.ros.camera_source',
                   '--ros-args', '-r', '__ns:=/%s' % cam,
                   '-p', 'source:=%s' % (tmp_path / cam),
                   '-p', 'frame_id:=%s' % FRAME_IDS[cam], '-p', 'rate_hz:=4.0',
                   '-p', 'loop:=true', '-p', 'wait_for_subscribers:=1']
    return [_start('node_' + cam, node_argv, tmp_path, env),
            _start('source_' + cam, source_argv, tmp_path, env)]


def _check_outputs_apart(probe, topics, publishers_on_root, logs):
    for cam in ('cam_a', 'cam_b'):
        assert len(probe.with_hands(cam)) >= 5, logs
        assert all(m.header.frame_id == FRAME_IDS[cam]
                   for m in probe.poses['/%s/hand/poses' % cam])
        for suffix in ('image', 'camera_info', 'hand/poses', 'hand/mesh'):
            assert '/%s/%s' % (cam, suffix) in topics, sorted(topics)
    assert probe.poses['/hand/poses'] == [] and publishers_on_root == 0
    assert '/tf' in topics and '/image' not in topics


def _check_tf_trees_apart(tf_messages):
    parents = _parents_by_child(tf_messages)
    two_parents = {child: of for child, of in parents.items() if len(of) != 1}
    assert two_parents == {}, two_parents
    trees = {cam: _tree_below(FRAME_IDS[cam], parents) for cam in FRAME_IDS}
    assert trees['cam_a'] and trees['cam_b']
    assert trees['cam_a'].isdisjoint(trees['cam_b'])
    assert trees['cam_a'] | trees['cam_b'] == set(parents)
    assert all(f.startswith('cam_a_hand_') for f in trees['cam_a']), sorted(trees['cam_a'])
    assert all(f.startswith('cam_b_hand_') for f in trees['cam_b']), sorted(trees['cam_b'])
    assert 'cam_a_hand_right_wrist' in trees['cam_a'] or 'cam_a_hand_left_wrist' in trees['cam_a']


@pytest.mark.slow
def test_two_cameras_publish_hands_under_their_own_frames_and_report_a_clash(tmp_path):
    require_models()
    env, domain = isolated_environment(shared_memory=False)
    probe = _Controller(domain)
    children = []
    try:
        for cam in FRAME_IDS:
            children += _start_camera(cam, tmp_path, env)
        statuses = ('cam_a/hand_mesh_node: pipeline', 'cam_b/hand_mesh_node: pipeline')
        probe.spin_until(lambda: (len(probe.with_hands('cam_a')) >= 5
                                  and len(probe.with_hands('cam_b')) >= 5
                                  and set(statuses) <= set(probe.diagnostics)), children, 180.0)
        topics = dict(probe.node.get_topic_names_and_types())
        publishers_on_root = probe.node.count_publishers('/hand/poses')
        tf_apart = list(probe.tf)
        healthy = {name: probe.diagnostics[name] for name in statuses
                   if name in probe.diagnostics}
        # A user's mistake: /cam_b given /cam_a's prefix. Both nodes now see one frame with
        # two parents on /tf and their diagnostics say so.
        result = probe.set_parameter('/cam_b/hand_mesh_node', 'output.tf_prefix', 'cam_a_hand')
        assert result.successful, result.reason
        probe.diagnostics.clear()

        def clash_reported():
            return all('TF frame clash' in getattr(probe.diagnostics.get(name), 'message', '')
                       for name in statuses)
        clash = probe.spin_until(clash_reported, children, 60.0)
    finally:
        for child in children:
            child.stop()
        probe.close()
    logs = '\n'.join('--- %s\n%s' % (c.name, c.log_path.read_text()[-1500:]) for c in children)
    _check_outputs_apart(probe, topics, publishers_on_root, logs)
    _check_tf_trees_apart(tf_apart)
    assert set(healthy) == set(statuses)
    assert all('clash' not in s.message for s in healthy.values())
    assert clash, {n: s.message for n, s in probe.diagnostics.items()}
    values = {k.key: k.value for k in probe.diagnostics[statuses[1]].values}
    assert any("'cam_a_hand_" in v and 'also published under' in v
               for k, v in values.items() if k.startswith('tf_frame_clash.')), values
