"""Tuned params files reach hand_mesh_node and hand_fusion_node in a namespace; others warn.

The node runs as its own process in ``/cam_a`` (``-r __ns:=/cam_a``), as a launch file or a
user starts it, and this process reads every parameter back over the node's parameter
services (``/cam_a/hand_mesh_node/get_parameters``), value for value.
"""

import sys

from dds_cell import isolated_environment, read_parameters, require_models
import pytest
import yaml

from hand_mesh_ros.ros import parameters as prm
from hand_mesh_ros.ros import params_file_check as check
from hand_mesh_ros.ros import processes

rclpy = pytest.importorskip('rclpy', reason='ROS 2 (rclpy) is not installed')

#: A user's tuning: every kind of value (int, float, bool, str) in several sections.
TUNED = {'detection.max_hands': 5, 'detection.min_detection_score': 0.62,
         'tailor.iterations': 7, 'tailor.temporal': False, 'camera.assumed_hfov_deg': 71.5,
         'gates.max_depth_m': 2.25, 'input.default_frame_id': 'cam_a_color_optical_frame',
         'output.marker_lifetime_s': 1.25, 'output.publish_markers': False}


def _params_yaml(key, values):
    tree = {}
    for name, value in values.items():
        section, _, field = name.partition('.')
        tree.setdefault(section, {})[field] = value
    return yaml.safe_dump({key: {'ros__parameters': tree}})


@pytest.mark.parametrize('key, fqn, applies', [
    ('/**', '/cam_a/hand_mesh_node', True),
    ('/**', '/hand_mesh_node', True),
    ('/**/hand_mesh_node', '/robot/cam_a/hand_mesh_node', True),
    ('/**/hand_mesh_node', '/cam_a/camera_source', False),
    ('hand_mesh_node', '/hand_mesh_node', True),
    ('hand_mesh_node', '/cam_a/hand_mesh_node', False),
    ('/cam_a/hand_mesh_node', '/cam_a/hand_mesh_node', True),
    ('/cam_*/hand_mesh_node', '/cam_b/hand_mesh_node', True),
    ('/cam_*/hand_mesh_node', '/robot/cam_b/hand_mesh_node', False),
    ('cam_a/hand_mesh_node', '/cam_a/hand_mesh_node', True),
])
def test_params_file_keys_match_like_rcl(key, fqn, applies):
    assert check.key_matches(key, fqn) is applies


def test_nested_keys_and_warning_text(tmp_path):
    nested = tmp_path / 'nested.yaml'
    nested.write_text('cam_a:\n  hand_mesh_node:\n    ros__parameters:\n      a: 1\n')
    other = tmp_path / 'other.yaml'
    other.write_text(_params_yaml('hand_mesh_node', {'detection.max_hands': 5}))
    argv = ['node', '--ros-args', '--params-file', str(nested), '--params-file', str(other)]
    assert check.params_files(argv) == [str(nested), str(other)]
    warnings = check.unmatched_file_warnings(argv, '/cam_a/hand_mesh_node')
    assert len(warnings) == 1
    assert "keyed for 'hand_mesh_node', not for this node /cam_a/hand_mesh_node" in warnings[0]
    assert "'/**:'" in warnings[0] and str(other) in warnings[0]
    assert check.unmatched_file_warnings(argv, '/hand_mesh_node')[0].startswith(
        'params file %s is keyed for' % nested)


def test_shipped_params_file_applies_in_any_namespace():
    shipped = processes.config_file('hand_mesh.yaml')
    argv = ['--ros-args', '--params-file', str(shipped)]
    for fqn in ('/hand_mesh_node', '/cam_a/hand_mesh_node', '/robot/left/hand_mesh_node'):
        assert check.unmatched_file_warnings(argv, fqn) == []


def _run_node_in_namespace(tmp_path, params_file, name):
    env, domain = isolated_environment(shared_memory=False)
    argv = [sys.executable, '-m', 'hand_mesh_ros.ros.node', '--ros-args',
            '--params-file', str(params_file), '-r', '__ns:=/cam_a']
    return processes.ManagedProcess(name, argv, tmp_path / (name + '.log'), env), domain


@pytest.mark.slow
@pytest.mark.parametrize('key', ['/**', '/**/hand_mesh_node'])
def test_tuned_file_is_applied_in_a_namespace_value_for_value(tmp_path, key):
    require_models()
    tuned = tmp_path / 'tuned.yaml'
    tuned.write_text(_params_yaml(key, TUNED))
    child, domain = _run_node_in_namespace(tmp_path, tuned, 'tuned')
    try:
        names = sorted(prm.SPECS)
        got = read_parameters('/cam_a/hand_mesh_node', names, domain)
    finally:
        child.stop()
    expected = dict(prm.defaults(), **TUNED)
    assert got == expected
    assert 'params file' not in child.log_path.read_text()


@pytest.mark.slow
def test_file_keyed_for_another_node_name_warns_and_names_the_key(tmp_path):
    require_models()
    old = tmp_path / 'old.yaml'
    old.write_text(_params_yaml('hand_mesh_node', TUNED))
    child, domain = _run_node_in_namespace(tmp_path, old, 'old_key')
    try:
        got = read_parameters('/cam_a/hand_mesh_node', ['detection.max_hands'], domain)
    finally:
        child.stop()
    log = child.log_path.read_text()
    assert got == {'detection.max_hands': prm.defaults()['detection.max_hands']}
    assert ("params file %s is keyed for 'hand_mesh_node', not for this node "
            '/cam_a/hand_mesh_node' % old) in log, log[-2000:]


def test_shipped_fusion_params_file_applies_in_any_namespace():
    shipped = processes.config_file('fusion.yaml')
    argv = ['--ros-args', '--params-file', str(shipped)]
    for fqn in ('/hand_fusion_node', '/robot/hand_fusion_node', '/cell/a/hand_fusion_node'):
        assert check.unmatched_file_warnings(argv, fqn) == []


def test_tuned_fusion_file_is_applied_in_a_namespace(tmp_path):
    """hand_fusion_node in /robot takes a tuned copy of config/fusion.yaml, value for value.

    A second file keyed for the node outside any namespace is named in a warning.
    """
    tuned_values = {'input.cameras': 'cam_a,cam_b', 'fusion.frame': 'base_link',
                    'fusion.max_wait_s': 0.02, 'output.collision_objects': True}
    shipped = yaml.safe_load(processes.config_file('fusion.yaml').read_text())
    for name, value in tuned_values.items():
        section, _, key = name.partition('.')
        shipped['/**/hand_fusion_node']['ros__parameters'][section][key] = value
    tuned = tmp_path / 'fusion.yaml'
    tuned.write_text(yaml.safe_dump(shipped))
    old = tmp_path / 'old.yaml'   # keyed for the node outside any namespace: warned
    old.write_text(_params_yaml('hand_fusion_node', {'fusion.frame': 'odom'}))
    env, domain = isolated_environment(shared_memory=False)
    argv = [sys.executable, '-m', 'hand_mesh_ros.ros.fusion_node', '--ros-args',
            '--params-file', str(tuned), '--params-file', str(old), '-r', '__ns:=/robot']
    child = processes.ManagedProcess('fusion', argv, tmp_path / 'fusion.log', env)
    try:
        got = read_parameters('/robot/hand_fusion_node', sorted(tuned_values), domain)
    finally:
        child.stop()
    assert got == tuned_values
    log = child.log_path.read_text()
    assert ("params file %s is keyed for 'hand_fusion_node', not for this node "
            '/robot/hand_fusion_node' % old) in log, log[-2000:]
    assert 'params file %s' % tuned not in log
