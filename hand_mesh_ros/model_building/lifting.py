"""Analytic lifting in numpy: 21 keypoints -> pose and shape of the hand model (reference).

Build-time code: the exported graph's analytic lifting
(:class:`hand_mesh_ros.model_building.lifting_torch.AnalyticLifting`) takes its shape
regressor and constants from here, synthetic training hands their shape prior
(:func:`shape_sigma`), and the tests check the graph against :func:`lift_analytic`. The node
never imports it: at run time the lifting is part of the mesh network. The maths:

1. shape: one ridge-regularised Gauss-Newton step of bone and palm distances on the linear
   shape basis (constant matrix from :func:`shape_regressor`), clipped to +-3;
2. global orientation: the palm frame of the observation against that of the shaped rest
   keypoints (:func:`palm_frame`);
3. per bone, parents first: the smallest rotation turning the bone's rest direction onto the
   observed direction (posed bone origin -> child keypoint) in the parent's posed frame,
   zero twist, clipped to the joint limits; the wrist bone stays at rest.
"""

import numpy as np

from hand_mesh_ros.core.hand import rotations
from hand_mesh_ros.core.hand.topology import BONE_PAIRS, PALM_MCPS, PALM_PAIRS

#: Keypoint whose position each bone's rotation decides (-1: none; root and wrist bones).
BONE_CHILD_KEYPOINT = (-1, -1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17,
                       18, 19, 20)
#: Keypoint pairs whose distances drive the shape estimate (bones and palm).
SHAPE_PAIRS = BONE_PAIRS + PALM_PAIRS
#: Prior standard deviations of the shape coefficients by name (1 = +10 % for the first
#: five); other directions use :data:`DEFAULT_SHAPE_SIGMA`.
SHAPE_SIGMA = {'size': 0.8, 'finger_length': 0.5, 'finger_thickness': 0.5, 'palm_width': 0.5,
               'palm_length': 0.5, 'anny_gender': 0.6, 'anny_age': 0.6, 'anny_weight': 0.6}
DEFAULT_SHAPE_SIGMA = 0.3
SHAPE_RIDGE = 2e-5
SHAPE_BOUND = 3.0


def shape_sigma(shape_names):
    """Return the prior standard deviations (S,) for the model's ``shape_names``."""
    return np.array([SHAPE_SIGMA.get(str(name), DEFAULT_SHAPE_SIGMA) for name in shape_names])


def rest_keypoint_basis(model):
    """Return rest keypoints (21, 3) and their shape basis (S, 21, 3), wrist at the origin."""
    rest_v, rest_j = model.rest_shape(None)
    basis_v = model.shape_vertex_basis_m - model.shape_joint_basis_m[:, :1]
    basis_j = model.shape_joint_basis_m - model.shape_joint_basis_m[:, :1]
    return model.keypoints_from(rest_v, rest_j)[0], model.keypoints_from(basis_v, basis_j)


def shape_regressor(model, ridge=SHAPE_RIDGE, prior_sigma=None):
    """Return the pairs' rest distances (P,) and the matrix (S, P) of the shape step.

    ``shape = M @ (distances_observed - distances_rest)`` is one Gauss-Newton step at the
    mean shape with penalty ``ridge / prior_sigma[s]^2`` on each coefficient (metres^2).
    """
    kp, kp_basis = rest_keypoint_basis(model)
    a, b = np.array(SHAPE_PAIRS).T
    diff = kp[a] - kp[b]
    length = np.linalg.norm(diff, axis=-1)
    jac = np.einsum('pi,spi->ps', diff / length[:, None], kp_basis[:, a] - kp_basis[:, b])
    if prior_sigma is None:
        prior_sigma = shape_sigma(model.shape_names)
    lhs = jac.T @ jac + ridge * np.diag(1.0 / np.asarray(prior_sigma) ** 2)
    return length, np.linalg.solve(lhs, jac.T)


