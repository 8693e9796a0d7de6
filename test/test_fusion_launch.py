"""launch/fusion.launch.py and config/fusion.yaml: arguments, overrides, defaults, executable.

launch and launch_ros are not on PyPI: the launch file is checked with ``ast`` and its pure
functions are compiled from the file itself.
"""

import ast
import os
from pathlib import Path
import re

import numpy as np
import pytest
from scipy.spatial.transform import Rotation
import yaml

from hand_mesh_ros.ros import fusion_parameters, parameter_names

ROOT = Path(__file__).resolve().parents[1]
LAUNCH = ROOT / 'launch' / 'fusion.launch.py'
TREE = ast.parse(LAUNCH.read_text())
YAML_PATH = ROOT / 'config' / 'fusion.yaml'


def declared_arguments():
    out = {}
    for call in ast.walk(TREE):
        if isinstance(call, ast.Call) and getattr(call.func, 'id', '') == 'DeclareLaunchArgument':
            keywords = {kw.arg: kw.value for kw in call.keywords}
            out[call.args[0].value] = (keywords['default_value'], keywords['description'])
    return out


def pure_functions():
    keep = [n for n in TREE.body if isinstance(n, (ast.FunctionDef, ast.Assign))
            and getattr(n, 'name', '') not in ('_nodes', 'generate_launch_description')]
    namespace = {'os': os}
    exec(compile(ast.Module(body=keep, type_ignores=[]), str(LAUNCH), 'exec'),  # noqa: S102
         namespace)
    return namespace


def values(tmp_path, **changes):
    params = tmp_path / 'fusion.yaml'
    params.write_text('/**/hand_fusion_node:\n  ros__parameters: {}\n')
    out = {name: (default.value if isinstance(default, ast.Constant) else '')
           for name, (default, _) in declared_arguments().items()}
    out.update(params_file=str(params), cameras='cam_left,cam_right')
    out.update(changes)
    return out


def test_every_argument_is_declared_with_a_description_and_used():
    args = declared_arguments()
    assert set(args) == {'cameras', 'fusion_frame', 'tf_prefix', 'collision_objects',
                         'params_file', 'use_sim_time', 'log_level'}
    for name, (_, description) in args.items():
        assert len(description.value) > 15, name
    used = {n.slice.value for n in ast.walk(TREE) if isinstance(n, ast.Subscript)
            and getattr(n.value, 'id', None) == 'values' and isinstance(n.slice, ast.Constant)}
    assert used == set(args)


@pytest.mark.parametrize('changes, expected', [
    ({'cameras': ' , '}, 'cameras:= names no camera'),
    ({'params_file': '/nonexistent.yaml'}, 'params_file /nonexistent.yaml does not exist'),
    ({'log_level': 'loud'}, 'log_level:=loud is not one of'),
    ({'collision_objects': 'yes'}, 'collision_objects:=yes is not true or false'),
])
def test_bad_arguments_are_refused(tmp_path, changes, expected):
    check = pure_functions()['check_arguments']
    assert check(values(tmp_path)) == []
    problems = check(values(tmp_path, **changes))
    assert len(problems) == 1 and expected in problems[0], problems


def test_arguments_left_empty_keep_the_params_file_values(tmp_path):
    overrides = pure_functions()['overrides']
    assert overrides(values(tmp_path)) == {'input.cameras': 'cam_left,cam_right',
                                           'use_sim_time': False}
    assert overrides(values(tmp_path, fusion_frame='base_link', collision_objects='true',
                            tf_prefix='cell')) == {
        'input.cameras': 'cam_left,cam_right', 'use_sim_time': False,
        'fusion.frame': 'base_link', 'output.collision_objects': True,
        'output.tf_prefix': 'cell'}


def test_no_eval_exec_or_subprocess_and_the_executable_exists():
    names = {n.id for n in ast.walk(TREE) if isinstance(n, ast.Name)}
    assert not {'eval', 'exec', 'subprocess', 'ExecuteProcess', 'PythonExpression'} & names
    setup_text = (ROOT / 'setup.py').read_text()
    assert re.search(r"'hand_fusion_node = hand_mesh_ros\.ros\.fusion_node:main'", setup_text)
    assert os.access(ROOT / 'scripts' / 'hand_fusion_node', os.X_OK)
    assert 'scripts/hand_fusion_node' in (ROOT / 'CMakeLists.txt').read_text()


