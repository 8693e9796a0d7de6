"""The committed lifting + skinning graphs: portable ops, small after optimisation, exact maths.

The graphs' ONNX Runtime time is per-node overhead, so their size after
``ORT_ENABLE_ALL`` is checked as a number (no wall-clock assertion). The rotation helpers
written for few nodes are checked against the numpy reference; the tests that need torch
(only for building models) skip without it.
"""

import json

import numpy as np
import pytest

from hand_mesh_ros.core.hand import rotations
from hand_mesh_ros.core.hand.hand_model import load_hand_model
from hand_mesh_ros.model_building import export_mesh_network as emn
from hand_mesh_ros.model_building.synthetic_hands import make_dataset
from hand_mesh_ros.paths import data_dir, models_dir

onnx = pytest.importorskip('onnx', reason='onnx is needed to read the graphs')
ort = pytest.importorskip('onnxruntime', reason='onnxruntime is needed to run the graphs')

#: Operators the TensorRT ONNX parser supports in 8.5 (JetPack 5.1) and 10.x alike.
TENSORRT_OPS = {'Abs', 'Add', 'ArgMax', 'Atan', 'Clip', 'Concat', 'Constant',
                'ConstantOfShape', 'Cos', 'Div', 'Equal', 'Expand', 'Gather', 'GatherElements',
                'Gemm', 'Less', 'Log', 'MatMul', 'Max', 'Min', 'Mul', 'ReduceSum', 'Relu',
                'Reshape', 'Shape', 'Sin', 'Slice', 'Split', 'Sqrt', 'Sub', 'Transpose',
                'Unsqueeze', 'Where'}
#: Largest node count after ORT_ENABLE_ALL (302 and 243 with onnxruntime 1.23).
MAX_OPTIMIZED_NODES = {'learned': 330, 'analytic': 270}


def _path(kind):
    return models_dir() / emn.LIFTING_FILES[kind]


def _session(path_or_bytes, optimized_path=None):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    if optimized_path is not None:
        options.optimized_model_filepath = str(optimized_path)
    return ort.InferenceSession(path_or_bytes if isinstance(path_or_bytes, bytes)
                                else str(path_or_bytes), options,
                                providers=['CPUExecutionProvider'])


def _run(session, world):
    names = [o.name for o in session.get_outputs()]
    feeds = {'mesh_world_landmarks': np.asarray(world, np.float32).reshape(len(world), 63)}
    return dict(zip(names, session.run(names, feeds)))


@pytest.fixture(scope='module')
def model():
    return load_hand_model()


@pytest.mark.parametrize('kind', ['learned', 'analytic'])
def test_graph_is_opset_17_dynamic_batch_and_tensorrt_ops(kind):
    graph = onnx.load(str(_path(kind)))
    assert {o.domain: o.version for o in graph.opset_import} == {'': 17}
    used = {node.op_type for node in graph.graph.node}
    assert used <= TENSORRT_OPS, sorted(used - TENSORRT_OPS)
    for value in list(graph.graph.input) + list(graph.graph.output):
        assert value.type.tensor_type.shape.dim[0].dim_param == 'N', value.name


@pytest.mark.parametrize('kind', ['learned', 'analytic'])
def test_graph_is_small_after_onnxruntime_optimisation(kind, tmp_path):
    out = tmp_path / 'optimized.onnx'
    _session(_path(kind), optimized_path=out)
    nodes = len(onnx.load(str(out)).graph.node)
    assert nodes <= MAX_OPTIMIZED_NODES[kind], nodes


@pytest.mark.parametrize('kind', ['learned', 'analytic'])
def test_rows_do_not_depend_on_the_batch(model, kind):
    world = make_dataset(model, 3, 7, noisy=True)['input_m']
    session = _session(_path(kind))
    together = _run(session, world)
    for i in (0, 6):
        alone = _run(session, world[i:i + 1])
        for name, value in alone.items():
            np.testing.assert_allclose(value[0], together[name][i], atol=2e-6, err_msg=name)


@pytest.mark.parametrize('kind', ['learned', 'analytic'])
def test_degenerate_landmarks_give_finite_outputs(kind):
    world = np.zeros((3, 21, 3))
    world[1] = 1.0
    world[2, 1:, 1] = 0.01
    for name, value in _run(_session(_path(kind)), world).items():
        assert np.isfinite(value).all(), name


def test_video_mesh_explains_the_landmarks(model):
    world = np.array(json.loads((data_dir() / 'asl_hand_3d.full.json').read_text()))
    out = _run(_session(_path('learned')), world)
    for index, side in enumerate(('right', 'left')):
        ref = model.forward(out['mesh_pose_aa'][:, index].astype(np.float64),
                            out['mesh_shape'][:, index].astype(np.float64), side=side)
        assert np.abs(ref.vertices - out['mesh_vertices'][:, index]).max() < 2e-5
        assert np.abs(ref.keypoints - out['mesh_keypoints'][:, index]).max() < 2e-5
    angles = np.linalg.norm(out['mesh_pose_aa'], axis=-1)
    assert angles.max() <= np.pi + 1e-5


