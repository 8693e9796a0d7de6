"""ONNX Runtime backend: CPU everywhere; CUDA or TensorRT execution providers with onnxruntime-gpu.

Tuned for small machines: ``num_threads`` intra-op threads, one inter-op thread,
and no spin-waiting (``session.intra_op.allow_spinning=0``), so that several
sessions and the ROS executor do not fight over two cores.

GPU routes (``onnxruntime-gpu`` installed instead of ``onnxruntime``): ``provider='cuda'``
asks for ``CUDAExecutionProvider`` (FP16 through the project's FP16 graph, as the provider
has no FP16 switch); ``provider='tensorrt'`` asks for ``TensorrtExecutionProvider`` (FP16,
engine cache and the batch profile through its provider options), with CUDA for any node
TensorRT does not take.  A session whose requested provider did not load raises
:class:`BackendUnavailableError` instead of silently running on the CPU.
"""

import pathlib
import threading

import numpy as np

from hand_mesh_ros.inference.base import BackendUnavailableError
from hand_mesh_ros.inference.base import InferenceError
from hand_mesh_ros.inference.base import InferenceSession
from hand_mesh_ros.inference.base import make_log
from hand_mesh_ros.inference.engine_cache import default_engine_cache_dir
from hand_mesh_ros.inference.fp16_graph import convert_to_fp16
from hand_mesh_ros.inference.fp16_graph import Fp16ConversionError
from hand_mesh_ros.inference.tensorrt_build import profile_shapes

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


#: ``provider`` argument -> the ONNX Runtime execution provider it asks for.
GPU_PROVIDERS = {'cuda': 'CUDAExecutionProvider', 'tensorrt': 'TensorrtExecutionProvider'}


def choose_providers(available):
    """Return the execution providers to ask for on the CPU route: CPU only.

    A GPU provider is asked for only explicitly (``provider='cuda'`` or ``'tensorrt'``),
    so the CPU route never starts a GPU by accident.
    """
    del available
    return ['CPUExecutionProvider']


def gpu_provider_options(provider, *, input_shapes, fp16, max_batch, engine_cache_dir,
                         workspace_mb, device_index=0):
    """Return ``(providers, options)`` for ``InferenceSession`` on a GPU route.

    Args:
        provider: 'cuda' or 'tensorrt'.
        input_shapes: input name -> spec shape (None for the dynamic batch dim).
        fp16: TensorRT provider: ``trt_fp16_enable`` (CUDA: the caller feeds an FP16 graph).
        max_batch: largest batch of the TensorRT profile (same profile as the TensorRT
            backend: :func:`~hand_mesh_ros.inference.tensorrt_build.profile_shapes`).
        engine_cache_dir: TensorRT provider engine cache directory.
        workspace_mb: TensorRT provider workspace limit in MiB.
        device_index: CUDA device.

    Raises:
        ValueError: an unknown provider.
    """
    if provider not in GPU_PROVIDERS:
        raise ValueError(f'unknown GPU provider {provider!r}; expected one of '
                         f'{sorted(GPU_PROVIDERS)}')
    cuda = ('CUDAExecutionProvider', {'device_id': str(int(device_index))})
    if provider == 'cuda':
        return [cuda[0], 'CPUExecutionProvider'], [cuda[1], {}]
    trt = {
        'device_id': str(int(device_index)),
        'trt_fp16_enable': 'True' if fp16 else 'False',
        'trt_engine_cache_enable': 'True',
        'trt_engine_cache_path': str(engine_cache_dir),
        'trt_max_workspace_size': str(int(workspace_mb) << 20),
    }
    profiles = {'min': [], 'opt': [], 'max': []}
    for name, shape in input_shapes.items():
        shapes = profile_shapes(name, shape, max_batch)
        if shapes is None:
            continue
        for key, dims in zip(('min', 'opt', 'max'), shapes):
            profiles[key].append(f'{name}:' + 'x'.join(str(int(d)) for d in dims))
    for key, items in profiles.items():
        if items:
            trt[f'trt_profile_{key}_shapes'] = ','.join(items)
    return (['TensorrtExecutionProvider', cuda[0], 'CPUExecutionProvider'],
            [trt, cuda[1], {}])


def _spec_shape(dims):
    """Map ONNX Runtime dims (int, symbolic str or None) to ints with None for dynamic."""
    return tuple(int(d) if isinstance(d, (int, np.integer)) and d >= 0 else None for d in dims)


