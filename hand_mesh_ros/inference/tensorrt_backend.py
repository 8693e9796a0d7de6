"""TensorRT backend (8.5-8.6, 10.x, 11.x): engines built from ONNX (cached), run with pycuda.

``tensorrt`` and ``pycuda.driver`` are imported only when a session or a check
asks for them; :func:`check_tensorrt_available` says in one line why the backend
cannot run (no module, no driver library, no device).

Threading rule: a CUDA context is current per *thread*.  Each session makes its
own context explicitly (``cuda.init()``, ``Device(i).make_context()``, not
``pycuda.autoinit``, which binds a context to the importing thread only) and
pops it right after loading.  Every :meth:`TensorRTSession.run` pushes the
context, works, and pops it again, under a lock.  So a session may be created on
one thread (the node's constructor) and run on another (its worker thread);
calls from several threads serialise.  :meth:`TensorRTSession.close` pushes the
context, frees the buffers and engine in it, and detaches it *while it is current*:
pycuda's ``Context.detach`` destroys a context only when it is current on the calling
thread or that thread created it, so popping first and detaching from another thread
(the node's shutdown thread) would silently leak it.

Any failure while setting a session up (a missing library, a context that cannot be made,
an unwritable engine cache, a tensor type numpy cannot hold) becomes one
:class:`InferenceError` naming the model, so ``backend: auto`` can fall back and an explicit
``tensorrt`` fails with one line.

Run path (tensor-address API, TensorRT 8.5 and newer): ``context.set_input_shape`` per input,
``context.get_tensor_shape`` for outputs, buffers grown with ``cuda.mem_alloc``
and ``cuda.pagelocked_empty`` when the batch grows, ``cuda.memcpy_htod_async``,
``context.set_tensor_address`` per tensor, ``context.execute_async_v3(stream.handle)``,
``cuda.memcpy_dtoh_async``, ``stream.synchronize()``.
"""

import contextlib
import ctypes
import importlib
import pathlib
import threading

import numpy as np

from hand_mesh_ros.inference.base import BackendUnavailableError
from hand_mesh_ros.inference.base import InferenceError
from hand_mesh_ros.inference.base import InferenceSession
from hand_mesh_ros.inference.base import make_log
from hand_mesh_ros.inference.engine_cache import default_engine_cache_dir
from hand_mesh_ros.inference.tensorrt_api import numpy_dtype
from hand_mesh_ros.inference.tensorrt_api import trt_version_tuple
from hand_mesh_ros.inference.tensorrt_api import unsupported_version_reason
from hand_mesh_ros.inference.tensorrt_build import ensure_engine
from hand_mesh_ros.inference.tensorrt_build import make_trt_logger

LIBCUDA = 'libcuda.so.1'
ENGINE_SUFFIXES = ('.engine', '.plan', '.trt')


def _load_libcuda():
    """Load the CUDA driver library (raises OSError where there is no NVIDIA driver)."""
    ctypes.CDLL(LIBCUDA)


