"""The hand model's surface as the articulated depth fit sees it: posed points, normals, Jacobians.

A thinned set of mesh vertices (about one per :data:`SPACING_M` of the rest surface, the open
rim at the wrist and its neighbours left out: the forearm continues there, so a depth point
beyond the rim is no evidence about the hand) is skinned from the bone frames that
:class:`~hand_mesh_ros.core.fitting.kinematics_jacobian.KeypointKinematics` chains for the
keypoints, so one forward pass serves both the 2D keypoints and the surface.

Posed surface (camera frame): ``v = t + k M (sum_j w_j T_j v_rest)``, with ``T_j`` the bone
skinning transforms, ``k`` a uniform size factor about the wrist (the model's size direction
is a uniform scale of the rest hand) and ``M`` the mirror of a left hand. Normals are the
rest normals turned by the blended skinning rotation. The derivative of a point with respect
to the rotation vector of a free bone ``f`` is ``W_f(v) a x (v - o_f)``: ``W_f`` the point's
skin weight on ``f`` and its descendants, ``a`` the bone's world axis of the rotation-vector
component, ``o_f`` its joint centre (the usual linearisation of linear blend skinning in
articulated ICP).
"""

import numpy as np

from hand_mesh_ros.core.fitting.kinematics_jacobian import KeypointKinematics
from hand_mesh_ros.core.fitting.tailor_terms import PoseConstraints
from hand_mesh_ros.core.hand.rotations import (axis_angle_to_matrix_terms,
                                               right_jacobian_from_terms)

#: Spacing of the thinned surface points on the rest hand, metres.
SPACING_M = 0.006


def vertex_normals(vertices_m, faces):
    """Return unit area-weighted vertex normals (V, 3) of a mesh (V, 3), (F, 3)."""
    tris = vertices_m[faces]
    face_n = np.cross(tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0])
    normals = np.zeros_like(vertices_m)
    for corner in range(3):
        np.add.at(normals, faces[:, corner], face_n)
    return normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)


def rim_vertices(faces, n_vertices, rings=1):
    """Return a mask (V,) of the mesh's open-boundary vertices and ``rings`` rings around them."""
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]),
                    axis=1)
    unique, counts = np.unique(edges, axis=0, return_counts=True)
    mask = np.zeros(n_vertices, dtype=bool)
    mask[unique[counts == 1].ravel()] = True
    for _ in range(rings):
        touched = mask[edges].any(axis=1)
        mask[edges[touched].ravel()] = True
    return mask


def thin_points(points_m, spacing_m):
    """Return the indices of one point per occupied ``spacing_m`` voxel (the first one)."""
    cells = np.floor(points_m / spacing_m).astype(np.int64)
    _, first = np.unique(cells, axis=0, return_index=True)
    return np.sort(first)


class HandSurface:
    """Posed surface points, normals and Jacobians of a hand model (see the module docstring).

    ``free_bones`` (F,) are the bones whose rotations the fit changes (the tailor's).
    """

    def __init__(self, model, free_bones, spacing_m=SPACING_M):
        """Precompute the thinned surface, its rest normals and skin weights per free bone."""
        self.model = model
        self.free_bones = np.asarray(free_bones, dtype=np.intp)
        self.kinematics = KeypointKinematics(model, self.free_bones)
        self.constraints = PoseConstraints(model, self.free_bones, self.kinematics.levels)
        rest, _ = model.rest_shape()
        rim = rim_vertices(model.faces, model.n_vertices)
        candidates = np.flatnonzero(~rim)
        self.vertex_index = candidates[thin_points(rest[0, candidates], spacing_m)]
        self.rest_normals = vertex_normals(rest[0], model.faces)[self.vertex_index]
        self.skin_weights = model.skin_weights[self.vertex_index]
        descendants = np.zeros((model.n_bones, len(self.free_bones)))
        for f, bone in enumerate(self.free_bones):
            for j in range(model.n_bones):
                k = j
                while k >= 0 and k != bone:
                    k = model.parents[k]
                descendants[j, f] = float(k == bone)
        #: (P, F) skin weight of each point on each free bone and its descendants.
        self.free_weights = self.skin_weights @ descendants
        self._level_index = self.kinematics._level_index
        self._vertex_basis = (model.shape_vertex_basis_m[:, self.vertex_index]
                              - model.shape_joint_basis_m[:, :1])
        self._template = (model.template_vertices_m[self.vertex_index]
                          - model.rest_joints_m[:1])

    @property
    def n_pose(self):
        """Return the number of pose parameters (3 per free bone)."""
        return 3 * len(self.free_bones)

    def rest_points(self, shape):
        """Return the thinned rest surface (P, 3) of ``shape`` (S,), wrist at the origin."""
        return self._template + np.tensordot(shape, self._vertex_basis, axes=1)

    def skinning(self, posed, shape):
        """Return per-bone skinning rotations (J, 3, 3) and translations (J, 3) of ``posed``.

        ``posed`` is the kinematics' :meth:`KeypointKinematics.pose` of the same ``shape``.
        """
        frames = posed.frames[self._level_index]
        kin = self.kinematics
        rest_joints = kin.joint_rest0 + kin.joint_basis @ shape
        rot = frames[:, :, :3] @ kin.rest_rot_t
        trans = frames[:, :, 3] - np.einsum('jab,jb->ja', rot, rest_joints)
        return rot, trans

    def surface(self, posed, shape, rest_points, index=None):
        """Return root-relative points (P', 3) and unit normals (P', 3), native side.

        ``rest_points`` from :meth:`rest_points`; ``index`` picks points (all when None).
        """
        rot, trans = self.skinning(posed, shape)
        weights = self.skin_weights if index is None else self.skin_weights[index]
        rest = rest_points if index is None else rest_points[index]
        normals = self.rest_normals if index is None else self.rest_normals[index]
        blend_rot = (weights @ rot.reshape(len(rot), 9)).reshape(-1, 3, 3)
        turned = blend_rot @ np.stack([rest, normals], axis=2)  # (P', 3, 2)
        points = turned[:, :, 0] + weights @ trans
        normals = turned[:, :, 1]
        normals /= np.sqrt(np.einsum('pa,pa->p', normals, normals))[:, None]
        return points, normals

    def world_axes(self, posed, pose_aa):
        """Return the free bones' world axes (F, 3, 3) (column i: component i) and centres (F, 3).

        Rotation-vector component i of bone f turns its descendants about column i.
        """
        frames = posed.frames[self._level_index[self.free_bones]]
        right = right_jacobian_from_terms(
            axis_angle_to_matrix_terms(np.asarray(pose_aa)[self.free_bones])[1])
        return frames[:, :, :3] @ right, frames[:, :, 3]

    def plane_jacobian(self, points_rel, normals, index, axes, origins):
        """Return d (n . v_rel) / d pose (K, 3F) of root-relative points along their normals.

        ``points_rel`` (K, 3) and ``normals`` (K, 3) in the native (unmirrored) frame;
        ``index`` (K,) their surface point ids; ``axes`` (F, 3, 3), ``origins`` (F, 3) from
        :meth:`world_axes`.
        """
        arms = points_rel[:, None, :] - origins[None]  # (K, F, 3)
        moment = np.cross(arms, normals[:, None, :])  # (K, F, 3): a . (arm x n)
        rows = np.einsum('kfa,fai->kfi', moment, axes)
        rows *= self.free_weights[index][:, :, None]
        return rows.reshape(len(index), -1)
