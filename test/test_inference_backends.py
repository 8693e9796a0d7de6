"""Tests of the inference backends (ONNX Runtime here; TensorRT where a GPU exists)."""

import json
import pathlib
import subprocess
import sys

import gpu_fakes
import numpy as np
import onnx
from onnx import helper
from onnx import TensorProto
import pytest

from hand_mesh_ros import inference
from hand_mesh_ros.inference import BackendUnavailableError
from hand_mesh_ros.inference import check_tensorrt_available
from hand_mesh_ros.inference import create_session
from hand_mesh_ros.inference import engine_cache_key
from hand_mesh_ros.inference import InferenceError
from hand_mesh_ros.inference import select
from hand_mesh_ros.inference import tensorrt_backend
from hand_mesh_ros.inference.onnxruntime_backend import OnnxRuntimeSession
from hand_mesh_ros.inference.tensorrt_build import profile_shapes
from hand_mesh_ros.tools import build_engine

TRT_OK, TRT_REASON = check_tensorrt_available()
_SKIP_WITHOUT_TENSORRT = pytest.mark.skipif(
    not TRT_OK, reason=f'TensorRT backend cannot run here: {TRT_REASON}')


def needs_tensorrt(test):
    """Mark a test as a GPU test that is skipped, with the reason, where TensorRT cannot run."""
    return pytest.mark.gpu(_SKIP_WITHOUT_TENSORRT(test))


RNG = np.random.default_rng(7)
WEIGHT = RNG.normal(0.0, 0.5, size=(4, 3, 3, 3)).astype(np.float32)
BIAS = RNG.normal(0.0, 0.1, size=(4,)).astype(np.float32)


def _write_conv_model(path):
    """Write conv3x3(3->4, pad 1) + sigmoid + global average pool, dynamic batch N."""
    graph = helper.make_graph(
        [helper.make_node('Conv', ['image', 'w', 'b'], ['conv'], pads=[1, 1, 1, 1]),
         helper.make_node('Sigmoid', ['conv'], ['prob']),
         helper.make_node('GlobalAveragePool', ['prob'], ['pooled'])],
        'tiny_conv',
        [helper.make_tensor_value_info('image', TensorProto.FLOAT, ['N', 3, 8, 8])],
        [helper.make_tensor_value_info('prob', TensorProto.FLOAT, ['N', 4, 8, 8]),
         helper.make_tensor_value_info('pooled', TensorProto.FLOAT, ['N', 4, 1, 1])],
        [onnx.numpy_helper.from_array(WEIGHT, 'w'), onnx.numpy_helper.from_array(BIAS, 'b')])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _numpy_reference(image):
    """Conv + sigmoid + mean in numpy. image: (N, 3, 8, 8) -> prob (N, 4, 8, 8), pooled."""
    padded = np.pad(image.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(2, 3))
    conv = np.einsum('ncijkl,ockl->noij', windows, WEIGHT.astype(np.float64))
    prob = 1.0 / (1.0 + np.exp(-(conv + BIAS[None, :, None, None])))
    return prob, prob.mean(axis=(2, 3), keepdims=True)


class _Logs:
    """Collect ``log(level, msg)`` calls."""

    def __init__(self):
        self.lines = []

    def __call__(self, level, msg):
        self.lines.append((level, msg))


@pytest.fixture
def model_path(tmp_path):
    """Write the tiny conv model into a temporary directory."""
    return _write_conv_model(tmp_path / 'tiny_conv.onnx')


@pytest.fixture
def ort_session(model_path):
    """Open the tiny model with ONNX Runtime."""
    session = OnnxRuntimeSession(model_path, num_threads=2)
    yield session
    session.close()


@pytest.mark.parametrize('batch', [1, 3])
def test_onnxruntime_matches_numpy(ort_session, batch):
    """ONNX Runtime reproduces the numpy conv + sigmoid + mean."""
    image = RNG.normal(size=(batch, 3, 8, 8)).astype(np.float32)
    outputs = ort_session.run({'image': image})
    prob, pooled = _numpy_reference(image)
    assert set(outputs) == {'prob', 'pooled'}
    assert outputs['prob'].shape == (batch, 4, 8, 8)
    np.testing.assert_allclose(outputs['prob'], prob, atol=1e-5)
    np.testing.assert_allclose(outputs['pooled'], pooled, atol=1e-5)


