"""launch/camera.launch.py: arguments, executables, config files, and no eval/subprocess.

launch and launch_ros are not on PyPI, so the file is checked with ``ast``; where they are
importable (a ROS 2 distribution) generate_launch_description() is also called.
"""

import ast
import importlib.util
import os
from pathlib import Path
import re

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
LAUNCH = ROOT / 'launch' / 'camera.launch.py'
TREE = ast.parse(LAUNCH.read_text())
EXPECTED_ARGUMENTS = {'namespace', 'use_sim_time', 'use_camera_source', 'source',
                      'camera_info_url', 'rate_hz', 'loop', 'frame_id', 'image_topic',
                      'camera_info_topic', 'params_file', 'rviz', 'rviz_config', 'log_level',
                      'depth_topic', 'depth_camera_info_topic', 'driver', 'rectified',
                      'compressed', 'tf_prefix', 'rviz_fixed_frame'}
#: Arguments read through the launch file's argument -> parameter tables.
TABLES = ('PARAMETER_ARGUMENTS', 'FLAG_PARAMETERS')


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
    assert all(d in args['driver'][1] for d in _pure_functions()['DRIVERS'])
    # Every argument is read from the launch configurations by name in the one checking
    # action (values['name'], or through an argument -> parameter table), and nothing
    # undeclared is read.
    used = {n.slice.value for n in ast.walk(TREE) if isinstance(n, ast.Subscript)
            and getattr(n.value, 'id', None) == 'values' and isinstance(n.slice, ast.Constant)}
    for table in _pure_functions()['TABLES_READ']:
        used |= set(table)
    assert used <= set(args), 'undeclared: %s' % (used - set(args))
    assert set(args) <= used, 'declared but unused: %s' % (set(args) - used)


def _pure_functions():
    """Return the launch file's checking functions, run with the real ament_index_python.

    launch/launch_ros are not on PyPI; the functions that decide what starts need neither,
    so they are compiled from the file itself (not copied) with their module constants.
    """
    import ament_index_python.packages as ament
    keep = [n for n in TREE.body if isinstance(n, ast.FunctionDef) and n.name in (
        '_flag', 'logger_name', 'check_arguments', '_check_files', 'driver_preset',
        'node_overrides', 'topic_remappings', 'rviz_fixed_frame')]
    keep += [n for n in TREE.body if isinstance(n, ast.Assign)]
    namespace = {'os': os, 'get_package_prefix': ament.get_package_prefix,
                 'PackageNotFoundError': ament.PackageNotFoundError, 'yaml': yaml}
    code = compile(ast.Module(body=keep, type_ignores=[]), str(LAUNCH), 'exec')
    exec(code, namespace)   # noqa: S102 - the project's own launch file
    namespace['TABLES_READ'] = [namespace[name] for name in TABLES]
    return namespace


def _values(tmp_path, **changes):
    params = tmp_path / 'params.yaml'
    params.write_text('hand_mesh_node:\n  ros__parameters: {}\n')
    values = {name: (default.value if isinstance(default, ast.Constant) else '')
              for name, (default, _) in declared_arguments().items()}
    values.update(params_file=str(params), rviz_config=str(ROOT / 'config' / 'hand_mesh.rviz'))
    values.update(changes)
    return values


def test_default_arguments_pass_the_check(tmp_path):
    check = _pure_functions()['check_arguments']
    assert check(_values(tmp_path)) == []


@pytest.mark.parametrize('changes, expected', [
    ({'log_level': 'verbose'}, 'log_level:=verbose is not one of debug, info'),
    ({'params_file': '/nonexistent/params.yaml'}, 'params_file /nonexistent/params.yaml does'),
    ({'source': '/nonexistent.mp4'}, 'source /nonexistent.mp4 does not exist'),
    ({'use_sim_time': 'maybe'}, 'use_sim_time:=maybe is not true or false'),
    ({'rviz': 'true'}, "package 'rviz2' is not installed"),
    ({'driver': 'zed', 'use_camera_source': 'false'},
     'driver:=zed is not one of realsense2_camera, depthai_ros, usb_cam, v4l2_camera'),
    ({'driver': 'usb_cam'}, 'driver:=usb_cam needs use_camera_source:=false'),
    ({'rectified': 'yes'}, "rectified:=yes is not true or false (or '' for the params"),
])
def test_bad_arguments_are_refused_before_anything_starts(
        tmp_path, monkeypatch, changes, expected):
    """Each problem is reported; _nodes raises on any, before creating a single Node."""
    import sys
    monkeypatch.setenv('AMENT_PREFIX_PATH', os.environ.get('AMENT_PREFIX_PATH', sys.prefix))
    functions = _pure_functions()
    import ament_index_python.packages as ament
    if 'rviz' in changes:
        try:
            ament.get_package_prefix('rviz2')
            pytest.skip('rviz2 is installed here')
        except ament.PackageNotFoundError:
            pass
    problems = functions['check_arguments'](_values(tmp_path, **changes))
    assert len(problems) == 1 and expected in problems[0], problems
    # A missing source is no problem when the user's own driver is used.
    if 'source' in changes:
        assert functions['check_arguments'](
            _values(tmp_path, use_camera_source='false', **changes)) == []
    # The check runs first in _nodes, and no Node() is built before it raises.
    body = next(n for n in TREE.body if getattr(n, 'name', '') == '_nodes').body
    calls = [i for i, stmt in enumerate(body) for n in ast.walk(stmt)
             if isinstance(n, ast.Call)
             and getattr(n.func, 'id', '') in ('Node', 'check_arguments')]
    first = min(calls)
    assert any(getattr(n.func, 'id', '') == 'check_arguments' for n in ast.walk(body[first])
               if isinstance(n, ast.Call))
    raises = [i for i, stmt in enumerate(body) if any(isinstance(n, ast.Raise)
                                                      for n in ast.walk(stmt))]
    assert raises and raises[0] < max(calls)


