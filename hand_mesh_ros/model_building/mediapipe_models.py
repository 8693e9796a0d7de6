"""Prepare MediaPipe's pretrained hand models as ONNX files (idempotent).

``prepare_mediapipe_models(models_dir)`` fetches the ``mediapipe==0.10.14`` wheel (cached,
never installed), extracts the palm detector and hand landmark models (full and lite),
converts them to ONNX with :mod:`hand_mesh_ros.model_building.tflite_to_onnx` and writes a
manifest with sha256 of every input and output. A second call verifies the hashes and
returns without downloading or rewriting anything.

Model contract (also written into ``mediapipe_manifest.json``; N = batch, dynamic in ONNX):

- ``palm_detection_{full,lite}``: input ``input_1`` float32 [N, 192, 192, 3], NHWC, RGB,
  values in [0, 1] (pixel / 255), the whole image letterboxed (zero padding) to a square.
  (Checked on data/hands.jpg: [0, 1] gives palm keypoints within ~20 px of the hands,
  [-1, 1] gives saturated scores and regressors of 1e4 px.)
  ``Identity`` [N, 2016, 18] raw SSD regressors per anchor, in 192-px input units relative
  to the anchor centre: box centre dx, dy, width, height, then 7 palm keypoints (x, y)
  (MediaPipe rotates the hand crop from keypoint 0, the wrist, towards keypoint 2, the
  middle-finger MCP).
  ``Identity_1`` [N, 2016, 1] raw score logits (apply a sigmoid). The 2016 anchors are
  24x24x2 (stride 8) followed by 12x12x6 (strides 16, three layers merged), centres at
  ((x + 0.5) / W, (y + 0.5) / H), fixed size 1x1.
- ``hand_landmark_{full,lite}``: input ``input_1`` float32 [N, 224, 224, 3], NHWC, RGB,
  values in [0, 1] (pixel / 255), a rotated square crop around one hand.
  ``Identity`` [N, 63] 21 landmarks x (x, y, z) in crop pixels (z: depth relative to the
  wrist, same scale as x). ``Identity_1`` [N, 1] hand presence probability (sigmoid applied
  in the model). ``Identity_2`` [N, 1] handedness score s: MediaPipe labels it 'Left' with
  s and 'Right' with 1 - s assuming a mirrored (selfie) image, so for an un-mirrored camera
  s is the probability of an anatomical right hand. ``Identity_3`` [N, 63] 21 world
  landmarks x (x, y, z) in metres, origin near the hand's centre.
"""

import argparse
import hashlib
import json
import os
from pathlib import Path
import time
from typing import Callable, Dict, Optional

from hand_mesh_ros.model_building import mediapipe_fetch
from hand_mesh_ros.model_building.tflite_to_onnx import CONVERTER_VERSION

MANIFEST_NAME = 'mediapipe_manifest.json'
LICENSE_NAME = 'LICENSE.mediapipe.Apache-2.0.txt'
MANIFEST_FORMAT = 1
OPSET = 17

