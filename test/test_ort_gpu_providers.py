"""ONNX Runtime's GPU providers as a second GPU route, and the FP16 graph they (and TRT 11) run.

Only the CPU build of ONNX Runtime exists here, so the GPU sessions are checked for what
they ask ONNX Runtime for (providers, provider options) and for failing honestly: a
requested provider that is missing or did not load is an error, never a silent CPU run,
and ``auto`` falls back to the CPU with the reasons logged.  The FP16 graph is checked for
parity with the FP32 graph on the CPU, on the tiny model and the product's real models.
"""

import ctypes

import cv2
import numpy as np
import onnx
import onnxruntime
import pytest
from test_inference_backends import _Logs
from test_inference_backends import _numpy_reference
from test_inference_backends import _write_conv_model

from hand_mesh_ros.inference import BackendUnavailableError
from hand_mesh_ros.inference import create_session
from hand_mesh_ros.inference import InferenceError
from hand_mesh_ros.inference import select
from hand_mesh_ros.inference import tensorrt_backend
from hand_mesh_ros.inference.fp16_graph import convert_to_fp16
from hand_mesh_ros.inference.fp16_graph import Fp16ConversionError
from hand_mesh_ros.inference.onnxruntime_backend import gpu_provider_options
from hand_mesh_ros.inference.onnxruntime_backend import OnnxRuntimeSession
from hand_mesh_ros.paths import data_dir
from hand_mesh_ros.paths import models_dir

RNG = np.random.default_rng(5)
GPU_PROVIDERS = ['TensorrtExecutionProvider', 'CUDAExecutionProvider', 'CPUExecutionProvider']


@pytest.fixture
def model_path(tmp_path):
    """Write the tiny conv model into a temporary directory."""
    return _write_conv_model(tmp_path / 'tiny_conv.onnx')


@pytest.fixture
def no_tensorrt(monkeypatch):
    """Standalone TensorRT absent (as here), whatever the machine has."""
    monkeypatch.setattr(tensorrt_backend, 'check_tensorrt_available',
                        lambda device_index=0: (False, 'python module tensorrt not installed'))


def test_tensorrt_provider_options_carry_fp16_cache_and_profile(tmp_path):
    """The TensorRT provider gets FP16, the engine cache and the batch profile."""
    providers, options = gpu_provider_options(
        'tensorrt', input_shapes={'input_1': (None, 224, 224, 3), 'k': (1, 2)}, fp16=True,
        max_batch=6, engine_cache_dir=tmp_path, workspace_mb=256, device_index=1)
    assert providers == GPU_PROVIDERS
    trt = options[0]
    assert trt['trt_fp16_enable'] == 'True'
    assert trt['trt_engine_cache_enable'] == 'True'
    assert trt['trt_engine_cache_path'] == str(tmp_path)
    assert trt['trt_max_workspace_size'] == str(256 << 20)
    assert trt['device_id'] == '1' and options[1] == {'device_id': '1'}
    assert trt['trt_profile_min_shapes'] == 'input_1:1x224x224x3'
    assert trt['trt_profile_opt_shapes'] == 'input_1:2x224x224x3'
    assert trt['trt_profile_max_shapes'] == 'input_1:6x224x224x3'
    _, fp32 = gpu_provider_options('tensorrt', input_shapes={}, fp16=False, max_batch=1,
                                   engine_cache_dir=tmp_path, workspace_mb=1)
    assert fp32[0]['trt_fp16_enable'] == 'False' and 'trt_profile_min_shapes' not in fp32[0]
    cuda, cuda_options = gpu_provider_options('cuda', input_shapes={}, fp16=True, max_batch=1,
                                              engine_cache_dir=tmp_path, workspace_mb=1)
    assert cuda == GPU_PROVIDERS[1:] and cuda_options == [{'device_id': '0'}, {}]
    with pytest.raises(ValueError, match='unknown GPU provider'):
        gpu_provider_options('rocm', input_shapes={}, fp16=True, max_batch=1,
                             engine_cache_dir=tmp_path, workspace_mb=1)


@pytest.mark.parametrize('backend', ['onnxruntime_cuda', 'onnxruntime_tensorrt'])
def test_explicit_gpu_provider_without_onnxruntime_gpu_is_one_error(model_path, backend):
    """The CPU build has no GPU provider: one line saying to install onnxruntime-gpu."""
    with pytest.raises(BackendUnavailableError) as info:
        create_session(model_path, backend=backend, log=_Logs())
    message = str(info.value)
    assert 'tiny_conv.onnx' in message and 'install onnxruntime-gpu' in message
    assert '\n' not in message


