"""ONNX conversions of MediaPipe's hand models match the TFLite reference; setup is idempotent.

The models come from ``hand-mesh setup-models`` (run before the tests). The reference is the
TFLite interpreter of ``ai-edge-litert`` (test-only dependency).
"""

import json
from pathlib import Path
import zipfile

import cv2
import numpy as np
import pytest

from hand_mesh_ros.model_building import mediapipe_fetch, mediapipe_models
from hand_mesh_ros.paths import data_dir, models_dir

TOLERANCE = 1e-3
MODEL_NAMES = mediapipe_fetch.MODEL_NAMES
# Input value ranges the models were trained with (see mediapipe_models' docstring).
INPUT_RANGE = {'palm': (0.0, 1.0), 'hand': (0.0, 1.0)}
SETUP_HINT = ('run `hand-mesh setup-models` (or `python -m '
              'hand_mesh_ros.model_building.mediapipe_models`) before the tests')


@pytest.fixture(scope='module')
def model_dir():
    """Return the models directory, failing clearly when setup has not been run."""
    directory = models_dir()
    missing = [name for name in ['mediapipe_manifest.json']
               + [f'{m}.onnx' for m in MODEL_NAMES] + [f'{m}.tflite' for m in MODEL_NAMES]
               if not (directory / name).is_file()]
    if missing:
        pytest.fail(f'MediaPipe models missing in {directory}: {missing}; {SETUP_HINT}')
    return directory


@pytest.fixture(scope='module')
def interpreter_cls():
    """Return a factory of TFLite interpreters using TFLite's builtin kernels.

    The XNNPACK delegate (the default) adds its own rounding (up to ~7e-4 on the palm
    regressors against TFLite's reference kernels); the builtin kernels are the reference.
    Skips when ai-edge-litert is absent.
    """
    litert = pytest.importorskip(
        'ai_edge_litert.interpreter',
        reason='ai-edge-litert (TFLite reference interpreter, test-only) is not installed')

    def make(model_path):
        return litert.Interpreter(
            model_path=model_path,
            experimental_op_resolver_type=litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    return make


def _ort_session(path: Path):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=['CPUExecutionProvider'])


def _tflite_run(interpreter_cls, path: Path, x: np.ndarray) -> dict:
    """Run the TFLite model on each batch item; return {output name: stacked array}."""
    interpreter = interpreter_cls(model_path=str(path))
    interpreter.allocate_tensors()
    (input_detail,) = interpreter.get_input_details()
    results = {}
    for item in x:
        interpreter.set_tensor(input_detail['index'], item[None])
        interpreter.invoke()
        for detail in interpreter.get_output_details():
            results.setdefault(detail['name'], []).append(
                interpreter.get_tensor(detail['index'])[0].copy())
    return {name: np.stack(values) for name, values in results.items()}


