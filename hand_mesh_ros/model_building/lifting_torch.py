"""Torch definitions of the lifting step (keypoints -> pose and shape) and of skinning.

Used only to train the learned head and to export the small ONNX graph
``models/lifting_skinning.onnx``; the node never needs torch. All maths mirrors
:mod:`hand_mesh_ros.core.hand_model` / :mod:`hand_mesh_ros.core.skinning` (same frames,
same pose parametrisation: one rotation per bone in its rest frame).

Everything is batched over a leading ``B`` axis and written with ops that export to ONNX
(opset 17): the kinematic tree is processed level by level (6 levels for the 21 bones), not
bone by bone, so the exported graph stays small and fast.

Analytic lifting (:class:`AnalyticLifting`), per hand, from root-relative keypoints (B, 21, 3):

1. shape: one ridge-regularised Gauss-Newton step of the bone and palm distances on the linear
   shape basis (a constant matrix, linearised at the mean shape);
2. global orientation: the palm frame (wrist -> mean of the four finger MCPs, index/middle
   -> ring/pinky across the palm) of the observation against the same frame of the shaped
   rest keypoints;
3. per bone, parents first: the swing rotation mapping the bone's rest direction onto the
   observed direction (from the bone's posed origin to its child keypoint) seen in the
   parent's posed frame; zero twist; clamped to the joint limits. The wrist bone stays at
   rest (its rotation is indistinguishable from the root's).
"""

import numpy as np
import torch
from torch import nn

from hand_mesh_ros.core.lifting import (BONE_CHILD_KEYPOINT, PALM_MCPS, SHAPE_BOUND,
                                        SHAPE_PAIRS, shape_regressor, SHAPE_RIDGE)

EPS = 1e-8


def _normalize(v):
    """Return ``v`` (..., 3) divided by its norm (safe at zero)."""
    return v / torch.sqrt((v * v).sum(-1, keepdim=True) + EPS * EPS)


# Constant maps that keep the exported graph small: one MatMul instead of many slices.
#: aa (3,) @ SKEW_MAP (3, 9) = the cross-product matrix [aa]_x, flattened row-major.
SKEW_MAP = np.zeros((3, 9), dtype=np.float32)
SKEW_MAP[[2, 1, 2, 0, 1, 0], [1, 2, 3, 5, 6, 7]] = [-1.0, 1.0, 1.0, -1.0, -1.0, 1.0]
#: R (9,) @ QUAT_MAP (9, 16) + QUAT_OFFSET (16,) = Shepperd's four candidate rows (4 x 4).
QUAT_MAP = np.zeros((9, 16), dtype=np.float32)
QUAT_OFFSET = np.zeros(16, dtype=np.float32)
_R = {(i, j): 3 * i + j for i in range(3) for j in range(3)}
for _row, _terms in enumerate((
        ((0, 0, 1), (1, 1, 1), (2, 2, 1)), ((2, 1, 1), (1, 2, -1)), ((0, 2, 1), (2, 0, -1)),
        ((1, 0, 1), (0, 1, -1)),
        ((2, 1, 1), (1, 2, -1)), ((0, 0, 1), (1, 1, -1), (2, 2, -1)), ((0, 1, 1), (1, 0, 1)),
        ((0, 2, 1), (2, 0, 1)),
        ((0, 2, 1), (2, 0, -1)), ((0, 1, 1), (1, 0, 1)), ((0, 0, -1), (1, 1, 1), (2, 2, -1)),
        ((1, 2, 1), (2, 1, 1)),
        ((1, 0, 1), (0, 1, -1)), ((0, 2, 1), (2, 0, 1)), ((1, 2, 1), (2, 1, 1)),
        ((0, 0, -1), (1, 1, -1), (2, 2, 1)))):
    for _i, _j, _sign in _terms:
        QUAT_MAP[_R[_i, _j], _row] = _sign
QUAT_OFFSET[[0, 5, 10, 15]] = 1.0


def axis_angle_to_matrix(aa):
    """Return rotation matrices (..., 3, 3) of axis-angle vectors ``aa`` (..., 3) (Rodrigues)."""
    theta2 = (aa * aa).sum(-1, keepdim=True)
    theta = torch.sqrt(theta2 + 1e-12)
    small = theta2 < 1e-10
    a = torch.where(small, 1.0 - theta2 / 6.0, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24.0, (1.0 - torch.cos(theta)) / (theta * theta))
    k = (aa @ torch.from_numpy(SKEW_MAP).to(aa.dtype)).reshape(aa.shape[:-1] + (3, 3))
    eye = torch.eye(3, dtype=aa.dtype)
    return eye + a[..., None] * k + b[..., None] * (k @ k)


