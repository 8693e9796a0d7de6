"""Torch definitions of the lifting step (keypoints -> pose and shape) and of skinning.

Used only to train the learned head and to export the small ONNX graphs
``models/lifting_skinning_{analytic,learned}.onnx``; the node never needs torch. All maths
mirrors :mod:`hand_mesh_ros.core.hand.hand_model` /
:mod:`hand_mesh_ros.model_building.lifting` (same frames, same pose parametrisation: one
rotation per bone in its rest frame).

Written for a small exported graph (ONNX Runtime's cost here is per node, not arithmetic):

- the kinematic tree runs level by level (6 levels for the 21 bones), each level reading
  its parents from the previous level only (broadcast, the same order or one slice), so no
  growing tensors are concatenated and re-gathered;
- every quantity of the shaped rest hand that the solve needs (bone offsets in the parent's
  rest frame, the bones' rest directions as swing matrices, the rest palm vectors, rest
  joints and vertices) is affine in the shape coefficients: one MatMul with a constant
  matrix computes them all;
- rotations use :mod:`hand_mesh_ros.model_building.lifting_ops` (constant-matrix cross
  products and quaternion maps, ``atan`` instead of ``atan2``, no ``Where`` per angle);
- skinning keeps the vertex axis innermost (ONNX Runtime broadcasts a long inner axis about
  ten times faster than a short one) and all 21 bones' products are one MatMul each.

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
from torch.nn import functional

from hand_mesh_ros.core.hand.topology import PALM_MCPS
from hand_mesh_ros.model_building import lifting_ops as ops
from hand_mesh_ros.model_building.hand_model_torch import F32, levels_to_bones
from hand_mesh_ros.model_building.hand_model_torch import TorchHandModel  # noqa: F401
from hand_mesh_ros.model_building.lifting import (BONE_CHILD_KEYPOINT, SHAPE_BOUND, SHAPE_PAIRS,
                                                  shape_regressor, SHAPE_RIDGE)
from hand_mesh_ros.model_building.lifting_ops import rotation_6d_to_matrix

EPS = 1e-8


def axis_angle_to_matrix(aa):
    """Return rotation matrices (..., 3, 3) of axis-angle vectors ``aa`` (..., 3)."""
    return ops.axis_angle_to_matrix(aa[..., None])


def matrix_to_axis_angle(rot):
    """Return axis-angle vectors (..., 3) of rotations ``rot`` (..., 3, 3), angles in [0, pi]."""
    return ops.matrix_to_axis_angle(rot)[..., 0, :]


def _palm_weights():
    """Return W (2, 21): W @ keypoints = (mean finger MCP - wrist, across the palm)."""
    weights = np.zeros((2, 21))
    weights[0, list(PALM_MCPS)] = 0.25
    weights[0, 0] -= 1.0
    m0, m1, m2, m3 = PALM_MCPS
    weights[1, [m0, m1, m2, m3]] = [1.0, 1.0, -1.0, -1.0]
    return weights


class AnalyticLifting(nn.Module):
    """Bone-direction IK: keypoints (B, 21, 3), wrist-relative -> rotations, aa, shape."""

    def __init__(self, hand, model, ridge=SHAPE_RIDGE, prior_sigma=None,
                 shape_bound=SHAPE_BOUND):
        """Build from a :class:`TorchHandModel` and the numpy model (for the shape matrix)."""
        super().__init__()
        self.hand = hand
        length, mat = shape_regressor(model, ridge, prior_sigma)
        self.register_buffer('rest_lengths', torch.tensor(length, dtype=F32))
        self.register_buffer('shape_matrix', torch.tensor(mat.T, dtype=F32))
        pairs = np.zeros((len(SHAPE_PAIRS), 21))
        for row, (a, b) in enumerate(SHAPE_PAIRS):
            pairs[row, a] += 1.0
            pairs[row, b] -= 1.0
        self.register_buffer('pair_matrix', torch.tensor(pairs, dtype=F32))
        self.register_buffer('palm_weights', torch.tensor(_palm_weights(), dtype=F32))
        self.shape_bound = float(shape_bound)
        self._build_ik_constants()

    def _build_ik_constants(self):
        """Build the affine shape -> (offsets, rest directions, rest palm) map and swing maps."""
        hand = self.hand
        rot = hand.rest_rot.double().numpy()
        n_s = hand.n_shapes
        joints = [hand.rest_joints.double().numpy()] + list(
            hand.joint_basis.double().numpy().reshape(n_s, -1, 3))
        kps = [hand.rest_keypoints.double().numpy()] + list(
            hand.keypoint_basis.double().numpy().reshape(n_s, -1, 3))
        fk = [hand.fk_base.double().numpy()] + list(hand.fk_basis.double().numpy())
        self.swing_bones = [j for level in hand.levels[2:] for j in level]
        assert all(BONE_CHILD_KEYPOINT[j] >= 0 for j in self.swing_bones)
        assert all(BONE_CHILD_KEYPOINT[j] < 0 for j in hand.levels[1])
        child = [BONE_CHILD_KEYPOINT[j] for j in self.swing_bones]
        rows = []
        for j_arr, k_arr, f_arr in zip(joints, kps, fk):
            rest_dir = [rot[j].T @ (k_arr[c] - j_arr[j])
                        for j, c in zip(self.swing_bones, child)]
            palm = _palm_weights() @ k_arr
            rows.append(np.concatenate([f_arr[:3 * (hand.n_bones - 1)],
                                        np.ravel(rest_dir), palm.ravel()]))
        self.register_buffer('ik_base', torch.tensor(rows[0], dtype=F32))
        self.register_buffer('ik_basis', torch.tensor(np.stack(rows[1:]), dtype=F32))
        self.register_buffer('child_keypoint', torch.tensor(child, dtype=torch.long))
        # [axis; cos] = M(u) g with M(u) = [[u]_x C^T; u^T C^T]: flat(M) = u @ N_j. The
        # swing angle atan2(|axis|, cos) and direction need no unit vectors; N_j is scaled by
        # 1 / |u_j|^2 at the mean shape so that |axis| ~ sin(angle) (float16 keeps it).
        skew = ops.skew_basis()
        rest_len2 = (rows[0][3 * (hand.n_bones - 1):-6].reshape(-1, 3) ** 2).sum(1)
        maps = []
        for j, length2 in zip(self.swing_bones, rest_len2):
            base_t = (rot[self.hand.parents[j]].T @ rot[j]).T
            maps.append(np.stack([np.concatenate([skew[k] @ base_t, np.eye(3)[k:k + 1] @ base_t])
                                  .ravel() for k in range(3)]) / length2)
        self.register_buffer('swing_maps', torch.tensor(np.stack(maps), dtype=F32))
        lo = hand.limits_min.numpy()[self.swing_bones][..., None]
        hi = hand.limits_max.numpy()[self.swing_bones][..., None]
        cuts = np.cumsum(hand.level_sizes[2:])[:-1]
        self.limits = [(torch.tensor(a), torch.tensor(b))
                       for a, b in zip(np.split(lo, cuts), np.split(hi, cuts))]

    def estimate_shape(self, keypoints):
        """Return shape coefficients (B, S) from keypoint distances."""
        diff = self.pair_matrix @ keypoints
        lengths = torch.sqrt((diff * diff).sum(-1) + EPS * EPS)
        shape = (lengths - self.rest_lengths) @ self.shape_matrix
        return torch.clamp(shape, -self.shape_bound, self.shape_bound)

    def palm_frames(self, keypoints, rest_palm):
        """Return the rotation rest palm -> observed palm (B, 1, 3, 3), observed frame rows.

        Also returns the squared palm length (B, 1, 1, 1) of the observation. Both frames
        are computed at once (axis 1: observed, rest): y = wrist -> mean finger MCP, x = the
        across-palm vector orthogonalised against y (the numpy reference's ey x ez), z = x
        cross y.
        """
        obs = (self.palm_weights @ keypoints).reshape(-1, 1, 2, 3)
        vec = torch.cat([obs, rest_palm.reshape(-1, 1, 2, 3)], 1)
        y, across = torch.split(vec, [1, 1], 2)
        y2 = ops.squared_norm(y)
        ey = y / torch.sqrt(y2 + EPS * EPS)
        ex = ops.normalize(across - (across * ey).sum(-1, keepdim=True) * ey)
        frames_t = torch.cat([ex, ey, ops.cross_rows(ex, ey)], 2)
        obs_t, rest_t = torch.split(frames_t, [1, 1], 1)
        return obs_t.transpose(-1, -2) @ rest_t, obs_t, torch.split(y2, [1, 1], 1)[0]

    def solve(self, keypoints):
        """Return the solve in level order: a dict of tensors and per-level lists.

        ``shape`` (B, S); ``local`` [root (B, 1, 3, 3), None (wrist bone at rest), then
        (B, L, 3, 3) per level]; ``aa_levels`` (B, L, 3, 1) for levels >= 2; ``rot``, ``pos``
        posed frames per level; ``frame_t`` observed palm frame rows (B, 1, 3, 3);
        ``palm_sq`` squared palm length (B, 1, 1, 1).
        """
        hand = self.hand
        shape = self.estimate_shape(keypoints)
        terms = self.ik_base + shape @ self.ik_basis
        n_off, n_dir = 3 * (hand.n_bones - 1), 3 * len(self.swing_bones)
        off, rest_dir, rest_palm = torch.split(terms, [n_off, n_dir, 6], -1)
        off = torch.split(off.reshape(-1, hand.n_bones - 1, 3, 1), hand.level_sizes[1:], 1)
        rest_dir = rest_dir.reshape(-1, len(self.swing_bones), 1, 3)
        swing = torch.split((rest_dir @ self.swing_maps).reshape(-1, len(self.swing_bones), 4, 3),
                            hand.level_sizes[2:], 1)
        seen = torch.split(keypoints[:, self.child_keypoint].reshape(-1, len(self.swing_bones),
                                                                     3, 1),
                           hand.level_sizes[2:], 1)
        global_rot, frame_t, palm_sq = self.palm_frames(keypoints, rest_palm)
        rot = [global_rot @ hand.root_rot]
        local = [hand.root_rot.transpose(-1, -2) @ rot[0], None]
        pos = [hand.root_joint]
        aa_levels = []
        for d in range(1, len(hand.levels)):
            par_rot, par_pos = hand._parents(d, rot[-1], pos[-1])
            pos.append(par_pos + par_rot @ off[d - 1])
            base = par_rot @ hand.level_base[d - 1]
            if d == 1:
                rot.append(base)
                continue
            g = par_rot.transpose(-1, -2) @ (seen[d - 2] - pos[-1])
            axis, cos = torch.split(swing[d - 2] @ g, [3, 1], -2)
            sin = torch.sqrt(ops.squared_norm(axis) + ops.SWING_SIN2_FLOOR)
            # atan2(sin, cos) for sin > 0, as one Atan:
            aa = axis * ((0.5 * np.pi - torch.atan(cos / sin)) / sin)
            aa = torch.minimum(torch.maximum(aa, self.limits[d - 2][0]), self.limits[d - 2][1])
            aa_levels.append(aa)
            local.append(ops.axis_angle_to_matrix(aa))
            rot.append(base @ local[-1])
        return {'shape': shape, 'local': local, 'aa_levels': aa_levels, 'rot': rot,
                'pos': pos, 'frame_t': frame_t, 'palm_sq': palm_sq}

    def pose_aa(self, sol):
        """Return the solve's axis-angle per bone (B, J, 3), bone order."""
        hand = self.hand
        root = ops.matrix_to_axis_angle(sol['local'][0]).reshape(-1, 1, 3)
        rest = torch.cat(sol['aa_levels'], 1).reshape(-1, len(self.swing_bones), 3)
        wrist = torch.zeros_like(root).expand(-1, hand.level_sizes[1], -1)
        return hand.to_bones([root, wrist, rest])

    def forward(self, keypoints):
        """Return local rotations (B, J, 3, 3), axis-angle (B, J, 3), shape (B, S).

        The posed frames found on the way are returned too: rotations (B, J, 3, 3) and
        origins (B, J, 3), as from :meth:`TorchHandModel.fk`.
        """
        sol = self.solve(keypoints)
        local = list(sol['local'])
        local[1] = torch.eye(3).expand(keypoints.shape[0], self.hand.level_sizes[1], 3, 3)
        posed_rot, posed_pos = levels_to_bones(self.hand, sol['rot'], sol['pos'])
        return (self.hand.to_bones(local), self.pose_aa(sol), sol['shape'], posed_rot,
                posed_pos)


class LearnedLifting(nn.Module):
    """IKNet-style residual head on top of :class:`AnalyticLifting`.

    Input features (per hand): the keypoints in the analytic palm frame divided by the palm
    length (63), the analytic bone axis-angles except the root (60), the analytic shape / 3
    (S) and the log palm length (1). An MLP predicts a 6D rotation residual per bone
    (right-multiplied onto the analytic local rotation) and a shape residual; the last layer
    starts at zero, so the untrained head equals the analytic solution. The trained weights
    are used as stored; the graph reads the first layer's columns and the last layer's rows
    in its own (level) order, and skips the wrist bone's always-zero axis-angle columns.
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
        aa_cols = [63 + 3 * (j - 1) + k for j in analytic.swing_bones for k in range(3)]
        self.input_columns = (list(range(63)) + aa_cols
                              + list(range(n_in - hand.n_shapes - 1, n_in)))
        self.output_rows = ([6 * j + k for j in hand.order for k in range(6)]
                            + list(range(6 * hand.n_bones, 6 * hand.n_bones + hand.n_shapes)))

    def _mlp(self, feats):
        """Return the MLP's output (level order) for features in the graph's order."""
        layers = list(self.mlp)
        first, last = layers[0], layers[-1]
        hidden = functional.linear(feats, first.weight[:, self.input_columns], first.bias)
        for layer in layers[1:-1]:
            hidden = layer(hidden)
        return functional.linear(hidden, last.weight[self.output_rows],
                                 last.bias[self.output_rows])

    def solve(self, keypoints):
        """Return local rotations (B, J, 3, 3) (level order), posed frames per level, shape."""
        hand = self.analytic.hand
        sol = self.analytic.solve(keypoints)
        shape = sol['shape']
        palm_m = torch.sqrt(sol['palm_sq'] + EPS).reshape(-1, 1)
        canon = (keypoints[:, None] @ sol['frame_t'].transpose(-1, -2)).reshape(-1, 63) / palm_m
        n_swing = len(self.analytic.swing_bones)
        feats = torch.cat([canon, torch.cat(sol['aa_levels'], 1).reshape(-1, 3 * n_swing),
                           shape / 3.0, torch.log(palm_m / 0.08)], 1)
        out = self._mlp(feats)
        d6, d_shape = torch.split(out, [6 * hand.n_bones, hand.n_shapes], 1)
        delta = rotation_6d_to_matrix(d6.reshape(-1, hand.n_bones, 6) + self.identity_6d)
        analytic = list(sol['local'])
        analytic[1] = torch.eye(3).expand_as(analytic[0])  # the wrist bone's, at rest
        local = torch.cat(analytic, 1) @ delta
        shape = shape + d_shape
        off, joints = hand.fk_terms(shape)
        rot, pos = hand.fk_all(local, off)
        return {'shape': shape, 'local': local, 'rot': rot, 'pos': pos, 'joints': joints}

    def forward(self, keypoints):
        """Return local rotations (B, J, 3, 3), shape (B, S), posed rotations and origins."""
        sol = self.solve(keypoints)
        posed_rot, posed_pos = levels_to_bones(self.analytic.hand, sol['rot'], sol['pos'])
        local = sol['local'][:, self.analytic.hand.inverse_order]
        return local, sol['shape'], posed_rot, posed_pos


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
        hand = self.hand
        kp = world_landmarks.reshape(-1, 1, 21, 3)
        kp = ((kp - kp[:, :, :1]) * self.mirror).reshape(-1, 21, 3)
        sol = self.lifting.solve(kp)
        if isinstance(self.lifting, AnalyticLifting):
            aa = self.lifting.pose_aa(sol)
            _, joints = hand.fk_terms(sol['shape'])
        else:
            aa = ops.matrix_to_axis_angle(sol['local'])
            aa = aa[:, hand.inverse_order]
            joints = sol['joints']
        verts, kps = hand.skin_levels(sol['rot'], sol['pos'], joints, sol['shape'])
        n_b, n_s, n_v = hand.n_bones, hand.n_shapes, hand.n_vertices
        mirror_t = self.mirror.transpose(-1, -2)
        return (aa.reshape(-1, 2, n_b, 3), sol['shape'].reshape(-1, 2, n_s),
                (verts.reshape(-1, 2, 3, n_v) * mirror_t).transpose(-1, -2),
                (kps.reshape(-1, 2, 3, 21) * mirror_t).transpose(-1, -2))
