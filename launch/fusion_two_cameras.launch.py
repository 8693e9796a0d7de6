"""Example: two cameras, a hand_mesh_node each, their mounts on /tf_static, fused hands.

    ros2 launch hand_mesh_ros fusion_two_cameras.launch.py
        left_source:=webcam:0 left_camera_info_url:=file:///path/left.yaml
        right_source:=webcam:2 right_camera_info_url:=file:///path/right.yaml
        left_pose:='0.0 -0.7 1.0 0.0 0.0 -1.5708' right_pose:='0.7 0.0 1.0 1.5708 0.0 -1.5708'
        collision_objects:=true                                          (one command line)

Starts, per camera (namespaces cam_left and cam_right): camera.launch.py (camera_source +
hand_mesh_node, frame id <namespace>_optical) and a tf2_ros static_transform_publisher from
fusion_frame to <namespace>_optical at the camera's pose ('x y z yaw pitch roll', metres
and radians, of the optical frame: z forward, x right, y down); then fusion.launch.py with
cameras:=cam_left,cam_right. The default poses put the cameras 90 degrees apart, 0.7 m
from the origin of fusion_frame at 1 m height, both looking at it (cameras at an angle fix
each other's depth; facing cameras would share one weak axis). Checked before anything
starts: each pose must be six numbers.
Plain launch actions only (no eval, no subprocess).
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription, OpaqueFunction
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch_ros.actions import Node

CAMERAS = ('left', 'right')
POSE_NAMES = ('--x', '--y', '--z', '--yaw', '--pitch', '--roll')


def pose_arguments(text):
    """Return static_transform_publisher's pose arguments of 'x y z yaw pitch roll'."""
    values = [float(v) for v in text.split()]
    if len(values) != len(POSE_NAMES):
        raise ValueError('a pose is six numbers: x y z yaw pitch roll, got %r' % text)
    out = []
    for name, value in zip(POSE_NAMES, values):
        out += [name, repr(value)]
    return out


def check_arguments(values):
    """Return the list of problems with the launch arguments ``values`` ({name: str})."""
    problems = []
    for side in CAMERAS:
        try:
            pose_arguments(values[side + '_pose'])
        except ValueError as exc:
            problems.append('%s_pose: %s' % (side, exc))
    return problems


def _actions(context):
    """Check the poses, then return both cameras, their transforms and the fusion node."""
    values = dict(context.launch_configurations)
    problems = check_arguments(values)
    if problems:
        raise RuntimeError('fusion_two_cameras.launch.py: nothing started: '
                           + '; '.join(problems))
    launch_dir = os.path.join(get_package_share_directory('hand_mesh_ros'), 'launch')
    actions = []
    for side in CAMERAS:
        namespace = 'cam_' + side
        actions.append(IncludeLaunchDescription(
            PythonLaunchDescriptionSource(os.path.join(launch_dir, 'camera.launch.py')),
            launch_arguments={'namespace': namespace, 'source': values[side + '_source'],
                              'camera_info_url': values[side + '_camera_info_url'],
                              'frame_id': namespace + '_optical'}.items()))
        actions.append(Node(
            package='tf2_ros', executable='static_transform_publisher',
            name=namespace + '_mount', output='screen',
            arguments=pose_arguments(values[side + '_pose']) + [
                '--frame-id', values['fusion_frame'],
                '--child-frame-id', namespace + '_optical']))
    actions.append(IncludeLaunchDescription(
        PythonLaunchDescriptionSource(os.path.join(launch_dir, 'fusion.launch.py')),
        launch_arguments={'cameras': ','.join('cam_' + side for side in CAMERAS),
                          'fusion_frame': values['fusion_frame'],
                          'collision_objects': values['collision_objects']}.items()))
    return actions


def generate_launch_description():
    """Return the launch description: arguments, then one action that checks and starts."""
    arguments = [
        DeclareLaunchArgument(
            'fusion_frame', default_value='world',
            description='Frame of the fused hands and parent of both camera mounts.'),
        DeclareLaunchArgument(
            'collision_objects', default_value='',
            description="true: fused hands on /collision_object for MoveIt ('' = the "
                        "fusion params file's value)."),
    ]
    for side, pose in (('left', '0.0 -0.7 1.0 0.0 0.0 -1.5708'),
                       ('right', '0.7 0.0 1.0 1.5708 0.0 -1.5708')):
        arguments += [
            DeclareLaunchArgument(
                side + '_source', default_value='',
                description='camera_source input of the %s camera: video, image folder '
                            "or webcam:N ('' = the sample video)." % side),
            DeclareLaunchArgument(
                side + '_camera_info_url', default_value='',
                description='Calibration YAML of the %s camera (path, file:// or '
                            "package://; '' = uncalibrated)." % side),
            DeclareLaunchArgument(
                side + '_pose', default_value=pose,
                description='Pose of the %s optical frame in fusion_frame: x y z yaw pitch '
                            'roll (metres, radians).' % side),
        ]
    return LaunchDescription(arguments + [OpaqueFunction(function=_actions)])
