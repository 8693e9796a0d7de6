"""The numpy hand model as a torch module, per kinematic level, for the exported lifting graph.

Used only by :mod:`hand_mesh_ros.model_building.lifting_torch` (training and export; the node
never needs torch). Same frames and pose parametrisation as
:mod:`hand_mesh_ros.core.hand.hand_model`: one rotation per bone in its rest frame.
"""

import numpy as np
import torch
from torch import nn

F32 = torch.float32


def _take(x, index, previous_size):
    """Return ``x[:, index]`` (level tensors), exported as nothing, a Slice or a Gather."""
    if previous_size == 1 or index == list(range(previous_size)):
        return x
    if index == list(range(index[0], index[0] + len(index))):
        return x[:, index[0]:index[0] + len(index)]
    return x[:, index]


class TorchHandModel(nn.Module):
    """The numpy :class:`~hand_mesh_ros.core.hand.hand_model.HandModel` as torch buffers (float32).

    Public methods use bone order: ``fk``: local rotations (B, J, 3, 3) + rest joints
    (B, J, 3) -> posed frames and origins; ``skin``: -> vertices (B, V, 3) and keypoints
    (B, 21, 3), hand frame, wrist at the origin. The ``*_levels`` methods used by the
    exported graph keep per-level tensors (level order, columns (..., 3, 1)).
    """

    def __init__(self, model):
        """Copy the arrays of ``model`` (a numpy HandModel, native side right) into buffers."""
        super().__init__()
        parents = [int(p) for p in model.parents]
        self.parents = parents
        depth = [0] * len(parents)
        for j in range(1, len(parents)):
            depth[j] = depth[parents[j]] + 1
        self.levels = [[j for j in range(len(parents)) if depth[j] == d]
                       for d in range(max(depth) + 1)]
        order = [j for level in self.levels for j in level]
        self.order = order
        self.order_pos = {j: i for i, j in enumerate(order)}
        self.level_sizes = [len(level) for level in self.levels]
        #: per level >= 1: positions of the parents inside the previous level.
        self.parent_index = [[self.levels[d - 1].index(parents[j]) for j in self.levels[d]]
                             for d in range(1, len(self.levels))]
        self.register_buffer('inverse_order', torch.tensor(
            [self.order_pos[j] for j in range(len(parents))], dtype=torch.long))
        rest_v, rest_j = model.rest_shape(None)
        basis_v = model.shape_vertex_basis_m - model.shape_joint_basis_m[:, :1]
        basis_j = model.shape_joint_basis_m - model.shape_joint_basis_m[:, :1]
        kp_rest = model.keypoints_from(rest_v, rest_j)[0]
        kp_basis = model.keypoints_from(basis_v, basis_j)
        self.register_buffer('rest_vertices', torch.tensor(rest_v[0], dtype=F32))
        self.register_buffer('rest_joints', torch.tensor(rest_j[0], dtype=F32))
        self.register_buffer('rest_keypoints', torch.tensor(kp_rest, dtype=F32))
        self.register_buffer('vertex_basis', torch.tensor(basis_v.reshape(len(basis_v), -1),
                                                          dtype=F32))
        self.register_buffer('joint_basis', torch.tensor(basis_j.reshape(len(basis_j), -1),
                                                         dtype=F32))
        self.register_buffer('keypoint_basis', torch.tensor(kp_basis.reshape(len(kp_basis), -1),
                                                            dtype=F32))
        self.register_buffer('rest_rot', torch.tensor(model.rest_bone_rotations, dtype=F32))
        self.register_buffer('skin_weights', torch.tensor(model.skin_weights, dtype=F32))
        self.register_buffer('limits_min', torch.tensor(model.joint_limits_min_rad, dtype=F32))
        self.register_buffer('limits_max', torch.tensor(model.joint_limits_max_rad, dtype=F32))
        kj = model.keypoint_joint_index
        self.register_buffer('kp_joint', torch.tensor(np.maximum(kj, 0), dtype=torch.long))
        self.register_buffer('kp_on_joint', torch.tensor((kj >= 0)[:, None], dtype=F32))
        self.register_buffer('kp_vertex', torch.tensor(model.keypoint_vertex_index.reshape(-1),
                                                       dtype=torch.long))
        self.register_buffer('kp_vertex_weight', torch.tensor(
            model.keypoint_vertex_weight[:, :, None], dtype=F32))
        self.n_bones = len(parents)
        self.n_shapes = len(basis_j)
        self.n_vertices = len(rest_v[0])
        self._build_level_constants(model)

    def _build_level_constants(self, model):
        """Build the level-order constants of the exported graph (float64 maths, then f32)."""
        rot = self.rest_rot.double().numpy()
        joints0 = self.rest_joints.double().numpy()
        jbasis = self.joint_basis.double().numpy().reshape(self.n_shapes, -1, 3)
        order, parents = self.order, self.parents

        def offsets(joints):
            """Bone offsets in the parent's rest frame, level order without the root."""
            return np.stack([rot[parents[j]].T @ (joints[j] - joints[parents[j]])
                             for j in order[1:]])

        def level_joints(joints):
            return joints[order]

        self.fk_width = 3 * (len(order) - 1) + 3 * len(order)
        base = np.concatenate([offsets(joints0).ravel(), level_joints(joints0).ravel()])
        basis = np.stack([np.concatenate([offsets(b).ravel(), level_joints(b).ravel()])
                          for b in jbasis])
        self.register_buffer('fk_base', torch.tensor(base, dtype=F32))
        self.register_buffer('fk_basis', torch.tensor(basis, dtype=F32))
        #: C_j = Q_parent^T Q_j per level >= 1 (parent's posed rotation -> bone's base).
        self.level_base = [torch.tensor(np.stack([rot[parents[j]].T @ rot[j] for j in level]),
                                        dtype=F32) for level in self.levels[1:]]
        self.root_rot = torch.tensor(rot[0], dtype=F32)
        self.level_base_all = torch.cat([self.root_rot[None]] + self.level_base, 0)
        self.root_joint = torch.tensor(joints0[0].reshape(1, 1, 3, 1), dtype=F32)
        verts_h = np.concatenate([self.rest_vertices.double().numpy(),
                                  np.ones((self.n_vertices, 1))], 1)
        vbasis = self.vertex_basis.double().numpy().reshape(self.n_shapes, -1, 3)
        vbasis_h = np.concatenate([vbasis, np.zeros(vbasis.shape[:2] + (1,))], 2)
        # (4, V) order: the skinning contracts over the homogeneous axis with V innermost.
        self.register_buffer('vertex_h_base', torch.tensor(verts_h.T.ravel(), dtype=F32))
        self.register_buffer('vertex_h_basis', torch.tensor(
            vbasis_h.transpose(0, 2, 1).reshape(self.n_shapes, -1), dtype=F32))
        self.register_buffer('skin_rest_t', torch.tensor(rot[order].transpose(0, 2, 1),
                                                         dtype=F32))
        self.register_buffer('skin_weights_levels_t', self.skin_weights[:, order].T.clone())
        kj = model.keypoint_joint_index
        surface = [k for k in range(21) if kj[k] < 0]
        vidx = model.keypoint_vertex_index[surface].reshape(-1)
        regressor = np.zeros((21, len(vidx) + len(order)))
        for row, k in enumerate(surface):
            width = model.keypoint_vertex_index.shape[1]
            regressor[k, row * width:(row + 1) * width] = model.keypoint_vertex_weight[k]
        for k in range(21):
            if kj[k] >= 0:
                regressor[k, len(vidx) + self.order_pos[int(kj[k])]] = 1.0
        self.register_buffer('kp_surface_vertex', torch.tensor(vidx, dtype=torch.long))
        self.register_buffer('kp_regressor_t', torch.tensor(regressor.T, dtype=F32))

    def fk_terms(self, shape):
        """Return bone offsets per level >= 1 (list of (B, L, 3, 1)) and joints (B, J, 3, 1).

        Offsets are in the parent's rest frame; joints in level order.
        """
        terms = self.fk_base + shape @ self.fk_basis
        off, joints = torch.split(terms, [3 * (self.n_bones - 1), 3 * self.n_bones], -1)
        off = torch.split(off.reshape(-1, self.n_bones - 1, 3, 1), self.level_sizes[1:], 1)
        return list(off), joints.reshape(-1, self.n_bones, 3, 1)

    def shaped_rest(self, shape):
        """Return rest vertices (B, V, 3), joints (B, J, 3), keypoints (B, 21, 3) of ``shape``."""
        verts = self.rest_vertices + (shape @ self.vertex_basis).reshape(-1, self.n_vertices, 3)
        joints = self.rest_joints + (shape @ self.joint_basis).reshape(-1, self.n_bones, 3)
        kps = self.rest_keypoints + (shape @ self.keypoint_basis).reshape(-1, 21, 3)
        return verts, joints, kps

    def fk_levels(self, local_levels, offsets):
        """Return posed rotations and origins per level (lists) from local rotations per level.

        ``local_levels[d]`` (B, L_d, 3, 3), ``offsets`` from :meth:`fk_terms`.
        """
        return self.fk_all(torch.cat(local_levels, 1), offsets)

    def fk_all(self, local, offsets):
        """Return posed rotations and origins per level from local rotations (B, J, 3, 3).

        ``local`` is in level order. The products C_j L_j (C_j = Q_parent^T Q_j, constant)
        do not depend on the parents: one MatMul for all bones, then one per level.
        """
        relative = torch.split(self.level_base_all @ local, self.level_sizes, 1)
        rot, pos = [relative[0]], [self.root_joint]
        for d in range(1, len(self.levels)):
            par_rot, par_pos = self._parents(d, rot[-1], pos[-1])
            pos.append(par_pos + par_rot @ offsets[d - 1])
            rot.append(par_rot @ relative[d])
        return rot, pos

    def _parents(self, d, rot, pos):
        """Return the parents' posed rotations and origins for level ``d``."""
        index, size = self.parent_index[d - 1], self.level_sizes[d - 1]
        return _take(rot, index, size), _take(pos, index, size)

    def to_levels(self, x):
        """Return bone-order ``x`` (B, J, ...) split into level tensors (level order)."""
        return list(torch.split(x[:, self.order], self.level_sizes, 1))

    def to_bones(self, levels):
        """Return level tensors concatenated and put back in bone order (B, J, ...)."""
        return torch.cat(levels, 1)[:, self.inverse_order]

    def fk(self, local_rot, rest_joints):
        """Return posed bone rotations (B, J, 3, 3) and origins (B, J, 3) (bone order)."""
        par = [self.parents[j] for j in self.order[1:]]
        off = rest_joints[:, self.order[1:]] - rest_joints[:, par]
        par_rot_t = self.rest_rot[par].transpose(-1, -2)
        off = torch.split((par_rot_t @ off[..., None]), self.level_sizes[1:], 1)
        rot, pos = self.fk_levels(self.to_levels(local_rot), list(off))
        pos = [p.expand(rot[0].shape[0], -1, -1, -1) for p in pos[:1]] + pos[1:]
        return self.to_bones(rot), self.to_bones(pos)[..., 0]

    def skin_levels(self, rot_levels, pos_levels, joints, shape):
        """Return vertices (B, 3, V) and keypoints (B, 3, 21), transposed, from posed frames.

        Linear blend skinning with the vertex axis innermost: blended (B, 4, 3, V) times the
        homogeneous rest vertices (B, 4, 1, V), summed over the 4 (ONNX Runtime broadcasts
        a long inner axis about ten times faster than a short one).
        """
        rot = torch.cat(rot_levels, 1)
        # The root's origin is its rest joint: taken from ``joints`` so it has the batch axis.
        pos = torch.cat([joints[:, :1]] + list(pos_levels[1:]), 1)
        skin_rot = rot @ self.skin_rest_t
        trans = torch.cat([skin_rot, pos - skin_rot @ joints], -1).transpose(-1, -2)
        flat = trans.reshape(-1, self.n_bones, 12).transpose(1, 2)
        blended = (flat @ self.skin_weights_levels_t).reshape(-1, 4, 3, self.n_vertices)
        rest_h = (self.vertex_h_base + shape @ self.vertex_h_basis).reshape(
            -1, 4, 1, self.n_vertices)
        verts = (blended * rest_h).sum(1)
        pos_t = pos.transpose(1, 2).reshape(-1, 3, self.n_bones)
        both = torch.cat([verts[..., self.kp_surface_vertex], pos_t], -1)
        return verts, both @ self.kp_regressor_t

    def forward(self, local_rot, shape):
        """Return vertices (B, V, 3) and keypoints (B, 21, 3) for rotations and shape (B, S)."""
        off, joints = self.fk_terms(shape)
        rot, pos = self.fk_levels(self.to_levels(local_rot), off)
        verts, keypoints = self.skin_levels(rot, pos, joints, shape)
        return verts.transpose(1, 2), keypoints.transpose(1, 2)


def levels_to_bones(hand, rot_levels, pos_levels):
    """Return bone-order posed rotations (B, J, 3, 3) and origins (B, J, 3)."""
    batch = rot_levels[0].shape[0]
    pos = [pos_levels[0].expand(batch, -1, -1, -1)] + list(pos_levels[1:])
    return hand.to_bones(rot_levels), hand.to_bones(pos)[..., 0]
