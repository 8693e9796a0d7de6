"""Build the mesh networks ``hand_mesh_{full,lite}.onnx``: landmark network + lifting + skinning.

Needs ``onnx`` only (no torch): the landmark graph (converted from MediaPipe's TFLite at setup
time) gets the committed lifting + skinning subgraph (``lifting_skinning_<kind>.onnx``, made
once with torch by :mod:`hand_mesh_ros.model_building.lifting_export`) appended, wired to its
world-landmark output ``Identity_3``. All original inputs and outputs keep their names and
values; four outputs are added (N = batch, dynamic; J bones, S shape coefficients, V vertices
of the hand model; index 0/1 of the second axis = the landmarks lifted as a right/left hand):

- ``mesh_pose_aa`` float32 (N, 2, J, 3): axis-angle per bone in its rest frame, in the
  right-hand model's parametrisation (``HandModel.forward(pose, shape, side)`` with side
  'right' for index 0 and 'left' for index 1 reproduces the vertices);
- ``mesh_shape`` float32 (N, 2, S): shape coefficients;
- ``mesh_vertices`` float32 (N, 2, V, 3) and ``mesh_keypoints`` float32 (N, 2, 21, 3):
  metres, relative to the wrist, axes of the landmark network's world frame (``Identity_3``:
  x, y along the crop's axes, z depth); add ``Identity_3``'s wrist to overlay them on it.
"""

import hashlib
import json
from pathlib import Path

from hand_mesh_ros.paths import models_dir

VARIANTS = ('full', 'lite')
DEFAULT_LIFTING = 'learned'
LIFTING_FILES = {'analytic': 'lifting_skinning_analytic.onnx',
                 'learned': 'lifting_skinning_learned.onnx'}
LANDMARK_FILE = 'hand_landmark_%s.onnx'
MESH_FILE = 'hand_mesh_%s.onnx'
MANIFEST_FILE = 'mesh_network_manifest.json'
WORLD_OUTPUT = 'Identity_3'
LIFTING_INPUT = 'mesh_world_landmarks'
PREFIX = 'mesh/'
FORMAT = 1


