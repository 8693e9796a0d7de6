"""Model faults: hand_mesh_node (own process) stops at start-up with one clear line.

Missing, corrupt, truncated or mismatched model files, TensorRT where it cannot run, a bad
MANO file and bad start-up parameters: the node must exit with code 1 (not hang, not run on
failing every frame), print exactly one ``cannot start`` line naming the file or library,
and print no traceback.
"""

import os
from pathlib import Path
import random
import subprocess

import pytest

from hand_mesh_ros.paths import models_dir
from hand_mesh_ros.ros import processes

pytest.importorskip('rclpy', reason='ROS 2 (rclpy) is not installed')

pytestmark = pytest.mark.slow

PALM = 'palm_detection_full.onnx'
MESH = 'hand_mesh_full.onnx'


def _garbage(path):
    path.write_bytes(random.Random(8).randbytes(100_000))


def _truncated(path):
    path.write_bytes((models_dir() / path.name).read_bytes()[:3_000_000])


def _empty(path):
    path.write_bytes(b'')


def _copy_of(name):
    def write(path):
        path.write_bytes((models_dir() / name).read_bytes())
    return write


#: case: (file to replace, how (None: delete it), words the error line must contain)
MODEL_FAULTS = {
    'missing_mesh': (MESH, None, ('not found', MESH, 'setup-models')),
    'missing_palm': (PALM, None, ('not found', PALM)),
    'garbage_palm': (PALM, _garbage, ('cannot load onnx model', PALM, 'corrupt')),
    'truncated_mesh': (MESH, _truncated, ('cannot load onnx model', MESH)),
    'empty_mesh': (MESH, _empty, ('cannot load onnx model', MESH)),
    'palm_model_as_mesh': (MESH, _copy_of(PALM), (MESH, 'not a hand mesh network')),
    'landmark_model_as_mesh': (MESH, _copy_of('hand_landmark_full.onnx'),
                               (MESH, 'not a hand mesh network')),
    'mesh_model_as_palm': (PALM, _copy_of(MESH), (PALM, 'not a usable palm detection model')),
}


def run_node(params, timeout_s=90):
    """Run hand_mesh_node with ``params``; return (exit code, output)."""
    env = processes.dds_environment(shared_memory=False)
    env['ROS_DOMAIN_ID'] = str(random.randint(120, 220))
    proc = subprocess.run(processes.node_command(params), capture_output=True, text=True,
                          timeout=timeout_s, env=env)
    return proc.returncode, proc.stdout + proc.stderr


def assert_one_clear_error(code, output, words):
    assert code == 1, output
    lines = [line for line in output.splitlines() if 'cannot start' in line]
    assert len(lines) == 1, output
    assert lines[0].startswith('hand_mesh_node: cannot start: '), output
    for word in words:
        assert word.lower() in lines[0].lower(), (word, lines[0])
    assert 'Traceback' not in output, output
    assert 'hand_mesh_node ready' not in output


@pytest.mark.parametrize('case', sorted(MODEL_FAULTS))
def test_bad_model_files_stop_the_node_with_one_clear_line(tmp_path, case):
    name, write, words = MODEL_FAULTS[case]
    folder = tmp_path / 'models'
    folder.mkdir()
    for other in (PALM, MESH):
        if other != name:
            (folder / other).symlink_to(models_dir() / other)
    if write is not None:
        write(folder / name)
    code, output = run_node({'model.models_dir': str(folder)})
    assert_one_clear_error(code, output, words + (str(folder),))


def test_the_good_model_copy_starts_so_the_faults_above_are_the_cause(tmp_path):
    folder = tmp_path / 'models'
    folder.mkdir()
    for name in (PALM, MESH):
        (folder / name).symlink_to(models_dir() / name)
    env = processes.dds_environment(shared_memory=False)
    env['ROS_DOMAIN_ID'] = str(random.randint(120, 220))
    log = tmp_path / 'node.log'
    node = processes.ManagedProcess('hand_mesh_node', processes.node_command(
        {'model.models_dir': str(folder)}), log, env)
    try:
        assert processes.wait_for(lambda: 'hand_mesh_node ready' in log.read_text()
                                  or not node.running(), 90.0)
        assert node.running() and 'hand_mesh_node ready' in log.read_text(), log.read_text()
    finally:
        assert node.stop() == 0


def test_tensorrt_where_it_cannot_run_names_the_missing_library():
    try:
        import tensorrt  # noqa: F401
        pytest.skip('tensorrt is installed here: the requested backend can run')
    except ImportError:
        pass
    code, output = run_node({'model.backend': 'tensorrt'})
    assert_one_clear_error(code, output, ('tensorrt', PALM, 'cannot run here'))


def test_auto_backend_without_tensorrt_logs_the_onnxruntime_fallback_and_runs(tmp_path):
    env = processes.dds_environment(shared_memory=False)
    env['ROS_DOMAIN_ID'] = str(random.randint(120, 220))
    log = tmp_path / 'node.log'
    node = processes.ManagedProcess('hand_mesh_node', processes.node_command(
        {'model.backend': 'auto'}), log, env)
    try:
        assert processes.wait_for(lambda: 'hand_mesh_node ready' in log.read_text()
                                  or not node.running(), 90.0)
        text = log.read_text()
        assert node.running(), text
    finally:
        assert node.stop() == 0
    fallback = [line for line in text.splitlines() if 'inference backend for' in line]
    assert len(fallback) == 2, text     # one line per model saying which backend and why
    if 'onnxruntime' in fallback[0]:
        assert all('TensorRT not usable' in line for line in fallback), fallback


@pytest.mark.parametrize('params, words', [
    ({'model.hand_model': 'mano'}, ('model.mano_path is empty',)),
    ({'model.hand_model': 'mano', 'model.mano_path': '/nonexistent/MANO_RIGHT.pkl'},
     ('MANO file not found', '/nonexistent/MANO_RIGHT.pkl')),
    ({'model.variant': 'huge'}, ('model.variant', 'huge')),
    ({'model.num_threads': 'many'}, ('model.num_threads',)),
])
def test_bad_start_up_settings_stop_the_node_with_one_clear_line(params, words):
    code, output = run_node(params)
    assert_one_clear_error(code, output, words)


def test_a_corrupt_mano_file_is_named(tmp_path):
    path = tmp_path / 'MANO_RIGHT.pkl'
    _garbage(path)
    code, output = run_node({'model.hand_model': 'mano', 'model.mano_path': str(path)})
    assert_one_clear_error(code, output, ('cannot load the hand model', str(path)))


def test_the_models_directory_being_a_file_is_named(tmp_path):
    path = Path(tmp_path) / 'not_a_dir.txt'
    path.write_text('x')
    code, output = run_node({'model.models_dir': str(path)})
    assert_one_clear_error(code, output, (str(path), 'not found'))
    assert os.path.exists(path)
