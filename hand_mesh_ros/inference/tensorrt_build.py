"""Build TensorRT engines from ONNX (TensorRT 8.5-8.6, 10.x, 11.x), into the engine cache.

The ``trt`` and ``cuda`` (``pycuda.driver``) modules are passed in by the caller
(:mod:`hand_mesh_ros.inference.tensorrt_backend` imports them lazily), so this
module never imports TensorRT itself.  Every function that touches the GPU
expects a CUDA context to be current on the calling thread.

API used: ``Builder(logger)``, ``Builder.create_network(flags)`` (flags from
:func:`~hand_mesh_ros.inference.tensorrt_api.network_flags`), ``OnnxParser(network, logger)``,
``parse``, ``num_errors``/``get_error``, ``create_builder_config``,
``IBuilderConfig.set_memory_pool_limit(MemoryPoolType.WORKSPACE, bytes)``,
``create_optimization_profile``, ``IOptimizationProfile.set_shape(name, min, opt, max)``,
``add_optimization_profile``, ``build_serialized_network(network, config)`` (None on
failure).  FP16: ``platform_has_fast_fp16`` and ``set_flag(BuilderFlag.FP16)`` on 8.x/10.x;
an FP16 ONNX graph (strongly typed) on 11.x, where those two are gone.
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
from hand_mesh_ros.inference.fp16_graph import convert_to_fp16
from hand_mesh_ros.inference.fp16_graph import Fp16ConversionError
from hand_mesh_ros.inference.tensorrt_api import network_flags
from hand_mesh_ros.inference.tensorrt_api import trt_version_tuple

# Optimisation-profile batch TensorRT tunes its kernels for: two hands is the usual case.
OPT_BATCH = 2


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


def choose_precision(trt, builder, fp16, major):
    """Return ``(precision, why)``: 'fp16' or 'fp32', and why FP16 was not chosen ('' if it was).

    8.x and 10.x: FP16 where the builder reports fast FP16.  11.x removed that query and the
    FP16 builder flag: a strongly typed network runs in its graph's precision, so FP16 is
    chosen here and the caller feeds an FP16 graph (or falls back to FP32 when the graph
    cannot be converted).
    """
    if not fp16:
        return 'fp32', 'FP32 requested'
    if major >= 11:
        return 'fp16', ''
    else:
        if builder.platform_has_fast_fp16:
            return 'fp16', ''
        return 'fp32', 'this GPU has no fast FP16'


def build_serialized_engine(onnx_path, trt, builder, trt_logger, *, precision, workspace_mb,
                            max_batch, onnx_bytes=None):
    """Parse an ONNX model and build a serialised engine (``IHostMemory``).

    Args:
        onnx_path: the ``.onnx`` file (parsed unless ``onnx_bytes`` is given; named in errors).
        trt: the ``tensorrt`` module.
        builder: a ``trt.Builder`` made with ``trt_logger``.
        trt_logger: the ``trt.ILogger`` for the parser.
        precision: 'fp16' or 'fp32'.  On 8.x/10.x 'fp16' sets ``BuilderFlag.FP16``; on 11.x
            the precision is the graph's (pass the FP16 graph as ``onnx_bytes``).
        workspace_mb: workspace memory pool limit in MiB.
        max_batch: largest batch of the optimisation profile.
        onnx_bytes: the serialised graph to parse instead of the file (the FP16 graph).

    Raises:
        InferenceError: naming the file, with the parser's errors or the build failure.
    """
    onnx_path = pathlib.Path(onnx_path)
    major = trt_version_tuple(trt)[0]
    network = builder.create_network(network_flags(trt, major))
    parser = trt.OnnxParser(network, trt_logger)
    if not parser.parse(onnx_bytes if onnx_bytes is not None else onnx_path.read_bytes()):
        errors = '; '.join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise InferenceError(
            f'TensorRT ONNX parser rejected {onnx_path}: {errors or "no details"}')
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_mb) << 20)
    if major < 11:
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
        fp16: build FP16 where the GPU has fast FP16 (8.x/10.x) or as an FP16 graph (11.x).
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
    trt_logger = make_trt_logger(trt, emit)
    builder = trt.Builder(trt_logger)
    major = trt_version_tuple(trt)[0]
    precision, why = choose_precision(trt, builder, fp16, major)
    onnx_bytes = None
    if precision == 'fp16' and major >= 11:
        try:
            onnx_bytes = convert_to_fp16(onnx_path)
        except Fp16ConversionError as exc:
            precision, why = 'fp32', f'no FP16 graph ({exc})'
    if fp16 and why:
        emit('info', f'{onnx_path.name}: building FP32: {why}')
    gpu_name = cuda.Device(device_index).name()
    model_sha256 = sha256_file(onnx_path)
    key = engine_cache_key(model_sha256, trt.__version__, gpu_name, precision, max_batch)
    engine_file = engine_path(cache_dir, onnx_path, key)
    if engine_file.is_file() and not force:
        return engine_file, False, read_metadata(engine_file)
    start = time.monotonic()
    serialized = build_serialized_engine(
        onnx_path, trt, builder, trt_logger, precision=precision, workspace_mb=workspace_mb,
        max_batch=max_batch, onnx_bytes=onnx_bytes)
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
