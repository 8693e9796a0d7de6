"""The TensorRT backend run end to end through fakes that follow the real bindings' names.

Each supported TensorRT version (8.5 for JetPack 5.1, 10.3 for JetPack 6.1, the latest 10.x
and the latest 11.x) gets a fake ``tensorrt`` whose every attribute must exist in that
version's real bindings (``test/data/api_names``), and a fake pycuda with pycuda's context
rules (see ``gpu_fakes``).  The engine the fake builds runs its ONNX graph with ONNX Runtime,
so numbers are compared with a numpy reference.
"""

import json
import threading

import gpu_fakes
import numpy as np
import onnx
import pytest
from test_inference_backends import _numpy_reference
from test_inference_backends import _write_conv_model

from hand_mesh_ros.inference import create_session
from hand_mesh_ros.inference import InferenceError
from hand_mesh_ros.inference import tensorrt_backend
from hand_mesh_ros.inference.engine_cache import read_metadata
from hand_mesh_ros.tools import build_engine

VERSIONS = ('8.5.2', '10.3.0', '10.16.1.11', '11.4.0.106')
RNG = np.random.default_rng(11)


class _Logs:
    def __init__(self):
        self.lines = []

    def __call__(self, level, msg):
        self.lines.append((level, msg))

    def text(self):
        return '\n'.join(msg for _, msg in self.lines)


@pytest.fixture
def model_path(tmp_path):
    """Write the tiny conv model (dynamic batch) into a temporary directory."""
    return _write_conv_model(tmp_path / 'tiny_conv.onnx')


def _float16_initializers(model):
    return [init.name for init in model.graph.initializer
            if init.data_type == onnx.TensorProto.FLOAT16]


@pytest.mark.parametrize('version', VERSIONS)
def test_session_runs_on_each_version(model_path, tmp_path, monkeypatch, version):
    """Build, cache, run (batches grow and shrink), reject past the profile, close."""
    trt_state, cuda_state = gpu_fakes.install(monkeypatch, tensorrt_backend, version=version)
    cache = tmp_path / 'engines'
    session = create_session(model_path, backend='tensorrt', engine_cache_dir=cache,
                             max_batch=4, log=_Logs())
    assert session.backend_name == 'tensorrt'
    assert session.max_batch == 4
    assert session.input_specs == {'image': ((None, 3, 8, 8), np.dtype(np.float32))}
    tolerance = 2e-3 if version.startswith('11.') else 1e-5
    for batch in (1, 3, 2, 4):
        image = RNG.normal(size=(batch, 3, 8, 8)).astype(np.float32)
        outputs = session.run({'image': image})
        prob, pooled = _numpy_reference(image)
        np.testing.assert_allclose(outputs['prob'], prob, atol=tolerance)
        np.testing.assert_allclose(outputs['pooled'], pooled, atol=tolerance)
    with pytest.raises(InferenceError, match='batch 5 exceeds the profile maximum 4'):
        session.run({'image': np.zeros((5, 3, 8, 8), np.float32)})
    session.close()
    session.close()
    assert cuda_state.live == set() and cuda_state.leaked == set()
    engines = sorted(cache.glob('tiny_conv.*.engine'))
    assert len(engines) == 1 and trt_state.builds == 1
    metadata = read_metadata(engines[0])
    assert metadata['precision'] == 'fp16' and metadata['max_batch'] == 4
    # The profile TensorRT got: batch 1..4, tuned for 2.
    again = create_session(model_path, backend='tensorrt', engine_cache_dir=cache, max_batch=4,
                           log=_Logs())
    again.close()
    assert trt_state.builds == 1
    major = int(version.split('.')[0])
    assert trt_state.network_flags == [1 if major == 8 else 0]
    if major >= 11:
        # Strongly typed: no FP16 flag (gone in 11); the parsed graph itself is FP16.
        assert trt_state.flags_set == []
        assert _float16_initializers(trt_state.parsed[0])
    else:
        assert trt_state.flags_set == ['FP16']
        assert not _float16_initializers(trt_state.parsed[0])


