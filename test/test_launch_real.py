"""camera.launch.py through the real ``ros2 launch`` (built from source by launch_env.py).

What a user types, checked on the running node over the ROS graph and its parameter
services: a tuned params file in a namespace is applied value for value and launch arguments
left at their default override none of it; arguments that are given do; each driver preset
subscribes the driver's topics (compressed too); an unknown argument value stops the launch
with one error before any process starts.
"""

import contextlib
import os
import random
import signal
import subprocess
import time

from dds_cell import require_models
from launch_env import launch_environment, ros2_launch
import pytest
import yaml

rclpy = pytest.importorskip('rclpy', reason='ROS 2 (rclpy) is not installed')

#: A user's tuned file (keyed for any namespace) with the values launch arguments could set.
TUNED = {'input.depth_topic': '/tuned/depth', 'input.depth_camera_info_topic': '/tuned/info',
         'output.tf_prefix': 'tuned_hand', 'input.rectified': True,
         'detection.max_hands': 5}


@pytest.fixture(scope='module')
def env(tmp_path_factory):
    require_models()
    environment = launch_environment(tmp_path_factory.mktemp('launch'))
    environment['ROS_DOMAIN_ID'] = str(random.randint(150, 220))
    return environment


class _Graph:
    """A node in this process that reads the launched node's subscriptions and parameters."""

    def __init__(self, domain):
        from rclpy.executors import SingleThreadedExecutor
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain)
        self.node = rclpy.create_node('launch_probe', context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)

    def parameters(self, fqn, names):
        from rclpy.parameter import parameter_value_to_python
        from rclpy.parameter_client import AsyncParameterClient
        client = AsyncParameterClient(self.node, fqn)
        assert client.wait_for_services(timeout_sec=90.0), 'no parameter services on ' + fqn
        future = client.get_parameters(list(names))
        self.executor.spin_until_future_complete(future, timeout_sec=20.0)
        return {n: parameter_value_to_python(v) for n, v in zip(names, future.result().values)}

    def subscriptions(self, name, namespace, expected, timeout_s=30.0):
        """Return the node's subscribed topics once ``expected`` of them are seen."""
        deadline = time.monotonic() + timeout_s
        topics = set()
        while time.monotonic() < deadline and len(topics) < expected:
            self.executor.spin_once(timeout_sec=0.2)
            with contextlib.suppress(Exception):   # the node may not be in the graph yet
                topics = {t for t, _ in self.node.get_subscriber_names_and_types_by_node(
                    name, namespace)}
        return topics

    def close(self):
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


@contextlib.contextmanager
def _launched(env, tmp_path, *arguments):
    """Run ``ros2 launch`` with ``arguments``; yield a _Graph; stop the launch after."""
    log_path = tmp_path / ('launch_%d.log' % len(list(tmp_path.glob('launch_*.log'))))
    with open(log_path, 'w') as log:
        proc = ros2_launch(env, *arguments, stdout=log, stderr=subprocess.STDOUT)
    graph = _Graph(int(env['ROS_DOMAIN_ID']))
    try:
        yield graph, log_path
    finally:
        graph.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _tuned_file(tmp_path):
    tree = {}
    for name, value in TUNED.items():
        section, _, field = name.partition('.')
        tree.setdefault(section, {})[field] = value
    path = tmp_path / 'tuned.yaml'
    path.write_text(yaml.safe_dump({'/**': {'ros__parameters': tree}}))
    return path


@pytest.mark.slow
def test_params_file_in_a_namespace_wins_over_arguments_left_at_default(env, tmp_path):
    tuned = _tuned_file(tmp_path)
    with _launched(env, tmp_path, 'namespace:=cam_a', 'use_camera_source:=false',
                   'params_file:=%s' % tuned) as (graph, _):
        got = graph.parameters('/cam_a/hand_mesh_node', sorted(TUNED))
        topics = graph.subscriptions('hand_mesh_node', '/cam_a', 4)
    assert got == TUNED
    assert {'/tuned/depth', '/tuned/info', '/cam_a/image', '/cam_a/camera_info'} <= topics


