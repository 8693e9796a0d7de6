"""Build TensorRT engines from ONNX with the TensorRT 10 Python API, into the engine cache.

The ``trt`` and ``cuda`` (``pycuda.driver``) modules are passed in by the caller
(:mod:`hand_mesh_ros.inference.tensorrt_backend` imports them lazily), so this
module never imports TensorRT itself.  Every function that touches the GPU
expects a CUDA context to be current on the calling thread.

API used (TensorRT 10 Python API): ``Builder(logger)``, ``Builder.create_network(flags)``
(explicit batch is implicit in TensorRT 10: ``EXPLICIT_BATCH`` is deprecated and
ignored, so flags are 0), ``OnnxParser(network, logger)``, ``parse``,
``num_errors``/``get_error``, ``create_builder_config``,
``IBuilderConfig.set_memory_pool_limit(MemoryPoolType.WORKSPACE, bytes)``,
``set_flag(BuilderFlag.FP16)``, ``create_optimization_profile``,
``IOptimizationProfile.set_shape(name, min, opt, max)``, ``add_optimization_profile``,
``build_serialized_network(network, config)`` (None on failure).
"""

import datetime
import pathlib
import time

from hand_mesh_ros.inference.base import InferenceError
from hand_mesh_ros.inference.base import make_log
from hand_mesh_ros.inference.engine_cache import engine_cache_key
from hand_mesh_ros.inference.engine_cache import engine_path
from hand_mesh_ros.inference.engine_cache import read_metadata
from hand_mesh_ros.inference.engine_cache import sha256_file
from hand_mesh_ros.inference.engine_cache import write_engine

# Optimisation-profile batch TensorRT tunes its kernels for: two hands is the usual case.
OPT_BATCH = 2


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


def profile_shapes(name, shape, max_batch, opt_batch=OPT_BATCH):
    """Return the ``(min, opt, max)`` shapes of a network input, or None if it is static.

    Only the first (batch) dim may be dynamic; the profile spans batch 1..max_batch.

    Args:
        name: input name (for the error message).
        shape: the input's network shape, -1 (or None) for dynamic dims.
        max_batch: the largest batch the engine must accept (>= 1).
        opt_batch: the batch to tune for (clipped to 1..max_batch).

    Raises:
        InferenceError: a dynamic dim other than the first.
        ValueError: max_batch below 1.
    """
    if int(max_batch) < 1:
        raise ValueError(f'max_batch must be >= 1, got {max_batch}')
    dims = tuple(-1 if d is None else int(d) for d in shape)
    if all(d >= 0 for d in dims):
        return None
    if not dims or dims[0] >= 0 or any(d < 0 for d in dims[1:]):
        raise InferenceError(
            f'input {name!r} has shape {dims}: only a dynamic batch (first) dim is supported '
            'by the TensorRT backend')
    rest = dims[1:]
    opt = max(1, min(int(opt_batch), int(max_batch)))
    return (1,) + rest, (opt,) + rest, (int(max_batch),) + rest


def make_trt_logger(trt, log=None):
    """Return a ``trt.ILogger`` forwarding warnings and errors to ``log(level, msg)``."""
    emit = make_log(log)
    severity = trt.ILogger.Severity
    levels = {
        severity.INTERNAL_ERROR: 'error',
        severity.ERROR: 'error',
        severity.WARNING: 'warn',
    }

    class _ForwardingLogger(trt.ILogger):
        def __init__(self):
            trt.ILogger.__init__(self)

        def log(self, level, msg):
            name = levels.get(level)
            if name is not None:
                emit(name, f'TensorRT: {msg}')

    return _ForwardingLogger()


def fast_fp16_available(trt, builder):
    """Return True where FP16 builds are worthwhile (``platform_has_fast_fp16``)."""
    return bool(getattr(builder, 'platform_has_fast_fp16', False)) and hasattr(
        trt.BuilderFlag, 'FP16')


