"""What the robot-cell process tests share: the models check and an isolated DDS domain."""

import random

import pytest

from hand_mesh_ros.paths import models_dir
from hand_mesh_ros.ros import processes


def require_models():
    """Fail (not skip) the test when the models are missing: the product cannot run."""
    if not (models_dir() / 'hand_mesh_full.onnx').is_file():
        pytest.fail('models missing: run `hand-mesh setup-models` (bootstrap.sh does)')


def isolated_environment(shared_memory=True):
    """Return (env, domain id) for child processes on a domain of their own.

    With ``shared_memory`` the robot-cell Fast DDS profile is named for the children and
    for this process too (its participants then use the same transports).
    """
    domain = random.randint(150, 220)
    env = processes.dds_environment(shared_memory=shared_memory)
    env['ROS_DOMAIN_ID'] = str(domain)
    if shared_memory:
        processes.apply_dds_profile(env)
    return env, domain


def read_parameters(fqn, names, domain):
    """Return {name: value} of ``names`` read over the parameter services of node ``fqn``."""
    import rclpy
    from rclpy.parameter import parameter_value_to_python
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter_client import AsyncParameterClient
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain)
    node = rclpy.create_node('params_reader', context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    try:
        client = AsyncParameterClient(node, fqn)
        assert client.wait_for_services(timeout_sec=90.0), 'no parameter services on ' + fqn
        future = client.get_parameters(list(names))
        executor.spin_until_future_complete(future, timeout_sec=20.0)
        assert future.done()
        return {n: parameter_value_to_python(v) for n, v in zip(names, future.result().values)}
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)