def test_arguments_left_at_their_default_override_nothing(tmp_path):
    functions = _pure_functions()
    values = _values(tmp_path)
    assert functions['node_overrides'](values, {}) == {}
    assert functions['topic_remappings'](values, {}) == [
        ('image', 'image'), ('image/compressed', 'image/compressed'),
        ('camera_info', 'camera_info')]
    assert functions['rviz_fixed_frame'](values, {}) == 'camera_optical_frame'
    given = _values(tmp_path, depth_topic='/d', depth_camera_info_topic='/d/info',
                    tf_prefix='left', rectified='true', compressed='false',
                    image_topic='/cam/image_rect', rviz_fixed_frame='base_link')
    assert functions['node_overrides'](given, {}) == {
        'input.depth_topic': '/d', 'input.depth_camera_info_topic': '/d/info',
        'output.tf_prefix': 'left', 'input.rectified': True, 'input.compressed': False}
    assert ('image/compressed', '/cam/image_rect/compressed') in functions[
        'topic_remappings'](given, {})
    assert functions['rviz_fixed_frame'](given, {}) == 'base_link'


@pytest.mark.parametrize('driver', ['realsense2_camera', 'depthai_ros', 'usb_cam',
                                    'v4l2_camera'])
def test_driver_presets_name_their_topics_and_frames(tmp_path, driver):
    functions = _pure_functions()
    assert driver in functions['DRIVERS']
    preset = functions['driver_preset'](driver, str(ROOT / 'config'))
    assert set(preset) == set(functions['PRESET_KEYS'])
    values = _values(tmp_path, driver=driver, use_camera_source='false')
    remaps = dict(functions['topic_remappings'](values, preset))
    assert remaps['image'] == preset['image_topic'] and remaps['image'].startswith('/')
    assert remaps['camera_info'] == preset['camera_info_topic']
    assert functions['rviz_fixed_frame'](values, preset) == preset['camera_frame']
    overrides = functions['node_overrides'](values, preset)
    assert overrides['input.rectified'] is False
    assert overrides.get('input.depth_topic', '') == preset['depth_topic']
    # An argument given on the command line wins over the preset.
    mine = _values(tmp_path, driver=driver, use_camera_source='false', image_topic='/mine')
    assert dict(functions['topic_remappings'](mine, preset))['image'] == '/mine'


def test_log_level_names_only_our_nodes_loggers():
    logger_name = _pure_functions()['logger_name']
    assert logger_name('', 'hand_mesh_node') == 'hand_mesh_node'
    assert logger_name('/left_cam', 'hand_mesh_node') == 'left_cam.hand_mesh_node'
    assert logger_name('/robot/left_cam/', 'camera_source') == 'robot.left_cam.camera_source'
    text = LAUNCH.read_text()
    assert "'--log-level', '%s:=%s' % (logger_name(namespace, name), level)" in text


def test_the_launch_sets_namespace_sim_time_and_waits_for_the_node():
    nodes = _calls('Node')
    for call in nodes:
        assert _keyword(call, 'namespace') is not None
    text = LAUNCH.read_text()
    assert "'wait_for_subscribers': 1" in text
    assert text.count("'use_sim_time': sim_time") == 2 and 'use_sim_time=sim_time' in text


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
    assert set(names) == {'hand_mesh.yaml', 'hand_mesh.rviz', '.yaml'}
    for name in set(names) - {'.yaml'}:   # ('.yaml': config/drivers/<driver>.yaml)
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


@pytest.mark.parametrize('arguments', [
    {'rviz': 'true'}, {'params_file': '/nonexistent/params.yaml'}, {'log_level': 'verbose'},
    {'namespace': 'cam_a', 'use_sim_time': 'maybe'}])
def test_real_launch_refuses_bad_arguments_before_starting_a_process(arguments):
    """Under the real launch/launch_ros (a ROS install): exit code 1, no process started.

    (The messages themselves are checked in test_bad_arguments_are_refused_before_...)
    """
    pytest.importorskip('launch_ros', reason='launch/launch_ros are not on PyPI')
    import ament_index_python.packages as ament
    try:
        ament.get_package_share_directory('hand_mesh_ros')
    except (ament.PackageNotFoundError, EnvironmentError):
        pytest.skip('hand_mesh_ros is not installed in a ROS workspace (colcon build)')
    if 'rviz' in arguments:
        try:
            ament.get_package_prefix('rviz2')
            pytest.skip('rviz2 is installed here')
        except ament.PackageNotFoundError:
            pass
    from launch import LaunchDescription, LaunchService
    from launch.actions import IncludeLaunchDescription, RegisterEventHandler
    from launch.event_handlers import OnProcessStart
    from launch.launch_description_sources import PythonLaunchDescriptionSource
    started = []
    service = LaunchService()
    service.include_launch_description(LaunchDescription([
        RegisterEventHandler(OnProcessStart(on_start=lambda event, context: started.append(
            event.action.name))),
        IncludeLaunchDescription(PythonLaunchDescriptionSource(str(LAUNCH)),
                                 launch_arguments=list(arguments.items()))]))
    code = service.run()
    assert code == 1
    assert started == []
