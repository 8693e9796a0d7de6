"""Forward kinematics and linear blend skinning (numpy, batched).

Conventions shared by the hand models (see :mod:`hand_mesh_ros.core.hand.hand_model`):

- ``J`` bones in a tree given by ``parents`` (J,), ``parents[0] == -1``, every parent index
  smaller than its child's.
- Rest bone frames: rotation ``rest_rot[j]`` (3, 3), whose columns are the bone's local x, y, z
  axes in the hand frame, and origin ``rest_joints[j]`` (3,), the joint centre (metres).
- A pose is one local rotation ``R_j`` (3, 3) per bone, expressed in the bone's rest frame.
  The posed frame of bone ``j`` with parent ``p`` is
  ``G_j = G_p @ inv(P_p) @ P_j @ [R_j | 0]`` where ``P_j = [rest_rot[j] | rest_joints[j]]``;
  the root's is ``G_0 = P_0 @ [R_0 | 0]``. Skinning uses ``T_j = G_j @ inv(P_j)``.
"""

import numpy as np


def depth_levels(parents):
    """Return lists of bone indices per tree depth (root first) for ``parents`` (J,)."""
    parents = [int(p) for p in parents]
    depth = [0] * len(parents)
    for j in range(1, len(parents)):
        if not 0 <= parents[j] < j:
            raise ValueError('parents must list each bone after its parent (got %r)' % parents)
        depth[j] = depth[parents[j]] + 1
    levels = [[] for _ in range(max(depth) + 1)]
    for j, d in enumerate(depth):
        levels[d].append(j)
    return [np.asarray(level, dtype=np.intp) for level in levels]


def forward_kinematics(local_rot, rest_rot, rest_joints, parents, levels=None):
    """Return posed bone frames and skinning transforms.

    Args:
        local_rot: (B, J, 3, 3) local rotations, each in its bone's rest frame.
        rest_rot: (J, 3, 3) rest bone orientations in the hand frame.
        rest_joints: (B, J, 3) or (J, 3) rest joint centres in the hand frame, metres.
        parents: (J,) parent indices, -1 for the root.
        levels: optional output of :func:`depth_levels` (saves a little time).

    Returns:
        frames: (B, J, 4, 4) posed bone frames ``G_j`` (hand frame).
        transforms: (B, J, 4, 4) skinning transforms ``T_j = G_j inv(P_j)`` (hand frame).
    """
    local_rot = np.asarray(local_rot, dtype=np.float64)
    batch, n_bones = local_rot.shape[:2]
    rest_joints = np.broadcast_to(np.asarray(rest_joints, dtype=np.float64),
                                  (batch, n_bones, 3))
    parents = np.asarray(parents)
    if levels is None:
        levels = depth_levels(parents)
    rest_rot = np.asarray(rest_rot, dtype=np.float64)
    par = np.where(parents < 0, 0, parents)
    par_rot_t = np.swapaxes(rest_rot[par], -1, -2)
    # Local transforms inv(P_p) P_j [R_j | 0] = [R_p^T R_j R_j' | R_p^T (h_j - h_p)];
    # the root's is P_0 [R_0 | 0].
    rest_rel = par_rot_t @ rest_rot
    rest_rel[0] = rest_rot[0]
    offset = rest_joints - rest_joints[:, par]
    offset[:, 0] = rest_joints[:, 0]
    par_rot_t[0] = np.eye(3)
    local = np.zeros((batch, n_bones, 4, 4))
    local[..., :3, :3] = rest_rel @ local_rot
    local[..., :3, 3] = (par_rot_t @ offset[..., None])[..., 0]
    local[..., 3, 3] = 1.0
    frames = np.empty_like(local)
    frames[:, levels[0]] = local[:, levels[0]]
    for level in levels[1:]:
        frames[:, level] = frames[:, parents[level]] @ local[:, level]
    skin_rot = frames[..., :3, :3] @ np.swapaxes(rest_rot, -1, -2)
    skin_trans = frames[..., :3, 3] - (skin_rot @ rest_joints[..., None])[..., 0]
    return frames, _homogeneous(skin_rot, skin_trans)


def _homogeneous(rot, trans):
    """Stack rotations (..., 3, 3) and translations (..., 3) into (..., 4, 4) matrices."""
    out = np.zeros(rot.shape[:-2] + (4, 4))
    out[..., :3, :3] = rot
    out[..., :3, 3] = trans
    out[..., 3, 3] = 1.0
    return out


def linear_blend_skinning(rest_vertices, weights, transforms):
    """Return skinned vertices (B, V, 3).

    Args:
        rest_vertices: (B, V, 3) or (V, 3) rest-pose vertices (shape and pose correctives
            already applied), metres.
        weights: (V, J) dense skinning weights, rows summing to one.
        transforms: (B, J, 4, 4) skinning transforms ``T_j``.
    """
    transforms = np.asarray(transforms, dtype=np.float64)
    batch, n_bones = transforms.shape[:2]
    flat = transforms[:, :, :3, :].reshape(batch, n_bones, 12)
    blended = np.matmul(weights, flat).reshape(batch, -1, 3, 4)  # (B, V, 3, 4)
    rest_vertices = np.asarray(rest_vertices, dtype=np.float64)
    if rest_vertices.ndim == 2:
        rest_vertices = rest_vertices[None]
    return np.einsum('bvij,bvj->bvi', blended[..., :3], rest_vertices) + blended[..., 3]


def dense_weights(indices, values, n_bones):
    """Return dense (V, J) weights from per-vertex sparse ``indices``/``values`` (V, K)."""
    indices = np.asarray(indices)
    out = np.zeros((indices.shape[0], n_bones), dtype=np.float64)
    rows = np.repeat(np.arange(indices.shape[0]), indices.shape[1])
    np.add.at(out, (rows, indices.reshape(-1)), np.asarray(values, dtype=np.float64).reshape(-1))
    return out