def _session_options(ort, num_threads):
    """Return ONNX Runtime session options: ``num_threads`` intra-op, sequential, all opts."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(num_threads)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    for key, value in SESSION_CONFIG.items():
        options.add_session_config_entry(key, value)
    return options


class OnnxRuntimeSession(InferenceSession):
    """A model run by ONNX Runtime.

    ``backend_name`` is 'onnxruntime' on the CPU, 'onnxruntime_cuda' or
    'onnxruntime_tensorrt' on a GPU provider.
    """

    backend_name = 'onnxruntime'

    def __init__(self, model_path, *, num_threads=2, provider=None, fp16=True, max_batch=None,
                 engine_cache_dir=None, workspace_mb=1024, device_index=0, log=None):
        """Load ``model_path`` (an ONNX file).

        Args:
            model_path: path of the ``.onnx`` file.
            num_threads: intra-op threads (>= 1).
            provider: None (CPU), 'cuda' or 'tensorrt' (onnxruntime-gpu's providers).
            fp16: GPU routes: compute in FP16 (TensorRT provider option; an FP16 graph for
                CUDA).  Ignored on the CPU.
            max_batch: largest batch ``run`` accepts (the TensorRT provider's profile
                maximum); None for no limit.
            engine_cache_dir: TensorRT provider engine cache; default ``models_dir()/engines``.
            workspace_mb: TensorRT provider workspace limit in MiB.
            device_index: CUDA device of the GPU routes.
            log: ``log(level, msg)`` callable or None for the ``logging`` module.

        Raises:
            InferenceError: the file is missing, unreadable or not a valid model.
            BackendUnavailableError: onnxruntime is not installed, or the requested GPU
                provider is not available or did not load.
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
        if max_batch is not None and int(max_batch) < 1:
            raise ValueError(f'max_batch must be >= 1, got {max_batch}')
        ort = import_onnxruntime()
        options = _session_options(ort, num_threads)
        model = str(path)
        self.precision = 'fp32'
        if provider is None:
            providers, provider_options = choose_providers(ort.get_available_providers()), None
        else:
            model = self._use_gpu_provider(ort, path, provider, fp16)
            providers, provider_options = gpu_provider_options(
                provider, input_shapes=self._declared_inputs(path), fp16=fp16,
                max_batch=max_batch or 1,
                engine_cache_dir=engine_cache_dir or default_engine_cache_dir(),
                workspace_mb=workspace_mb, device_index=device_index)
        try:
            self._session = ort.InferenceSession(
                model, sess_options=options, providers=list(providers),
                provider_options=provider_options)
        except Exception as exc:  # noqa: B902 - ORT raises several pybind11 error types
            raise InferenceError(
                f'cannot load ONNX model {path}: {_first_line(exc)} '
                '(file corrupt, truncated or not an ONNX model?)') from exc
        self.providers = list(self._session.get_providers())
        if provider is not None and self.providers[0] != providers[0]:
            raise BackendUnavailableError(
                f'ONNX Runtime did not load {providers[0]} for {path.name} (session providers: '
                f'{", ".join(self.providers)}); see the ONNX Runtime warnings for why')
        for arg in self._session.get_inputs():
            if arg.type not in _ORT_DTYPES:
                raise InferenceError(
                    f'model {path} input {arg.name!r} has unsupported type {arg.type}')
            self.input_specs[arg.name] = (_spec_shape(arg.shape), np.dtype(_ORT_DTYPES[arg.type]))
        self.output_names = [arg.name for arg in self._session.get_outputs()]
        self.max_batch = None if max_batch is None else int(max_batch)

    def _use_gpu_provider(self, ort, path, provider, fp16):
        """Check the GPU ``provider`` exists; set name and precision; return the model to load.

        The model is the file's path, or its FP16 graph for CUDA with ``fp16`` (FP32 with a
        logged reason where the graph cannot be converted).
        """
        wanted = GPU_PROVIDERS.get(provider)
        available = ort.get_available_providers()
        if wanted is not None and wanted not in available:
            raise BackendUnavailableError(
                f'ONNX Runtime has no {wanted} here (available: {", ".join(available)}); '
                'install onnxruntime-gpu instead of onnxruntime')
        self.precision = 'fp16' if fp16 else 'fp32'
        self.backend_name = f'onnxruntime_{provider}'
        if provider == 'cuda' and fp16:
            try:
                return convert_to_fp16(path)
            except Fp16ConversionError as exc:
                self.precision = 'fp32'
                self._log('info', f'{path.name}: running FP32 on CUDA: {exc}')
        return str(path)

    @staticmethod
    def _declared_inputs(path):
        """Return input name -> shape (None for symbolic dims) read from the ONNX file."""
        try:
            import onnx
            graph = onnx.load(str(path), load_external_data=False).graph
        except Exception:  # noqa: B902 - no onnx, or a file ONNX Runtime will name itself
            return {}
        initializers = {init.name for init in graph.initializer}
        return {value.name: tuple(d.dim_value if d.HasField('dim_value') else None
                                  for d in value.type.tensor_type.shape.dim)
                for value in graph.input if value.name not in initializers}

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