def _unit(v):
    return v / np.sqrt((v * v).sum(-1, keepdims=True) + 1e-16)


def palm_frame(keypoints):
    """Return palm frames (B, 3, 3) (columns x, y, z) of keypoints (B, 21, 3).

    y: wrist -> mean of the four finger MCPs; x: across the palm towards the index finger
    (orthogonalised); z = x cross y (palmar for a right hand).
    """
    mcps = keypoints[:, list(PALM_MCPS)]
    ey = _unit(mcps.mean(1) - keypoints[:, 0])
    across = (mcps[:, 0] - mcps[:, 2]) + (mcps[:, 1] - mcps[:, 3])
    ez = _unit(np.cross(across, ey))
    return np.stack([np.cross(ey, ez), ey, ez], -1)


def swing_axis_angle(u, v):
    """Return the smallest rotations (..., 3) (axis-angle) turning directions ``u`` onto ``v``."""
    u, v = _unit(u), _unit(v)
    axis = np.cross(u, v)
    sin = np.sqrt((axis * axis).sum(-1, keepdims=True) + 1e-20)
    cos = (u * v).sum(-1, keepdims=True)
    return axis * (np.arctan2(sin, cos) / sin)


def lift_analytic(model, keypoints_m, side='right'):
    """Return pose_aa (B, J, 3) and shape (B, S) explaining keypoints (B, 21, 3), metres.

    ``side`` 'left' mirrors the keypoints (x -> -x) first; the pose is in the right-hand
    model's parametrisation either way (``model.forward(pose, shape, side)`` reproduces
    the keypoints). The keypoints need not be wrist-centred; the input is not modified.
    """
    kp = np.asarray(keypoints_m, dtype=np.float64)
    kp = kp - kp[:, :1]
    if side == 'left':
        kp = kp * rotations.MIRROR_X.diagonal()
    lengths_rest, matrix = shape_regressor(model)
    a, b = np.array(SHAPE_PAIRS).T
    lengths = np.linalg.norm(kp[:, a] - kp[:, b], axis=-1)
    shape = np.clip((lengths - lengths_rest) @ matrix.T, -SHAPE_BOUND, SHAPE_BOUND)
    _, rest_j = model.rest_shape(shape)
    kp0, kp_basis = rest_keypoint_basis(model)
    rest_kp = kp0 + np.tensordot(shape, kp_basis, axes=1)
    q = model.rest_bone_rotations
    global_rot = palm_frame(kp) @ np.swapaxes(palm_frame(rest_kp), -1, -2)
    batch, n_bones = len(kp), model.n_bones
    pose = np.zeros((batch, n_bones, 3))
    pose[:, 0] = rotations.matrix_to_axis_angle(q[0].T @ global_rot @ q[0])
    posed_rot = np.zeros((batch, n_bones, 3, 3))
    posed_pos = np.zeros((batch, n_bones, 3))
    posed_rot[:, 0] = global_rot @ q[0]
    posed_pos[:, 0] = rest_j[:, 0]
    for j in range(1, n_bones):
        p = model.parents[j]
        delta_par = posed_rot[:, p] @ q[p].T
        posed_pos[:, j] = posed_pos[:, p] + np.einsum('bik,bk->bi', delta_par,
                                                      rest_j[:, j] - rest_j[:, p])
        base = delta_par @ q[j]
        child = BONE_CHILD_KEYPOINT[j]
        if child >= 0:
            rest_dir = (rest_kp[:, child] - rest_j[:, j]) @ q[j]
            seen = np.einsum('bki,bk->bi', base, kp[:, child] - posed_pos[:, j])
            pose[:, j] = np.clip(swing_axis_angle(rest_dir, seen),
                                 model.joint_limits_min_rad[j], model.joint_limits_max_rad[j])
        posed_rot[:, j] = base @ rotations.axis_angle_to_matrix(pose[:, j])
    return pose, shape
