"""Inference runtime backends (ONNX Runtime, TensorRT) behind one interface.

Use :func:`create_session`; every session has ``backend_name``, ``model_path``,
``input_specs``, ``output_names`` and ``run(feeds) -> outputs``.  Importing this
package imports neither onnxruntime nor tensorrt nor pycuda.
"""

from hand_mesh_ros.inference.base import BackendUnavailableError
from hand_mesh_ros.inference.base import InferenceError
from hand_mesh_ros.inference.base import InferenceSession
from hand_mesh_ros.inference.engine_cache import engine_cache_key
from hand_mesh_ros.inference.select import BACKENDS
from hand_mesh_ros.inference.select import create_session
from hand_mesh_ros.inference.tensorrt_backend import check_tensorrt_available

__all__ = [
    'BACKENDS',
    'BackendUnavailableError',
    'InferenceError',
    'InferenceSession',
    'check_tensorrt_available',
    'create_session',
    'engine_cache_key',
]