def test_rotation_helpers_match_numpy():
    torch = pytest.importorskip('torch', reason='torch builds the graphs (model building only)')
    from hand_mesh_ros.model_building import lifting_ops as ops
    rng = np.random.default_rng(4)
    axes = rng.normal(size=(600, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    angles = np.concatenate([[0.0, 1e-9, 1e-6, 1e-4, np.pi - 1e-4, np.pi],
                             rng.uniform(0, np.pi, 594)])
    aa = axes * angles[:, None]
    want = rotations.axis_angle_to_matrix(aa)
    got = ops.axis_angle_to_matrix(torch.tensor(aa, dtype=torch.float32)[..., None])
    np.testing.assert_allclose(got.numpy(), want, atol=1e-6)
    back = ops.matrix_to_axis_angle(torch.tensor(want, dtype=torch.float32)).numpy()[:, 0]
    np.testing.assert_allclose(rotations.axis_angle_to_matrix(back.astype(np.float64)), want,
                               atol=2e-6)
    np.testing.assert_allclose(back[:-2], aa[:-2], atol=2e-6)  # unique below pi
    a, b = rng.normal(size=(2, 50, 1, 3))
    got = ops.cross_rows(torch.tensor(a, dtype=torch.float32),
                         torch.tensor(b, dtype=torch.float32))
    np.testing.assert_allclose(got.numpy(), np.cross(a, b), atol=1e-6)
    d6 = rng.normal(size=(50, 6))
    rot = ops.rotation_6d_to_matrix(torch.tensor(d6, dtype=torch.float32)).numpy()
    np.testing.assert_allclose(rot @ np.swapaxes(rot, -1, -2),
                               np.broadcast_to(np.eye(3), rot.shape), atol=1e-6)
    np.testing.assert_allclose(np.linalg.det(rot), 1.0, atol=1e-6)
    first = d6[:, :3] / np.linalg.norm(d6[:, :3], axis=1, keepdims=True)
    np.testing.assert_allclose(rot[:, :, 0], first, atol=1e-6)


def test_committed_graphs_are_the_current_code_export(model, tmp_path):
    """Re-export from the torch code and the stored head: the same outputs as the files."""
    pytest.importorskip('torch', reason='torch builds the graphs (model building only)')
    from hand_mesh_ros.model_building.lifting_export import export_lifting
    from hand_mesh_ros.model_building.lifting_torch import MeshLifting
    from hand_mesh_ros.model_building.train_lifting import build_liftings
    analytic, learned = build_liftings(model, models_dir() / 'lifting_head.npz')
    world = make_dataset(model, 21, 64, noisy=True)['input_m'] + 0.02
    for kind, lifting in (('analytic', analytic), ('learned', learned)):
        fresh = tmp_path / (kind + '.onnx')
        export_lifting(MeshLifting(lifting), fresh)
        want, got = _run(_session(_path(kind)), world), _run(_session(fresh), world)
        for name in want:
            np.testing.assert_allclose(got[name], want[name], atol=1e-6, err_msg=name)


def test_bench_tool_reports_node_counts_and_profile(capsys):
    from hand_mesh_ros.tools.bench import bench_mesh_network
    assert bench_mesh_network.main(['--no-speed', '--profile', '--json']) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result['nodes']['optimized'] <= MAX_OPTIMIZED_NODES['learned']
    assert result['nodes']['stored'] > result['nodes']['optimized']
    assert sum(row['nodes'] for row in result['profile'].values()) == result['nodes']['optimized']
    with pytest.raises(SystemExit):
        bench_mesh_network.main(['--runs', '3'])


@pytest.mark.parametrize('kind', ['learned', 'analytic'])
def test_float16_graph_stays_finite_and_close(model, kind):
    """The GPU routes' FP16 graph: no 0 / 0 at straight fingers (rest pose) or anywhere else."""
    from hand_mesh_ros.inference.fp16_graph import convert_to_fp16
    rest = model.forward(np.zeros((1, model.n_bones, 3)), np.zeros((1, model.n_shapes))).keypoints
    world = np.concatenate([rest, 1.1 * rest, make_dataset(model, 9, 100, noisy=True)['input_m']])
    want = _run(_session(_path(kind)), world)
    got = _run(_session(convert_to_fp16(_path(kind))), world)
    for name, value in got.items():
        assert np.isfinite(value).all(), name
    assert np.abs(got['mesh_vertices'] - want['mesh_vertices']).max() < 0.005