_PALM_CONTRACT = {
    'task': 'palm detection (SSD, 2016 anchors)',
    'input': 'input_1: float32 [N,192,192,3] NHWC RGB in [0,1] (px/255); whole image '
             'letterboxed (aspect kept, zero/black padding) to 192x192',
    'outputs': {
        'Identity': '[N,2016,18] raw regressors in 192-px units: dx, dy, w, h of the palm '
                    'box relative to the anchor centre, then 7 keypoints (x, y) relative to '
                    'the anchor centre (0 = wrist, 2 = middle-finger MCP: MediaPipe rotates '
                    'the hand crop along 0 -> 2)',
        'Identity_1': '[N,2016,1] raw score logits; probability = sigmoid(clip(x, -100, 100))',
    },
    'anchors': 'strides [8,16,16,16], 2 anchors per cell per layer, fixed size 1x1: 24x24x2 '
               'then 12x12x6 = 2016; centre ((x+0.5)/24|12, (y+0.5)/24|12)',
    'labels': ['palm'],
}
_LANDMARK_CONTRACT = {
    'task': 'hand landmarks on a hand crop',
    'input': 'input_1: float32 [N,224,224,3] NHWC RGB in [0,1] (px/255); square crop '
             'rotated so the fingers point up (MediaPipe: palm box scaled 2.6x and shifted '
             '0.5 box heights towards the fingers; from previous landmarks 2.0x)',
    'outputs': {
        'Identity': '[N,63] 21 landmarks x (x, y, z) in crop pixels (0..224); z is depth '
                    'relative to the wrist (wrist z = 0), same scale as x, smaller = closer '
                    'to the camera',
        'Identity_1': '[N,1] hand presence probability in [0,1] (sigmoid inside the model)',
        'Identity_2': '[N,1] handedness score s in [0,1] (sigmoid inside the model). '
                      'MediaPipe reports label Left with s and Right with 1-s, assuming a '
                      'mirrored (selfie) image; so on an un-mirrored camera image s is the '
                      'probability of an anatomical right hand. data/hands.jpg (left hands, '
                      'not mirrored) gives s = 0.11-0.13, its mirror image 0.83-0.85',
        'Identity_3': '[N,63] 21 world landmarks x (x, y, z) in metres, origin near the '
                      'hand centre (not the wrist), axes aligned with the crop',
    },
    'keypoint_order': 'wrist; thumb CMC, MCP, IP, tip; index MCP, PIP, DIP, tip; middle; '
                      'ring; pinky',
    'labels': ['Left', 'Right'],
}
CONTRACTS = {
    'palm_detection_full': _PALM_CONTRACT,
    'palm_detection_lite': _PALM_CONTRACT,
    'hand_landmark_full': _LANDMARK_CONTRACT,
    'hand_landmark_lite': _LANDMARK_CONTRACT,
}


def sha256_file(path: Path) -> str:
    """Return the hex sha256 of the file at ``path``."""
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for block in iter(lambda: handle.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def _write_atomic(path: Path, data: bytes):
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    tmp = path.with_name(path.name + '.tmp')
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _io_spec(values):
    """Return [{'name', 'dtype', 'shape'}] of ONNX graph inputs/outputs."""
    from onnx import helper
    spec = []
    for value in values:
        tensor_type = value.type.tensor_type
        spec.append({'name': value.name,
                     'dtype': helper.tensor_dtype_to_np_dtype(tensor_type.elem_type).name,
                     'shape': [d.dim_param or d.dim_value for d in tensor_type.shape.dim]})
    return spec


def _expected_files(manifest: dict):
    """Yield (path relative to models dir, sha256) for every file the manifest lists."""
    yield manifest['license_file']['file'], manifest['license_file']['sha256']
    for entry in manifest['models'].values():
        yield entry['tflite']['file'], entry['tflite']['sha256']
        yield entry['onnx']['file'], entry['onnx']['sha256']


def verify_manifest(models_dir: Path) -> Optional[dict]:
    """Return the manifest if it is current and every listed file matches its sha256."""
    path = Path(models_dir) / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text())
        if (manifest.get('format') != MANIFEST_FORMAT
                or manifest['source']['version'] != mediapipe_fetch.MEDIAPIPE_VERSION
                or manifest['converter']['version'] != CONVERTER_VERSION
                or sorted(manifest['models']) != sorted(mediapipe_fetch.MODEL_NAMES)
                or any(entry.get('contract') != CONTRACTS[name]
                       for name, entry in manifest['models'].items())):
            return None
        for relative, digest in _expected_files(manifest):
            file_path = Path(models_dir) / relative
            if not file_path.is_file() or sha256_file(file_path) != digest:
                return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return manifest


def _license_text(wheel_name: str, license_text: str, path_in_wheel: str) -> str:
    header = (
        'The files palm_detection_{full,lite}.{tflite,onnx} and '
        'hand_landmark_{full,lite}.{tflite,onnx}\n'
        'in this directory are MediaPipe models, Copyright The MediaPipe Authors, taken '
        f'unmodified\nfrom the PyPI wheel {wheel_name} (.tflite) and converted to ONNX '
        '(format conversion\nonly, weights unchanged) by hand_mesh_ros.model_building.'
        'tflite_to_onnx.\nThey are distributed under the Apache License 2.0; the licence '
        f'text below is\n{path_in_wheel} from that wheel.\n\n')
    return header + license_text


