"""Start a camera source (or use your camera driver), hand_mesh_node and optionally RViz.

    ros2 launch hand_mesh_ros camera.launch.py                      # the sample video
    ros2 launch hand_mesh_ros camera.launch.py source:=webcam:0 rviz:=true
    ros2 launch hand_mesh_ros camera.launch.py driver:=realsense2_camera   # or depthai_ros,
        usb_cam, v4l2_camera: topic names from config/drivers/<driver>.yaml
    ros2 launch hand_mesh_ros camera.launch.py use_camera_source:=false
        image_topic:=/camera/color/image_raw camera_info_topic:=/camera/color/camera_info
        (one command line)
    ros2 launch hand_mesh_ros camera.launch.py namespace:=left_cam     # /left_cam/hand/...

The node's parameters come from params_file; a launch argument overrides the file only when
it is given (its default, '', passes nothing). The arguments are checked before anything
starts (one OpaqueFunction, evaluated ahead of the nodes): an unknown value (log level,
driver, a boolean that is not true or false), a missing params_file or source file, or
rviz:=true without an installed rviz2 stop the launch with one error and no process starts.

Plain launch actions only (no eval, no subprocess), for Humble, Jazzy and Kilted.
"""

import os

from ament_index_python.packages import get_package_prefix, get_package_share_directory
from ament_index_python.packages import PackageNotFoundError
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch_ros.actions import Node
import yaml

#: Levels accepted by ``--log-level`` (rcutils severities).
LOG_LEVELS = ('debug', 'info', 'warn', 'error', 'fatal')
#: Launch-argument spellings of booleans (those IfCondition accepts).
TRUE_VALUES, FALSE_VALUES = ('true', '1'), ('false', '0')
#: Camera drivers with a topic preset in config/drivers/<name>.yaml.
DRIVERS = ('realsense2_camera', 'depthai_ros', 'usb_cam', 'v4l2_camera')
#: The keys of a driver preset.
PRESET_KEYS = ('image_topic', 'camera_info_topic', 'depth_topic', 'depth_camera_info_topic',
               'camera_frame', 'rectified')
#: Launch argument -> the node parameter it sets when given (not '').
PARAMETER_ARGUMENTS = {'depth_topic': 'input.depth_topic',
                       'depth_camera_info_topic': 'input.depth_camera_info_topic',
                       'tf_prefix': 'output.tf_prefix'}
#: Boolean launch arguments ('' = from params_file) -> the node parameter.
FLAG_PARAMETERS = {'rectified': 'input.rectified', 'compressed': 'input.compressed'}


def _flag(value, name, problems, allow_empty=False):
    """Return the boolean of launch argument ``name``; record a problem if it is not one."""
    text = value.strip().lower()
    allowed = TRUE_VALUES + FALSE_VALUES + (('',) if allow_empty else ())
    if text not in allowed:
        problems.append('%s:=%s is not true or false%s'
                        % (name, value, " (or '' for the params file's value)"
                           if allow_empty else ''))
    return text in TRUE_VALUES


def logger_name(namespace, node_name):
    """Return the rcutils logger name of a node: '/a/b' + 'n' -> 'a.b.n'."""
    parts = [p for p in namespace.split('/') if p] + [node_name]
    return '.'.join(parts)


def driver_preset(driver, config_dir):
    """Return the topic preset of ``driver`` ({} for none) from config/drivers/<driver>.yaml."""
    if not driver:
        return {}
    with open(os.path.join(config_dir, 'drivers', driver + '.yaml'), encoding='utf-8') as f:
        preset = yaml.safe_load(f)
    return {key: preset[key] for key in PRESET_KEYS}


def _check_files(values, problems):
    if not os.path.isfile(values['params_file']):
        problems.append('params_file %s does not exist' % values['params_file'])
    if _flag(values['use_camera_source'], 'use_camera_source', problems):
        source = values['source']
        if source and not source.startswith('webcam:') and not os.path.exists(source):
            problems.append('source %s does not exist' % source)
        if values['driver']:
            problems.append('driver:=%s needs use_camera_source:=false (the driver is the '
                            'camera)' % values['driver'])


