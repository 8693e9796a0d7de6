"""``hand-mesh build-engine``: build TensorRT engines ahead of time (e.g. on a Jetson).

Builds one engine per ONNX model in the models directory into the engine cache
(default ``<models-dir>/engines``), keyed by model hash, TensorRT version, GPU
name, precision and max batch, so the node finds them at start-up instead of
building for minutes on first use.  The batch profiles are the node's: palm detectors
batch 1, the other models 1..``--max-batch``, which must equal the node's
``detection.max_hands`` for the node to find the engines.  On a machine where TensorRT
cannot run, or any set-up step fails, it exits with status 1 and one error line.
"""

import argparse
import json
import pathlib
import sys

from hand_mesh_ros.core.config import DetectionConfig
from hand_mesh_ros.inference import tensorrt_backend
from hand_mesh_ros.inference.base import BackendUnavailableError
from hand_mesh_ros.inference.base import InferenceError
from hand_mesh_ros.paths import models_dir


def build_parser():
    """Return the argument parser of ``hand-mesh build-engine``."""
    parser = argparse.ArgumentParser(
        prog='hand-mesh build-engine',
        description='Build TensorRT engines for the ONNX models, ahead of time.')
    parser.add_argument('--models-dir', type=pathlib.Path, default=None,
                        help='directory with the .onnx models (default: the package models dir)')
    parser.add_argument('--engine-dir', type=pathlib.Path, default=None,
                        help='engine cache directory (default: <models-dir>/engines)')
    parser.add_argument('--model', dest='models', action='append', nargs='+', default=None,
                        metavar='NAME', help='only these models (file name or stem); repeatable')
    parser.add_argument('--fp32', action='store_true', help='build FP32 (default: FP16)')
    parser.add_argument('--workspace-mb', type=int, default=1024,
                        help='builder workspace limit in MiB (default: 1024)')
    parser.add_argument('--max-batch', type=int, default=DetectionConfig().max_hands,
                        help='largest batch (hands) of the mesh/landmark profile: set it to '
                             'the node detection.max_hands (default: %(default)s); palm detectors '
                             'are built for batch 1')
    parser.add_argument('--force', action='store_true', help='rebuild even if cached')
    parser.add_argument('--json', action='store_true',
                        help='print one JSON object as the last line')
    return parser


def select_models(directory, names):
    """Return the ``.onnx`` files of ``directory``, only ``names`` (file name or stem) if given.

    Raises:
        InferenceError: the directory has no ONNX model, or a name matches none.
    """
    found = sorted(pathlib.Path(directory).glob('*.onnx'))
    if not found:
        raise InferenceError(
            f'no .onnx models in {directory} (run `hand-mesh setup-models` first)')
    if not names:
        return found
    chosen = []
    for name in names:
        matches = [p for p in found if name in (p.name, p.stem)]
        if not matches:
            raise InferenceError(
                f'no model {name!r} in {directory} (have: {", ".join(p.stem for p in found)})')
        chosen.extend(m for m in matches if m not in chosen)
    return chosen


def profile_max_batch(onnx_file, max_hands):
    """Return the profile maximum the node uses for a model: 1 for a palm detector."""
    return 1 if pathlib.Path(onnx_file).stem.startswith('palm_detection') else int(max_hands)


def main(argv=None):
    """Run ``hand-mesh build-engine``; return the process exit status."""
    args = build_parser().parse_args(argv)
    if args.workspace_mb < 1 or args.max_batch < 1:
        print('error: --workspace-mb and --max-batch must be >= 1', file=sys.stderr)
        return 2
    directory = args.models_dir or models_dir()
    engine_dir = args.engine_dir or (directory / 'engines')
    names = [name for group in (args.models or []) for name in group]
    summary = {'ok': False, 'models_dir': str(directory), 'engine_dir': str(engine_dir),
               'precision_requested': 'fp32' if args.fp32 else 'fp16',
               'max_batch': args.max_batch, 'workspace_mb': args.workspace_mb, 'engines': []}
    try:
        ok, reason = tensorrt_backend.check_tensorrt_available()
        summary['tensorrt'] = reason
        if not ok:
            raise BackendUnavailableError(
                f'cannot build TensorRT engines on this machine: {reason}')
        onnx_files = select_models(directory, names)
        results = []
        for onnx_file in onnx_files:
            results += tensorrt_backend.build_engine_files(
                [onnx_file], cache_dir=engine_dir, fp16=not args.fp32,
                workspace_mb=args.workspace_mb,
                max_batch=profile_max_batch(onnx_file, args.max_batch), force=args.force,
                log=_print_log)
    except InferenceError as exc:
        summary['error'] = str(exc)
        print(f'error: {exc}', file=sys.stderr)
        _finish(args, summary)
        return 1
    for onnx_file, (engine_file, built, metadata) in zip(onnx_files, results):
        print(f'{"built " if built else "cached"} {onnx_file.name} -> {engine_file}')
        summary['engines'].append({
            'model': onnx_file.name, 'engine': str(engine_file), 'built': built,
            'precision': metadata.get('precision'), 'gpu_name': metadata.get('gpu_name'),
            'tensorrt_version': metadata.get('tensorrt_version'),
            'max_batch': metadata.get('max_batch'),
            'build_seconds': metadata.get('build_seconds')})
    summary['ok'] = True
    print(f'{len(results)} engine(s) in {engine_dir}')
    _finish(args, summary)
    return 0


def _print_log(level, msg):
    print(f'[{level}] {msg}', file=sys.stderr)


def _finish(args, summary):
    if args.json:
        print(json.dumps(summary, sort_keys=True))


if __name__ == '__main__':
    sys.exit(main())
