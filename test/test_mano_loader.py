"""Loading a MANO-structured pickle without chumpy (synthetic files written by the test).

No MANO data is used or shipped: the files hold made-up numbers with MANO's structure (chumpy
``Ch`` objects, a scipy sparse ``J_regressor``, ``kintree_table`` with 2**32 - 1 as the root's
parent) and the test checks the loader against its own straightforward MANO forward pass.
"""

import pickle
import sys
import types

import numpy as np
import pytest
import scipy.sparse
from scipy.spatial.transform import Rotation

from hand_mesh_ros.core.hand.hand_model import load_hand_model
from hand_mesh_ros.core.hand.mano_loader import (load_mano, load_mano_hands_mean,
                                                 MANO_TIP_VERTICES, MANO_TO_MEDIAPIPE,
                                                 pose_to_mean_relative)
from hand_mesh_ros.core.hand.rotations import mirror_axis_angle

# MANO joint -> bone of the project's hand model with the same joint centre (for a layout).
MANO_FROM_OPEN_MODEL = (0, 6, 7, 8, 10, 11, 12, 18, 19, 20, 14, 15, 16, 2, 3, 4)
PARENTS = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14)
N_VERTS = 778
TIP_KEYPOINTS = (4, 8, 12, 16, 20)
SIGNS = np.array([-1.0, 1.0, 1.0])


def _synthetic_right_hand(seed=0):
    """Return MANO-like arrays in a rotated, shifted native frame, and that frame."""
    rng = np.random.default_rng(seed)
    open_model = load_hand_model()
    rest = open_model.forward(open_model.zero_pose()).keypoints
    joints = open_model.rest_joints_m[list(MANO_FROM_OPEN_MODEL)]
    verts = np.zeros((N_VERTS, 3))
    weights = np.zeros((N_VERTS, 16))
    regressor = scipy.sparse.lil_matrix((16, N_VERTS))
    for j in range(16):  # four vertices around each joint centre, averaging to it
        for a in range(2):
            for sign in (-1.0, 1.0):
                v = 4 * j + 2 * a + (sign > 0)
                verts[v] = joints[j] + sign * 0.004 * np.eye(3)[a]
                regressor[j, v] = 0.25
                weights[v, j] = 1.0
    free = [v for v in range(64, N_VERTS) if v not in MANO_TIP_VERTICES]
    bones = rng.integers(1, 16, len(free))
    blend = rng.uniform(0.5, 1.0, len(free))
    verts[free] = joints[bones] + rng.normal(0.0, 0.006, (len(free), 3))
    weights[free, bones] = blend
    weights[free, np.array(PARENTS)[bones]] += 1.0 - blend
    for tip, k in zip(MANO_TIP_VERTICES, (4, 8, 12, 16, 20)):
        verts[tip] = rest[k]
        weights[tip, _tip_bone(k)] = 1.0
    native_rot = Rotation.from_rotvec([0.3, -1.2, 0.7]).as_matrix()
    shift = np.array([0.09, 0.005, -0.01])
    data = {
        'v_template': verts @ native_rot.T + shift,
        'f': rng.integers(0, N_VERTS, (1538, 3)).astype(np.uint32),
        'weights': weights,
        'kintree_table': np.array([[2 ** 32 - 1] + list(PARENTS[1:]), list(range(16))],
                                  dtype=np.int64),
        'J_regressor': regressor.tocsc(),
        'shapedirs': rng.normal(0.0, 0.003, (N_VERTS, 3, 10)),
        'posedirs': rng.normal(0.0, 0.002, (N_VERTS, 3, 135)),
        'hands_components': rng.normal(size=(45, 45)),
        'hands_mean': rng.normal(size=45),
        'bs_style': 'lbs',
        'bs_type': 'lrotmin',
    }
    data['J'] = regressor.tocsc() @ data['v_template']
    return data, native_rot


def _tip_bone(keypoint):
    """Return the MANO joint that carries a fingertip keypoint (its DIP/IP joint)."""
    return MANO_TO_MEDIAPIPE[keypoint - 1]


def _mirrored(data):
    """Return the left hand: the right hand's data mirrored across the native x = 0 plane."""
    out = dict(data)
    out['v_template'] = data['v_template'] * SIGNS
    out['J'] = data['J'] * SIGNS
    out['f'] = data['f'][:, ::-1].copy()
    out['shapedirs'] = data['shapedirs'] * SIGNS[None, :, None]
    sign_rk = np.tile(np.outer(SIGNS, SIGNS).ravel(), 15)  # (R - I)[i, k] flips as s_i s_k
    out['posedirs'] = data['posedirs'] * SIGNS[None, :, None] * sign_rk[None, None, :]
    return out


