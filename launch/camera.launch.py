"""Start a camera source (or use your camera driver), hand_mesh_node and optionally RViz.

    ros2 launch hand_mesh_ros camera.launch.py                      # the sample video
    ros2 launch hand_mesh_ros camera.launch.py source:=webcam:0 rviz:=true
    ros2 launch hand_mesh_ros camera.launch.py use_camera_source:=false
        image_topic:=/camera/color/image_raw camera_info_topic:=/camera/color/camera_info
        (one command line)
    ros2 launch hand_mesh_ros camera.launch.py namespace:=left_cam     # /left_cam/hand/...

The arguments are checked before anything starts (one OpaqueFunction, evaluated ahead of the
nodes): an unknown log level, a missing params_file or source file, or rviz:=true without an
installed rviz2 stop the launch with one error and no process is started.

Plain launch actions only (no eval, no subprocess), for Humble, Jazzy and Kilted.
"""

import os

from ament_index_python.packages import get_package_prefix, get_package_share_directory
from ament_index_python.packages import PackageNotFoundError
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch_ros.actions import Node

#: Levels accepted by ``--log-level`` (rcutils severities).
LOG_LEVELS = ('debug', 'info', 'warn', 'error', 'fatal')
#: Launch-argument spellings of booleans (those IfCondition accepts).
TRUE_VALUES, FALSE_VALUES = ('true', '1'), ('false', '0')


def _flag(value, name, problems):
    """Return the boolean of launch argument ``name``; record a problem if it is not one."""
    text = value.strip().lower()
    if text not in TRUE_VALUES + FALSE_VALUES:
        problems.append('%s:=%s is not true or false' % (name, value))
    return text in TRUE_VALUES


def logger_name(namespace, node_name):
    """Return the rcutils logger name of a node: '/a/b' + 'n' -> 'a.b.n'."""
    parts = [p for p in namespace.split('/') if p] + [node_name]
    return '.'.join(parts)


def check_arguments(values):
    """Return the list of problems with the launch arguments ``values`` ({name: str})."""
    problems = []
    level = values['log_level'].strip().lower()
    if level not in LOG_LEVELS:
        problems.append('log_level:=%s is not one of %s' % (values['log_level'],
                                                            ', '.join(LOG_LEVELS)))
    if not os.path.isfile(values['params_file']):
        problems.append('params_file %s does not exist' % values['params_file'])
    if _flag(values['use_camera_source'], 'use_camera_source', problems):
        source = values['source']
        if source and not source.startswith('webcam:') and not os.path.exists(source):
            problems.append('source %s does not exist' % source)
    _flag(values['loop'], 'loop', problems)
    _flag(values['use_sim_time'], 'use_sim_time', problems)
    if _flag(values['rviz'], 'rviz', problems):
        try:
            get_package_prefix('rviz2')
        except PackageNotFoundError:
            problems.append("rviz:=true but package 'rviz2' is not installed (install "
                            'ros-$ROS_DISTRO-rviz2 or leave rviz:=false)')
        if not os.path.isfile(values['rviz_config']):
            problems.append('rviz_config %s does not exist' % values['rviz_config'])
    return problems


def _nodes(context):
    """Check every argument, then return the nodes to start (raise: nothing starts)."""
    values = dict(context.launch_configurations)
    problems = check_arguments(values)
    if problems:
        raise RuntimeError('camera.launch.py: nothing started: ' + '; '.join(problems))
    namespace = '/' + values['namespace'].strip('/') if values['namespace'].strip('/') else ''
    level = values['log_level'].strip().lower()
    sim_time = values['use_sim_time'].strip().lower() in TRUE_VALUES
    remappings = [('image', values['image_topic']),
                  ('camera_info', values['camera_info_topic'])]

    def log_args(name):
        # Only our node's logger (not rcl/rmw): --log-level <logger>:=<level>.
        return ['--ros-args', '--log-level', '%s:=%s' % (logger_name(namespace, name), level)]

    nodes = []
    if values['use_camera_source'].strip().lower() in TRUE_VALUES:
        nodes.append(Node(
            package='hand_mesh_ros', executable='camera_source', name='camera_source',
            namespace=namespace or None, output='screen',
            parameters=[{'source': values['source'],
                         'camera_info_url': values['camera_info_url'],
                         'frame_id': values['frame_id'],
                         'rate_hz': float(values['rate_hz']),
                         'loop': values['loop'].strip().lower() in TRUE_VALUES,
                         # Publish only once hand_mesh_node subscribes: no lost first frames.
                         'wait_for_subscribers': 1,
                         'use_sim_time': sim_time}],
            remappings=remappings, arguments=log_args('camera_source')))
    nodes.append(Node(
        package='hand_mesh_ros', executable='hand_mesh_node', name='hand_mesh_node',
        namespace=namespace or None, output='screen',
        parameters=[values['params_file'],
                    {'use_sim_time': sim_time, 'input.depth_topic': values['depth_topic']}],
        remappings=remappings, arguments=log_args('hand_mesh_node')))
    if values['rviz'].strip().lower() in TRUE_VALUES:
        # The RViz configuration names /hand/...: point it at this namespace's topics.
        rviz_remaps = [('/hand/%s' % topic, '%s/hand/%s' % (namespace, topic))
                       for topic in ('markers', 'debug_image')] if namespace else []
        nodes.append(Node(
            package='rviz2', executable='rviz2', name='rviz2', output='screen',
            namespace=namespace or None, arguments=['-d', values['rviz_config']],
            parameters=[{'use_sim_time': sim_time}], remappings=rviz_remaps))
    return nodes