def sha256_file(path):
    """Return the hex sha256 of the file at ``path``."""
    digest = hashlib.sha256()
    with open(path, 'rb') as stream:
        for block in iter(lambda: stream.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def _static_output_dims(lifting_graph, n_bones, n_shapes, n_vertices):
    """Return {output name: dims after N} of the lifting outputs."""
    return {'mesh_pose_aa': (2, n_bones, 3), 'mesh_shape': (2, n_shapes),
            'mesh_vertices': (2, n_vertices, 3), 'mesh_keypoints': (2, 21, 3)}


def merge_mesh_network(landmark_model, lifting_model, dims):
    """Return a new ModelProto: ``landmark_model`` with ``lifting_model`` appended.

    Args:
        landmark_model: onnx ModelProto with a ``Identity_3`` (N, 63) output.
        lifting_model: onnx ModelProto with one input ``mesh_world_landmarks`` (N, 63).
        dims: {output name: static dims after the batch axis} for the lifting outputs.
    """
    import onnx
    from onnx import helper, TensorProto
    merged = onnx.ModelProto()
    merged.CopyFrom(landmark_model)
    lifting = onnx.ModelProto()
    lifting.CopyFrom(lifting_model)
    graph = lifting.graph
    if [i.name for i in graph.input] != [LIFTING_INPUT]:
        raise ValueError('lifting graph must have the single input %r' % LIFTING_INPUT)
    if WORLD_OUTPUT not in [o.name for o in merged.graph.output]:
        raise ValueError('landmark graph has no output %r' % WORLD_OUTPUT)
    keep = {o.name for o in graph.output}
    taken = {n for node in merged.graph.node for n in list(node.input) + list(node.output)}
    taken |= {i.name for i in merged.graph.initializer} | {i.name for i in merged.graph.input}
    if keep & taken:
        raise ValueError('output names %r clash with the landmark graph' % sorted(keep & taken))

    def rename(name):
        if name == '' or name in keep:
            return name
        if name == LIFTING_INPUT:
            return WORLD_OUTPUT
        return PREFIX + name

    for init in graph.initializer:
        init.name = rename(init.name)
    for node in graph.node:
        node.name = PREFIX + node.name
        node.input[:] = [rename(n) for n in node.input]
        node.output[:] = [rename(n) for n in node.output]
    merged.graph.node.extend(graph.node)
    merged.graph.initializer.extend(graph.initializer)
    batch = merged.graph.output[0].type.tensor_type.shape.dim[0]
    for out in graph.output:
        shape = [batch.dim_param or batch.dim_value] + list(dims[out.name])
        merged.graph.output.append(
            helper.make_tensor_value_info(out.name, TensorProto.FLOAT, shape))
    imports = {o.domain: o.version for o in merged.opset_import}
    for opset in lifting.opset_import:
        if opset.domain in imports and imports[opset.domain] != opset.version:
            raise ValueError('opset mismatch in domain %r: %d vs %d'
                             % (opset.domain, imports[opset.domain], opset.version))
    merged.ir_version = max(merged.ir_version, lifting.ir_version)
    onnx.helper.set_model_props(merged, {'hand_mesh_ros.mesh_outputs': __doc__.split('\n\n')[2]})
    onnx.checker.check_model(merged)
    return merged


def build_mesh_network(landmark_path, lifting_path, out_path, hand_model_path):
    """Merge the files and write ``out_path``; return its sha256."""
    import onnx
    from hand_mesh_ros.core.hand.hand_model import load_hand_model
    model = load_hand_model(hand_model_path)
    dims = _static_output_dims(None, model.n_bones, model.n_shapes, model.n_vertices)
    merged = merge_mesh_network(onnx.load(str(landmark_path)), onnx.load(str(lifting_path)),
                                dims)
    tmp = Path(str(out_path) + '.tmp')
    onnx.save(merged, str(tmp))
    tmp.replace(out_path)
    return sha256_file(out_path)


def check_lifting_matches_hand_model(lifting_path, hand_model_path):
    """Raise ValueError if ``lifting_path`` was exported from another hand model file.

    The lifting graph embeds the hand model's arrays; its metadata records the sha256 of the
    ``.npz`` it was exported from (:mod:`hand_mesh_ros.model_building.lifting_export`).
    """
    import onnx
    props = {p.key: p.value for p in onnx.load(str(lifting_path), load_external_data=False)
             .metadata_props}
    recorded = props.get('hand_model_sha256')
    actual = sha256_file(hand_model_path)
    if recorded != actual:
        raise ValueError(
            '%s was exported from a hand model with sha256 %s, but %s has %s: re-export it with '
            '`python -m hand_mesh_ros.model_building.lifting_export` (needs torch)'
            % (Path(lifting_path).name, recorded, Path(hand_model_path).name, actual))


def prepare_mesh_networks(models_dir_path=None, force=False, lifting=DEFAULT_LIFTING):
    """Build ``hand_mesh_{full,lite}.onnx`` where missing or stale; return the manifest dict.

    Idempotent: the manifest ``mesh_network_manifest.json`` records the sha256 of every input
    (landmark graph, lifting graph, hand model) and output; a variant is rebuilt only when
    one of them changed, its output is missing or ``force`` is set. Variants whose landmark
    graph is missing are skipped (listed under ``missing``). Raises ValueError when the
    committed lifting graph was exported from a different hand model file.
    """
    root = Path(models_dir_path) if models_dir_path is not None else models_dir()
    manifest_path = root / MANIFEST_FILE
    old = {}
    if manifest_path.is_file() and not force:
        try:
            old = json.loads(manifest_path.read_text())
        except ValueError:
            old = {}
    lifting_path = root / LIFTING_FILES[lifting]
    hand_model_path = root / 'hand_model_right.npz'
    check_lifting_matches_hand_model(lifting_path, hand_model_path)
    inputs_common = {'lifting': {'file': lifting_path.name, 'sha256': sha256_file(lifting_path)},
                     'hand_model': {'file': hand_model_path.name,
                                    'sha256': sha256_file(hand_model_path)}}
    manifest = {'format': FORMAT, 'lifting': lifting, 'world_output': WORLD_OUTPUT,
                'outputs_doc': __doc__.split('\n\n')[2], 'models': {}, 'missing': [],
                'built': []}
    for variant in VARIANTS:
        landmark_path = root / (LANDMARK_FILE % variant)
        out_path = root / (MESH_FILE % variant)
        if not landmark_path.is_file():
            manifest['missing'].append(landmark_path.name)
            continue
        inputs = dict(inputs_common)
        inputs['landmark'] = {'file': landmark_path.name, 'sha256': sha256_file(landmark_path)}
        entry = old.get('models', {}).get(variant, {})
        current = (out_path.is_file() and entry.get('inputs') == inputs
                   and entry.get('sha256') == sha256_file(out_path))
        if not current:
            digest = build_mesh_network(landmark_path, lifting_path, out_path, hand_model_path)
            manifest['built'].append(out_path.name)
            entry = {'file': out_path.name, 'sha256': digest, 'inputs': inputs}
        manifest['models'][variant] = entry
    recorded = {k: v for k, v in manifest.items() if k != 'built'}
    if recorded != {k: v for k, v in old.items() if k != 'built'}:
        manifest_path.write_text(json.dumps(recorded, indent=1, sort_keys=True) + '\n')
    return manifest