def test_fusion_yaml_holds_exactly_the_table_defaults():
    assert YAML_PATH.read_text() == fusion_parameters.fusion_params_file_text(), (
        'regenerate: python -m hand_mesh_ros.ros.fusion_parameters > config/fusion.yaml')
    data = yaml.safe_load(YAML_PATH.read_text())['/**/hand_fusion_node']['ros__parameters']
    flat = {'%s.%s' % (group, key): value for group, entries in data.items()
            for key, value in entries.items()}
    specs = {spec.name: spec for spec in fusion_parameters.FUSION_PARAMETERS}
    assert flat == {name: spec.default for name, spec in specs.items()}
    for spec in specs.values():
        assert spec.check(spec.default) == '' and spec.description.strip(), spec.name


@pytest.mark.parametrize('value, problem', [
    ('cam_a,cam_b', ''), ('cam_a cam_b /robot/cam_c/hand/poses', ''),
    ('', 'must name at least one camera'), ('cam_a,cam_a', 'names a camera twice'),
    ('cam a,9cam', 'is not allowed'),
])
def test_camera_list_rule(value, problem):
    found = parameter_names.camera_list_problem(value)
    assert (problem in found) if problem else found == ''


EXAMPLE = ROOT / 'launch' / 'fusion_two_cameras.launch.py'
EXAMPLE_TREE = ast.parse(EXAMPLE.read_text())


def example_functions():
    keep = [n for n in EXAMPLE_TREE.body if isinstance(n, (ast.FunctionDef, ast.Assign))
            and getattr(n, 'name', '') in ('', 'pose_arguments', 'check_arguments')]
    namespace = {}
    exec(compile(ast.Module(body=keep, type_ignores=[]), str(EXAMPLE), 'exec'),  # noqa: S102
         namespace)
    return namespace


def test_two_camera_example_checks_poses_and_includes_the_launch_files():
    functions = example_functions()
    assert functions['pose_arguments']('0 -0.7 1 0 0 -1.5708') == [
        '--x', '0.0', '--y', '-0.7', '--z', '1.0', '--yaw', '0.0', '--pitch', '0.0',
        '--roll', '-1.5708']
    check = functions['check_arguments']
    assert check({'left_pose': '0 0 0 0 0 0', 'right_pose': '1 2 3'}) == [
        "right_pose: a pose is six numbers: x y z yaw pitch roll, got '1 2 3'"]
    text = EXAMPLE.read_text()
    for name in ("'camera.launch.py'", "'fusion.launch.py'", "'static_transform_publisher'"):
        assert name in text
    assert not {'eval', 'exec', 'subprocess'} & {
        n.id for n in ast.walk(EXAMPLE_TREE) if isinstance(n, ast.Name)}


def test_two_camera_example_default_poses_look_at_the_origin_90_degrees_apart():
    defaults = {}
    for call in ast.walk(EXAMPLE_TREE):
        if isinstance(call, ast.Tuple) and len(call.elts) == 2 and all(
                isinstance(e, ast.Constant) for e in call.elts) and call.elts[0].value in (
                'left', 'right') and len(str(call.elts[1].value).split()) == 6:
            defaults[call.elts[0].value] = [float(v) for v in call.elts[1].value.split()]
    axes = []
    for side in ('left', 'right'):
        x, y, z, yaw, pitch, roll = defaults[side]
        rot = Rotation.from_euler('ZYX', [yaw, pitch, roll]).as_matrix()
        forward, down = rot[:, 2], rot[:, 1]
        to_origin = -np.array([x, y, 0.0]) / np.linalg.norm([x, y])
        assert np.allclose(forward, to_origin, atol=1e-4)      # optical z at the origin
        assert np.allclose(down, [0.0, 0.0, -1.0], atol=1e-4)  # optical y down
        axes.append(forward)
    assert abs(float(axes[0] @ axes[1])) < 1e-4                # 90 degrees apart