def build_serialized_engine(onnx_path, trt, builder, logger, *, precision, workspace_mb,
                            max_batch):
    """Parse an ONNX file and build a serialised engine (``IHostMemory``).

    Args:
        onnx_path: the ``.onnx`` file.
        trt: the ``tensorrt`` module.
        builder: a ``trt.Builder`` made with ``logger``.
        logger: the ``trt.ILogger`` for the parser.
        precision: 'fp16' or 'fp32'.
        workspace_mb: workspace memory pool limit in MiB.
        max_batch: largest batch of the optimisation profile.

    Raises:
        InferenceError: naming the file, with the parser's errors or the build failure.
    """
    onnx_path = pathlib.Path(onnx_path)
    flags = 0
    if trt_version_tuple(trt) < (10, 0):
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = '; '.join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise InferenceError(
            f'TensorRT ONNX parser rejected {onnx_path}: {errors or "no details"}')
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_mb) << 20)
    if precision == 'fp16':
        config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    dynamic = False
    for index in range(network.num_inputs):
        tensor = network.get_input(index)
        shapes = profile_shapes(tensor.name, tuple(tensor.shape), max_batch)
        if shapes is not None:
            profile.set_shape(tensor.name, *shapes)
            dynamic = True
    if dynamic and config.add_optimization_profile(profile) < 0:
        raise InferenceError(f'TensorRT rejected the batch profile 1..{max_batch} for {onnx_path}')
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise InferenceError(
            f'TensorRT failed to build an engine from {onnx_path} '
            f'({precision}, workspace {workspace_mb} MiB); see the TensorRT errors logged above')
    return serialized


def ensure_engine(onnx_path, trt, cuda, *, cache_dir, fp16=True, workspace_mb=1024, max_batch=4,
                  device_index=0, log=None, force=False):
    """Return the cached engine for an ONNX file, building it first if needed.

    A CUDA context must be current on the calling thread.

    Args:
        onnx_path: the ``.onnx`` file.
        trt: the ``tensorrt`` module.
        cuda: the ``pycuda.driver`` module.
        cache_dir: the engine cache directory.
        fp16: build FP16 where the GPU has fast FP16 (else FP32).
        workspace_mb: workspace memory pool limit in MiB.
        max_batch: largest batch of the optimisation profile.
        device_index: CUDA device the engine is for (its name goes in the key).
        log: ``log(level, msg)`` or None.
        force: rebuild even when a cached engine exists.

    Returns:
        ``(engine_file, built, metadata)``; ``built`` is False for a cache hit.
    """
    emit = make_log(log)
    onnx_path = pathlib.Path(onnx_path)
    if not onnx_path.is_file():
        raise InferenceError(f'ONNX model file not found: {onnx_path}')
    logger = make_trt_logger(trt, emit)
    builder = trt.Builder(logger)
    precision = 'fp32'
    if fp16:
        if fast_fp16_available(trt, builder):
            precision = 'fp16'
        else:
            emit('info', f'{onnx_path.name}: this GPU has no fast FP16; building FP32')
    gpu_name = cuda.Device(device_index).name()
    model_sha256 = sha256_file(onnx_path)
    key = engine_cache_key(model_sha256, trt.__version__, gpu_name, precision, max_batch)
    engine_file = engine_path(cache_dir, onnx_path, key)
    if engine_file.is_file() and not force:
        return engine_file, False, read_metadata(engine_file)
    start = time.monotonic()
    serialized = build_serialized_engine(
        onnx_path, trt, builder, logger, precision=precision, workspace_mb=workspace_mb,
        max_batch=max_batch)
    seconds = time.monotonic() - start
    metadata = {
        'model': onnx_path.name,
        'model_sha256': model_sha256,
        'tensorrt_version': str(trt.__version__),
        'gpu_name': gpu_name,
        'precision': precision,
        'max_batch': int(max_batch),
        'workspace_mb': int(workspace_mb),
        'cache_key': key,
        'build_seconds': round(seconds, 3),
        'built_utc': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
    }
    write_engine(engine_file, serialized, metadata)
    emit('info', f'built TensorRT {precision} engine {engine_file} from {onnx_path.name} '
                 f'in {seconds:.1f} s')
    return engine_file, True, metadata