def _write_with_fake_chumpy(path, data, monkeypatch, old_scipy_path=True):
    """Pickle ``data`` as MANO does: chumpy Ch objects (a temporary fake chumpy module)."""
    with monkeypatch.context() as patch:
        chumpy = types.ModuleType('chumpy')
        chumpy_ch = types.ModuleType('chumpy.ch')

        class Ch:
            def __init__(self, x):
                self.x = np.asarray(x)
                self._dirty_vars = set()
                self._itr = None
                self._make_dense = False
                self._make_sparse = False

        Ch.__module__, Ch.__qualname__ = 'chumpy.ch', 'Ch'
        chumpy_ch.Ch = Ch
        chumpy.ch = chumpy_ch
        patch.setitem(sys.modules, 'chumpy', chumpy)
        patch.setitem(sys.modules, 'chumpy.ch', chumpy_ch)
        payload = dict(data)
        for key in ('shapedirs', 'J'):
            payload[key] = Ch(data[key])
        if old_scipy_path:  # the class path of the scipy that wrote the real files
            old = types.ModuleType('scipy.sparse.csc')

            class OldCsc:
                pass

            OldCsc.__module__, OldCsc.__qualname__ = 'scipy.sparse.csc', 'csc_matrix'
            old.csc_matrix = OldCsc
            patch.setitem(sys.modules, 'scipy.sparse.csc', old)
            sparse = OldCsc()
            csc = data['J_regressor']
            sparse.__dict__.update(_shape=csc.shape, data=csc.data, indices=csc.indices,
                                   indptr=csc.indptr, maxprint=50)
            payload['J_regressor'] = sparse
        with open(path, 'wb') as handle:
            pickle.dump(payload, handle, protocol=2)
    assert 'chumpy' not in sys.modules


def _reference_mano(data, pose, betas):
    """Run MANO's forward pass in its native frame: vertices (V, 3), joints (16, 3), root."""
    v_shaped = data['v_template'] + data['shapedirs'] @ betas
    joints = data['J_regressor'] @ v_shaped
    rots = Rotation.from_rotvec(pose).as_matrix()
    feature = (rots[1:] - np.eye(3)).ravel()
    v_posed = v_shaped + data['posedirs'] @ feature
    world = [None] * 16
    for j in range(16):
        local = np.eye(4)
        local[:3, :3] = rots[j]
        local[:3, 3] = joints[j] - (joints[PARENTS[j]] if j else 0.0)
        world[j] = local if j == 0 else world[PARENTS[j]] @ local
    skin = np.stack([g @ np.block([[np.eye(3), -joints[j][:, None]], [np.zeros((1, 3)), 1]])
                     for j, g in enumerate(world)])
    blended = np.einsum('vj,jab->vab', data['weights'], skin)
    verts = np.einsum('vab,vb->va', blended[:, :3, :3], v_posed) + blended[:, :3, 3]
    return verts, np.stack([g[:3, 3] for g in world]), joints[0]


@pytest.fixture
def mano_files(tmp_path, monkeypatch):
    right, native_rot = _synthetic_right_hand()
    _write_with_fake_chumpy(tmp_path / 'MANO_RIGHT.pkl', right, monkeypatch)
    _write_with_fake_chumpy(tmp_path / 'MANO_LEFT.pkl', _mirrored(right), monkeypatch,
                            old_scipy_path=False)
    return tmp_path, right, native_rot


