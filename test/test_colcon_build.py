"""A ROS 2 workspace build (`colcon build`) of the same sources succeeds and is usable.

This is what a user with a ROS distribution does; here it runs with pip-installed colcon and
the ament/rosidl toolchain from the wheels. `colcon test` then runs the package's pytest suite
through the BUILD_TESTING block of CMakeLists.txt.
"""

import os
from pathlib import Path
import re
import shutil
import subprocess
import sys
import sysconfig

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_colcon_build_installs_messages_modules_and_executables(tmp_path):
    colcon = shutil.which('colcon', path=os.path.dirname(sys.executable))
    if colcon is None:
        pytest.skip('colcon is not installed in this environment (bootstrap.sh installs it)')
    env = dict(os.environ)
    for var in ('AMENT_PREFIX_PATH', 'CMAKE_PREFIX_PATH'):
        env[var] = os.pathsep.join(p for p in (sys.prefix, env.get(var)) if p)
    env['PATH'] = os.path.dirname(sys.executable) + os.pathsep + env.get('PATH', '')
    # A workspace like a ROS user's: src/hand_mesh_ros holds the package sources.
    src = tmp_path / 'src' / 'hand_mesh_ros'
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        '.venv', '.git', 'build', 'install', 'log', 'out', '__pycache__', '.cache',
        '*.onnx', '*.tflite', 'engines', '.pytest_cache', '.hypothesis'))
    proc = subprocess.run(
        [colcon, '--log-base', str(tmp_path / 'log'), 'build',
         '--base-paths', str(tmp_path / 'src'),
         '--build-base', str(tmp_path / 'build'), '--install-base', str(tmp_path / 'install'),
         '--event-handlers', 'console_direct-',
         '--cmake-args', '-DPython3_EXECUTABLE=' + sys.executable, '-DBUILD_TESTING=ON',
         '-DHAND_MESH_TESTS=test/test_ros_messages.py'],
        env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]

    prefix = tmp_path / 'install' / 'hand_mesh_ros'
    site = prefix / Path(sysconfig.get_path('purelib')).relative_to(sys.prefix)
    assert (site / 'hand_mesh_ros' / 'msg' / '_hand_pose.py').is_file()
    assert (site / 'hand_mesh_ros' / 'core' / '__init__.py').is_file()
    for exe in ('hand_mesh_node', 'camera_source', 'hand-mesh'):
        assert os.access(prefix / 'lib' / 'hand_mesh_ros' / exe, os.X_OK), exe
    assert (prefix / 'share' / 'hand_mesh_ros' / 'package.xml').is_file()
    assert (prefix / 'share' / 'ament_index' / 'resource_index' / 'packages'
            / 'hand_mesh_ros').is_file()

    # The installed package imports from the install space: messages and code in one package.
    run_env = dict(env, PYTHONPATH=str(site),
                   LD_LIBRARY_PATH=os.pathsep.join(
                       p for p in (str(prefix / 'lib'), env.get('LD_LIBRARY_PATH')) if p))
    run_env.pop('_ROS_WHEELS_BOOTSTRAP_COMPLETE', None)
    check = subprocess.run(
        [sys.executable, '-c',
         'import hand_mesh_ros, hand_mesh_ros.core; from hand_mesh_ros.msg import HandPose; '
         'from rclpy.serialization import serialize_message as s; '
         'print(hand_mesh_ros.__file__, len(s(HandPose())))'],
        env=run_env, capture_output=True, text=True, timeout=120, cwd=str(tmp_path))
    assert check.returncode == 0, check.stderr
    module_file, size = check.stdout.split()
    assert module_file.startswith(str(site))
    assert int(size) > 100

    # `colcon test` runs the package's pytest suite (narrowed here to one file by the
    # HAND_MESH_TESTS cache variable) and colcon test-result reads its results.
    test = subprocess.run(
        [colcon, '--log-base', str(tmp_path / 'log'), 'test',
         '--base-paths', str(tmp_path / 'src'),
         '--build-base', str(tmp_path / 'build'), '--install-base', str(tmp_path / 'install'),
         '--event-handlers', 'console_direct-'],
        env=run_env, capture_output=True, text=True, timeout=900)
    assert test.returncode == 0, test.stdout[-4000:] + test.stderr[-4000:]
    result = subprocess.run(
        [colcon, 'test-result', '--test-result-base', str(tmp_path / 'build'), '--all'],
        env=run_env, capture_output=True, text=True, timeout=120)
    summary = result.stdout.strip().splitlines()[-1]
    tests, errors, failures = (int(v) for v in re.match(
        r'Summary: (\d+) tests, (\d+) errors, (\d+) failures', summary).groups())
    assert tests >= 9 and errors == 0 and failures == 0, result.stdout
