"""ONNX Runtime backend: CPU everywhere, the CUDA provider first where it is installed.

Tuned for small machines: ``num_threads`` intra-op threads, one inter-op thread,
and no spin-waiting (``session.intra_op.allow_spinning=0``), so that several
sessions and the ROS executor do not fight over two cores.
"""

import pathlib
import threading

import numpy as np

from hand_mesh_ros.inference.base import BackendUnavailableError
from hand_mesh_ros.inference.base import InferenceError
from hand_mesh_ros.inference.base import InferenceSession
from hand_mesh_ros.inference.base import make_log

# ONNX Runtime's type strings (NodeArg.type) -> numpy dtypes.
_ORT_DTYPES = {
    'tensor(float)': np.float32,
    'tensor(float16)': np.float16,
    'tensor(double)': np.float64,
    'tensor(int64)': np.int64,
    'tensor(int32)': np.int32,
    'tensor(int16)': np.int16,
    'tensor(int8)': np.int8,
    'tensor(uint8)': np.uint8,
    'tensor(bool)': np.bool_,
}

SESSION_CONFIG = {
    'session.intra_op.allow_spinning': '0',
    'session.inter_op.allow_spinning': '0',
}


def import_onnxruntime():
    """Import ``onnxruntime`` lazily.

    Raises:
        BackendUnavailableError: the module is not installed or does not import.
    """
    try:
        import onnxruntime
    except ImportError as exc:
        raise BackendUnavailableError(
            f'python module onnxruntime not importable ({exc}); '
            'pip install onnxruntime (or onnxruntime-gpu)') from exc
    return onnxruntime


def choose_providers(available):
    """Return the execution providers to ask for: CUDA first where present, CPU always."""
    providers = []
    if 'CUDAExecutionProvider' in available:
        providers.append('CUDAExecutionProvider')
    providers.append('CPUExecutionProvider')
    return providers


def _spec_shape(dims):
    """Map ONNX Runtime dims (int, symbolic str or None) to ints with None for dynamic."""
    return tuple(int(d) if isinstance(d, (int, np.integer)) and d >= 0 else None for d in dims)


class OnnxRuntimeSession(InferenceSession):
    """A model run by ONNX Runtime."""

    backend_name = 'onnxruntime'

    def __init__(self, model_path, *, num_threads=2, providers=None, log=None):
        """Load ``model_path`` (an ONNX file).

        Args:
            model_path: path of the ``.onnx`` file.
            num_threads: intra-op threads (>= 1).
            providers: execution providers; default CUDA (where available) then CPU.
            log: ``log(level, msg)`` callable or None for the ``logging`` module.

        Raises:
            InferenceError: the file is missing, unreadable or not a valid model.
            BackendUnavailableError: onnxruntime is not installed.
        """
        super().__init__(model_path)
        self._log = make_log(log)
        self._lock = threading.Lock()
        path = pathlib.Path(model_path)
        if not path.is_file():
            raise InferenceError(
                f'ONNX model file not found: {path} (run `hand-mesh setup-models`?)')
        if int(num_threads) < 1:
            raise ValueError(f'num_threads must be >= 1, got {num_threads}')
        ort = import_onnxruntime()
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(num_threads)
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        for key, value in SESSION_CONFIG.items():
            options.add_session_config_entry(key, value)
        if providers is None:
            providers = choose_providers(ort.get_available_providers())
        try:
            self._session = ort.InferenceSession(
                str(path), sess_options=options, providers=list(providers))
        except Exception as exc:  # noqa: B902 - ORT raises several pybind11 error types
            raise InferenceError(
                f'cannot load ONNX model {path}: {_first_line(exc)} '
                '(file corrupt, truncated or not an ONNX model?)') from exc
        self.providers = list(self._session.get_providers())
        for arg in self._session.get_inputs():
            if arg.type not in _ORT_DTYPES:
                raise InferenceError(
                    f'model {path} input {arg.name!r} has unsupported type {arg.type}')
            self.input_specs[arg.name] = (_spec_shape(arg.shape), np.dtype(_ORT_DTYPES[arg.type]))
        self.output_names = [arg.name for arg in self._session.get_outputs()]

    def run(self, feeds):
        """Run the model; see :meth:`InferenceSession.run`."""
        checked = self.validate_feeds(feeds)
        with self._lock:
            if self._session is None:
                raise InferenceError(f'{self.model_path.name}: session is closed')
            try:
                values = self._session.run(self.output_names, checked)
            except Exception as exc:  # noqa: B902 - ORT raises several pybind11 error types
                raise InferenceError(
                    f'ONNX Runtime failed running {self.model_path}: {_first_line(exc)}') from exc
        return dict(zip(self.output_names, values))

    def close(self):
        """Drop the ONNX Runtime session."""
        with self._lock:
            self._session = None


def _first_line(exc):
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