def generate_launch_description():
    """Return the launch description: arguments, then one action that checks and starts."""
    share = get_package_share_directory('hand_mesh_ros')
    arguments = [
        DeclareLaunchArgument(
            'namespace', default_value='',
            description="ROS namespace of every node ('' = none: outputs on /hand/...; "
                        "'left_cam' = /left_cam/hand/..., inputs /left_cam/image ...)."),
        DeclareLaunchArgument(
            'use_sim_time', default_value='false',
            description='Use the /clock topic (a bag played with --clock) as every '
                        "node's clock."),
        DeclareLaunchArgument(
            'use_camera_source', default_value='true',
            description='true: start camera_source (video file, image folder or webcam); '
                        'false: use your own camera driver publishing on image_topic and '
                        'camera_info_topic.'),
        DeclareLaunchArgument(
            'source', default_value='',
            description='camera_source input: a video file, an image folder or webcam:N '
                        "('' = the sample video asl_hand.25fps.mp4)."),
        DeclareLaunchArgument(
            'camera_info_url', default_value='',
            description='Calibration YAML (ROS camera_info format; path, file:// or '
                        "package://) for camera_source ('' = uncalibrated: the node uses an "
                        'assumed field of view and reports every position as assumed).'),
        DeclareLaunchArgument(
            'rate_hz', default_value='0.0',
            description="camera_source publishing rate in Hz (0 = the source's own rate)."),
        DeclareLaunchArgument(
            'loop', default_value='false',
            description='camera_source: start again at the end of a video or folder.'),
        DeclareLaunchArgument(
            'frame_id', default_value='camera_optical_frame',
            description='camera_source: frame id of the published images (the camera '
                        'optical frame).'),
        DeclareLaunchArgument(
            'image_topic', default_value='image',
            description='Image topic (sensor_msgs/Image) the node subscribes to and '
                        'camera_source publishes on (relative names are in namespace).'),
        DeclareLaunchArgument(
            'camera_info_topic', default_value='camera_info',
            description='CameraInfo topic matching image_topic.'),
        DeclareLaunchArgument(
            'depth_topic', default_value='',
            description='Depth image registered to the colour image (sensor_msgs/Image 16UC1 '
                        'mm or 32FC1 m), e.g. /camera/aligned_depth_to_color/image_raw; '
                        "'' = off (colour only)."),
        DeclareLaunchArgument(
            'params_file', default_value=os.path.join(share, 'config', 'hand_mesh.yaml'),
            description='Parameters file of hand_mesh_node (defaults: config/hand_mesh.yaml); '
                        'a missing file stops the launch before anything starts.'),
        DeclareLaunchArgument(
            'rviz', default_value='false',
            description='Start rviz2 with the rviz_config display setup (rviz2 must be '
                        'installed: checked before anything starts).'),
        DeclareLaunchArgument(
            'rviz_config', default_value=os.path.join(share, 'config', 'hand_mesh.rviz'),
            description='RViz configuration (fixed frame camera_optical_frame, TF, hand '
                        'markers, debug image).'),
        DeclareLaunchArgument(
            'log_level', default_value='info',
            description='Log level of camera_source and hand_mesh_node only (debug, info, '
                        'warn, error, fatal); rcl and the middleware keep theirs.'),
    ]
    return LaunchDescription(arguments + [OpaqueFunction(function=_nodes)])
