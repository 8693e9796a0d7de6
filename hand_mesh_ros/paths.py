"""Where the package finds its models and sample data."""

import os
from pathlib import Path
import sys

_PACKAGE_DIR = Path(__file__).resolve().parent


def _candidates(name):
    """Yield candidate directories named ``name`` in priority order."""
    # A source checkout (tests, development, the README's setup command).
    yield _PACKAGE_DIR.parent / name
    # pip install: data_files go below the environment prefix.
    yield Path(sys.prefix) / 'share' / 'hand_mesh_ros' / name
    # colcon / ament install: the package's share directory.
    try:
        from ament_index_python.packages import get_package_share_directory
        yield Path(get_package_share_directory('hand_mesh_ros')) / name
    except Exception:  # noqa: B902 - ament index absent or package not registered
        return


def _find_dir(name, env_var):
    override = os.environ.get(env_var)
    if override:
        return Path(override)
    for path in _candidates(name):
        if path.is_dir():
            return path
    return _PACKAGE_DIR.parent / name


def models_dir():
    """Return the models directory (``$HAND_MESH_MODELS_DIR`` overrides)."""
    return _find_dir('models', 'HAND_MESH_MODELS_DIR')


def data_dir():
    """Return the sample data directory (``$HAND_MESH_DATA_DIR`` overrides)."""
    return _find_dir('data', 'HAND_MESH_DATA_DIR')