def check_tensorrt_available(device_index=0):
    """Say whether the TensorRT backend can run here, and why not.

    Checks in order: the ``tensorrt`` module (8.5-8.6, 10.x or 11.x), the ``pycuda``
    package, the CUDA driver library ``libcuda.so.1``, ``pycuda.driver`` and
    ``cuda.init()``, and a CUDA device with index ``device_index``.

    Returns:
        ``(ok, reason)``: ``reason`` names what is missing, or describes what was found.
    """
    try:
        trt = importlib.import_module('tensorrt')
    except ImportError as exc:
        if getattr(exc, 'name', None) == 'tensorrt':
            return False, 'python module tensorrt not installed'
        return False, f'python module tensorrt failed to import: {exc}'
    except OSError as exc:
        return False, f'python module tensorrt failed to load its libraries: {exc}'
    except Exception as exc:  # noqa: B902 - a broken install can raise anything on import
        return False, f'python module tensorrt failed to import: {type(exc).__name__}: {exc}'
    too_old_or_new = unsupported_version_reason(
        trt_version_tuple(trt), str(getattr(trt, '__version__', '?')))
    if too_old_or_new:
        return False, too_old_or_new
    try:
        importlib.import_module('pycuda')
    except ImportError as exc:
        if getattr(exc, 'name', None) == 'pycuda':
            return False, 'pycuda not installed'
        return False, f'pycuda failed to import: {exc}'
    except Exception as exc:  # noqa: B902 - a broken install can raise anything on import
        return False, f'pycuda failed to import: {type(exc).__name__}: {exc}'
    try:
        _load_libcuda()
    except OSError as exc:
        return False, f'CUDA driver library ({LIBCUDA}) not found: {exc}'
    try:
        cuda = importlib.import_module('pycuda.driver')
    except Exception as exc:  # noqa: B902 - ImportError, OSError, pycuda's own errors
        return False, f'pycuda.driver failed to import: {exc}'
    try:
        cuda.init()
        count = int(cuda.Device.count())
    except Exception as exc:  # noqa: B902 - pycuda raises its own error hierarchy
        return False, f'no CUDA device (cuInit failed: {exc})'
    if count <= device_index:
        return False, f'no CUDA device (found {count}, need index {device_index})'
    try:
        name = cuda.Device(device_index).name()
    except Exception as exc:  # noqa: B902 - pycuda raises its own error hierarchy
        return False, f'CUDA device {device_index} unusable: {exc}'
    return True, f'TensorRT {trt.__version__} with pycuda on CUDA device {device_index} ({name})'


def import_tensorrt_modules(device_index=0):
    """Return ``(tensorrt, pycuda.driver)`` after :func:`check_tensorrt_available` passes.

    Raises:
        BackendUnavailableError: naming what is missing.
    """
    ok, reason = check_tensorrt_available(device_index)
    if not ok:
        raise BackendUnavailableError(f'TensorRT backend cannot run here: {reason}')
    return importlib.import_module('tensorrt'), importlib.import_module('pycuda.driver')


def make_cuda_context(cuda, device_index=0):
    """Create a CUDA context on ``device_index`` (current on this thread until popped).

    Blocking sync makes ``stream.synchronize()`` sleep instead of spin (small CPUs).
    """
    cuda.init()
    return cuda.Device(device_index).make_context(cuda.ctx_flags.SCHED_BLOCKING_SYNC)


def build_engine_files(onnx_paths, *, cache_dir=None, fp16=True, workspace_mb=1024, max_batch=4,
                       device_index=0, log=None, force=False):
    """Build (or find cached) engines for several ONNX files, ahead of time.

    Returns:
        a list of ``(engine_file, built, metadata)``, one per ONNX file.

    Raises:
        BackendUnavailableError: TensorRT cannot run here (the message says why).
        InferenceError: a model failed to parse or build (the message names it).
    """
    trt, cuda = import_tensorrt_modules(device_index)
    cache_dir = pathlib.Path(cache_dir) if cache_dir else default_engine_cache_dir()
    names = ', '.join(pathlib.Path(path).name for path in onnx_paths)
    with setup_errors(f'building TensorRT engines for {names}'):
        cuda_context = make_cuda_context(cuda, device_index)
        try:
            return [
                ensure_engine(path, trt, cuda, cache_dir=cache_dir, fp16=fp16,
                              workspace_mb=workspace_mb, max_batch=max_batch,
                              device_index=device_index, log=log, force=force)
                for path in onnx_paths]
        finally:
            cuda_context.detach()


@contextlib.contextmanager
def setup_errors(what):
    """Turn any non-:class:`InferenceError` exception inside into one ``InferenceError``.

    ``what`` says what was being set up, e.g. 'TensorRT session for palm.onnx'.
    """
    try:
        yield
    except InferenceError:
        raise
    except Exception as exc:  # noqa: B902 - TensorRT, pycuda and the OS raise many types
        detail = str(exc).strip().splitlines()
        raise InferenceError(
            f'{what} failed: {type(exc).__name__}: {detail[0] if detail else ""}') from exc


