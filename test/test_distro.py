"""What makes the node right on every supported distribution and with real camera drivers.

- Fast DDS 2.x (Humble, Jazzy) and 3.x (Kilted) read different profile variables: every
  environment the project builds sets the one the installed Fast DDS reads (both where it
  cannot tell), never the deprecated one on 3.x.
- A driver without calibration publishes K all zero: the node uses its assumed-FOV fallback,
  and says "assumed" (never full intrinsics) in the resolution it reports.
- Output topics are relative (namespaced with the node), /tf and /diagnostics absolute.
"""

import pytest

from hand_mesh_ros.ros import processes

rclpy = pytest.importorskip('rclpy', reason='ROS 2 (rclpy) is not installed: run bootstrap.sh')


def test_dds_environment_sets_the_variable_of_the_installed_fast_dds(tmp_path):
    from hand_mesh_ros.ros import dds_profile
    assert dds_profile.PROFILE_VARIABLES == ('FASTRTPS_DEFAULT_PROFILES_FILE',
                                             'FASTDDS_DEFAULT_PROFILES_FILE')
    # A ROS prefix tells the version: share/fastdds (3.x) or share/fastrtps (2.x).
    for major, share in ((3, 'fastdds'), (2, 'fastrtps')):
        prefix = tmp_path / share
        (prefix / 'share' / share).mkdir(parents=True)
        environ = {'AMENT_PREFIX_PATH': str(prefix)}
        assert dds_profile.fast_dds_major(environ) == major
        env = dds_profile.with_profile(dict(environ, FASTRTPS_DEFAULT_PROFILES_FILE='/old.xml',
                                            FASTDDS_DEFAULT_PROFILES_FILE='/old.xml'),
                                       '/cell.xml')
        assert {k: v for k, v in env.items() if k.endswith('PROFILES_FILE')} == {
            dds_profile.PROFILE_VARIABLE_BY_MAJOR[major]: '/cell.xml'}
    # This environment (the pip wheels: Fast DDS 3.x on Kilted, 2.x on Jazzy) is told apart.
    env = processes.dds_environment(base={'PATH': '/bin'})
    names = [name for name in dds_profile.PROFILE_VARIABLES if name in env]
    assert names == [dds_profile.PROFILE_VARIABLE_BY_MAJOR[dds_profile.fast_dds_major()]]
    assert env[names[0]].endswith('config/fastdds_shm.xml')
    # Without shared memory, the caller's own settings are kept (children and parent match).
    plain = processes.dds_environment(base={'FASTRTPS_DEFAULT_PROFILES_FILE': '/x.xml'},
                                      shared_memory=False)
    assert plain['FASTRTPS_DEFAULT_PROFILES_FILE'] == '/x.xml'
    assert 'FASTDDS_DEFAULT_PROFILES_FILE' not in plain


def test_the_robot_cell_profile_keeps_udp_beside_shared_memory():
    import xml.etree.ElementTree as ET
    ns = {'p': 'http://www.eprosima.com'}
    root = ET.parse(processes.config_file('fastdds_shm.xml')).getroot()
    kinds = {d.find('p:transport_id', ns).text: d.find('p:type', ns).text
             for d in root.iter('{http://www.eprosima.com}transport_descriptor')}
    used = [t.text for t in root.iter('{http://www.eprosima.com}transport_id')
            if t not in [d.find('p:transport_id', ns) for d in
                         root.iter('{http://www.eprosima.com}transport_descriptor')]]
    assert sorted(kinds[t] for t in used) == ['SHM', 'UDPv4']
    segment = int(next(root.iter('{http://www.eprosima.com}segment_size')).text)
    assert segment >= 16 * 1024 * 1024


def test_apply_dds_profile_copies_the_variables_into_this_process():
    from hand_mesh_ros.ros import dds_profile
    target = {'FASTRTPS_DEFAULT_PROFILES_FILE': '/stale.xml'}
    env = processes.dds_environment(base={})
    processes.apply_dds_profile(env, target=target)
    assert target == {k: env[k] for k in dds_profile.PROFILE_VARIABLES if k in env}


def _camera_info(k, width=640, height=480):
    from sensor_msgs.msg import CameraInfo
    msg = CameraInfo()
    msg.header.stamp.sec = 5
    msg.width, msg.height = width, height
    msg.k = list(k)
    return msg


def test_uncalibrated_camera_info_falls_back_to_assumed_fov_and_says_so():
    from hand_mesh_ros.ros import calibration, camera_info
    from hand_mesh_ros.ros.calibration import camera_info_msg
    resolver = camera_info.CameraResolver(fallback_mode='assumed_fov', assumed_hfov_deg=60.0)
    stamp = _camera_info([0.0] * 9).header.stamp
    msg = camera_info_msg(calibration.uncalibrated_calibration(640, 480), stamp, 'cam')
    assert not any(msg.k)
    resolver.add_camera_info(msg)
    resolution = resolver.resolve(5_000_000_000, 640, 480)
    assert resolution.status == camera_info.STATUS_UNCALIBRATED
    assert resolution.mode == 'assumed_fov'
    assert resolution.camera is not None and resolution.camera.mode.value == 'assumed_fov'
    assert 'uncalibrated' in resolution.problem
    # A message that is all zeros, size too, is not a driver's uncalibrated one: invalid.
    resolver.add_camera_info(_camera_info([0.0] * 9, width=0, height=0))
    assert resolver.resolve(5_000_000_000, 640, 480).status == camera_info.STATUS_INVALID
    # weak perspective when configured so; a real K is still full intrinsics.
    resolver.set_fallback('weak_perspective', 60.0)
    assert resolver.resolve(5_000_000_000, 640, 480).mode == 'weak_perspective'
    resolver.add_camera_info(_camera_info([500.0, 0, 320, 0, 500, 240, 0, 0, 1]))
    assert resolver.resolve(5_000_000_000, 640, 480).mode == 'full_intrinsics'