def test_provider_that_does_not_load_is_not_a_silent_cpu_run(model_path, monkeypatch):
    """Listed but not loaded (no driver): an error, not a session quietly on the CPU."""
    monkeypatch.setattr(onnxruntime, 'get_available_providers', lambda: GPU_PROVIDERS)
    with pytest.raises(BackendUnavailableError, match='did not load CUDAExecutionProvider'):
        OnnxRuntimeSession(model_path, provider='cuda', log=_Logs())


def test_auto_tries_both_gpu_providers_then_the_cpu(model_path, monkeypatch, no_tensorrt):
    """onnxruntime-gpu without a usable GPU: auto logs each reason and runs on the CPU."""
    monkeypatch.setattr(onnxruntime, 'get_available_providers', lambda: GPU_PROVIDERS)
    logs = _Logs()
    session = create_session(model_path, backend='auto', max_batch=3, log=logs)
    assert session.backend_name == 'onnxruntime'
    assert session.providers == ['CPUExecutionProvider'] and session.max_batch == 3
    message = logs.lines[-1][1]
    assert 'TensorRT not usable: python module tensorrt not installed' in message
    assert 'onnxruntime_tensorrt not usable' in message
    assert 'onnxruntime_cuda not usable' in message


def test_auto_picks_a_gpu_provider_that_loads(model_path, monkeypatch, no_tensorrt):
    """Where a provider loads, auto returns that session and says which and why."""
    calls = []

    def fake_ort_gpu(path, provider, num_threads, gpu):
        calls.append(provider)
        if provider == 'tensorrt':
            raise BackendUnavailableError('libnvinfer.so.10 not found')
        session = OnnxRuntimeSession(path, num_threads=num_threads)
        session.providers = ['CUDAExecutionProvider', 'CPUExecutionProvider']
        session.precision = 'fp16'
        return session

    monkeypatch.setattr(onnxruntime, 'get_available_providers', lambda: GPU_PROVIDERS)
    monkeypatch.setattr(select, '_ort_gpu', fake_ort_gpu)
    logs = _Logs()
    session = create_session(model_path, backend='auto', log=logs)
    assert calls == ['tensorrt', 'cuda']
    assert session.providers[0] == 'CUDAExecutionProvider'
    message = logs.lines[-1][1]
    assert message.startswith('inference backend for tiny_conv.onnx: onnxruntime_cuda')
    assert 'fp16' in message and 'libnvinfer.so.10 not found' in message


def test_fp16_graph_of_the_tiny_model(model_path):
    """Same inputs and outputs (float32), float16 inside, numbers within FP16 precision."""
    data = convert_to_fp16(model_path)
    model = onnx.load_from_string(data)
    assert [v.type.tensor_type.elem_type for v in model.graph.input] == [onnx.TensorProto.FLOAT]
    assert {v.name for v in model.graph.output} == {'prob', 'pooled'}
    assert all(init.data_type == onnx.TensorProto.FLOAT16 for init in model.graph.initializer)
    session = onnxruntime.InferenceSession(data, providers=['CPUExecutionProvider'])
    image = RNG.normal(size=(3, 3, 8, 8)).astype(np.float32)
    prob, _ = session.run(None, {'image': image})
    assert prob.dtype == np.float32
    np.testing.assert_allclose(prob, _numpy_reference(image)[0], atol=2e-3)


def test_fp16_graph_refuses_what_it_cannot_convert(tmp_path):
    """A float-only operand computed in the graph: a clear error (the caller builds FP32)."""
    helper = onnx.helper
    graph = helper.make_graph(
        [helper.make_node('Shape', ['x'], ['s']),
         helper.make_node('Cast', ['s'], ['sf'], to=onnx.TensorProto.FLOAT),
         helper.make_node('Resize', ['x', '', 'sf'], ['y'])],
        'computed_scales',
        [helper.make_tensor_value_info('x', onnx.TensorProto.FLOAT, [1, 1, 4, 4])],
        [helper.make_tensor_value_info('y', onnx.TensorProto.FLOAT, None)])
    path = tmp_path / 'computed.onnx'
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)]), str(path))
    with pytest.raises(Fp16ConversionError, match="float32-only operands .*'sf'"):
        convert_to_fp16(path)