def check_arguments(values):
    """Return the list of problems with the launch arguments ``values`` ({name: str})."""
    problems = []
    level = values['log_level'].strip().lower()
    if level not in LOG_LEVELS:
        problems.append('log_level:=%s is not one of %s' % (values['log_level'],
                                                            ', '.join(LOG_LEVELS)))
    if values['driver'] and values['driver'] not in DRIVERS:
        problems.append('driver:=%s is not one of %s' % (values['driver'], ', '.join(DRIVERS)))
    _check_files(values, problems)
    for name in ('loop', 'use_sim_time'):
        _flag(values[name], name, problems)
    for name in FLAG_PARAMETERS:
        _flag(values[name], name, problems, allow_empty=True)
    if _flag(values['rviz'], 'rviz', problems):
        try:
            get_package_prefix('rviz2')
        except PackageNotFoundError:
            problems.append("rviz:=true but package 'rviz2' is not installed (install "
                            'ros-$ROS_DISTRO-rviz2 or leave rviz:=false)')
        if not os.path.isfile(values['rviz_config']):
            problems.append('rviz_config %s does not exist' % values['rviz_config'])
    return problems


def node_overrides(values, preset):
    """Return the node parameters the arguments set: only those given, or from the preset."""
    overrides = {}
    for argument, parameter in PARAMETER_ARGUMENTS.items():
        value = values[argument] or preset.get(argument, '')
        if value:
            overrides[parameter] = value
    for argument, parameter in FLAG_PARAMETERS.items():
        text = values[argument].strip().lower() or str(preset.get(argument, '')).lower()
        if text:
            overrides[parameter] = text in TRUE_VALUES
    return overrides


def topic_remappings(values, preset):
    """Return the image, compressed image and camera_info remappings of the nodes."""
    image = values['image_topic'] or preset.get('image_topic') or 'image'
    info = values['camera_info_topic'] or preset.get('camera_info_topic') or 'camera_info'
    return [('image', image), ('image/compressed', image + '/compressed'),
            ('camera_info', info)]


def rviz_fixed_frame(values, preset):
    """Return RViz's fixed frame: the argument, else the camera frame in use."""
    return values['rviz_fixed_frame'] or preset.get('camera_frame') or values['frame_id']


def _rviz_node(values, namespace, preset, sim_time):
    # The RViz configuration names /hand/...: point it at this namespace's topics.
    remaps = [('/hand/%s' % topic, '%s/hand/%s' % (namespace, topic))
              for topic in ('markers', 'debug_image')] if namespace else []
    return Node(package='rviz2', executable='rviz2', name='rviz2', output='screen',
                namespace=namespace or None,
                arguments=['-d', values['rviz_config'],
                           '-f', rviz_fixed_frame(values, preset)],
                parameters=[{'use_sim_time': sim_time}], remappings=remaps)


def _nodes(context):
    """Check every argument, then return the nodes to start (raise: nothing starts)."""
    values = dict(context.launch_configurations)
    problems = check_arguments(values)
    if problems:
        raise RuntimeError('camera.launch.py: nothing started: ' + '; '.join(problems))
    namespace = '/' + values['namespace'].strip('/') if values['namespace'].strip('/') else ''
    level = values['log_level'].strip().lower()
    sim_time = values['use_sim_time'].strip().lower() in TRUE_VALUES
    preset = driver_preset(values['driver'], os.path.join(
        get_package_share_directory('hand_mesh_ros'), 'config'))
    remappings = topic_remappings(values, preset)

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
                    dict(node_overrides(values, preset), use_sim_time=sim_time)],
        remappings=remappings, arguments=log_args('hand_mesh_node')))
    if values['rviz'].strip().lower() in TRUE_VALUES:
        nodes.append(_rviz_node(values, namespace, preset, sim_time))
    return nodes


def _source_arguments():
    """Return the arguments of camera_source (the sample video, a video, a webcam)."""
    return [
        DeclareLaunchArgument(
            'use_camera_source', default_value='true',
            description='true: start camera_source (video file, image folder or webcam); '
                        'false: use your own camera driver (driver:=... or image_topic and '
                        'camera_info_topic).'),
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
    ]