def _photo_input(size: int, value_range) -> np.ndarray:
    """Return data/hands.jpg letterboxed to [size, size, 3] RGB, scaled to value_range."""
    bgr = cv2.imread(str(data_dir() / 'hands.jpg'))
    assert bgr is not None, 'data/hands.jpg is missing'
    scale = size / max(bgr.shape[:2])
    width, height = round(bgr.shape[1] * scale), round(bgr.shape[0] * scale)
    canvas = np.zeros((size, size, 3), np.uint8)
    top, left = (size - height) // 2, (size - width) // 2
    canvas[top:top + height, left:left + width] = cv2.resize(
        bgr, (width, height), interpolation=cv2.INTER_AREA)
    rgb = cv2.cvtColor(canvas, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
    low, high = value_range
    return (rgb * (high - low) + low).astype(np.float32)


def _inputs(name: str, size: int) -> dict:
    value_range = INPUT_RANGE[name.split('_')[0]]
    rng = np.random.default_rng(sum(map(ord, name)))
    random = rng.uniform(*value_range, size=(2, size, size, 3)).astype(np.float32)
    return {'random': random, 'photo': _photo_input(size, value_range)[None]}


@pytest.mark.parametrize('name', MODEL_NAMES)
def test_onnx_matches_tflite(model_dir, interpreter_cls, name):
    """Every output agrees with TFLite within 1e-3 on random inputs and on the photo."""
    session = _ort_session(model_dir / f'{name}.onnx')
    (onnx_input,) = session.get_inputs()
    size = onnx_input.shape[1]
    for kind, x in _inputs(name, size).items():
        reference = _tflite_run(interpreter_cls, model_dir / f'{name}.tflite', x)
        names = [output.name for output in session.get_outputs()]
        assert sorted(names) == sorted(reference), 'ONNX must keep the TFLite output names'
        outputs = dict(zip(names, session.run(None, {onnx_input.name: x})))
        for output_name, expected in reference.items():
            got = outputs[output_name]
            assert got.shape == expected.shape, (name, kind, output_name)
            assert np.all(np.isfinite(got))
            diff = float(np.max(np.abs(got - expected)))
            assert diff <= TOLERANCE, f'{name} {kind} {output_name}: max abs diff {diff:.2e}'


def test_photo_gives_real_detections(model_dir):
    """The palm detector finds hands in the photo (a sanity check that the weights are real)."""
    session = _ort_session(model_dir / 'palm_detection_full.onnx')
    x = _photo_input(192, INPUT_RANGE['palm'])[None]
    regressors, logits = session.run(['Identity', 'Identity_1'], {'input_1': x})
    scores = 1.0 / (1.0 + np.exp(-np.clip(logits[0, :, 0], -50.0, 50.0)))
    assert regressors.shape == (1, 2016, 18)
    assert scores.max() > 0.9
    assert np.median(scores) < 0.01


def test_landmark_batch_is_dynamic(model_dir):
    """A batch of crops gives the same outputs as running them one at a time."""
    session = _ort_session(model_dir / 'hand_landmark_full.onnx')
    assert session.get_inputs()[0].shape[0] == 'N'
    x = np.random.default_rng(3).uniform(0, 1, (3, 224, 224, 3)).astype(np.float32)
    batched = session.run(None, {'input_1': x})
    for index in range(3):
        single = session.run(None, {'input_1': x[index:index + 1]})
        for got, expected in zip(batched, single):
            np.testing.assert_allclose(got[index:index + 1], expected, atol=1e-5)


def test_manifest_hashes_match_files(model_dir):
    """The manifest names the wheel and the sha256 of every model file and the licence."""
    manifest = json.loads((model_dir / 'mediapipe_manifest.json').read_text())
    assert manifest['source']['package'] == 'mediapipe'
    assert manifest['source']['version'] == '0.10.14'
    assert manifest['source']['wheel'].startswith('mediapipe-0.10.14-')
    assert len(manifest['source']['wheel_sha256']) == 64
    licence = model_dir / manifest['license_file']['file']
    assert 'Apache License' in licence.read_text()
    assert mediapipe_models.sha256_file(licence) == manifest['license_file']['sha256']
    assert sorted(manifest['models']) == sorted(MODEL_NAMES)
    for name, entry in manifest['models'].items():
        for kind in ('tflite', 'onnx'):
            path = model_dir / entry[kind]['file']
            assert path.name == f'{name}.{kind}'
            assert mediapipe_models.sha256_file(path) == entry[kind]['sha256'], path
        assert entry['inputs'][0]['name'] == 'input_1'
        side = 192 if name.startswith('palm') else 224
        assert entry['inputs'][0]['shape'] == ['N', side, side, 3]
        expected_outputs = (['Identity', 'Identity_1'] if name.startswith('palm')
                            else ['Identity', 'Identity_1', 'Identity_2', 'Identity_3'])
        assert [o['name'] for o in entry['outputs']] == expected_outputs
    assert mediapipe_models.verify_manifest(model_dir) == manifest


def test_second_prepare_does_not_download_or_write(model_dir, monkeypatch):
    """A second setup call only verifies: no download, no file rewritten (same mtimes)."""
    def no_download(*args, **kwargs):
        raise AssertionError('prepare_mediapipe_models downloaded although models are current')

    monkeypatch.setattr(mediapipe_fetch, 'download_wheel', no_download)
    names = ([mediapipe_models.MANIFEST_NAME, mediapipe_models.LICENSE_NAME]
             + [f'{m}.{kind}' for m in MODEL_NAMES for kind in ('onnx', 'tflite')])
    before = {name: (model_dir / name).stat().st_mtime_ns for name in names}
    manifest = mediapipe_models.prepare_mediapipe_models(model_dir, log=lambda _: None)
    after = {name: (model_dir / name).stat().st_mtime_ns for name in names}
    assert after == before
    assert not list(model_dir.glob('*.tmp'))
    assert sorted(manifest['models']) == sorted(MODEL_NAMES)


def _fake_wheel(model_dir: Path, folder: Path) -> Path:
    """Build a wheel-shaped zip holding the real .tflite files and the Apache-2.0 text."""
    licence = (model_dir / mediapipe_models.LICENSE_NAME).read_text()
    licence = licence.split('\n\n', 1)[1]  # drop the header written by the setup
    wheel = folder / 'mediapipe-0.10.14-py3-none-any.whl'
    with zipfile.ZipFile(wheel, 'w') as archive:
        archive.writestr('mediapipe-0.10.14.dist-info/LICENSE', licence)
        for name in MODEL_NAMES:
            group = 'palm_detection' if name.startswith('palm') else 'hand_landmark'
            archive.write(model_dir / f'{name}.tflite',
                          f'mediapipe/modules/{group}/{name}.tflite')
    return wheel


def test_prepare_repairs_a_corrupted_model(model_dir, tmp_path, monkeypatch):
    """A changed ONNX file fails verification and is rebuilt identically (offline wheel)."""
    wheel = _fake_wheel(model_dir, tmp_path)
    calls = []

    def fake_download(*args, **kwargs):
        calls.append(1)
        return wheel

    monkeypatch.setattr(mediapipe_fetch, 'download_wheel', fake_download)
    out_dir = tmp_path / 'models'
    first = mediapipe_models.prepare_mediapipe_models(out_dir, log=lambda _: None)
    assert calls == [1]
    assert mediapipe_models.verify_manifest(out_dir) == first
    target = out_dir / 'hand_landmark_lite.onnx'
    target.write_bytes(target.read_bytes()[:-16])
    assert mediapipe_models.verify_manifest(out_dir) is None
    second = mediapipe_models.prepare_mediapipe_models(out_dir, log=lambda _: None)
    assert calls == [1, 1]
    assert second['models'] == first['models']  # conversion is deterministic
    assert mediapipe_models.verify_manifest(out_dir) == second


def test_unsupported_op_fails_loudly(model_dir):
    """An op without a converter raises NotImplementedError naming it."""
    from hand_mesh_ros.model_building import tflite_to_onnx
    from hand_mesh_ros.model_building.tflite_graph import read_tflite

    graph = read_tflite((model_dir / 'hand_landmark_lite.tflite').read_bytes())
    graph.operators[-1].opname = 'SPACE_TO_DEPTH'
    with pytest.raises(NotImplementedError, match='SPACE_TO_DEPTH'):
        tflite_to_onnx.convert_graph(graph)


def test_download_wheel_caches_and_falls_back(tmp_path, monkeypatch):
    """Run pip once per cache; retry with the x86-64 wheel where this platform has none."""
    import subprocess

    commands = []

    def fake_run(command, **kwargs):
        commands.append(command)
        if '--platform' not in command:
            return subprocess.CompletedProcess(command, 1, '', 'No matching distribution')
        folder = Path(command[command.index('-d') + 1])
        with zipfile.ZipFile(folder / 'mediapipe-0.10.14-cp311-cp311-linux.whl', 'w') as z:
            z.writestr('mediapipe-0.10.14.dist-info/LICENSE', 'Apache License Version 2.0')
        return subprocess.CompletedProcess(command, 0, '', '')

    monkeypatch.setattr(mediapipe_fetch.subprocess, 'run', fake_run)
    first = mediapipe_fetch.download_wheel(tmp_path, log=lambda _: None)
    assert len(commands) == 2
    assert commands[0][1:6] == ['-m', 'pip', 'download', '--no-deps', '--only-binary=:all:']
    assert 'mediapipe==0.10.14' in commands[0]
    second = mediapipe_fetch.download_wheel(tmp_path, log=lambda _: None)
    assert second == first and len(commands) == 2