def matrix_to_axis_angle(rot):
    """Return axis-angle vectors (..., 3) of rotations ``rot`` (..., 3, 3), angles in [0, pi].

    Shepperd's method (the candidate row with the largest diagonal of the four quaternion
    candidates, chosen with a gather so that it exports to ONNX), then
    ``2 atan2(|v|, w) v / |v|``.
    """
    flat = rot.reshape(rot.shape[:-2] + (9,))
    cand = flat @ torch.from_numpy(QUAT_MAP).to(rot.dtype)
    cand = (cand + torch.from_numpy(QUAT_OFFSET).to(rot.dtype)).reshape(rot.shape[:-2] + (4, 4))
    diag = (cand * torch.eye(4, dtype=rot.dtype)).sum(-1)
    idx = torch.argmax(diag, -1, keepdim=True)[..., None].expand(rot.shape[:-2] + (1, 4))
    quat = torch.gather(cand, -2, idx)[..., 0, :]
    quat = quat * torch.where(quat[..., :1] < 0, -1.0, 1.0)
    w, vec = quat[..., :1], quat[..., 1:]
    vnorm = torch.sqrt((vec * vec).sum(-1, keepdim=True) + 1e-30)
    angle = 2.0 * torch.atan2(vnorm, w)
    small = vnorm < 1e-7 * w
    scale = torch.where(small, 2.0 / torch.clamp(w, min=1e-30), angle / vnorm)
    return vec * scale


def rotation_6d_to_matrix(d6):
    """Return rotations (..., 3, 3) from 6D vectors (..., 6) (two columns, Gram-Schmidt)."""
    b1 = _normalize(d6[..., 0:3])
    a2 = d6[..., 3:6]
    b2 = _normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1)
    b3 = torch.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], -1)


def palm_frame(keypoints):
    """Return palm frames (B, 3, 3) (columns x, y, z) of keypoints (B, 21, 3).

    y: wrist -> mean of the four finger MCPs; x: across the palm towards the index finger
    (orthogonalised); z = x cross y (palmar for a right hand).
    """
    mcps = keypoints[:, list(PALM_MCPS)]
    ey = _normalize(mcps.mean(1) - keypoints[:, 0])
    across = (mcps[:, 0] - mcps[:, 2]) + (mcps[:, 1] - mcps[:, 3])
    ez = _normalize(torch.cross(across, ey, dim=-1))
    ex = torch.cross(ey, ez, dim=-1)
    return torch.stack([ex, ey, ez], -1)


