"""Start a camera source (or use your camera driver), hand_mesh_node and optionally RViz.

    ros2 launch hand_mesh_ros camera.launch.py                      # the sample video
    ros2 launch hand_mesh_ros camera.launch.py source:=webcam:0 rviz:=true
    ros2 launch hand_mesh_ros camera.launch.py use_camera_source:=false
        image_topic:=/camera/color/image_raw camera_info_topic:=/camera/color/camera_info
        (one command line)

Plain launch actions only (no eval, no subprocess), for Humble, Jazzy and Kilted.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue


def generate_launch_description():
    """Return the launch description: arguments, camera_source, hand_mesh_node, rviz2."""
    share = get_package_share_directory('hand_mesh_ros')
    arguments = [
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
                        "package://) for camera_source ('' = an assumed 60 degree horizontal "
                        'field of view, logged as such).'),
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
                        'camera_source publishes on.'),
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
            description='Parameters file of hand_mesh_node (defaults: config/hand_mesh.yaml).'),
        DeclareLaunchArgument(
            'rviz', default_value='false',
            description='Start rviz2 with the rviz_config display setup.'),
        DeclareLaunchArgument(
            'rviz_config', default_value=os.path.join(share, 'config', 'hand_mesh.rviz'),
            description='RViz configuration (fixed frame camera_optical_frame, TF, hand '
                        'markers, debug image).'),
        DeclareLaunchArgument(
            'log_level', default_value='info',
            description='Log level of both nodes (debug, info, warn, error).'),
    ]
    remappings = [('image', LaunchConfiguration('image_topic')),
                  ('camera_info', LaunchConfiguration('camera_info_topic'))]
    log_args = ['--ros-args', '--log-level', LaunchConfiguration('log_level')]
    camera_source = Node(
        package='hand_mesh_ros', executable='camera_source', name='camera_source',
        output='screen', condition=IfCondition(LaunchConfiguration('use_camera_source')),
        parameters=[{
            'source': ParameterValue(LaunchConfiguration('source'), value_type=str),
            'camera_info_url': ParameterValue(LaunchConfiguration('camera_info_url'),
                                              value_type=str),
            'frame_id': ParameterValue(LaunchConfiguration('frame_id'), value_type=str),
            'rate_hz': ParameterValue(LaunchConfiguration('rate_hz'), value_type=float),
            'loop': ParameterValue(LaunchConfiguration('loop'), value_type=bool),
        }],
        remappings=remappings, arguments=log_args)
    hand_mesh_node = Node(
        package='hand_mesh_ros', executable='hand_mesh_node', name='hand_mesh_node',
        output='screen', parameters=[
            LaunchConfiguration('params_file'),
            {'input.depth_topic': ParameterValue(LaunchConfiguration('depth_topic'),
                                                 value_type=str)}],
        remappings=remappings, arguments=log_args)
    rviz = Node(
        package='rviz2', executable='rviz2', name='rviz2', output='screen',
        arguments=['-d', LaunchConfiguration('rviz_config')],
        condition=IfCondition(LaunchConfiguration('rviz')))
    return LaunchDescription(arguments + [camera_source, hand_mesh_node, rviz])
