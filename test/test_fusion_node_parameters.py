"""hand_fusion_node's parameters reach what they configure (in-process node, no traffic)."""

import random

import pytest

rclpy = pytest.importorskip('rclpy', reason='ROS 2 (rclpy) is not installed')

from rclpy.parameter import Parameter  # noqa: E402,I100

from hand_mesh_ros.ros.fusion_node import HandFusionNode  # noqa: E402


@pytest.fixture
def make_node():
    made = []

    def make(**overrides):
        context = rclpy.Context()
        rclpy.init(context=context, domain_id=random.randint(120, 220))
        made.append(context)
        return HandFusionNode(context=context, parameter_overrides=[
            Parameter(name, value=value) for name, value in overrides.items()])
    yield make
    for context in made:
        rclpy.shutdown(context=context)


def test_parameters_configure_the_node(make_node):
    node = make_node(**{'input.cameras': 'cam_a /robot/cam_b/hand/poses',
                        'fusion.rate_hz': 10.0, 'input.tf_cache_s': 3.0,
                        'fusion.gate_probability': 0.99, 'fusion.track_timeout_s': 0.2,
                        'fusion.velocity_window_s': 0.3, 'output.diagnostics_period_s': 2.0})
    topics = [s.topic_name for s in node._subs]
    assert topics == ['/cam_a/hand/poses', '/robot/cam_b/hand/poses']
    assert node._fuse_timer.timer_period_ns == 100_000_000
    assert node._diag_timer.timer_period_ns == 2_000_000_000
    if hasattr(node._tf, 'store'):   # the stand-in buffer (pip setup)
        assert node._tf.store.cache_time_ns == 3_000_000_000
    assert node._fuser.track_timeout_s == 0.2 and node._fuser.velocity_window_s == 0.3
    assert node._fuser.gate2 == pytest.approx(11.34, abs=0.01)
    assert node._collisions is None            # output.collision_objects defaults to off
    node.destroy_node()


def test_collision_objects_parameter_creates_the_publisher(make_node):
    pytest.importorskip('moveit_msgs.msg', reason='moveit_msgs is not built (bootstrap.sh)')
    node = make_node(**{'input.cameras': 'cam_a', 'output.collision_objects': True,
                        'output.collision_shape': 'spheres',
                        'output.collision_padding_sigma': 3.0})
    tracker = node._collisions._tracker
    assert tracker.shape == 'spheres' and tracker.padding_sigma == 3.0
    node.close()
    node.destroy_node()


@pytest.mark.parametrize('cameras, problem', [('', 'must name at least one camera'),
                                              ('cam_a,cam_a', 'names a camera twice')])
def test_a_bad_camera_list_refuses_to_start_with_one_clear_error(
        make_node, cameras, problem):
    with pytest.raises(ValueError, match=problem):
        make_node(**{'input.cameras': cameras})
