"""Fixtures shared by several test modules."""

import pytest

from hand_mesh_ros.paths import models_dir


@pytest.fixture(scope='session')
def sessions():
    """Return the full-variant ONNX Runtime sessions: palm detector, landmark network.

    Fails (never skips) when setup has not produced the models.
    """
    paths = [models_dir() / name for name in ('palm_detection_full.onnx',
                                              'hand_landmark_full.onnx')]
    if not all(path.is_file() for path in paths):
        pytest.fail('ONNX hand models missing: run `hand-mesh setup-models` (bootstrap.sh does)')
    from hand_mesh_ros.inference import create_session
    return [create_session(str(path), backend='onnxruntime', num_threads=2) for path in paths]
