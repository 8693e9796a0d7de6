"""Export the lifting + skinning subgraphs to small ONNX files (needs torch; run by hand).

Usage::

    python -m hand_mesh_ros.model_building.lifting_export [--models-dir models]

writes ``lifting_skinning_analytic.onnx`` and ``lifting_skinning_learned.onnx`` (the latter
from ``lifting_head.npz``). Each maps ``mesh_world_landmarks`` float32 (N, 63) (the landmark
network's world landmarks, metres) to ``mesh_pose_aa`` (N, 2, J, 3), ``mesh_shape``
(N, 2, S), ``mesh_vertices`` (N, 2, V, 3) and ``mesh_keypoints`` (N, 2, 21, 3); see
:class:`hand_mesh_ros.model_building.lifting_torch.MeshLifting`. These committed files are
what :mod:`hand_mesh_ros.model_building.export_mesh_network` appends to the landmark graph at
setup time with ``onnx`` only.
"""

import argparse
from pathlib import Path
import sys

from hand_mesh_ros.paths import models_dir

OPSET = 17
INPUT_NAME = 'mesh_world_landmarks'
OUTPUT_NAMES = ('mesh_pose_aa', 'mesh_shape', 'mesh_vertices', 'mesh_keypoints')
LIFTING_FILES = {'analytic': 'lifting_skinning_analytic.onnx',
                 'learned': 'lifting_skinning_learned.onnx'}
#: Metadata key holding the sha256 of the hand model file the graph was exported from.
HAND_MODEL_SHA_KEY = 'hand_model_sha256'


def export_lifting(module, path, metadata=None):
    """Export a :class:`MeshLifting` module to ``path`` (ONNX, opset 17, dynamic batch).

    ``metadata`` (str -> str) is stored in the file's metadata_props.
    """
    import onnx
    import torch
    module = module.eval()
    example = torch.zeros(2, 63)
    example[:, 1::3] = torch.linspace(0.0, 0.15, 21)
    example[:, 0::3] = torch.linspace(-0.03, 0.03, 21)
    dynamic = {INPUT_NAME: {0: 'N'}}
    dynamic.update({name: {0: 'N'} for name in OUTPUT_NAMES})
    with torch.no_grad():
        torch.onnx.export(module, (example,), str(path), input_names=[INPUT_NAME],
                          output_names=list(OUTPUT_NAMES), opset_version=OPSET,
                          dynamic_axes=dynamic, dynamo=False, do_constant_folding=True)
    if metadata:
        model = onnx.load(str(path))
        onnx.helper.set_model_props(model, dict(metadata))
        onnx.save(model, str(path))


def main(argv=None):
    """Export both lifting variants; print their sizes."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--models-dir', type=Path, default=models_dir())
    parser.add_argument('--head', type=Path, default=None,
                        help='learned head weights (default: MODELS_DIR/lifting_head.npz)')
    args = parser.parse_args(argv)
    from hand_mesh_ros.core.hand.hand_model import load_hand_model
    from hand_mesh_ros.model_building.lifting_torch import MeshLifting
    from hand_mesh_ros.model_building.train_lifting import build_liftings, HEAD_FILE
    from hand_mesh_ros.model_building.export_mesh_network import sha256_file
    hand_model_path = args.models_dir / 'hand_model_right.npz'
    head_path = args.head or args.models_dir / HEAD_FILE
    model = load_hand_model(hand_model_path)
    analytic, learned = build_liftings(model, head_path)
    for name, lifting in (('analytic', analytic), ('learned', learned)):
        path = args.models_dir / LIFTING_FILES[name]
        metadata = {HAND_MODEL_SHA_KEY: sha256_file(hand_model_path), 'lifting': name}
        if name == 'learned':
            metadata['lifting_head_sha256'] = sha256_file(head_path)
        export_lifting(MeshLifting(lifting), path, metadata)
        print('%s: %d bytes' % (path, path.stat().st_size))
    return 0


if __name__ == '__main__':
    sys.exit(main())
