"""Fake ``tensorrt`` and ``pycuda`` modules bound to the real bindings' name lists.

No GPU or TensorRT runtime exists where these tests run, so the TensorRT backend runs
against these stand-ins.  They are strict in the two ways that matter:

- every public attribute taken from them must exist in the real bindings of the version
  being faked (``test/data/api_names/*.json``, extracted from the PyPI wheels by
  ``api_names``), so a call the real API lacks raises AttributeError
  here exactly as it would on that TensorRT;
- pycuda's context rules are modelled from its source (``fake_pycuda``).

The engine they build is the ONNX graph the parser was given plus the optimisation
profile; executing it runs that graph with ONNX Runtime on the bytes copied to fake device
memory, so the backend's whole data path (shapes, buffers, addresses, copies) is exercised.
"""

import pickle
import sys

from fake_pycuda import CudaState
from fake_pycuda import make_pycuda
from fake_strict import _bind
from fake_strict import list_for_version
from fake_strict import Strict
import numpy as np
import onnx
import onnxruntime


class TrtState:
    """What the fake TensorRT saw: parsed graphs, flags set, network creation flags."""

    def __init__(self, fast_fp16=True, tensor_dtype='FLOAT'):
        self.fast_fp16 = fast_fp16
        self.tensor_dtype = tensor_dtype
        self.parsed = []
        self.flags_set = []
        self.network_flags = []
        self.builds = 0


def make_tensorrt(version, state, cuda_state):
    """Return a fake ``tensorrt`` module for ``version`` (a strict object)."""
    label = list_for_version(version)
    major = int(version.split('.')[0])

    class DataType(Strict):
        def __init__(self, name):
            self.name = name

    class ITensor(Strict):
        def __init__(self, name, shape):
            self.name, self.shape = name, shape

    class INetworkDefinition(Strict):
        def __init__(self, flags):
            self._inputs = []

        @property
        def num_inputs(self):
            return len(self._inputs)

        def get_input(self, index):
            return self._inputs[index]

    class OnnxParser(Strict):
        def __init__(self, network, logger):
            self._network, self._logger, self._errors = network, logger, []

        def parse(self, data):
            try:
                model = onnx.load_from_string(bytes(data))
            except Exception as exc:  # noqa: B902 - any protobuf failure is a parse error
                self._errors.append(f'cannot parse: {exc}')
                return False
            state.parsed.append(model)
            initializers = {init.name for init in model.graph.initializer}
            for value in model.graph.input:
                if value.name in initializers:
                    continue
                dims = tuple(d.dim_value if d.HasField('dim_value') else -1
                             for d in value.type.tensor_type.shape.dim)
                self._network._inputs.append(classes['ITensor'](value.name, dims))
            self._network._model = model
            return True

        @property
        def num_errors(self):
            return len(self._errors)

        def get_error(self, index):
            return self._errors[index]

    class IOptimizationProfile(Strict):
        def __init__(self):
            self._shapes = {}

        def set_shape(self, name, min, opt, max):  # noqa: A002 - TensorRT's keyword names
            self._shapes[name] = (tuple(min), tuple(opt), tuple(max))

    class IBuilderConfig(Strict):
        def __init__(self):
            self._profiles, self._pool = [], {}

        def set_memory_pool_limit(self, pool, size):
            self._pool[pool] = size

        def set_flag(self, flag):
            state.flags_set.append(flag)

        def add_optimization_profile(self, profile):
            self._profiles.append(profile)
            return len(self._profiles) - 1

    class Builder(Strict):
        def __init__(self, logger):
            self._logger = logger

        @property
        def platform_has_fast_fp16(self):
            return state.fast_fp16

        def create_network(self, flags=0):
            state.network_flags.append(flags)
            if major < 10 and not flags & 1:
                raise RuntimeError('implicit batch network: the ONNX parser needs '
                                   'EXPLICIT_BATCH on TensorRT 8')
            return classes['INetworkDefinition'](flags)

        def create_builder_config(self):
            return classes['IBuilderConfig']()

        def create_optimization_profile(self):
            return classes['IOptimizationProfile']()

        def build_serialized_network(self, network, config):
            state.builds += 1
            profile = config._profiles[0]._shapes if config._profiles else {}
            return pickle.dumps({'onnx': network._model.SerializeToString(),
                                 'profile': profile, 'version': version})

    class ICudaEngine(Strict):
        def __init__(self, payload):
            self._payload = payload
            options = onnxruntime.SessionOptions()
            options.log_severity_level = 3
            self._session = onnxruntime.InferenceSession(
                payload['onnx'], options, providers=['CPUExecutionProvider'])
            self._inputs = [a.name for a in self._session.get_inputs()]
            self._outputs = [a.name for a in self._session.get_outputs()]
            self._args = {a.name: a for a in
                          self._session.get_inputs() + self._session.get_outputs()}

        @property
        def num_io_tensors(self):
            return len(self._inputs) + len(self._outputs)

        def get_tensor_name(self, index):
            return (self._inputs + self._outputs)[index]

        def is_shape_inference_io(self, name):
            return False

        def get_tensor_dtype(self, name):
            return classes['DataType'](state.tensor_dtype)

        def get_tensor_shape(self, name):
            return tuple(d if isinstance(d, int) else -1 for d in self._args[name].shape)

        def get_tensor_mode(self, name):
            return trt.TensorIOMode.INPUT if name in self._inputs else trt.TensorIOMode.OUTPUT

        def get_tensor_profile_shape(self, name, profile_index):
            return self._payload['profile'][name]

        def create_execution_context(self):
            return classes['IExecutionContext'](self)

    class IExecutionContext(Strict):
        def __init__(self, engine):
            self._engine, self._shapes, self._addresses = engine, {}, {}

        def set_input_shape(self, name, shape):
            low, _, high = self._engine._payload['profile'][name]
            if any(s < lo or s > hi for s, lo, hi in zip(shape, low, high)):
                return False
            self._shapes[name] = tuple(shape)
            return True

        def _run(self, feeds):
            return dict(zip(self._engine._outputs, self._engine._session.run(None, feeds)))

        def get_tensor_shape(self, name):
            zeros = {n: np.zeros(s, np.float32) for n, s in self._shapes.items()}
            return self._run(zeros)[name].shape

        def set_tensor_address(self, name, address):
            self._addresses[name] = address
            return True

        def execute_async_v3(self, stream_handle):
            feeds = {}
            for name, shape in self._shapes.items():
                raw = bytes(cuda_state.memory[self._addresses[name]])
                count = int(np.prod(shape))
                feeds[name] = np.frombuffer(raw, np.float32, count).reshape(shape)
            for name, value in self._run(feeds).items():
                data = np.ascontiguousarray(value, np.float32).view(np.uint8).reshape(-1)
                cuda_state.memory[self._addresses[name]][:data.size] = data.tobytes()
            return True

    class Runtime(Strict):
        def __init__(self, logger):
            self._logger = logger

        def deserialize_cuda_engine(self, data):
            try:
                payload = pickle.loads(bytes(data))
            except Exception:  # noqa: B902 - a corrupt engine deserialises to None
                return None
            if payload.get('version') != version:
                return None
            return classes['ICudaEngine'](payload)

    class Severity(Strict):
        INTERNAL_ERROR, ERROR, WARNING, INFO, VERBOSE = range(5)

    class ILogger(Strict):
        def __init__(self):
            pass

    class TensorIOMode(Strict):
        INPUT, OUTPUT, NONE = 'INPUT', 'OUTPUT', 'NONE'

    class MemoryPoolType(Strict):
        WORKSPACE = 'WORKSPACE'

    class BuilderFlag(Strict):
        FP16 = 'FP16'

    class NetworkDefinitionCreationFlag(Strict):
        EXPLICIT_BATCH = 0

    class TensorRT(Strict):
        def nptype(self, data_type):
            # The real one (tensorrt_bindings/__init__.py) raises TypeError for BF16, FP8, ...
            table = {'FLOAT': np.float32, 'HALF': np.float16, 'INT32': np.int32,
                     'INT8': np.int8, 'BOOL': np.bool_, 'UINT8': np.uint8, 'INT64': np.int64}
            if data_type.name not in table:
                raise TypeError('Could not resolve TensorRT datatype to an equivalent numpy '
                                'datatype.')
            return table[data_type.name]

        def __init__(self):
            self.__version__ = version
            for key in ('Builder', 'OnnxParser', 'Runtime', 'ILogger', 'TensorIOMode',
                        'MemoryPoolType', 'BuilderFlag', 'NetworkDefinitionCreationFlag',
                        'DataType'):
                object.__setattr__(self, key, classes[key])

    classes = _bind({
        'DataType': DataType, 'ITensor': ITensor, 'INetworkDefinition': INetworkDefinition,
        'OnnxParser': OnnxParser, 'IOptimizationProfile': IOptimizationProfile,
        'IBuilderConfig': IBuilderConfig, 'Builder': Builder, 'ICudaEngine': ICudaEngine,
        'IExecutionContext': IExecutionContext, 'Runtime': Runtime, 'Severity': Severity,
        'ILogger': ILogger, 'TensorIOMode': TensorIOMode, 'MemoryPoolType': MemoryPoolType,
        'BuilderFlag': BuilderFlag,
        'NetworkDefinitionCreationFlag': NetworkDefinitionCreationFlag,
        'TensorRT': TensorRT}, label)
    type.__setattr__(classes['ILogger'], 'Severity', classes['Severity'])
    trt = classes['TensorRT']()
    return trt


