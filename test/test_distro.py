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