class TensorRTSession(InferenceSession):
    """A model run by TensorRT from an engine file (built from ONNX and cached as needed)."""

    backend_name = 'tensorrt'

    def __init__(self, model_path, *, fp16=True, workspace_mb=1024, max_batch=4,
                 engine_cache_dir=None, device_index=0, log=None):
        """Load an engine, building it from ONNX into the cache first when needed.

        Args:
            model_path: an ``.onnx`` file, or a serialised engine (.engine/.plan/.trt).
            fp16: build FP16 where the GPU has fast FP16 (8.x/10.x), or from an FP16 graph
                (11.x, strongly typed).
            workspace_mb: builder workspace limit in MiB.
            max_batch: largest batch of the optimisation profile (``self.max_batch`` is
                the loaded engine's profile maximum).
            engine_cache_dir: engine cache; default ``models_dir()/engines``.
            device_index: CUDA device.
            log: ``log(level, msg)`` or None.

        Raises:
            BackendUnavailableError: TensorRT cannot run here.
            InferenceError: missing, unparsable or undeserialisable file, or any other
                set-up failure (context, engine cache, tensor type), naming the model.
        """
        super().__init__(model_path)
        self._log = make_log(log)
        self._lock = threading.Lock()
        self._cuda_context = None
        if not self.model_path.is_file():
            raise InferenceError(f'model file not found: {self.model_path}')
        trt, cuda = import_tensorrt_modules(device_index)
        self._trt, self._cuda = trt, cuda
        self._device_buffers = {}
        self._host = {}
        self._capacity = {}
        with setup_errors(f'TensorRT set-up for {self.model_path.name}'):
            self._cuda_context = make_cuda_context(cuda, device_index)
            try:
                self._open(fp16, workspace_mb, max_batch, engine_cache_dir, device_index)
            except BaseException:
                try:
                    self._release()
                finally:
                    # Detach while current: destroys the context and pops it.
                    self._cuda_context.detach()
                    self._cuda_context = None
                raise
            cuda.Context.pop()

    def _open(self, fp16, workspace_mb, max_batch, engine_cache_dir, device_index):
        if self.model_path.suffix.lower() in ENGINE_SUFFIXES:
            self.engine_path = self.model_path
            self._load_engine(self.engine_path)
            return
        cache_dir = pathlib.Path(engine_cache_dir) if engine_cache_dir else (
            default_engine_cache_dir())
        options = {'cache_dir': cache_dir, 'fp16': fp16, 'workspace_mb': workspace_mb,
                   'max_batch': max_batch, 'device_index': device_index, 'log': self._log}
        self.engine_path, built, _ = ensure_engine(
            self.model_path, self._trt, self._cuda, **options)
        try:
            self._load_engine(self.engine_path)
        except InferenceError as exc:
            if built:
                raise
            self._log('warn', f'cached engine unusable ({exc}); rebuilding')
            self.engine_path, _, _ = ensure_engine(
                self.model_path, self._trt, self._cuda, force=True, **options)
            self._load_engine(self.engine_path)

    def _load_engine(self, engine_file):
        trt = self._trt
        self._trt_logger = make_trt_logger(trt, self._log)
        self._runtime = trt.Runtime(self._trt_logger)
        engine = self._runtime.deserialize_cuda_engine(pathlib.Path(engine_file).read_bytes())
        if engine is None:
            raise InferenceError(
                f'cannot deserialise TensorRT engine {engine_file}: corrupt, or built by another '
                'TensorRT version or GPU (delete it, or run `hand-mesh build-engine`)')
        context = engine.create_execution_context()
        if context is None:
            raise InferenceError(f'cannot create an execution context for {engine_file}')
        self._engine, self._context = engine, context
        self.input_specs, self.output_names = {}, []
        self._dtypes, self._max_shapes = {}, {}
        for index in range(engine.num_io_tensors):
            name = engine.get_tensor_name(index)
            if engine.is_shape_inference_io(name):
                raise InferenceError(f'{engine_file}: shape tensor {name!r} is not supported')
            dtype = numpy_dtype(engine.get_tensor_dtype(name), f'{engine_file} tensor {name!r}')
            self._dtypes[name] = dtype
            shape = tuple(int(d) for d in engine.get_tensor_shape(name))
            if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
                self.input_specs[name] = (tuple(None if d < 0 else d for d in shape), dtype)
                if any(d < 0 for d in shape):
                    self._max_shapes[name] = tuple(
                        int(d) for d in engine.get_tensor_profile_shape(name, 0)[2])
            else:
                self.output_names.append(name)
        batches = [shape[0] for shape in self._max_shapes.values()]
        self.max_batch = min(batches) if batches else None
        self._stream = self._cuda.Stream()

    def run(self, feeds):
        """Run the engine; see :meth:`InferenceSession.run`."""
        checked = self.validate_feeds(feeds)
        for name, array in checked.items():
            limit = self._max_shapes.get(name)
            if limit is not None and any(g > m for g, m in zip(array.shape, limit)):
                raise InferenceError(
                    f'{self.engine_path.name}: input {name!r} shape {array.shape} exceeds the '
                    f'engine profile maximum {limit}; rebuild with a larger max_batch')
        with self._lock:
            if self._cuda_context is None:
                raise InferenceError(f'{self.model_path.name}: session is closed')
            self._cuda_context.push()
            try:
                return self._run_in_context(checked)
            finally:
                self._cuda.Context.pop()

    def _run_in_context(self, checked):
        cuda, context, stream = self._cuda, self._context, self._stream
        shapes = {}
        for name, array in checked.items():
            if not context.set_input_shape(name, array.shape):
                raise InferenceError(
                    f'{self.engine_path.name}: TensorRT rejected shape {array.shape} '
                    f'for input {name!r}')
            shapes[name] = array.shape
        for name in self.output_names:
            shapes[name] = tuple(int(d) for d in context.get_tensor_shape(name))
            if any(d < 0 for d in shapes[name]):
                raise InferenceError(
                    f'{self.engine_path.name}: output {name!r} has an unresolved shape '
                    f'{shapes[name]} (data-dependent shapes are not supported)')
        for name, shape in shapes.items():
            self._reserve(name, int(np.prod(shape, dtype=np.int64)))
        for name, array in checked.items():
            host = self._host[name][:array.size]
            np.copyto(host, array.reshape(-1))
            cuda.memcpy_htod_async(self._device_buffers[name], host, stream)
        for name in shapes:
            if not context.set_tensor_address(name, int(self._device_buffers[name])):
                raise InferenceError(
                    f'{self.engine_path.name}: TensorRT rejected the address of {name!r}')
        if not context.execute_async_v3(stream.handle):
            raise InferenceError(f'TensorRT execution failed for {self.engine_path}')
        views = {}
        for name in self.output_names:
            views[name] = self._host[name][:int(np.prod(shapes[name], dtype=np.int64))]
            cuda.memcpy_dtoh_async(views[name], self._device_buffers[name], stream)
        stream.synchronize()
        outputs = {}
        for name in self.output_names:
            value = views[name].reshape(shapes[name])
            outputs[name] = value.astype(np.float32) if value.dtype == np.float16 else value.copy()
        return outputs

    def _reserve(self, name, count):
        """Grow the host (page-locked) and device buffers of one tensor to ``count`` elements."""
        if self._capacity.get(name, 0) >= count:
            return
        allocation = self._device_buffers.pop(name, None)
        if allocation is not None:
            allocation.free()
        dtype = self._dtypes[name]
        self._host[name] = self._cuda.pagelocked_empty(count, dtype)
        self._device_buffers[name] = self._cuda.mem_alloc(max(1, count * dtype.itemsize))
        self._capacity[name] = count

    def _release(self):
        for allocation in self._device_buffers.values():
            allocation.free()
        self._device_buffers, self._host, self._capacity = {}, {}, {}
        for attr in ('_context', '_engine', '_runtime', '_stream'):
            if hasattr(self, attr):
                delattr(self, attr)

    def close(self):
        """Free buffers and engine inside the CUDA context, then detach it; any thread.

        The context is pushed on the calling thread and detached while current, which
        destroys it and pops it whichever thread created it (popping first and detaching
        from a thread other than the creator's leaks it in pycuda).
        """
        with self._lock:
            if self._cuda_context is None:
                return
            self._cuda_context.push()
            try:
                self._release()
            finally:
                self._cuda_context.detach()
                self._cuda_context = None