@pytest.mark.parametrize('version, fast_fp16, fp16, expected', [
    ('10.3.0', False, True, 'fp32'),
    ('10.3.0', True, False, 'fp32'),
    ('11.4.0.106', True, False, 'fp32'),
    ('8.5.2', True, True, 'fp16'),
])
def test_precision_choice(model_path, tmp_path, monkeypatch, version, fast_fp16, fp16,
                          expected):
    """FP16 only where asked for and (before 11) where the GPU has fast FP16."""
    trt_state, _ = gpu_fakes.install(monkeypatch, tensorrt_backend, version=version,
                                     fast_fp16=fast_fp16)
    logs = _Logs()
    session = create_session(model_path, backend='tensorrt', fp16=fp16,
                             engine_cache_dir=tmp_path / 'e', log=logs)
    session.close()
    metadata = read_metadata(session.engine_path)
    assert metadata['precision'] == expected
    assert (trt_state.flags_set == ['FP16']) == (expected == 'fp16' and version[:2] != '11')
    if fp16 and expected == 'fp32':
        assert 'building FP32: this GPU has no fast FP16' in logs.text()


def test_close_from_another_thread_destroys_the_context(model_path, tmp_path, monkeypatch):
    """Made on one thread, run on a second, closed on a third: the context is destroyed."""
    _, cuda_state = gpu_fakes.install(monkeypatch, tensorrt_backend, version='10.3.0')
    session = create_session(model_path, backend='tensorrt', engine_cache_dir=tmp_path / 'e',
                             log=_Logs())
    assert len(cuda_state.live) == 1
    assert cuda_state.current() is None  # popped after loading
    results = []
    image = RNG.normal(size=(2, 3, 8, 8)).astype(np.float32)
    worker = threading.Thread(target=lambda: results.append(session.run({'image': image})))
    worker.start()
    worker.join()
    np.testing.assert_allclose(results[0]['prob'], _numpy_reference(image)[0], atol=1e-5)
    closer = threading.Thread(target=session.close)
    closer.start()
    closer.join()
    assert cuda_state.leaked == set(), 'pycuda would leak this context'
    assert cuda_state.live == set()
    with pytest.raises(InferenceError, match='session is closed'):
        session.run({'image': image})


def _make_cache_unwritable(tmp_path):
    blocker = tmp_path / 'not_a_dir'
    blocker.write_text('x')
    return blocker / 'engines'


SETUP_FAILURES = {
    'make_context': ({'make_context_error': 'cuCtxCreate failed: out of memory'},
                     'RuntimeError: cuCtxCreate failed: out of memory'),
    'cache_oserror': ({}, 'NotADirectoryError: [Errno 20] Not a directory'),
    'bf16_tensor': ({'tensor_dtype': 'BF16'}, 'TensorRT data type BF16'),
    'fp8_tensor': ({'tensor_dtype': 'FP8'}, 'TensorRT data type FP8'),
}


@pytest.mark.parametrize('case', sorted(SETUP_FAILURES))
def test_setup_failures_fall_back_in_auto_and_fail_clearly_when_explicit(
        model_path, tmp_path, monkeypatch, case):
    """Any set-up failure: auto logs it and runs ONNX Runtime; tensorrt raises one line."""
    options, fragment = SETUP_FAILURES[case]
    _, cuda_state = gpu_fakes.install(monkeypatch, tensorrt_backend, version='10.3.0',
                                      **options)
    cache = _make_cache_unwritable(tmp_path) if case == 'cache_oserror' else tmp_path / 'e'
    logs = _Logs()
    session = create_session(model_path, backend='auto', engine_cache_dir=cache, log=logs)
    assert session.backend_name == 'onnxruntime'
    level, chosen = logs.lines[-1]
    assert level == 'info' and chosen.startswith('inference backend for tiny_conv.onnx: onnx')
    assert 'TensorRT failed on this model' in chosen and fragment in chosen
    with pytest.raises(InferenceError) as info:
        create_session(model_path, backend='tensorrt', engine_cache_dir=cache, log=_Logs())
    message = str(info.value)
    assert 'tiny_conv.onnx' in message and fragment in message and '\n' not in message
    assert cuda_state.live == set() and cuda_state.leaked == set()


def test_unparsable_model_names_the_file(tmp_path, monkeypatch):
    """A file the parser rejects is one InferenceError with the parser's errors."""
    gpu_fakes.install(monkeypatch, tensorrt_backend, version='11.4.0.106')
    bad = tmp_path / 'bad.onnx'
    bad.write_bytes(b'not a protobuf at all' * 10)
    with pytest.raises(InferenceError, match='bad.onnx'):
        create_session(bad, backend='tensorrt', fp16=False, engine_cache_dir=tmp_path / 'e')