def test_onnxruntime_specs_and_options(model_path):
    """Specs, providers and the small-machine session options are as documented."""
    session = OnnxRuntimeSession(model_path, num_threads=3)
    assert session.backend_name == 'onnxruntime'
    assert session.input_specs == {'image': ((None, 3, 8, 8), np.dtype(np.float32))}
    assert session.output_names == ['prob', 'pooled']
    assert session.providers[-1] == 'CPUExecutionProvider'
    options = session._session.get_session_options()
    assert options.intra_op_num_threads == 3
    assert options.inter_op_num_threads == 1
    assert options.get_session_config_entry('session.intra_op.allow_spinning') == '0'
    assert options.get_session_config_entry('session.inter_op.allow_spinning') == '0'


def test_feeds_are_cast_and_never_mutated(ort_session):
    """float64 and non-contiguous feeds are cast/copied; inputs stay untouched."""
    image64 = RNG.normal(size=(2, 3, 8, 8))
    before = image64.copy()
    from_f64 = ort_session.run({'image': image64})['prob']
    from_f32 = ort_session.run({'image': image64.astype(np.float32)})['prob']
    np.testing.assert_array_equal(from_f64, from_f32)
    np.testing.assert_array_equal(image64, before)
    # A non-contiguous view (NHWC transposed to NCHW) gives the same numbers.
    nhwc = np.ascontiguousarray(image64.transpose(0, 2, 3, 1)).astype(np.float32)
    view = nhwc.transpose(0, 3, 1, 2)
    assert not view.flags['C_CONTIGUOUS']
    np.testing.assert_array_equal(ort_session.run({'image': view})['prob'], from_f32)


@pytest.mark.parametrize('feeds, fragment', [
    ({}, "missing ['image']"),
    ({'image': np.zeros((1, 3, 8, 8), np.float32), 'extra': np.zeros(1)}, "unknown ['extra']"),
    ({'image': np.zeros((3, 8, 8), np.float32)}, 'expected rank 4'),
    ({'image': np.zeros((1, 3, 8, 9), np.float32)}, 'dim 3'),
    ({'image': np.zeros((0, 3, 8, 8), np.float32)}, 'dim 0 is zero'),
    ({'image': np.full((1, 3, 8, 8), 'x')}, 'is not numeric'),
])
def test_bad_feeds_raise_clear_errors(ort_session, feeds, fragment):
    """Each kind of bad feed raises one InferenceError naming the file."""
    with pytest.raises(InferenceError) as info:
        ort_session.run(feeds)
    assert fragment in str(info.value)
    assert 'tiny_conv.onnx' in str(info.value)


def test_require_inputs_names_the_file(ort_session):
    """A model with other inputs than expected fails at start-up, naming the file."""
    ort_session.require_inputs({'image': (None, 3, 8, 8)})
    wrong = r'tiny_conv\.onnx.*\[N, 3, 8, 8\], expected \[1, 3, 256, 256\]'
    with pytest.raises(InferenceError, match=wrong):
        ort_session.require_inputs({'image': (1, 3, 256, 256)})
    with pytest.raises(InferenceError, match=r"tiny_conv\.onnx has no input 'input_1'"):
        ort_session.require_inputs({'input_1': (1, 3, 8, 8)})


def test_missing_and_corrupt_files_name_the_file(tmp_path):
    """Missing, corrupt and truncated model files raise errors naming them."""
    missing = tmp_path / 'nowhere' / 'palm.onnx'
    with pytest.raises(InferenceError, match='not found: .*nowhere/palm.onnx'):
        create_session(missing, backend='onnxruntime')
    corrupt = tmp_path / 'corrupt.onnx'
    corrupt.write_bytes(RNG.integers(0, 256, size=4096, dtype=np.uint8).tobytes())
    with pytest.raises(InferenceError, match='cannot load ONNX model .*corrupt.onnx'):
        create_session(corrupt, backend='onnxruntime')
    truncated = tmp_path / 'truncated.onnx'
    truncated.write_bytes(_write_conv_model(tmp_path / 'whole.onnx').read_bytes()[:200])
    with pytest.raises(InferenceError, match='truncated.onnx'):
        create_session(truncated, backend='auto', log=_Logs())