class TorchHandModel(nn.Module):
    """The numpy :class:`~hand_mesh_ros.core.hand_model.HandModel` as torch buffers (float32).

    ``fk``: local rotations (B, J, 3, 3) + rest joints (B, J, 3) -> posed frames and origins;
    ``skin``: -> vertices (B, V, 3) and keypoints (B, 21, 3), hand frame, wrist at the origin.
    """

    def __init__(self, model):
        """Copy the arrays of ``model`` (a numpy HandModel, native side right) into buffers."""
        super().__init__()
        f32 = torch.float32
        parents = [int(p) for p in model.parents]
        self.parents = parents
        depth = [0] * len(parents)
        for j in range(1, len(parents)):
            depth[j] = depth[parents[j]] + 1
        self.levels = [[j for j in range(len(parents)) if depth[j] == d]
                       for d in range(max(depth) + 1)]
        order = [j for level in self.levels for j in level]
        self.order_pos = {j: i for i, j in enumerate(order)}
        self.register_buffer('inverse_order', torch.tensor(
            [self.order_pos[j] for j in range(len(parents))], dtype=torch.long))
        rest_v, rest_j = model.rest_shape(None)
        basis_v = model.shape_vertex_basis_m - model.shape_joint_basis_m[:, :1]
        basis_j = model.shape_joint_basis_m - model.shape_joint_basis_m[:, :1]
        kp_rest = model.keypoints_from(rest_v, rest_j)[0]
        kp_basis = model.keypoints_from(basis_v, basis_j)
        self.register_buffer('rest_vertices', torch.tensor(rest_v[0], dtype=f32))
        self.register_buffer('rest_joints', torch.tensor(rest_j[0], dtype=f32))
        self.register_buffer('rest_keypoints', torch.tensor(kp_rest, dtype=f32))
        self.register_buffer('vertex_basis', torch.tensor(basis_v.reshape(len(basis_v), -1),
                                                          dtype=f32))
        self.register_buffer('joint_basis', torch.tensor(basis_j.reshape(len(basis_j), -1),
                                                         dtype=f32))
        self.register_buffer('keypoint_basis', torch.tensor(kp_basis.reshape(len(kp_basis), -1),
                                                            dtype=f32))
        self.register_buffer('rest_rot', torch.tensor(model.rest_bone_rotations, dtype=f32))
        self.register_buffer('skin_weights', torch.tensor(model.skin_weights, dtype=f32))
        self.register_buffer('limits_min', torch.tensor(model.joint_limits_min_rad, dtype=f32))
        self.register_buffer('limits_max', torch.tensor(model.joint_limits_max_rad, dtype=f32))
        kj = model.keypoint_joint_index
        self.register_buffer('kp_joint', torch.tensor(np.maximum(kj, 0), dtype=torch.long))
        self.register_buffer('kp_on_joint', torch.tensor((kj >= 0)[:, None], dtype=f32))
        self.register_buffer('kp_vertex', torch.tensor(model.keypoint_vertex_index.reshape(-1),
                                                       dtype=torch.long))
        self.register_buffer('kp_vertex_weight', torch.tensor(
            model.keypoint_vertex_weight[:, :, None], dtype=f32))
        self.n_bones = len(parents)
        self.n_shapes = len(basis_j)
        self.n_vertices = len(rest_v[0])

    def shaped_rest(self, shape):
        """Return rest vertices (B, V, 3), joints (B, J, 3), keypoints (B, 21, 3) of ``shape``."""
        batch = shape.shape[0]
        verts = self.rest_vertices + (shape @ self.vertex_basis).reshape(batch, -1, 3)
        joints = self.rest_joints + (shape @ self.joint_basis).reshape(batch, -1, 3)
        kps = self.rest_keypoints + (shape @ self.keypoint_basis).reshape(batch, -1, 3)
        return verts, joints, kps

    def level_step(self, level, done_rot, done_pos, rest_joints):
        """Return parents' posed rotations ``delta_p Q_b`` (B, L, 3, 3) and origins (B, L, 3).

        ``done_rot``/``done_pos`` hold the posed frames of the earlier levels in level order.
        """
        par = [self.order_pos[self.parents[j]] for j in level]
        par_bone = [self.parents[j] for j in level]
        a_par = done_rot[:, par]
        delta_par = a_par @ self.rest_rot[par_bone].transpose(-1, -2)
        offset = rest_joints[:, level] - rest_joints[:, par_bone]
        pos = done_pos[:, par] + (delta_par @ offset[..., None])[..., 0]
        return delta_par @ self.rest_rot[level], pos

    def fk(self, local_rot, rest_joints):
        """Return posed bone rotations (B, J, 3, 3) and origins (B, J, 3) (bone order)."""
        root = self.levels[0]
        done_rot = self.rest_rot[root] @ local_rot[:, root]
        done_pos = rest_joints[:, root]
        for level in self.levels[1:]:
            base, pos = self.level_step(level, done_rot, done_pos, rest_joints)
            done_rot = torch.cat([done_rot, base @ local_rot[:, level]], 1)
            done_pos = torch.cat([done_pos, pos], 1)
        return done_rot[:, self.inverse_order], done_pos[:, self.inverse_order]

    def skin(self, posed_rot, posed_pos, rest_vertices, rest_joints):
        """Return skinned vertices (B, V, 3) and keypoints (B, 21, 3)."""
        batch = posed_rot.shape[0]
        skin_rot = posed_rot @ self.rest_rot.transpose(-1, -2)
        skin_trans = posed_pos - (skin_rot @ rest_joints[..., None])[..., 0]
        flat = torch.cat([skin_rot, skin_trans[..., None]], -1).reshape(batch, -1, 12)
        blended = (self.skin_weights @ flat).reshape(batch, -1, 3, 4)
        # Elementwise instead of V tiny matmuls: much faster in ONNX Runtime.
        homogeneous = torch.cat([rest_vertices, torch.ones_like(rest_vertices[..., :1])], -1)
        verts = (blended * homogeneous[:, :, None, :]).sum(-1)
        on_surface = (verts[:, self.kp_vertex].reshape(batch, 21, -1, 3)
                      * self.kp_vertex_weight).sum(2)
        keypoints = (self.kp_on_joint * posed_pos[:, self.kp_joint]
                     + (1.0 - self.kp_on_joint) * on_surface)
        return verts, keypoints

    def forward(self, local_rot, shape):
        """Return vertices (B, V, 3) and keypoints (B, 21, 3) for rotations and shape (B, S)."""
        rest_v, rest_j, _ = self.shaped_rest(shape)
        posed_rot, posed_pos = self.fk(local_rot, rest_j)
        return self.skin(posed_rot, posed_pos, rest_v, rest_j)