def _crop(size):
    rgb = cv2.cvtColor(cv2.imread(str(data_dir() / 'hands.jpg')), cv2.COLOR_BGR2RGB)
    height, width = rgb.shape[:2]
    side = min(height, width)
    crop = rgb[:side, width - side:] if size == 224 else rgb[:, :]
    return cv2.resize(crop, (size, size)).astype(np.float32)[None] / 255.0


@pytest.mark.parametrize('name, tolerance', [
    ('palm_detection_full', 0.02),
    ('hand_mesh_full', 0.02),
    ('hand_mesh_lite', 0.02),
])
def test_fp16_graph_of_the_real_models(name, tolerance):
    """The product's graphs in FP16 agree with FP32 (relative to each output's range)."""
    path = models_dir() / f'{name}.onnx'
    fp32 = OnnxRuntimeSession(path, num_threads=2)
    fp16 = onnxruntime.InferenceSession(convert_to_fp16(path),
                                        providers=['CPUExecutionProvider'])
    size = fp32.input_specs['input_1'][0][1]
    image = _crop(size)
    want = fp32.run({'input_1': image})
    got = dict(zip(fp32.output_names, fp16.run(fp32.output_names, {'input_1': image})))
    for key, value in want.items():
        scale = max(float(np.abs(value).max()), 1e-6)
        assert np.abs(got[key] - value).max() / scale < tolerance, key
    if 'mesh_vertices' in want:
        error_mm = 1000 * np.abs(got['mesh_vertices'] - want['mesh_vertices']).max()
        assert error_mm < 1.0


def test_cuda_route_feeds_the_fp16_graph(model_path, monkeypatch):
    """provider='cuda' with fp16 hands ONNX Runtime the FP16 graph's bytes."""
    seen = {}
    real = onnxruntime.InferenceSession

    def spy(model, sess_options=None, providers=None, provider_options=None):
        seen['model'], seen['providers'] = model, providers
        return real(model, sess_options=sess_options, providers=['CPUExecutionProvider'])

    monkeypatch.setattr(onnxruntime, 'get_available_providers', lambda: GPU_PROVIDERS)
    monkeypatch.setattr(onnxruntime, 'InferenceSession', spy)
    with pytest.raises(InferenceError):
        OnnxRuntimeSession(model_path, provider='cuda', fp16=True, log=_Logs())
    assert isinstance(seen['model'], bytes)
    assert seen['providers'] == GPU_PROVIDERS[1:]
    model = onnx.load_from_string(seen['model'])
    assert any(init.data_type == onnx.TensorProto.FLOAT16 for init in model.graph.initializer)


def _cuda_device_count():
    """Count CUDA devices through the driver library (0 where there is none)."""
    try:
        driver = ctypes.CDLL('libcuda.so.1')
    except OSError:
        return 0
    count = ctypes.c_int(0)
    if driver.cuInit(0) != 0 or driver.cuDeviceGetCount(ctypes.byref(count)) != 0:
        return 0
    return count.value


_ORT_GPU = ('CUDAExecutionProvider' in onnxruntime.get_available_providers()
            and _cuda_device_count() > 0)


@pytest.mark.gpu
@pytest.mark.skipif(not _ORT_GPU, reason='needs onnxruntime-gpu and a CUDA device '
                    f'(providers here: {onnxruntime.get_available_providers()})')
@pytest.mark.parametrize('backend', ['onnxruntime_cuda', 'onnxruntime_tensorrt'])
@pytest.mark.parametrize('fp16', [False, True])
def test_gpu_provider_matches_numpy(model_path, tmp_path, backend, fp16):
    """Where onnxruntime-gpu and a GPU exist: each GPU route matches the numpy reference."""
    if (backend == 'onnxruntime_tensorrt'
            and 'TensorrtExecutionProvider' not in onnxruntime.get_available_providers()):
        pytest.skip('this onnxruntime-gpu build has no TensorrtExecutionProvider')
    session = create_session(model_path, backend=backend, fp16=fp16, max_batch=4,
                             engine_cache_dir=tmp_path / 'engines', log=_Logs())
    assert session.backend_name == backend
    assert session.providers[0] == GPU_PROVIDERS[0 if backend.endswith('tensorrt') else 1]
    for batch in (1, 3, 4):
        image = RNG.normal(size=(batch, 3, 8, 8)).astype(np.float32)
        prob = session.run({'image': image})['prob']
        np.testing.assert_allclose(prob, _numpy_reference(image)[0], atol=1e-2 if fp16 else 1e-4)