def test_unknown_backend_is_a_value_error(model_path):
    """An unknown backend name is a ValueError."""
    with pytest.raises(ValueError, match="unknown inference backend 'cuda'"):
        create_session(model_path, backend='cuda')


def test_this_machine_reports_a_specific_reason():
    """The real availability check names one specific cause."""
    known = ('python module tensorrt', 'TensorRT ', 'pycuda', 'CUDA driver library',
             'no CUDA device')
    assert TRT_REASON.startswith(known), TRT_REASON
    if not TRT_OK:
        with pytest.raises(BackendUnavailableError) as info:
            tensorrt_backend.import_tensorrt_modules()
        assert str(info.value) == f'TensorRT backend cannot run here: {TRT_REASON}'


def test_auto_falls_back_to_onnxruntime_and_logs_why(model_path, monkeypatch):
    """Auto mode without TensorRT uses ONNX Runtime and logs one info line saying why."""
    monkeypatch.setattr(tensorrt_backend, 'check_tensorrt_available',
                        lambda device_index=0: (False, 'no CUDA device (found 0, need index 0)'))
    logs = _Logs()
    session = create_session(model_path, backend='auto', log=logs)
    assert session.backend_name == 'onnxruntime'
    assert len(logs.lines) == 1
    level, msg = logs.lines[0]
    assert level == 'info'
    assert 'onnxruntime' in msg and 'tiny_conv.onnx' in msg
    assert 'TensorRT not usable: no CUDA device' in msg


def test_auto_uses_the_real_check_here(model_path):
    """Auto mode picks the backend the real check allows and logs its reason."""
    logs = _Logs()
    session = create_session(model_path, backend='auto', log=logs)
    assert session.backend_name == ('tensorrt' if TRT_OK else 'onnxruntime')
    assert any(TRT_REASON in msg for _, msg in logs.lines)


def test_auto_refuses_an_engine_file_without_tensorrt(tmp_path, monkeypatch):
    """An engine file cannot fall back to ONNX Runtime; the error says so."""
    monkeypatch.setattr(tensorrt_backend, 'check_tensorrt_available',
                        lambda device_index=0: (False, 'pycuda not installed'))
    engine = tmp_path / 'palm.engine'
    engine.write_bytes(b'\0' * 64)
    with pytest.raises(BackendUnavailableError, match='palm.engine is a TensorRT engine.*pycuda'):
        create_session(engine, backend='auto', log=_Logs())


def test_engine_cache_key_changes_with_each_input():
    """The cache key is stable and changes with every one of its inputs."""
    base = {'model_sha256': 'ab' * 32, 'tensorrt_version': '10.3.0', 'gpu_name': 'Orin',
            'precision': 'fp16', 'max_batch': 4}
    key = engine_cache_key(**base)
    assert key == engine_cache_key(**base)
    assert len(key) == 24 and int(key, 16) >= 0
    changes = {'model_sha256': 'cd' * 32, 'tensorrt_version': '10.4.0',
               'gpu_name': 'NVIDIA GeForce RTX 4090', 'precision': 'fp32', 'max_batch': 2}
    keys = {key}
    for field, value in changes.items():
        keys.add(engine_cache_key(**dict(base, **{field: value})))
    assert len(keys) == 1 + len(changes)
    with pytest.raises(ValueError, match='precision'):
        engine_cache_key(**dict(base, precision='int8'))
    with pytest.raises(ValueError, match='max_batch'):
        engine_cache_key(**dict(base, max_batch=0))
    with pytest.raises(ValueError, match='gpu_name is empty'):
        engine_cache_key(**dict(base, gpu_name=' '))


def test_profile_shapes_for_dynamic_batch():
    """Only a dynamic batch dim gets a 1..max_batch profile."""
    assert profile_shapes('x', (1, 3, 8, 8), 4) is None
    assert profile_shapes('x', (-1, 3, 8, 8), 4) == ((1, 3, 8, 8), (2, 3, 8, 8), (4, 3, 8, 8))
    assert profile_shapes('x', (None, 63), 1) == ((1, 63), (1, 63), (1, 63))
    with pytest.raises(InferenceError, match="input 'x' .* only a dynamic batch"):
        profile_shapes('x', (1, 3, -1, -1), 4)