class AnalyticLifting(nn.Module):
    """Bone-direction IK: keypoints (B, 21, 3), wrist-relative -> rotations, aa, shape."""

    def __init__(self, hand, model, ridge=SHAPE_RIDGE, prior_sigma=None,
                 shape_bound=SHAPE_BOUND):
        """Build from a :class:`TorchHandModel` and the numpy model (for the shape matrix)."""
        super().__init__()
        self.hand = hand
        length, mat = shape_regressor(model, ridge, prior_sigma)
        self.register_buffer('rest_lengths', torch.tensor(length, dtype=torch.float32))
        self.register_buffer('shape_matrix', torch.tensor(mat.T, dtype=torch.float32))
        self.pair_a = [p[0] for p in SHAPE_PAIRS]
        self.pair_b = [p[1] for p in SHAPE_PAIRS]
        self.shape_bound = float(shape_bound)

    def estimate_shape(self, keypoints):
        """Return shape coefficients (B, S) from keypoint distances."""
        diff = keypoints[:, self.pair_a] - keypoints[:, self.pair_b]
        lengths = torch.sqrt((diff * diff).sum(-1) + EPS * EPS)
        shape = (lengths - self.rest_lengths) @ self.shape_matrix
        return torch.clamp(shape, -self.shape_bound, self.shape_bound)

    def forward(self, keypoints):
        """Return local rotations (B, J, 3, 3), axis-angle (B, J, 3), shape (B, S).

        The posed frames found on the way are returned too: rotations (B, J, 3, 3) and
        origins (B, J, 3), as from :meth:`TorchHandModel.fk`.
        """
        hand = self.hand
        batch = keypoints.shape[0]
        shape = self.estimate_shape(keypoints)
        _, rest_j, rest_kp = hand.shaped_rest(shape)
        global_rot = palm_frame(keypoints) @ palm_frame(rest_kp).transpose(-1, -2)
        q0 = hand.rest_rot[0]
        root_local = q0.transpose(-1, -2) @ global_rot @ q0
        eye = torch.eye(3, dtype=keypoints.dtype).expand(batch, 1, 3, 3)
        done_rot = (global_rot @ q0)[:, None]
        done_pos = rest_j[:, :1]
        local = [root_local[:, None]]
        aa = [matrix_to_axis_angle(root_local)[:, None]]
        for level in hand.levels[1:]:
            base, pos = hand.level_step(level, done_rot, done_pos, rest_j)
            child = [BONE_CHILD_KEYPOINT[j] for j in level]
            if child[0] < 0:
                rot_l = eye.expand(batch, len(level), 3, 3)
                aa_l = torch.zeros(batch, len(level), 3, dtype=keypoints.dtype)
            else:
                rest_dir = (hand.rest_rot[level].transpose(-1, -2)
                            @ (rest_kp[:, child] - rest_j[:, level])[..., None])[..., 0]
                seen = (base.transpose(-1, -2)
                        @ (keypoints[:, child] - pos)[..., None])[..., 0]
                aa_l = swing_axis_angle(rest_dir, seen)
                aa_l = torch.minimum(torch.maximum(aa_l, hand.limits_min[level]),
                                     hand.limits_max[level])
                rot_l = axis_angle_to_matrix(aa_l)
            local.append(rot_l)
            aa.append(aa_l)
            done_rot = torch.cat([done_rot, base @ rot_l], 1)
            done_pos = torch.cat([done_pos, pos], 1)
        order = hand.inverse_order
        local_rot = torch.cat(local, 1)[:, order]
        return (local_rot, torch.cat(aa, 1)[:, order], shape,
                done_rot[:, order], done_pos[:, order])


def swing_axis_angle(u, v):
    """Return the smallest rotations (..., 3) (axis-angle) turning directions ``u`` onto ``v``."""
    u = _normalize(u)
    v = _normalize(v)
    axis = torch.cross(u, v, dim=-1)
    sin = torch.sqrt((axis * axis).sum(-1, keepdim=True) + 1e-20)
    cos = (u * v).sum(-1, keepdim=True)
    return axis * (torch.atan2(sin, cos) / sin)


