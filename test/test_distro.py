"""What makes the node right on every supported distribution and with real camera drivers.

- Fast DDS 2.x (Humble, Jazzy) and 3.x (Kilted) read different profile variables: every
  environment the project builds sets both.
- A driver without calibration publishes K all zero: the node uses its assumed-FOV fallback,
  and says "assumed" (never full intrinsics) in the resolution it reports.
- Output topics are relative (namespaced with the node), /tf and /diagnostics absolute.
"""

import pytest

from hand_mesh_ros.ros import processes

rclpy = pytest.importorskip('rclpy', reason='ROS 2 (rclpy) is not installed: run bootstrap.sh')


def test_dds_environment_sets_both_fast_dds_profile_variables():
    env = processes.dds_environment(base={'PATH': '/bin'})
    assert processes.PROFILE_VARIABLES == ('FASTRTPS_DEFAULT_PROFILES_FILE',
                                           'FASTDDS_DEFAULT_PROFILES_FILE')
    paths = {env[name] for name in processes.PROFILE_VARIABLES}
    assert len(paths) == 1 and paths.pop().endswith('config/fastdds_shm.xml')
    # Without shared memory, the caller's own settings are kept (children and parent match).
    plain = processes.dds_environment(base={'FASTRTPS_DEFAULT_PROFILES_FILE': '/x.xml'},
                                      shared_memory=False)
    assert plain['FASTRTPS_DEFAULT_PROFILES_FILE'] == '/x.xml'
    assert 'FASTDDS_DEFAULT_PROFILES_FILE' not in plain


def test_apply_dds_profile_copies_both_variables_into_this_process():
    target = {}
    processes.apply_dds_profile(processes.dds_environment(base={}), target=target)
    assert set(target) == set(processes.PROFILE_VARIABLES)


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
    assert report['profile_variables'] == list(processes.PROFILE_VARIABLES)
    (case,) = report['cases']
    assert case['sent'] == 12 and case['size'] == '160x120' and case['setting'] == 'recommended'
    assert 10 <= case['received'] <= 12   # small images over shared memory: (nearly) all
    assert 0.0 < case['latency_p50_ms'] < 5000.0