@pytest.mark.parametrize('version', VERSIONS)
def test_build_engine_cli(tmp_path, monkeypatch, capsys, version):
    """``hand-mesh build-engine`` builds through the fakes of each version."""
    _write_conv_model(tmp_path / 'tiny_conv.onnx')
    _write_conv_model(tmp_path / 'palm_detection_full.onnx')
    gpu_fakes.install(monkeypatch, tensorrt_backend, version=version)
    status = build_engine.main(['--models-dir', str(tmp_path), '--max-batch', '8', '--json'])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert status == 0 and summary['ok'] is True
    engines = {entry['model']: entry for entry in summary['engines']}
    assert {entry['precision'] for entry in engines.values()} == {'fp16'}
    assert engines['tiny_conv.onnx']['tensorrt_version'] == version
    # The node's profiles: palm detector batch 1, the others 1..max_hands.
    assert engines['palm_detection_full.onnx']['max_batch'] == 1
    assert engines['tiny_conv.onnx']['max_batch'] == 8
    assert len(list((tmp_path / 'engines').glob('tiny_conv.*.engine'))) == 1


@pytest.mark.parametrize('options', [{'make_context_error': 'cuCtxCreate failed'}, {}])
def test_build_engine_cli_setup_failure_is_one_error(tmp_path, monkeypatch, capsys, options):
    """A context or cache failure makes build-engine exit 1 with one error line."""
    _write_conv_model(tmp_path / 'tiny_conv.onnx')
    gpu_fakes.install(monkeypatch, tensorrt_backend, version='10.3.0', **options)
    engine_dir = tmp_path / 'engines' if options else _make_cache_unwritable(tmp_path)
    status = build_engine.main(['--models-dir', str(tmp_path), '--engine-dir', str(engine_dir),
                                '--json'])
    captured = capsys.readouterr()
    assert status == 1
    errors = [line for line in captured.err.splitlines() if line.startswith('error:')]
    assert len(errors) == 1 and 'Traceback' not in captured.err
    assert 'failed' in errors[0]
    assert json.loads(captured.out.strip().splitlines()[-1])['ok'] is False


@pytest.mark.parametrize('version, name', [
    ('11.4.0.106', 'platform_has_fast_fp16'),
    ('11.4.0.106', 'FP16'),
])
def test_fakes_refuse_names_the_real_bindings_lack(monkeypatch, version, name):
    """The fakes raise AttributeError for a name the real bindings of that version lack."""
    gpu_fakes.install(monkeypatch, tensorrt_backend, version=version)
    trt = __import__('tensorrt')
    holder = trt.Builder(None) if name == 'platform_has_fast_fp16' else None
    with pytest.raises(AttributeError, match='does not exist in the tensorrt-11.4.0'):
        if holder is not None:
            getattr(holder, name)
        else:
            getattr(trt.BuilderFlag, name)
    gpu_fakes.install(monkeypatch, tensorrt_backend, version='10.3.0')
    trt10 = __import__('tensorrt')
    assert trt10.Builder(None).platform_has_fast_fp16 is True
    assert trt10.BuilderFlag.FP16 == 'FP16'


def test_corrupt_cached_engine_is_rebuilt(model_path, tmp_path, monkeypatch):
    """A cached engine that does not deserialise is rebuilt, with one warning."""
    trt_state, cuda_state = gpu_fakes.install(monkeypatch, tensorrt_backend, version='10.3.0')
    cache = tmp_path / 'engines'
    create_session(model_path, backend='tensorrt', engine_cache_dir=cache, log=_Logs()).close()
    engine = next(cache.glob('*.engine'))
    engine.write_bytes(b'\0' * 128)
    logs = _Logs()
    session = create_session(model_path, backend='tensorrt', engine_cache_dir=cache, log=logs)
    image = RNG.normal(size=(1, 3, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(session.run({'image': image})['prob'],
                               _numpy_reference(image)[0], atol=1e-5)
    session.close()
    assert trt_state.builds == 2
    assert [level for level, msg in logs.lines if 'cached engine unusable' in msg] == ['warn']
    assert cuda_state.live == set()