@pytest.mark.slow
def test_arguments_that_are_given_override_the_params_file(env, tmp_path):
    tuned = _tuned_file(tmp_path)
    with _launched(env, tmp_path, 'namespace:=cam_a', 'use_camera_source:=false',
                   'params_file:=%s' % tuned, 'depth_topic:=/arg/depth',
                   'depth_camera_info_topic:=/arg/info', 'tf_prefix:=arg_hand',
                   'rectified:=false', 'image_topic:=/arg/image_rect') as (graph, log_path):
        got = graph.parameters('/cam_a/hand_mesh_node', sorted(TUNED))
        topics = graph.subscriptions('hand_mesh_node', '/cam_a', 4)
        time.sleep(1.0)
    assert got == dict(TUNED, **{'input.depth_topic': '/arg/depth',
                                 'input.depth_camera_info_topic': '/arg/info',
                                 'output.tf_prefix': 'arg_hand', 'input.rectified': False})
    assert {'/arg/depth', '/arg/info', '/arg/image_rect'} <= topics
    # image_rect with rectified:=false: the node says so.
    assert 'looks rectified but input.rectified is false' in log_path.read_text()


@pytest.mark.slow
def test_a_params_file_keyed_for_another_node_name_is_named_in_a_warning(env, tmp_path):
    old = tmp_path / 'old.yaml'
    old.write_text(yaml.safe_dump({'hand_mesh_node': {'ros__parameters': {
        'detection': {'max_hands': 5}}}}))
    with _launched(env, tmp_path, 'namespace:=cam_a', 'use_camera_source:=false',
                   'params_file:=%s' % old) as (graph, log_path):
        got = graph.parameters('/cam_a/hand_mesh_node', ['detection.max_hands'])
        time.sleep(1.0)
    assert got == {'detection.max_hands': 2}
    assert ("is keyed for 'hand_mesh_node', not for this node /cam_a/hand_mesh_node"
            in log_path.read_text()), log_path.read_text()[-2000:]


@pytest.mark.slow
@pytest.mark.parametrize('driver, compressed', [
    ('realsense2_camera', 'false'), ('depthai_ros', 'false'), ('usb_cam', 'false'),
    ('v4l2_camera', 'true')])
def test_driver_presets_subscribe_the_drivers_topics(env, tmp_path, driver, compressed):
    from hand_mesh_ros.paths import _PACKAGE_DIR
    preset = yaml.safe_load((_PACKAGE_DIR.parent / 'config' / 'drivers' / (driver + '.yaml'))
                            .read_text())
    image = preset['image_topic'] + ('/compressed' if compressed == 'true' else '')
    expected = {image, preset['camera_info_topic']}
    if preset['depth_topic']:
        expected |= {preset['depth_topic'], preset['depth_camera_info_topic']}
    with _launched(env, tmp_path, 'driver:=%s' % driver, 'use_camera_source:=false',
                   'compressed:=%s' % compressed) as (graph, _):
        got = graph.parameters('/hand_mesh_node', ['input.rectified', 'input.compressed'])
        topics = graph.subscriptions('hand_mesh_node', '/', len(expected) + 1)
    assert expected <= topics, (expected, topics)
    assert got == {'input.rectified': False, 'input.compressed': compressed == 'true'}


@pytest.mark.parametrize('arguments, message', [
    (['driver:=zed', 'use_camera_source:=false'], 'driver:=zed is not one of'),
    (['rectified:=maybe'], 'rectified:=maybe is not true or false'),
    (['log_level:=verbose'], 'log_level:=verbose is not one of'),
    (['driver:=usb_cam'], 'driver:=usb_cam needs use_camera_source:=false')])
def test_unknown_argument_values_stop_the_real_launch(env, arguments, message):
    proc = ros2_launch(env, *arguments, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert 'camera.launch.py: nothing started: ' in out and message in out, out[-2000:]
    assert 'process started' not in out
