"""Which TensorRT versions the backend supports, and what differs between them.

Supported: 8.5 and 8.6 (JetPack 5.1), 10.x (JetPack 6, desktop) and 11.x. The API
differences the backend meets, each handled by an explicit branch on the major version
(``if major >= 11``), which the API conformance test reads to check each branch only
against the versions it runs on:

- networks: 8.x needs the ``EXPLICIT_BATCH`` creation flag; 10.x ignores it (deprecated);
  11.x removed it.
- FP16: 8.x and 10.x are weakly typed (``BuilderFlag.FP16``, gated by
  ``Builder.platform_has_fast_fp16``); 11.x removed both and always builds strongly typed
  networks, whose precision is the ONNX graph's own: FP16 there means an FP16 graph
  (:mod:`hand_mesh_ros.inference.fp16_graph`).
- tensor data types are mapped by their enum names (``DataType.name``), so a type this
  backend cannot feed from numpy (BF16, FP8, INT4, FP4) becomes one clear error instead of
  the exception ``tensorrt.nptype`` raises.

Naming rule for the conformance test: a variable holding a TensorRT object is named after
its kind (``trt``, ``builder``, ``network``, ``parser``, ``config``, ``profile``, ``runtime``,
``engine``, ``context``, ``tensor``, ``trt_logger``, ``severity``, ``data_type``), and one
holding a pycuda object likewise (``cuda``, ``stream``, ``allocation``, ``cuda_context``,
``device``); ``test/test_gpu_api_conformance.py`` reads every attribute taken from such a
name, and refuses a value returned by one that is stored under another name.
"""

import numpy as np

from hand_mesh_ros.inference.base import InferenceError

#: Oldest supported version (JetPack 5.1 ships 8.5.2).
MIN_TENSORRT = (8, 5)
#: Major versions whose API this backend was written and checked against.
SUPPORTED_MAJORS = (8, 10, 11)

#: TensorRT ``DataType`` member name -> numpy dtype, for the types numpy can hold.
NUMPY_DTYPES = {
    'FLOAT': np.dtype(np.float32),
    'HALF': np.dtype(np.float16),
    'INT32': np.dtype(np.int32),
    'INT64': np.dtype(np.int64),
    'INT8': np.dtype(np.int8),
    'UINT8': np.dtype(np.uint8),
    'BOOL': np.dtype(np.bool_),
}

#: The names of :data:`TRT_RECEIVERS` / :data:`PYCUDA_RECEIVERS` (see the module docstring).
TRT_RECEIVERS = ('trt', 'builder', 'network', 'parser', 'config', 'profile', 'runtime',
                 'engine', 'context', 'tensor', 'trt_logger', 'severity', 'data_type')
PYCUDA_RECEIVERS = ('cuda', 'stream', 'allocation', 'cuda_context', 'device')


def trt_version_tuple(trt):
    """Return ``(major, minor)`` of a ``tensorrt`` module's ``__version__``."""
    parts = str(getattr(trt, '__version__', '0.0')).split('.')
    numbers = []
    for part in parts[:2]:
        digits = ''.join(ch for ch in part if ch.isdigit())
        numbers.append(int(digits) if digits else 0)
    while len(numbers) < 2:
        numbers.append(0)
    return tuple(numbers)


def unsupported_version_reason(version, text=None):
    """Return why TensorRT ``(major, minor)`` is not supported, or '' when it is.

    ``text`` is the full version string to name (default ``major.minor``).
    """
    text = text or f'{version[0]}.{version[1]}'
    if tuple(version) < MIN_TENSORRT:
        return (f'TensorRT {text} is too old (need {MIN_TENSORRT[0]}.{MIN_TENSORRT[1]} or '
                'newer)')
    if version[0] > max(SUPPORTED_MAJORS):
        return (f'TensorRT {text} is newer than this backend supports '
                f'({max(SUPPORTED_MAJORS)}.x); its API was not checked')
    if version[0] not in SUPPORTED_MAJORS:
        return (f'TensorRT {text} is not supported (supported: 8.5-8.6, 10.x, 11.x)')
    return ''


def network_flags(trt, major):
    """Return the ``Builder.create_network`` flags for a TensorRT major version."""
    if major < 10:
        return 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    return 0


def numpy_dtype(data_type, where):
    """Return the numpy dtype of a TensorRT ``DataType``.

    Raises:
        InferenceError: a type numpy cannot feed (BF16, FP8, INT4, FP4, ...), naming ``where``.
    """
    name = str(data_type.name)
    if name not in NUMPY_DTYPES:
        raise InferenceError(
            f'{where} has TensorRT data type {name}, which this backend cannot feed from numpy '
            f'(supported: {", ".join(NUMPY_DTYPES)})')
    return NUMPY_DTYPES[name]