def install(monkeypatch, backend_module, *, version='10.3.0', devices=1, pycuda=True,
            libcuda=True, init_error=None, make_context_error=None, fast_fp16=True,
            tensor_dtype='FLOAT'):
    """Put fake ``tensorrt``/``pycuda`` in ``sys.modules``; return ``(trt_state, cuda_state)``.

    ``version=None`` makes ``import tensorrt`` fail; ``pycuda=False`` likewise for pycuda.
    """
    cuda_state = CudaState(devices=devices, make_context_error=make_context_error)
    trt_state = TrtState(fast_fp16=fast_fp16, tensor_dtype=tensor_dtype)
    if version is None:
        monkeypatch.setitem(sys.modules, 'tensorrt', None)
    else:
        monkeypatch.setitem(sys.modules, 'tensorrt', make_tensorrt(version, trt_state, cuda_state))
    if pycuda:
        package, driver = make_pycuda(cuda_state)
        if init_error:
            def failing_init(flags=0):
                raise RuntimeError(init_error)
            object.__setattr__(driver, 'init', failing_init)
        monkeypatch.setitem(sys.modules, 'pycuda', package)
        monkeypatch.setitem(sys.modules, 'pycuda.driver', driver)
    else:
        monkeypatch.setitem(sys.modules, 'pycuda', None)
        monkeypatch.setitem(sys.modules, 'pycuda.driver', None)

    def load_libcuda():
        if not libcuda:
            raise OSError('libcuda.so.1: cannot open shared object file')

    monkeypatch.setattr(backend_module, '_load_libcuda', load_libcuda)
    return trt_state, cuda_state
