"""Two cameras, two nodes, two namespaces: separate processes over real DDS, no cross-talk.

camera_source and hand_mesh_node run in /cam_a (the sample video's first frames, downscaled so
that the middleware's default transports carry them) and in /cam_b (blank frames, another
frame id), started as a user would with ``-r __ns:=/cam_x`` and no topic remapping: the
relative topics (image, camera_info, hand/poses ...) resolve inside each namespace. This test
process subscribes like a controller and checks that each namespace's outputs come from its own
camera only, and that nothing is published on the un-namespaced /hand/poses.
"""

import random
import sys
import time

import cv2
import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy', reason='ROS 2 (rclpy) is not installed: run bootstrap.sh')

from hand_mesh_ros.paths import data_dir, models_dir  # noqa: E402
from hand_mesh_ros.ros import processes  # noqa: E402

FRAMES = 12
SCALE = 0.35


def _write_frames(folder, blank):
    folder.mkdir()
    capture = cv2.VideoCapture(str(data_dir() / 'asl_hand.25fps.mp4'))
    for index in range(FRAMES):
        ok, bgr = capture.read()
        assert ok
        small = cv2.resize(bgr, None, fx=SCALE, fy=SCALE, interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(folder / ('%03d.png' % index)),
                    np.full_like(small, 200) if blank else small)
    capture.release()


def _start(name, argv, tmp_path, env):
    return processes.ManagedProcess(name, argv, tmp_path / ('%s.log' % name), env)


@pytest.mark.slow
def test_two_nodes_in_two_namespaces_keep_their_outputs_apart(tmp_path):
    if not (models_dir() / 'hand_mesh_full.onnx').is_file():
        pytest.fail('models missing: run `hand-mesh setup-models` (bootstrap.sh does)')
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from hand_mesh_ros.msg import HandPoseArray
    domain = random.randint(150, 220)
    env = processes.dds_environment(shared_memory=False)
    env['ROS_DOMAIN_ID'] = str(domain)
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain)
    node = rclpy.create_node('namespace_probe', context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    got = {'/cam_a/hand/poses': [], '/cam_b/hand/poses': [], '/hand/poses': []}
    statuses = set()
    reliable = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
    for topic in got:
        node.create_subscription(HandPoseArray, topic,
                                 lambda msg, topic=topic: got[topic].append(msg), reliable)
    from diagnostic_msgs.msg import DiagnosticArray
    node.create_subscription(DiagnosticArray, '/diagnostics', lambda msg: statuses.update(
        s.name for s in msg.status), 10)
    children = []
    try:
        for cam, blank in (('cam_a', False), ('cam_b', True)):
            _write_frames(tmp_path / cam, blank)
            node_argv = [sys.executable, '-m', 'hand_mesh_ros.ros.node', '--ros-args',
                         '--params-file', str(processes.config_file('hand_mesh.yaml')),
                         '-r', '__ns:=/%s' % cam]
            source_argv = [sys.executable, '-m', 'hand_mesh_ros.ros.camera_source',
                           '--ros-args', '-r', '__ns:=/%s' % cam,
                           '-p', 'source:=%s' % (tmp_path / cam),
                           '-p', 'frame_id:=%s_optical_frame' % cam, '-p', 'rate_hz:=4.0',
                           '-p', 'loop:=true', '-p', 'wait_for_subscribers:=1']
            children.append(_start('node_' + cam, node_argv, tmp_path, env))
            children.append(_start('source_' + cam, source_argv, tmp_path, env))
        deadline = time.monotonic() + 150.0
        while time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
            if (sum(1 for m in got['/cam_a/hand/poses'] if m.hands) >= 5
                    and len(got['/cam_b/hand/poses']) >= 5 and len(statuses) >= 2):
                break
            dead = [c.name for c in children if not c.running()]
            assert not dead, '%s exited:\n%s' % (dead, '\n'.join(
                c.log_tail() for c in children if not c.running()))
        topics = dict(node.get_topic_names_and_types())
        publishers_on_root = node.count_publishers('/hand/poses')
    finally:
        for child in children:
            child.stop()
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)
    logs = '\n'.join('--- %s\n%s' % (c.name, c.log_path.read_text()[-1500:]) for c in children)
    with_hand = [m for m in got['/cam_a/hand/poses'] if m.hands]
    assert len(with_hand) >= 5, logs
    assert len(got['/cam_b/hand/poses']) >= 5, logs
    assert all(m.header.frame_id == 'cam_a_optical_frame' for m in got['/cam_a/hand/poses'])
    assert all(m.header.frame_id == 'cam_b_optical_frame' and not m.hands
               for m in got['/cam_b/hand/poses'])
    assert got['/hand/poses'] == [] and publishers_on_root == 0
    # One /diagnostics status per node, named after it.
    assert statuses == {'cam_a/hand_mesh_node: pipeline', 'cam_b/hand_mesh_node: pipeline'}
    for cam in ('cam_a', 'cam_b'):
        for suffix in ('image', 'camera_info', 'hand/poses', 'hand/mesh'):
            assert '/%s/%s' % (cam, suffix) in topics, sorted(topics)
    assert '/tf' in topics and '/image' not in topics
