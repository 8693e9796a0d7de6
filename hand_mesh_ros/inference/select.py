"""Pick the inference backend for a model: TensorRT where usable, else ONNX Runtime."""

import pathlib

from hand_mesh_ros.inference import tensorrt_backend
from hand_mesh_ros.inference.base import BackendUnavailableError
from hand_mesh_ros.inference.base import InferenceError
from hand_mesh_ros.inference.base import make_log
from hand_mesh_ros.inference.onnxruntime_backend import OnnxRuntimeSession

BACKENDS = ('auto', 'onnxruntime', 'tensorrt')


def create_session(model_path, *, backend='auto', num_threads=2, fp16=True, workspace_mb=1024,
                   max_batch=4, engine_cache_dir=None, log=None):
    """Load a model with the requested backend.

    ``backend='auto'`` uses TensorRT when :func:`check_tensorrt_available` passes
    (and the engine loads), else ONNX Runtime, and logs one info line saying
    which and why.  ``backend='tensorrt'`` where TensorRT cannot run raises
    :class:`BackendUnavailableError` naming what is missing.

    Args:
        model_path: an ``.onnx`` file (any backend) or a TensorRT engine file.
        backend: 'auto', 'onnxruntime' or 'tensorrt'.
        num_threads: ONNX Runtime intra-op threads.
        fp16: TensorRT: build FP16 where the GPU has fast FP16.
        workspace_mb: TensorRT builder workspace limit in MiB.
        max_batch: TensorRT optimisation profile maximum batch.
        engine_cache_dir: TensorRT engine cache; default ``models_dir()/engines``.
        log: ``log(level, msg)`` callable, or None for the ``logging`` module.

    Returns:
        an :class:`InferenceSession`.

    Raises:
        ValueError: unknown backend name.
        BackendUnavailableError: the requested backend cannot run here.
        InferenceError: the model file is missing, corrupt or unusable (named).
    """
    if backend not in BACKENDS:
        raise ValueError(f'unknown inference backend {backend!r}; expected one of {BACKENDS}')
    emit = make_log(log)
    path = pathlib.Path(model_path)
    is_engine = path.suffix.lower() in tensorrt_backend.ENGINE_SUFFIXES
    if backend == 'onnxruntime':
        if is_engine:
            raise InferenceError(f'{path} is a TensorRT engine; ONNX Runtime needs the .onnx file')
        return _onnxruntime(path, num_threads, emit, 'requested')
    trt_options = {'fp16': fp16, 'workspace_mb': workspace_mb, 'max_batch': max_batch,
                   'engine_cache_dir': engine_cache_dir, 'log': emit}
    ok, reason = tensorrt_backend.check_tensorrt_available()
    if backend == 'tensorrt':
        if not ok:
            raise BackendUnavailableError(
                f'TensorRT backend requested for {path.name} but it cannot run here: {reason}')
        session = tensorrt_backend.TensorRTSession(path, **trt_options)
        emit('info', f'inference backend for {path.name}: tensorrt (requested; {reason})')
        return session
    if ok:
        try:
            session = tensorrt_backend.TensorRTSession(path, **trt_options)
        except BackendUnavailableError as exc:
            ok, reason = False, str(exc)
        except InferenceError as exc:
            if is_engine:
                raise
            ok, reason = False, f'TensorRT failed on this model: {exc}'
        else:
            emit('info', f'inference backend for {path.name}: tensorrt ({reason})')
            return session
    if is_engine:
        raise BackendUnavailableError(
            f'{path} is a TensorRT engine but TensorRT cannot run here: {reason}')
    return _onnxruntime(path, num_threads, emit, f'TensorRT not usable: {reason}')


def _onnxruntime(path, num_threads, emit, why):
    session = OnnxRuntimeSession(path, num_threads=num_threads, log=emit)
    emit('info', f'inference backend for {path.name}: onnxruntime '
                 f'[{", ".join(session.providers)}] ({why})')
    return session
