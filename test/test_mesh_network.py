"""The mesh network: landmark graph + lifting + skinning as one ONNX graph.

Needs the landmark ONNX graphs made by ``hand-mesh setup-models`` (they are not committed);
the mesh network is merged into a temporary folder here (onnx only, under a second).
"""

import json
import shutil

import numpy as np
import pytest

from hand_mesh_ros.core.hand.hand_model import load_hand_model
from hand_mesh_ros.core.tracking.hand_landmarks import landmarks_to_roi, preprocess_hand_crop
from hand_mesh_ros.model_building import export_mesh_network as emn
from hand_mesh_ros.model_building.synthetic_hands import make_dataset
from hand_mesh_ros.paths import data_dir, models_dir
from hand_mesh_ros.tools.evaluation import eval_mesh
from hand_mesh_ros.tools.evaluation.mesh_metrics import mean_point_error

ort = pytest.importorskip('onnxruntime', reason='onnxruntime is needed to run the graphs')
LANDMARK = models_dir() / 'hand_landmark_full.onnx'
needs_landmark = pytest.mark.usefixtures('landmark_required')


@pytest.fixture
def landmark_required():
    """Fail (not skip) when setup has not produced the landmark graphs."""
    if not LANDMARK.is_file():
        pytest.fail('landmark ONNX missing: run `hand-mesh setup-models` (bootstrap.sh does)')


MIRROR = np.array([-1.0, 1.0, 1.0])


def _session(path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    return ort.InferenceSession(str(path), options, providers=['CPUExecutionProvider'])


def _run(session, feeds):
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds)))


@pytest.fixture(scope='module')
def model():
    return load_hand_model()


@pytest.fixture(scope='module')
def mesh_full(tmp_path_factory):
    out = tmp_path_factory.mktemp('mesh') / 'hand_mesh_full.onnx'
    if not LANDMARK.is_file():
        pytest.fail('landmark ONNX missing: run `hand-mesh setup-models` (bootstrap.sh does)')
    emn.build_mesh_network(LANDMARK, models_dir() / emn.LIFTING_FILES[emn.DEFAULT_LIFTING],
                           out, models_dir() / 'hand_model_right.npz')
    return out


@pytest.fixture(scope='module')
def crops():
    """Crop both hands of data/hands.jpg from the golden keypoints: (2, 224, 224, 3)."""
    import cv2
    rgb = cv2.cvtColor(cv2.imread(str(data_dir() / 'hands.jpg')), cv2.COLOR_BGR2RGB)
    golden = json.loads((data_dir() / 'hands_expected_keypoints.json').read_text())
    return np.stack([preprocess_hand_crop(rgb, landmarks_to_roi(np.array(kp, float)), 224)[0]
                     for kp in golden['hands']]).astype(np.float32)


def _lifting(name='analytic'):
    return eval_mesh.open_session(models_dir() / emn.LIFTING_FILES[name])


@needs_landmark
def test_mesh_outputs_equal_numpy_forward(model, mesh_full, crops):
    out = _run(_session(mesh_full), {'input_1': crops})
    assert out['mesh_vertices'].shape == (2, 2, model.n_vertices, 3)
    assert out['mesh_pose_aa'].shape == (2, 2, model.n_bones, 3)
    assert out['mesh_shape'].shape == (2, 2, model.n_shapes)
    assert out['mesh_keypoints'].shape == (2, 2, 21, 3)
    for index, side in enumerate(('right', 'left')):
        ref = model.forward(out['mesh_pose_aa'][:, index].astype(np.float64),
                            out['mesh_shape'][:, index].astype(np.float64), side=side)
        assert np.abs(ref.vertices - out['mesh_vertices'][:, index]).max() < 1e-4
        assert np.abs(ref.keypoints - out['mesh_keypoints'][:, index]).max() < 1e-4
    # The mesh explains the network's own world landmarks (left hands in hands.jpg).
    world = out['Identity_3'].reshape(2, 21, 3)
    err = mean_point_error(out['mesh_keypoints'][:, 1], world - world[:, :1])
    assert np.all(err < 0.012)


@needs_landmark
def test_landmark_outputs_unchanged(mesh_full, crops):
    bare = _run(_session(LANDMARK), {'input_1': crops})
    mesh = _run(_session(mesh_full), {'input_1': crops})
    assert set(bare) < set(mesh)
    for name, value in bare.items():
        np.testing.assert_array_equal(mesh[name], value)