def _input_arguments():
    """Return the arguments naming the node's inputs (a driver preset or topic names)."""
    return [
        DeclareLaunchArgument(
            'driver', default_value='',
            description='Camera driver whose topic names to use (with '
                        'use_camera_source:=false): realsense2_camera, depthai_ros, usb_cam '
                        "or v4l2_camera; presets in config/drivers/ ('' = none: image_topic "
                        'and camera_info_topic).'),
        DeclareLaunchArgument(
            'image_topic', default_value='',
            description='Image topic the node subscribes to and camera_source publishes on '
                        "('' = the driver preset's, else 'image'; relative names are in "
                        'namespace); with compressed:=true the node reads <image_topic>/'
                        'compressed.'),
        DeclareLaunchArgument(
            'camera_info_topic', default_value='',
            description="CameraInfo topic matching image_topic ('' = the driver preset's, "
                        "else 'camera_info')."),
        DeclareLaunchArgument(
            'depth_topic', default_value='',
            description='Depth image registered to the colour image (sensor_msgs/Image 16UC1 '
                        'mm or 32FC1 m), e.g. /camera/camera/aligned_depth_to_color/image_raw '
                        "('' = the driver preset's, else params_file's input.depth_topic)."),
        DeclareLaunchArgument(
            'depth_camera_info_topic', default_value='',
            description="CameraInfo of the depth image ('' = the driver preset's, else "
                        "params_file's input.depth_camera_info_topic)."),
        DeclareLaunchArgument(
            'rectified', default_value='',
            description='true: the image is rectified (image_rect): the node uses camera_info '
                        "P and not D; false: a raw image with K and D ('' = the driver "
                        "preset's, else params_file's input.rectified)."),
        DeclareLaunchArgument(
            'compressed', default_value='',
            description='true: subscribe to <image_topic>/compressed (CompressedImage) '
                        "('' = params_file's input.compressed)."),
    ]


def _node_arguments(share):
    """Return the arguments of the node's set-up, outputs, RViz and logging."""
    return [
        DeclareLaunchArgument(
            'namespace', default_value='',
            description="ROS namespace of every node ('' = none: outputs on /hand/...; "
                        "'left_cam' = /left_cam/hand/..., inputs /left_cam/image ...)."),
        DeclareLaunchArgument(
            'use_sim_time', default_value='false',
            description='Use the /clock topic (a bag played with --clock) as every '
                        "node's clock."),
        DeclareLaunchArgument(
            'params_file', default_value=os.path.join(share, 'config', 'hand_mesh.yaml'),
            description='Parameters file of hand_mesh_node (defaults: config/hand_mesh.yaml, '
                        "keyed '/**:' for any namespace); a missing file stops the launch "
                        'before anything starts.'),
        DeclareLaunchArgument(
            'tf_prefix', default_value='',
            description="Prefix of the hand TF frames ('' = params_file's output.tf_prefix; "
                        'its default derives it from the namespace: cam_a_hand in /cam_a).'),
        DeclareLaunchArgument(
            'rviz', default_value='false',
            description='Start rviz2 with the rviz_config display setup (rviz2 must be '
                        'installed: checked before anything starts).'),
        DeclareLaunchArgument(
            'rviz_config', default_value=os.path.join(share, 'config', 'hand_mesh.rviz'),
            description='RViz configuration (TF, hand markers, debug image).'),
        DeclareLaunchArgument(
            'rviz_fixed_frame', default_value='',
            description="RViz's fixed frame ('' = the camera frame in use: the driver "
                        "preset's camera frame, else frame_id)."),
        DeclareLaunchArgument(
            'log_level', default_value='info',
            description='Log level of camera_source and hand_mesh_node only (debug, info, '
                        'warn, error, fatal); rcl and the middleware keep theirs.'),
    ]


def generate_launch_description():
    """Return the launch description: arguments, then one action that checks and starts."""
    share = get_package_share_directory('hand_mesh_ros')
    arguments = _source_arguments() + _input_arguments() + _node_arguments(share)
    return LaunchDescription(arguments + [OpaqueFunction(function=_nodes)])