# ---------------------------------------------------------------------------------------------
# TensorRT error classification with FAKE modules (test/gpu_fakes.py).  No GPU exists where
# these tests were written and `tensorrt`/`pycuda` cannot be installed here, so stand-ins are
# injected into sys.modules.  They follow the real bindings' name lists (a name the real
# TensorRT of that version lacks raises AttributeError); test_gpu_backend_fakes.py runs the
# whole backend through them, and the parity test further down runs the real thing wherever
# a GPU and TensorRT exist.
# ---------------------------------------------------------------------------------------------

def _install_fakes(monkeypatch, *, trt_version='10.3.0', **options):
    gpu_fakes.install(monkeypatch, tensorrt_backend, version=trt_version, **options)


@pytest.mark.parametrize('fakes, expected', [
    ({'trt_version': None}, 'python module tensorrt not installed'),
    ({'trt_version': '8.4.3'}, 'TensorRT 8.4.3 is too old (need 8.5 or newer)'),
    ({'trt_version': '9.3.0'}, 'TensorRT 9.3.0 is not supported'),
    ({'trt_version': '12.0.0'}, 'TensorRT 12.0.0 is newer than this backend supports (11.x)'),
    ({'pycuda': False}, 'pycuda not installed'),
    ({'libcuda': False}, 'CUDA driver library (libcuda.so.1) not found'),
    ({'init_error': 'cuInit failed: no CUDA-capable device is detected'},
     'no CUDA device (cuInit failed: cuInit failed: no CUDA-capable device is detected)'),
    ({'devices': 0}, 'no CUDA device (found 0, need index 0)'),
])
def test_fake_modules_error_classification(monkeypatch, fakes, expected):
    """With fake modules, each missing piece gets its own reason."""
    _install_fakes(monkeypatch, **fakes)
    ok, reason = check_tensorrt_available()
    assert not ok
    assert reason.startswith(expected), reason


def test_fake_modules_all_present_is_ok(monkeypatch):
    """With all fake pieces present the check passes and names the GPU."""
    _install_fakes(monkeypatch)
    assert check_tensorrt_available() == (
        True, 'TensorRT 10.3.0 with pycuda on CUDA device 0 (Fake GPU)')


@pytest.mark.parametrize('fakes, missing', [
    ({'trt_version': None}, 'python module tensorrt not installed'),
    ({'libcuda': False}, 'CUDA driver library (libcuda.so.1) not found'),
    ({'devices': 0}, 'no CUDA device'),
])
def test_explicit_tensorrt_names_what_is_missing(model_path, monkeypatch, fakes, missing):
    """Explicit backend=tensorrt raises one single-line error naming model and cause."""
    _install_fakes(monkeypatch, **fakes)
    with pytest.raises(BackendUnavailableError) as info:
        create_session(model_path, backend='tensorrt')
    message = str(info.value)
    assert 'tiny_conv.onnx' in message and missing in message
    assert message.count('\n') == 0


def test_auto_with_fake_missing_driver_falls_back(model_path, monkeypatch):
    """Auto mode falls back when the driver library is missing and logs that."""
    _install_fakes(monkeypatch, libcuda=False)
    logs = _Logs()
    session = create_session(model_path, backend='auto', log=logs)
    assert session.backend_name == 'onnxruntime'
    assert 'libcuda.so.1' in logs.lines[0][1]


def test_build_engine_cli_fails_clearly_without_tensorrt(tmp_path, monkeypatch, capsys):
    """The build-engine tool exits 1 with the reason, and --json ends with the summary."""
    _write_conv_model(tmp_path / 'tiny_conv.onnx')
    monkeypatch.setattr(tensorrt_backend, 'check_tensorrt_available',
                        lambda device_index=0: (False, 'python module tensorrt not installed'))
    status = build_engine.main(['--models-dir', str(tmp_path), '--json'])
    captured = capsys.readouterr()
    assert status == 1
    assert 'python module tensorrt not installed' in captured.err
    summary = json.loads(captured.out.strip().splitlines()[-1])
    assert summary['ok'] is False and summary['engines'] == []
    assert summary['engine_dir'] == str(tmp_path / 'engines')
    assert not (tmp_path / 'engines').exists()


