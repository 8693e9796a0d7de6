"""launch/camera.launch.py: arguments, executables, config files, and no eval/subprocess.

launch and launch_ros are not on PyPI, so the file is checked with ``ast``; where they are
importable (a ROS 2 distribution) generate_launch_description() is also called.
"""

import ast
import importlib.util
from pathlib import Path
import re

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
LAUNCH = ROOT / 'launch' / 'camera.launch.py'
TREE = ast.parse(LAUNCH.read_text())
EXPECTED_ARGUMENTS = {'use_camera_source', 'source', 'camera_info_url', 'rate_hz', 'loop',
                      'depth_topic',
                      'frame_id', 'image_topic', 'camera_info_topic', 'params_file', 'rviz',
                      'rviz_config', 'log_level'}


def _calls(name):
    return [node for node in ast.walk(TREE) if isinstance(node, ast.Call)
            and getattr(node.func, 'id', getattr(node.func, 'attr', None)) == name]


def _keyword(call, name):
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    return None


def _joined_text(node):
    """Return the string of a constant or an implicitly concatenated constant."""
    assert isinstance(node, ast.Constant) and isinstance(node.value, str), ast.dump(node)
    return node.value


def declared_arguments():
    """Return {name: (default, description)} of the DeclareLaunchArgument calls."""
    out = {}
    for call in _calls('DeclareLaunchArgument'):
        name = _joined_text(call.args[0])
        default = _keyword(call, 'default_value')
        out[name] = (default, _joined_text(_keyword(call, 'description')))
    return out


def test_every_argument_is_declared_once_with_a_description():
    args = declared_arguments()
    assert len(_calls('DeclareLaunchArgument')) == len(args)
    assert set(args) == EXPECTED_ARGUMENTS
    for name, (default, description) in args.items():
        assert default is not None, name
        assert len(description.strip()) > 15, name
    used = {_joined_text(c.args[0]) for c in _calls('LaunchConfiguration')}
    assert used <= set(args), 'undeclared: %s' % (used - set(args))
    assert set(args) <= used, 'declared but unused: %s' % (set(args) - used)


def test_named_executables_exist_as_console_scripts_and_scripts():
    setup_text = (ROOT / 'setup.py').read_text()
    console = set(re.findall(r"'([\w-]+) = hand_mesh_ros\.[\w.]+:main'", setup_text))
    nodes = _calls('Node')
    executables = {}
    for call in nodes:
        executables[_joined_text(_keyword(call, 'executable'))] = _joined_text(
            _keyword(call, 'package'))
    assert executables == {'camera_source': 'hand_mesh_ros',
                           'hand_mesh_node': 'hand_mesh_ros', 'rviz2': 'rviz2'}
    for name, package in executables.items():
        if package == 'hand_mesh_ros':
            assert name in console
            assert (ROOT / 'scripts' / name).is_file()
            module = re.search(r"'%s = (hand_mesh_ros\.[\w.]+):main'" % name, setup_text)
            assert importlib.util.find_spec(module.group(1)) is not None


def test_named_config_files_exist_and_are_valid():
    names = [n.value for n in ast.walk(TREE) if isinstance(n, ast.Constant)
             and isinstance(n.value, str) and n.value.endswith(('.yaml', '.rviz'))]
    assert set(names) == {'hand_mesh.yaml', 'hand_mesh.rviz'}
    for name in names:
        assert (ROOT / 'config' / name).is_file()
    rviz = yaml.safe_load((ROOT / 'config' / 'hand_mesh.rviz').read_text())
    manager = rviz['Visualization Manager']
    assert manager['Global Options']['Fixed Frame'] == 'camera_optical_frame'
    displays = {d['Class']: d for d in manager['Displays']}
    assert 'rviz_default_plugins/TF' in displays
    assert displays['rviz_default_plugins/MarkerArray']['Topic']['Value'] == '/hand/markers'
    assert displays['rviz_default_plugins/Image']['Topic']['Value'] == '/hand/debug_image'


def test_no_eval_exec_or_subprocess():
    names = {n.id for n in ast.walk(TREE) if isinstance(n, ast.Name)}
    attrs = {n.attr for n in ast.walk(TREE) if isinstance(n, ast.Attribute)}
    modules = {a.name for n in ast.walk(TREE) if isinstance(n, (ast.Import, ast.ImportFrom))
               for a in n.names} | {n.module for n in ast.walk(TREE)
                                    if isinstance(n, ast.ImportFrom)}
    for bad in ('eval', 'exec', 'compile', '__import__'):
        assert bad not in names
    assert not {'system', 'popen', 'Popen', 'run', 'call'} & attrs
    assert not {'subprocess', 'ExecuteProcess', 'PythonExpression'} & modules
    assert 'ExecuteProcess' not in names and 'PythonExpression' not in names


def test_generate_launch_description_when_launch_is_installed():
    launch = pytest.importorskip(
        'launch_ros', reason='launch/launch_ros are not on PyPI; only the ast checks run here')
    assert launch
    spec = importlib.util.spec_from_file_location('camera_launch', LAUNCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from launch.actions import DeclareLaunchArgument
    description = module.generate_launch_description()
    declared = {e.name for e in description.entities if isinstance(e, DeclareLaunchArgument)}
    assert declared == EXPECTED_ARGUMENTS