class LearnedLifting(nn.Module):
    """IKNet-style residual head on top of :class:`AnalyticLifting`.

    Input features (per hand): the keypoints in the analytic palm frame divided by the palm
    length (63), the analytic bone axis-angles except the root (60), the analytic shape / 3
    (S) and the log palm length (1). An MLP predicts a 6D rotation residual per bone
    (right-multiplied onto the analytic local rotation) and a shape residual; the last layer
    starts at zero, so the untrained head equals the analytic solution.
    """

    def __init__(self, analytic, hidden=256, depth=3):
        """Build the MLP (``depth`` hidden layers of width ``hidden``)."""
        super().__init__()
        self.analytic = analytic
        hand = analytic.hand
        n_in = 63 + 3 * (hand.n_bones - 1) + hand.n_shapes + 1
        layers = []
        for i in range(depth):
            layers += [nn.Linear(n_in if i == 0 else hidden, hidden), nn.ReLU()]
        last = nn.Linear(hidden, 6 * hand.n_bones + hand.n_shapes)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.mlp = nn.Sequential(*layers, last)
        self.register_buffer('identity_6d', torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]))

    def forward(self, keypoints):
        """Return local rotations (B, J, 3, 3), shape (B, S), posed rotations and origins."""
        hand = self.analytic.hand
        batch = keypoints.shape[0]
        local, aa, shape, _, _ = self.analytic(keypoints)
        frame = palm_frame(keypoints)
        palm_m = torch.sqrt(((keypoints[:, list(PALM_MCPS)].mean(1) - keypoints[:, 0]) ** 2)
                            .sum(-1, keepdim=True) + EPS)
        canon = (keypoints @ frame) / palm_m[:, :, None]
        feats = torch.cat([canon.reshape(batch, -1), aa[:, 1:].reshape(batch, -1),
                           shape / 3.0, torch.log(palm_m / 0.08)], 1)
        out = self.mlp(feats)
        n_rot = 6 * hand.n_bones
        delta = rotation_6d_to_matrix(out[:, :n_rot].reshape(batch, -1, 6) + self.identity_6d)
        local = local @ delta
        shape = shape + out[:, n_rot:]
        rest_v, rest_j, _ = hand.shaped_rest(shape)
        posed_rot, posed_pos = hand.fk(local, rest_j)
        return local, shape, posed_rot, posed_pos


class MeshLifting(nn.Module):
    """World landmarks (N, 63) -> both chiralities' pose, shape, vertices and keypoints.

    Index 0 of the second axis lifts the landmarks as a right hand; index 1 mirrors them
    (x -> -x), lifts them with the right-hand model and mirrors vertices and keypoints back.
    Outputs are wrist-relative metres in the landmarks' frame; poses are in the right-hand
    model's parametrisation (as :meth:`HandModel.forward` with ``side='left'`` expects).
    """

    def __init__(self, lifting):
        """Wrap an :class:`AnalyticLifting` or :class:`LearnedLifting`."""
        super().__init__()
        self.lifting = lifting
        self.hand = lifting.hand if isinstance(lifting, AnalyticLifting) else (
            lifting.analytic.hand)
        self.register_buffer('mirror', torch.tensor([[[1.0, 1.0, 1.0]], [[-1.0, 1.0, 1.0]]]))

    def forward(self, world_landmarks):
        """Return pose_aa (N, 2, J, 3), shape (N, 2, S), vertices (N, 2, V, 3), keypoints.

        Keypoints are (N, 2, 21, 3); ``world_landmarks`` is (N, 63), metres.
        """
        kp = world_landmarks.reshape(-1, 1, 21, 3)
        kp = (kp - kp[:, :, :1]) * self.mirror
        kp = kp.reshape(-1, 21, 3)
        if isinstance(self.lifting, AnalyticLifting):
            _, aa, shape, posed_rot, posed_pos = self.lifting(kp)
        else:
            local, shape, posed_rot, posed_pos = self.lifting(kp)
            aa = matrix_to_axis_angle(local)
        rest_v, rest_j, _ = self.hand.shaped_rest(shape)
        verts, kps = self.hand.skin(posed_rot, posed_pos, rest_v, rest_j)
        n_b, n_s, n_v = self.hand.n_bones, self.hand.n_shapes, self.hand.n_vertices
        return (aa.reshape(-1, 2, n_b, 3), shape.reshape(-1, 2, n_s),
                verts.reshape(-1, 2, n_v, 3) * self.mirror,
                kps.reshape(-1, 2, 21, 3) * self.mirror)