def test_output_topics_are_relative_except_tf_and_diagnostics():
    from rclpy.context import Context
    from hand_mesh_ros.ros.node import OUTPUT_TOPICS
    assert {k: v for k, v in OUTPUT_TOPICS.items() if v.startswith('/')} == {
        'tf': '/tf', 'diagnostics': '/diagnostics'}
    context = Context()
    rclpy.init(context=context, domain_id=14)
    try:
        node = rclpy.create_node('hand_mesh_node', namespace='/left_cam', context=context)
        resolved = {k: node.resolve_topic_name(v) for k, v in OUTPUT_TOPICS.items()}
        plain = rclpy.create_node('hand_mesh_node', context=context)
        default = {k: plain.resolve_topic_name(v) for k, v in OUTPUT_TOPICS.items()}
        node.destroy_node()
        plain.destroy_node()
    finally:
        rclpy.shutdown(context=context)
    assert default == {'poses': '/hand/poses', 'mesh': '/hand/mesh', 'markers': '/hand/markers',
                       'debug_image': '/hand/debug_image', 'tf': '/tf',
                       'diagnostics': '/diagnostics'}
    assert resolved['poses'] == '/left_cam/hand/poses'
    assert resolved['debug_image'] == '/left_cam/hand/debug_image'
    assert resolved['tf'] == '/tf' and resolved['diagnostics'] == '/diagnostics'


class _NoHandPipeline:
    """Pipeline stand-in for the clock test: every image processed, no hand found."""

    backend_name = 'test'

    def __init__(self, config, log=None):
        self.frames = []

    def process(self, frame):
        from hand_mesh_ros.core.types import FrameResult
        self.frames.append(frame)
        return FrameResult(stamp_ns=frame.stamp_ns, frame_id=frame.frame_id,
                           image_size=(frame.rgb.shape[1], frame.rgb.shape[0]))

    def update_config(self, config):
        pass

    def close(self):
        pass


@pytest.mark.parametrize('use_sim_time', [True, False])
def test_image_age_is_measured_on_the_node_clock(use_sim_time):
    """Under sim time (/clock from a bag) the age is stamp -> sim now, not wall time."""
    import time
    import numpy as np
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import Image
    from hand_mesh_ros.ros.image_conversion import rgb_to_image
    from hand_mesh_ros.ros.node import HandMeshNode
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=14)
    sim_now_ns = 1_000 * 1_000_000_000            # a bag recorded long ago: t = 1000 s
    try:
        node = HandMeshNode(pipeline_factory=_NoHandPipeline, context=context,
                            parameter_overrides=[Parameter('use_sim_time', value=use_sim_time)])
        feeder = rclpy.create_node('clock_feeder', context=context)
        clock_pub = feeder.create_publisher(Clock, '/clock', 10)
        image_pub = feeder.create_publisher(Image, 'image', 10)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        executor.add_node(feeder)
        deadline = time.monotonic() + 20.0
        while node.stats.snapshot()['age_p50_ms'] is None and time.monotonic() < deadline:
            clock = Clock()
            clock.clock.sec = sim_now_ns // 1_000_000_000
            clock_pub.publish(clock)
            stamp = Clock().clock
            stamp.sec = sim_now_ns // 1_000_000_000 - 1    # the image is 1 s old in sim time
            image_pub.publish(rgb_to_image(np.full((8, 8, 3), 50, np.uint8), stamp=stamp,
                                           frame_id='cam'))
            executor.spin_once(timeout_sec=0.1)
        age_ms = node.stats.snapshot()['age_p50_ms']
        node.close()
        executor.shutdown()
        node.destroy_node()
        feeder.destroy_node()
    finally:
        rclpy.shutdown(context=context)
    assert age_ms is not None
    if use_sim_time:
        assert 990.0 <= age_ms <= 1100.0, age_ms
    else:   # wall clock: the 1970 + 999 s stamp is decades old
        assert age_ms > 1e12, age_ms


def test_middleware_probe_counts_frames_across_processes():
    """The README's middleware figures come from this tool: it must count real deliveries."""
    import json
    import subprocess
    import sys
    proc = subprocess.run(
        [sys.executable, '-m', 'hand_mesh_ros.tools.bench.middleware_probe', '--frames', '12',
         '--sizes', '160x120', '--settings', 'recommended', '--json'],
        capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report['profile_variables'] == sorted(processes.dds_profile_variables())
    (case,) = report['cases']
    assert case['sent'] == 12 and case['size'] == '160x120' and case['setting'] == 'recommended'
    assert 10 <= case['received'] <= 12   # small images over shared memory: (nearly) all
    assert 0.0 < case['latency_p50_ms'] < 5000.0
    # The meshes reach a participant with UDPv4 only (reliable: every one).
    assert case['remote_meshes_received'] == 12
