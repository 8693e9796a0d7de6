"""Pick the inference backend for a model: TensorRT, ONNX Runtime's GPU providers, or the CPU.

``auto`` tries, in order: standalone TensorRT (+ pycuda); ONNX Runtime's TensorRT execution
provider, then its CUDA provider, where ``onnxruntime-gpu`` offers them; ONNX Runtime on the
CPU.  Any failure to set up a GPU session (missing library, no device, a context that
cannot be made, an unwritable engine cache, an unsupported tensor type, ...) is logged as
the reason for the next choice; only the CPU session's own errors (a missing or corrupt
model file) reach the caller.  An explicit GPU backend that cannot run raises one error.
"""

import pathlib

from hand_mesh_ros.inference import tensorrt_backend
from hand_mesh_ros.inference.base import BackendUnavailableError
from hand_mesh_ros.inference.base import InferenceError
from hand_mesh_ros.inference.base import make_log
from hand_mesh_ros.inference.onnxruntime_backend import GPU_PROVIDERS
from hand_mesh_ros.inference.onnxruntime_backend import import_onnxruntime
from hand_mesh_ros.inference.onnxruntime_backend import OnnxRuntimeSession

BACKENDS = ('auto', 'onnxruntime', 'tensorrt', 'onnxruntime_cuda', 'onnxruntime_tensorrt')
#: ``model.backend`` value -> ONNX Runtime GPU provider name of :class:`OnnxRuntimeSession`.
ORT_GPU_BACKENDS = {'onnxruntime_tensorrt': 'tensorrt', 'onnxruntime_cuda': 'cuda'}


#: TensorRT profile maximum when the caller gives none.
DEFAULT_MAX_BATCH = 4


def create_session(model_path, *, backend='auto', num_threads=2, fp16=True, workspace_mb=1024,
                   max_batch=None, engine_cache_dir=None, log=None):
    """Load a model with the requested backend.

    ``backend='auto'`` tries the GPU routes in the module's order and logs one info line
    saying which backend runs and why the earlier ones did not.  An explicit GPU backend
    that cannot run raises :class:`BackendUnavailableError` or :class:`InferenceError`
    naming the model and the cause, in one line.

    Args:
        model_path: an ``.onnx`` file (any backend) or a TensorRT engine file.
        backend: one of :data:`BACKENDS`.
        num_threads: ONNX Runtime intra-op threads.
        fp16: GPU routes: FP16 where the GPU has it (TensorRT: builder flag on 8.x/10.x, an
            FP16 graph on 11.x; ONNX Runtime TensorRT provider option; CUDA: FP16 graph).
        workspace_mb: TensorRT builder workspace limit in MiB.
        max_batch: largest batch of the optimisation profile; when given, every session's
            ``max_batch`` enforces it, on the CPU too, so the batching is the same on every
            backend.  None: :data:`DEFAULT_MAX_BATCH` for the GPU profiles, no limit on the
            CPU (tools that run large offline batches).
        engine_cache_dir: engine cache; default ``models_dir()/engines``.
        log: ``log(level, msg)`` callable, or None for the ``logging`` module.

    Returns:
        an :class:`InferenceSession`.

    Raises:
        ValueError: unknown backend name, or max_batch below 1.
        BackendUnavailableError: the requested backend cannot run here.
        InferenceError: the model file is missing, corrupt or unusable (named).
    """
    if backend not in BACKENDS:
        raise ValueError(f'unknown inference backend {backend!r}; expected one of {BACKENDS}')
    if max_batch is not None and int(max_batch) < 1:
        raise ValueError(f'max_batch must be >= 1, got {max_batch}')
    cpu_max_batch = max_batch
    max_batch = DEFAULT_MAX_BATCH if max_batch is None else int(max_batch)
    emit = make_log(log)
    path = pathlib.Path(model_path)
    is_engine = path.suffix.lower() in tensorrt_backend.ENGINE_SUFFIXES
    if is_engine and backend not in ('auto', 'tensorrt'):
        raise InferenceError(f'{path} is a TensorRT engine; ONNX Runtime needs the .onnx file')
    gpu = {'fp16': fp16, 'workspace_mb': workspace_mb, 'max_batch': max_batch,
           'engine_cache_dir': engine_cache_dir, 'log': emit}
    if backend == 'onnxruntime':
        return _onnxruntime(path, num_threads, cpu_max_batch, emit, 'requested')
    if backend == 'tensorrt':
        ok, reason = tensorrt_backend.check_tensorrt_available()
        if not ok:
            raise BackendUnavailableError(
                f'TensorRT backend requested for {path.name} but it cannot run here: {reason}')
        session = _guarded(path, 'TensorRT', lambda: tensorrt_backend.TensorRTSession(path, **gpu))
        emit('info', f'inference backend for {path.name}: tensorrt (requested; {reason})')
        return session
    if backend in ORT_GPU_BACKENDS:
        session = _guarded(path, f'ONNX Runtime {GPU_PROVIDERS[ORT_GPU_BACKENDS[backend]]}',
                           lambda: _ort_gpu(path, ORT_GPU_BACKENDS[backend], num_threads, gpu))
        emit('info', f'inference backend for {path.name}: {backend} (requested; '
                     f'{session.precision})')
        return session
    return _auto(path, is_engine, num_threads, gpu, cpu_max_batch, emit)