def test_build_engine_model_selection(tmp_path):
    """--model picks models by file name or stem; unknown names fail."""
    for stem in ('palm_detection_full', 'hand_landmark_full'):
        (tmp_path / f'{stem}.onnx').write_bytes(b'x')
    chosen = build_engine.select_models(
        tmp_path, ['hand_landmark_full', 'palm_detection_full.onnx'])
    assert [p.name for p in chosen] == ['hand_landmark_full.onnx', 'palm_detection_full.onnx']
    assert len(build_engine.select_models(tmp_path, [])) == 2
    with pytest.raises(InferenceError, match="no model 'palm_lite'"):
        build_engine.select_models(tmp_path, ['palm_lite'])
    with pytest.raises(InferenceError, match='no .onnx models'):
        build_engine.select_models(tmp_path / 'empty', [])


def test_package_import_has_no_runtime_side_effects():
    """Importing the package imports no runtime library."""
    assert inference.BACKENDS == select.BACKENDS == (
        'auto', 'onnxruntime', 'tensorrt', 'onnxruntime_cuda', 'onnxruntime_tensorrt')
    # Importing the package must not pull in TensorRT, pycuda or ONNX Runtime by itself.
    code = ('import sys, hand_mesh_ros.inference; '
            'print(sorted(m for m in ("tensorrt", "pycuda", "onnxruntime") if m in sys.modules))')
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                            check=True, cwd=pathlib.Path(__file__).resolve().parents[1])
    assert result.stdout.strip() == '[]'


# ---------------------------------------------------------------------------------------------
# Real TensorRT (runs only where tensorrt, pycuda and a CUDA GPU exist).
# ---------------------------------------------------------------------------------------------

@needs_tensorrt
def test_tensorrt_matches_onnxruntime(model_path, tmp_path):
    """The TensorRT engine matches ONNX Runtime within 1e-2; the cache is reused."""
    cache = tmp_path / 'engines'
    trt_session = create_session(model_path, backend='tensorrt', engine_cache_dir=cache,
                                 max_batch=4, log=_Logs())
    ort = OnnxRuntimeSession(model_path)
    try:
        assert trt_session.backend_name == 'tensorrt'
        assert trt_session.input_specs['image'][0] == (None, 3, 8, 8)
        for batch in (1, 3, 2, 4):  # grows, shrinks, grows: buffers are reallocated as needed
            image = RNG.normal(size=(batch, 3, 8, 8)).astype(np.float32)
            expected = ort.run({'image': image})
            got = trt_session.run({'image': image})
            for name in ('prob', 'pooled'):
                assert got[name].shape == expected[name].shape
                np.testing.assert_allclose(got[name], expected[name], atol=1e-2)
        with pytest.raises(InferenceError, match='exceeds the profile maximum 4'):
            trt_session.run({'image': np.zeros((5, 3, 8, 8), np.float32)})
    finally:
        trt_session.close()
        trt_session.close()
    engines = sorted(cache.glob('*.engine'))
    assert len(engines) == 1
    stamp = engines[0].stat().st_mtime_ns
    again = create_session(model_path, backend='tensorrt', engine_cache_dir=cache, log=_Logs())
    again.close()
    assert engines[0].stat().st_mtime_ns == stamp


@needs_tensorrt
def test_build_engine_cli_builds_into_the_cache(tmp_path, capsys):
    """The build-engine tool builds an FP32 engine into <models-dir>/engines."""
    _write_conv_model(tmp_path / 'tiny_conv.onnx')
    status = build_engine.main(['--models-dir', str(tmp_path), '--fp32', '--json'])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert status == 0 and summary['ok'] is True
    assert summary['engines'][0]['precision'] == 'fp32'
    assert (tmp_path / 'engines').is_dir()
    assert len(list((tmp_path / 'engines').glob('tiny_conv.*.engine'))) == 1