@pytest.mark.parametrize('name', ['analytic', 'learned'])
def test_left_output_mirrors_right_for_mirrored_input(model, name):
    data = make_dataset(model, 7, 16, noisy=True)
    world = data['input_m'] + np.array([0.01, -0.02, 0.03])  # not wrist-centred, like MediaPipe
    session = _lifting(name)
    direct = eval_mesh.lift(session, world)
    mirrored = eval_mesh.lift(session, world * MIRROR)
    np.testing.assert_allclose(direct['mesh_vertices'][:, 1],
                               mirrored['mesh_vertices'][:, 0] * MIRROR, atol=1e-6)
    np.testing.assert_allclose(direct['mesh_pose_aa'][:, 1], mirrored['mesh_pose_aa'][:, 0],
                               atol=1e-6)
    assert np.abs(direct['mesh_vertices'][:, 0] - direct['mesh_vertices'][:, 1]).max() > 0.01


def test_analytic_lifting_recovers_exact_keypoints(model):
    data = make_dataset(model, 11, 200, noisy=False)
    out = eval_mesh.lift(_lifting('analytic'), data['input_m'])
    mpjpe = mean_point_error(out['mesh_keypoints'][:, 0], data['keypoints_m'])
    mpvpe = mean_point_error(out['mesh_vertices'][:, 0], data['vertices_m'])
    assert mpjpe.mean() < 0.002
    assert mpvpe.mean() < 0.003
    within = model.within_limits(out['mesh_pose_aa'][:, 0].astype(np.float64), tol_rad=1e-4)
    assert within[:, 1:].all()


def test_synthetic_metrics_fixed_seed(model):
    metrics = {name: {noisy: eval_mesh.synthetic_metrics(_lifting(name), model, seed=5, n=300,
                                                         noisy=noisy)
                      for noisy in (False, True)} for name in ('analytic', 'learned')}
    for name in metrics:
        clean, noisy = metrics[name][False], metrics[name][True]
        assert clean['mpjpe']['mean'] < 3.0
        assert 3.0 < noisy['mpjpe']['mean'] < 20.0
        assert noisy['pa_mpjpe']['mean'] < noisy['mpjpe']['mean']
        assert noisy['mpvpe']['mean'] < 25.0
    default = metrics[emn.DEFAULT_LIFTING][True]
    other = metrics['analytic' if emn.DEFAULT_LIFTING == 'learned' else 'learned'][True]
    assert default['mpvpe']['mean'] <= other['mpvpe']['mean']


def test_video_pa_mpjpe_below_target():
    world = np.array(json.loads((data_dir() / eval_mesh.VIDEO_LANDMARKS).read_text()))
    result = eval_mesh.video_metrics(_lifting(emn.DEFAULT_LIFTING), world)
    assert result['frames'] == 325
    assert result['pa_mpjpe']['median'] <= 8.0
    # The other chirality explains the landmarks much worse: the side is well defined.
    other = [k for k in result if k.startswith('pa_mpjpe_')][0]
    assert result[other]['median'] > 2 * result['pa_mpjpe']['median']


@needs_landmark
def test_prepare_mesh_networks_is_idempotent(tmp_path):
    for name in ('hand_landmark_full.onnx', 'hand_model_right.npz',
                 *emn.LIFTING_FILES.values()):
        shutil.copy(models_dir() / name, tmp_path / name)
    first = emn.prepare_mesh_networks(tmp_path)
    assert first['built'] == ['hand_mesh_full.onnx']
    assert first['missing'] == ['hand_landmark_lite.onnx']
    manifest = json.loads((tmp_path / emn.MANIFEST_FILE).read_text())
    built = tmp_path / 'hand_mesh_full.onnx'
    assert manifest['models']['full']['sha256'] == emn.sha256_file(built)
    assert emn.prepare_mesh_networks(tmp_path)['built'] == []
    assert emn.prepare_mesh_networks(tmp_path, force=True)['built'] == ['hand_mesh_full.onnx']


@pytest.mark.parametrize('side', ['right', 'left'])
def test_numpy_reference_lifting_matches_graph(model, side):
    from hand_mesh_ros.model_building.lifting import lift_analytic
    data = make_dataset(model, 13, 50, noisy=True)
    out = eval_mesh.lift(_lifting('analytic'), data['input_m'])
    index = 0 if side == 'right' else 1
    pose, shape = lift_analytic(model, data['input_m'], side)
    np.testing.assert_allclose(shape, out['mesh_shape'][:, index], atol=1e-4)
    ref = model.forward(pose, shape, side=side)
    assert np.abs(ref.vertices - out['mesh_vertices'][:, index]).max() < 1e-4


def test_prepare_refuses_a_lifting_graph_from_another_hand_model(tmp_path):
    for name in ('hand_model_right.npz', *emn.LIFTING_FILES.values()):
        shutil.copy(models_dir() / name, tmp_path / name)
    emn.check_lifting_matches_hand_model(tmp_path / emn.LIFTING_FILES['learned'],
                                         tmp_path / 'hand_model_right.npz')
    with open(tmp_path / 'hand_model_right.npz', 'ab') as stream:
        stream.write(b'changed')
    with pytest.raises(ValueError, match='lifting_export'):
        emn.prepare_mesh_networks(tmp_path)