def test_loads_without_chumpy_and_matches_mano_forward(mano_files):
    folder, data, native_rot = mano_files
    model = load_hand_model(folder / 'MANO_RIGHT.pkl')
    assert 'chumpy' not in sys.modules
    counts = (model.n_vertices, len(model.faces), model.n_bones, model.n_shapes)
    assert counts == (778, 1538, 16, 10)
    assert model.native_side == 'right' and model.pose_basis_m.shape == (135, 778, 3)
    rng = np.random.default_rng(1)
    for pose, betas in ((np.zeros((16, 3)), np.zeros(10)),
                        (rng.normal(0.0, 0.5, (16, 3)), rng.normal(0.0, 1.0, 10))):
        out = model.forward(pose, shape=betas)
        ref_verts, ref_joints, root = _reference_mano(data, pose, betas)
        # The loader's hand frame is the native frame undone (rotation and wrist offset).
        np.testing.assert_allclose(out.vertices, (ref_verts - root) @ native_rot, atol=1e-9)
        np.testing.assert_allclose(out.joints, (ref_joints - root) @ native_rot, atol=1e-9)
        ref_kp = np.array([ref_joints[j] if j >= 0 else ref_verts[MANO_TIP_VERTICES[i]]
                           for j, i in zip(MANO_TO_MEDIAPIPE, _tip_slots())])
        np.testing.assert_allclose(out.keypoints, (ref_kp - root) @ native_rot, atol=1e-9)
    # MediaPipe order: wrist, thumb CMC and the middle MCP are MANO joints 0, 13 and 4.
    rest = model.forward(model.zero_pose())
    np.testing.assert_allclose(rest.keypoints[[0, 1, 9]], rest.joints[[0, 13, 4]])
    assert rest.keypoints[4, 0] > 0.04 and rest.keypoints[9, 1] > 0.08  # thumb +x, fingers +y


def test_flat_hand_mean_convention_is_explicit(mano_files):
    folder, data, native_rot = mano_files
    model = load_hand_model(folder / 'MANO_RIGHT.pkl')
    mean = load_mano_hands_mean(folder / 'MANO_RIGHT.pkl')
    np.testing.assert_allclose(mean.ravel(), data['hands_mean'])
    # Zero pose coefficients are MANO's flat template (hands_mean is never added) ...
    ref_verts, _, root = _reference_mano(data, np.zeros((16, 3)), np.zeros(10))
    out = model.forward(model.zero_pose())
    np.testing.assert_allclose(out.vertices, (ref_verts - root) @ native_rot, atol=1e-9)
    # ... and a mean-relative pose (MANO layers' default) converts back and forth.
    rng = np.random.default_rng(4)
    flat = rng.normal(0.0, 0.3, (16, 3))
    relative = pose_to_mean_relative(flat, mean)
    np.testing.assert_allclose(relative[0], flat[0])
    np.testing.assert_allclose(relative[1:] + mean, flat[1:])
    np.testing.assert_allclose(pose_to_mean_relative(relative, mean, inverse=True), flat)
    # MANO's joints are its rotation centres: they are published as the joint centres.
    np.testing.assert_allclose(out.joint_centres, out.keypoints, atol=1e-12)


def _tip_slots():
    """Return, per MediaPipe keypoint, its fingertip slot (0..4) or -1."""
    slots = [-1] * 21
    for slot, k in enumerate(TIP_KEYPOINTS):
        slots[k] = slot
    return slots


def test_left_file_is_a_left_hand(mano_files):
    folder, _, _ = mano_files
    right = load_hand_model(folder / 'MANO_RIGHT.pkl')
    left = load_hand_model(folder / 'MANO_LEFT.pkl')
    assert left.native_side == 'left'
    rng = np.random.default_rng(2)
    pose = rng.normal(0.0, 0.4, (16, 3))
    betas = rng.normal(0.0, 1.0, 10)
    out_right = right.forward(pose, shape=betas)
    # MANO's left-hand pose is the right-hand pose mirrored in its native axes.
    out_left = left.forward(mirror_axis_angle(pose), shape=betas)
    assert out_left.side == 'left'
    np.testing.assert_allclose(out_left.vertices, out_right.vertices * SIGNS, atol=1e-9)
    np.testing.assert_allclose(out_left.keypoints, out_right.keypoints * SIGNS, atol=1e-9)
    np.testing.assert_array_equal(out_left.faces, right.faces[:, ::-1])
    assert left.forward(left.zero_pose()).keypoints[4, 0] < -0.04  # left thumb at -x
    # Asking the left model for a right hand mirrors it back onto the right model.
    np.testing.assert_allclose(left.forward(mirror_axis_angle(pose), shape=betas,
                                            side='right').vertices,
                               out_right.vertices, atol=1e-9)


def test_refuses_foreign_classes(tmp_path):
    path = tmp_path / 'MANO_RIGHT.pkl'
    with open(path, 'wb') as handle:
        pickle.dump({'v_template': types.SimpleNamespace(a=1)}, handle, protocol=2)
    with pytest.raises(pickle.UnpicklingError):
        load_mano(path)
    with pytest.raises(ValueError):
        load_mano(tmp_path / 'hand.pkl')  # side unknown from the name
