"""Start hand_fusion_node: the hands of several cameras fused in one frame.

    ros2 launch hand_mesh_ros fusion.launch.py cameras:=cam_left,cam_right
    ros2 launch hand_mesh_ros fusion.launch.py cameras:=cam_left,cam_right fusion_frame:=base_link
        collision_objects:=true          (one command line)

Each camera is a hand_mesh_node in its own namespace (camera.launch.py namespace:=cam_left
...), publishing <namespace>/hand/poses; the transform from fusion_frame to each camera's
optical frame must be on /tf or /tf_static (a static_transform_publisher per camera for
fixed mounts). An argument left empty keeps the params file's value.

The arguments are checked before anything starts (one OpaqueFunction): an empty camera
list, a missing params_file or an unknown log level stop the launch with one error.
Plain launch actions only (no eval, no subprocess), for Humble, Jazzy and Kilted.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch_ros.actions import Node

LOG_LEVELS = ('debug', 'info', 'warn', 'error', 'fatal')
TRUE_VALUES, FALSE_VALUES = ('true', '1'), ('false', '0')


def check_arguments(values):
    """Return the list of problems with the launch arguments ``values`` ({name: str})."""
    problems = []
    if not values['cameras'].replace(',', ' ').split():
        problems.append('cameras:= names no camera (e.g. cameras:=cam_left,cam_right)')
    if not os.path.isfile(values['params_file']):
        problems.append('params_file %s does not exist' % values['params_file'])
    if values['log_level'].strip().lower() not in LOG_LEVELS:
        problems.append('log_level:=%s is not one of %s' % (values['log_level'],
                                                            ', '.join(LOG_LEVELS)))
    for name in ('collision_objects', 'use_sim_time'):
        text = values[name].strip().lower()
        if text and text not in TRUE_VALUES + FALSE_VALUES:
            problems.append('%s:=%s is not true or false' % (name, values[name]))
    return problems


def overrides(values):
    """Return the node parameters set by arguments that are not left empty."""
    out = {'input.cameras': values['cameras'],
           'use_sim_time': values['use_sim_time'].strip().lower() in TRUE_VALUES}
    if values['fusion_frame'].strip():
        out['fusion.frame'] = values['fusion_frame'].strip()
    if values['tf_prefix'].strip():
        out['output.tf_prefix'] = values['tf_prefix'].strip()
    if values['collision_objects'].strip():
        out['output.collision_objects'] = (values['collision_objects'].strip().lower()
                                           in TRUE_VALUES)
    return out


def _nodes(context):
    """Check every argument, then return the fusion node (raise: nothing starts)."""
    values = dict(context.launch_configurations)
    problems = check_arguments(values)
    if problems:
        raise RuntimeError('fusion.launch.py: nothing started: ' + '; '.join(problems))
    level = values['log_level'].strip().lower()
    return [Node(package='hand_mesh_ros', executable='hand_fusion_node',
                 name='hand_fusion_node', output='screen',
                 parameters=[values['params_file'], overrides(values)],
                 arguments=['--ros-args', '--log-level', 'hand_fusion_node:=%s' % level])]


def generate_launch_description():
    """Return the launch description: arguments, then one action that checks and starts."""
    share = get_package_share_directory('hand_mesh_ros')
    arguments = [
        DeclareLaunchArgument(
            'cameras', default_value='',
            description='The cameras, comma separated: namespaces of hand_mesh_nodes '
                        '(<namespace>/hand/poses) or topics ending in poses.'),
        DeclareLaunchArgument(
            'fusion_frame', default_value='',
            description="Frame of the fused hands, e.g. world or base_link ('' = the "
                        "params file's fusion.frame)."),
        DeclareLaunchArgument(
            'tf_prefix', default_value='',
            description="Prefix of the fused TF frames and collision object ids ('' = the "
                        "params file's output.tf_prefix)."),
        DeclareLaunchArgument(
            'collision_objects', default_value='',
            description='true: publish the fused hands on /collision_object for MoveIt '
                        "('' = the params file's output.collision_objects)."),
        DeclareLaunchArgument(
            'params_file', default_value=os.path.join(share, 'config', 'fusion.yaml'),
            description='Parameters file of hand_fusion_node (defaults: config/fusion.yaml).'),
        DeclareLaunchArgument(
            'use_sim_time', default_value='false',
            description='Use the /clock topic (a bag played with --clock) as the clock.'),
        DeclareLaunchArgument(
            'log_level', default_value='info',
            description='Log level of hand_fusion_node (debug, info, warn, error, fatal).'),
    ]
    return LaunchDescription(arguments + [OpaqueFunction(function=_nodes)])