def _convert_all(models_dir: Path, cache_dir: Optional[Path], log) -> dict:
    """Download, extract, convert and write everything; return the manifest."""
    import onnx

    from hand_mesh_ros.model_building.tflite_to_onnx import convert_tflite_to_onnx

    wheel = mediapipe_fetch.download_wheel(cache_dir, log=log)
    models = mediapipe_fetch.read_wheel_models(wheel)
    licence = mediapipe_fetch.read_wheel_license(wheel)
    license_path = models_dir / LICENSE_NAME
    _write_atomic(license_path, _license_text(wheel.name, licence['text'],
                                              licence['path_in_wheel']).encode('utf-8'))
    entries = {}
    for name in mediapipe_fetch.MODEL_NAMES:
        data = models[name]['data']
        tflite_path = models_dir / f'{name}.tflite'
        onnx_path = models_dir / f'{name}.onnx'
        _write_atomic(tflite_path, data)
        start = time.perf_counter()
        model = convert_tflite_to_onnx(data, dynamic_batch=True, opset=OPSET, graph_name=name)
        _write_atomic(onnx_path, model.SerializeToString())
        log(f'{name}: converted in {time.perf_counter() - start:.2f} s -> {onnx_path}')
        entries[name] = {
            'tflite': {'file': tflite_path.name, 'sha256': sha256_file(tflite_path),
                       'path_in_wheel': models[name]['path_in_wheel']},
            'onnx': {'file': onnx_path.name, 'sha256': sha256_file(onnx_path),
                     'opset': OPSET, 'nodes': len(model.graph.node)},
            'inputs': _io_spec(model.graph.input),
            'outputs': _io_spec(model.graph.output),
            'layout': 'NHWC float32 (same arrays as the TFLite interpreter); batch dynamic',
            'contract': CONTRACTS[name],
        }
    return {
        'format': MANIFEST_FORMAT,
        'source': {'package': 'mediapipe', 'version': mediapipe_fetch.MEDIAPIPE_VERSION,
                   'wheel': wheel.name, 'wheel_sha256': sha256_file(wheel),
                   'license': 'Apache-2.0', 'obtained_with': 'pip download --no-deps'},
        'converter': {'name': 'hand_mesh_ros.model_building.tflite_to_onnx',
                      'version': CONVERTER_VERSION, 'onnx_version': onnx.__version__,
                      'opset': OPSET},
        'license_file': {'file': LICENSE_NAME, 'sha256': sha256_file(license_path)},
        'models': entries,
    }


def prepare_mediapipe_models(models_dir: Path, *, force: bool = False,
                             log: Callable[[str], None] = print,
                             cache_dir: Optional[Path] = None) -> Dict:
    """Make sure the MediaPipe hand models are in ``models_dir`` as ONNX; return the manifest.

    Idempotent: when ``mediapipe_manifest.json`` lists files whose sha256 all match, nothing
    is downloaded or written (unless ``force``). ``cache_dir`` holds the downloaded wheel
    (default :func:`mediapipe_fetch.default_cache_dir`).
    """
    models_dir = Path(models_dir)
    if not force:
        manifest = verify_manifest(models_dir)
        if manifest is not None:
            log(f'mediapipe models: up to date in {models_dir} ({MANIFEST_NAME} verified)')
            return manifest
    models_dir.mkdir(parents=True, exist_ok=True)
    manifest = _convert_all(models_dir, cache_dir, log)
    _write_atomic(models_dir / MANIFEST_NAME,
                  (json.dumps(manifest, indent=2, sort_keys=True) + '\n').encode('utf-8'))
    log(f'mediapipe models: wrote {len(manifest["models"])} ONNX models and '
        f'{MANIFEST_NAME} to {models_dir}')
    return manifest


def main(argv=None) -> int:
    """Command line: ``python -m hand_mesh_ros.model_building.mediapipe_models``."""
    from hand_mesh_ros.paths import models_dir as default_models_dir

    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--models-dir', type=Path, default=None,
                        help='output directory (default: hand_mesh_ros.paths.models_dir())')
    parser.add_argument('--cache-dir', type=Path, default=None,
                        help='where the downloaded wheel is kept '
                             '(default: $HAND_MESH_CACHE_DIR or ~/.cache/hand_mesh_ros)')
    parser.add_argument('--force', action='store_true',
                        help='download and convert again even if the manifest verifies')
    args = parser.parse_args(argv)
    prepare_mediapipe_models(args.models_dir or default_models_dir(), force=args.force,
                             cache_dir=args.cache_dir)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
