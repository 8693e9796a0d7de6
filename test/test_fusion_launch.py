"""launch/fusion.launch.py and config/fusion.yaml: arguments, overrides, defaults, executable.

launch and launch_ros are not on PyPI: the launch file is checked with ``ast`` and its pure
functions are compiled from the file itself.
"""

import ast
import os
from pathlib import Path
import re

import pytest
import yaml

from hand_mesh_ros.ros import fusion_parameters, parameters

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
    params.write_text('hand_fusion_node:\n  ros__parameters: {}\n')
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
    data = yaml.safe_load(YAML_PATH.read_text())['hand_fusion_node']['ros__parameters']
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
    found = parameters.camera_list_problem(value)
    assert (problem in found) if problem else found == ''