def _auto(path, is_engine, num_threads, gpu, cpu_max_batch, emit):
    reasons = []
    ok, reason = tensorrt_backend.check_tensorrt_available()
    if ok:
        try:
            session = tensorrt_backend.TensorRTSession(path, **gpu)
        except Exception as exc:  # noqa: B902 - every set-up failure becomes the fallback
            if is_engine:
                raise _one_error(path, 'TensorRT', exc) from exc
            reason = f'TensorRT failed on this model: {_first_line(exc)}'
        else:
            emit('info', f'inference backend for {path.name}: tensorrt ({reason})')
            return session
    if is_engine:
        raise BackendUnavailableError(
            f'{path} is a TensorRT engine but TensorRT cannot run here: {reason}')
    reasons.append(f'TensorRT not usable: {reason}')
    for backend in available_ort_gpu_backends():
        provider = ORT_GPU_BACKENDS[backend]
        try:
            session = _ort_gpu(path, provider, num_threads, gpu)
        except Exception as exc:  # noqa: B902 - every set-up failure becomes the fallback
            reasons.append(f'{backend} not usable: {_first_line(exc)}')
            continue
        emit('info', f'inference backend for {path.name}: {backend} '
                     f'[{", ".join(session.providers)}] ({session.precision}; '
                     f'{"; ".join(reasons)})')
        return session
    return _onnxruntime(path, num_threads, cpu_max_batch, emit, '; '.join(reasons))


def available_ort_gpu_backends():
    """Return the ONNX Runtime GPU backends this install offers, best first (may be empty)."""
    try:
        available = import_onnxruntime().get_available_providers()
    except Exception:  # noqa: B902 - no onnxruntime: the CPU route names it
        return []
    return [name for name, provider in ORT_GPU_BACKENDS.items()
            if GPU_PROVIDERS[provider] in available]


def _ort_gpu(path, provider, num_threads, gpu):
    return OnnxRuntimeSession(
        path, num_threads=num_threads, provider=provider, fp16=gpu['fp16'],
        max_batch=gpu['max_batch'], engine_cache_dir=gpu['engine_cache_dir'],
        workspace_mb=gpu['workspace_mb'], log=gpu['log'])


def _guarded(path, what, make):
    """Call ``make()``; any exception becomes one InferenceError naming ``path``."""
    try:
        return make()
    except Exception as exc:  # noqa: B902 - one clear error, whatever the library raised
        raise _one_error(path, what, exc) from exc


def _one_error(path, what, exc):
    if isinstance(exc, InferenceError) and path.name in str(exc) and '\n' not in str(exc):
        return exc
    kind = BackendUnavailableError if isinstance(exc, BackendUnavailableError) else (
        InferenceError)
    return kind(f'{what} set-up failed for {path.name}: {_first_line(exc)}')


def _onnxruntime(path, num_threads, max_batch, emit, why):
    session = OnnxRuntimeSession(path, num_threads=num_threads, max_batch=max_batch, log=emit)
    emit('info', f'inference backend for {path.name}: onnxruntime '
                 f'[{", ".join(session.providers)}] ({why})')
    return session


def _first_line(exc):
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
