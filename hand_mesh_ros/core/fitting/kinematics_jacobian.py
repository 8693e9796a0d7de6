"""The hand model's 21 keypoints and their analytic Jacobians (pose, shape), for the tailor.

Only what the tailor needs is computed: the bone frames (forward kinematics by tree level) and
a few *virtual points* rigidly attached to bones. A keypoint on a joint is the origin of its
bone; a keypoint on the surface (a fingertip) is a fixed blend of skinned vertices, and since
linear blend skinning is affine per bone it equals ``sum_b m_kb (T_b p_kb)`` with bone weights
``m_kb`` and one rest point ``p_kb`` per bone. Both kinds are stored as points on bones.

Derivatives (hand frame, before mirroring): for bone ``j`` with world orientation ``A_j``
before its local rotation ``R_j = exp([v_j]_x)``, origin ``o_j`` and left Jacobian
``J_l(v_j)``, a point ``X`` carried by ``j`` or a descendant moves with
``dX / dv_ji = (A_j J_l(v_j) e_i) x (X - o_j) = (A_j R_j J_r(v_j) e_i) x (X - o_j)``.
Shape enters linearly through the rest joints and vertices, and ``dX / dbeta`` follows the
same chain.
"""

from typing import NamedTuple

import numpy as np

from hand_mesh_ros.core.hand import rotations, skinning
# The tailor folds bone rotations with this name.

#: Bone weights of a surface keypoint below this are dropped (they move it < 1 um).
_MIN_BONE_WEIGHT = 1e-6


class PosedKeypoints(NamedTuple):
    """Keypoints of one pose and shape, with what their Jacobians are computed from."""

    keypoints: np.ndarray  # (21, 3)
    frames: np.ndarray  # (J, 3, 4 + S) bone frames, shape derivatives; in level order
    points: np.ndarray  # (P, 3) virtual points
    rotation_terms: tuple  # what the local rotations' right Jacobians are built from
    moved: np.ndarray  # (P, 3, 1 + S) virtual points and d point / d beta


class KeypointKinematics:
    """Keypoints (21, 3) of a :class:`~hand_mesh_ros.core.hand.hand_model.HandModel`, Jacobians.

    The results equal ``model.forward(pose, shape).keypoints`` (native side, wrist at the
    origin). ``free_bones`` (F,) are the bones whose rotations are differentiated.
    """

    def __init__(self, model, free_bones):
        """Precompute the virtual points, the constant rest-frame products and bone ancestry."""
        self.model = model
        parents = model.parents
        n_bones = model.n_bones
        self.n_bones = n_bones
        self.parents = parents
        self.levels = skinning.depth_levels(parents)
        self.free_bones = np.asarray(free_bones, dtype=np.intp)
        rest_rot = model.rest_bone_rotations
        self.rest_rot = rest_rot
        self.rest_rot_t = np.swapaxes(rest_rot, -1, -2)
        par = np.maximum(parents, 0)
        # Rest orientation of each bone relative to its parent's rest frame (root: absolute).
        self.rel_rot = np.where((parents < 0)[:, None, None], rest_rot,
                                self.rest_rot_t[par] @ rest_rot)
        # Rest joints (root-subtracted) are linear in the shape: rest0 + basis . beta.
        joint_basis = model.shape_joint_basis_m - model.shape_joint_basis_m[:, :1]
        self.joint_rest0 = model.rest_joints_m - model.rest_joints_m[:1]
        self.joint_basis = np.moveaxis(joint_basis, 0, -1)  # (J, 3, S)
        # Offsets to the parent expressed in the parent's rest frame (root: zero, it is fixed).
        offset0 = self.joint_rest0 - self.joint_rest0[par]
        offset_basis = self.joint_basis - self.joint_basis[par]
        offset0[parents < 0] = 0.0
        offset_basis[parents < 0] = 0.0
        self.local_offset0 = np.einsum('jab,jb->ja', self.rest_rot_t[par], offset0)
        self.local_offset_basis = np.einsum('jab,jbs->jas', self.rest_rot_t[par], offset_basis)
        ancestors = np.zeros((n_bones, n_bones), dtype=bool)
        for j in range(n_bones):
            k = j
            while k >= 0:
                ancestors[j, k] = True
                k = parents[k]
        self._build_points(model)
        n_shapes = model.n_shapes
        # Constant parts of the extended local transforms (see :meth:`evaluate`).
        self._ext_local = np.zeros((n_bones, 4 + n_shapes, 4 + n_shapes))
        self._ext_local[:, :3, 4:] = self.local_offset_basis
        self._ext_local[:, 3, 3] = 1.0
        self._ext_local[:, 4:, 4:] = np.eye(n_shapes)
        self._build_level_order()
        # Points in their bone's rest frame, relative to its origin: q0 + q_basis . beta.
        rest_rot_t = self.rest_rot_t[self.point_bone]
        self.point_q0 = np.einsum('pab,pb->pa', rest_rot_t, self.point_local0)
        self.point_q_basis = rest_rot_t @ self.point_local_basis
        self._point_ext = np.zeros((len(self.point_bone), 4 + n_shapes, 1 + n_shapes))
        self._point_ext[:, :3, 1:] = self.point_q_basis
        self._point_ext[:, 3, 0] = 1.0
        self._point_ext[:, 4:, 1:] = np.eye(n_shapes)
        moved_by = ancestors[self.point_bone][:, self.free_bones].astype(np.float64)
        self._point_mask = np.repeat(moved_by, 3, axis=1)[:, None, :]  # (P, 1, 3F)
        self._point_bone_lm = self._level_index[self.point_bone]
        self._free_lm = self._level_index[self.free_bones]

    def _build_level_order(self):
        """Order the bones level by level so that :meth:`pose` chains them in slices.

        Within a level, bones follow their parents' order; a level whose parents are one
        bone or consecutive in that order is chained with views (no gather or scatter).
        ``_level_index[bone]`` is the bone's position in the order.
        """
        order = []
        position = {}
        self._level_steps = []  # (parent index or slice, slice of the level)
        for depth, level in enumerate(self.levels):
            level = sorted(level, key=lambda bone: position.get(self.parents[bone], -1))
            start = len(order)
            for bone in level:
                position[bone] = len(order)
                order.append(bone)
            if depth == 0:
                if len(level) != 1:
                    raise ValueError('the hand model must have a single root bone')
                continue
            par = np.array([position[self.parents[bone]] for bone in level])
            if np.all(par == par[0]):
                parent_rows = slice(par[0], par[0] + 1)
            elif np.array_equal(par, np.arange(par[0], par[0] + len(par))):
                parent_rows = slice(par[0], par[0] + len(par))
            else:
                parent_rows = par
            self._level_steps.append((parent_rows, slice(start, len(order))))
        self._level_order = np.array(order, dtype=np.intp)
        self._level_index = np.empty(self.n_bones, dtype=np.intp)
        self._level_index[self._level_order] = np.arange(self.n_bones)
        self._rel_rot_lm = self.rel_rot[self._level_order]
        self._local_offset0_lm = self.local_offset0[self._level_order]
        self._local_offset_basis_lm = self.local_offset_basis[self._level_order]
        self._ext_local_lm = self._ext_local[self._level_order]

    def _build_points(self, model):
        """Decompose the 21 keypoints into weighted points attached to bones."""
        bones, kps, weights, local0, local_basis = [], [], [], [], []
        vertex_basis = np.moveaxis(model.shape_vertex_basis_m
                                   - model.shape_joint_basis_m[:, :1], 0, -1)  # (V, 3, S)
        template = model.template_vertices_m - model.rest_joints_m[:1]
        self._surface = []  # (point index, vertex ids (K,), coefficients (K,))
        for k, joint in enumerate(model.keypoint_joint_index):
            if joint >= 0:
                bones.append(joint)
                kps.append(k)
                weights.append(1.0)
                local0.append(np.zeros(3))
                local_basis.append(np.zeros((3, vertex_basis.shape[-1])))
                continue
            vids = model.keypoint_vertex_index[k]
            vw = model.keypoint_vertex_weight[k]
            per_bone = vw @ model.skin_weights[vids]  # (J,)
            for b in np.flatnonzero(per_bone > _MIN_BONE_WEIGHT):
                coef = vw * model.skin_weights[vids, b] / per_bone[b]
                bones.append(b)
                kps.append(k)
                weights.append(per_bone[b])
                # Point in the bone's rest frame offset from its joint, linear in the shape.
                local0.append(coef @ template[vids] - self.joint_rest0[b])
                local_basis.append(np.einsum('k,kas->as', coef, vertex_basis[vids])
                                   - self.joint_basis[b])
                self._surface.append((len(bones) - 1, vids, coef))
        self.point_bone = np.asarray(bones, dtype=np.intp)
        self.point_local0 = np.asarray(local0)
        self.point_local_basis = np.asarray(local_basis)  # (P, 3, S)
        self.keypoint_matrix = np.zeros((21, len(bones)))
        self.keypoint_matrix[kps, np.arange(len(bones))] = weights
        self.keypoint_matrix /= self.keypoint_matrix.sum(axis=1, keepdims=True)
        # When every keypoint is one point (the usual case) indexing replaces the product.
        single = np.count_nonzero(self.keypoint_matrix, axis=1) == 1
        self._kp_point = (np.argmax(self.keypoint_matrix, axis=1) if np.all(single) else None)
        self._kp_identity = (self._kp_point is not None and len(bones) == 21
                             and np.array_equal(self._kp_point, np.arange(21)))
        self._pose_basis = None
        if model.pose_basis_m is not None:
            # Pose correctives of the surface points: (P_s, 3, (J - 1) * 9).
            self._pose_basis = np.stack([
                np.einsum('k,nka->an', coef, model.pose_basis_m[:, vids])
                for _, vids, coef in self._surface])
            self._surface_points = np.asarray([p for p, _, _ in self._surface], dtype=np.intp)

    def evaluate(self, pose_aa, shape, jacobians=True):
        """Return keypoints (21, 3) and, if asked, d kp / d pose_free and d kp / d shape.

        Args:
            pose_aa: (J, 3) axis-angle per bone.
            shape: (S,) shape coefficients.
            jacobians: also compute the Jacobians.

        Returns:
            keypoints (21, 3); jac_pose (21, 3, 3F) (columns bone-major: free bone f, axis i at
            3f + i) and jac_shape (21, 3, S), or None for both when ``jacobians`` is False.
            Pose correctives (MANO only) are in the keypoints but not in the Jacobians.

        """
        posed = self.pose(pose_aa, shape)
        if not jacobians:
            return posed.keypoints, None, None
        return (posed.keypoints,) + self.jacobians(posed)

    def pose(self, pose_aa, shape):
        """Return the :class:`PosedKeypoints` of ``pose_aa`` (J, 3) and ``shape`` (S,).

        Its ``keypoints`` (21, 3) equal :meth:`evaluate`'s; :meth:`jacobians` completes it
        when asked.
        """
        rot_local, terms = rotations.axis_angle_to_matrix_terms(pose_aa)
        # Extended local transforms [[rel R, offset, d offset / d beta], [0, 1, 0], [0, 0, I]]:
        # chaining them carries the joint positions and their shape derivatives together.
        # Bones in level order (``_level_order``): each level is one slice.
        ext = self._ext_local_lm.copy()
        np.matmul(self._rel_rot_lm, rot_local[self._level_order], out=ext[:, :3, :3])
        ext[:, :3, 3] = self._local_offset0_lm + self._local_offset_basis_lm @ shape
        frames = np.empty((self.n_bones, 3, ext.shape[-1]))
        frames[0] = ext[0, :3]
        for parent_rows, rows in self._level_steps:
            if isinstance(parent_rows, slice):
                np.matmul(frames[parent_rows], ext[rows], out=frames[rows])
            else:
                frames[rows] = frames[parent_rows] @ ext[rows]
        q_ext = self._point_ext.copy()
        q_ext[:, :3, 0] = self.point_q0 + self.point_q_basis @ shape
        if self._pose_basis is not None:
            feature = (rot_local[1:] - np.eye(3)).reshape(-1)
            q_ext[self._surface_points, :3, 0] += np.einsum(
                'pab,pbn,n->pa', self.rest_rot_t[self.point_bone[self._surface_points]],
                self._pose_basis, feature)
        moved = frames[self._point_bone_lm] @ q_ext  # (P, 3, 1 + S): point, d point / d beta
        points = moved[:, :, 0]
        if self._kp_identity:
            keypoints = points
        elif self._kp_point is not None:
            keypoints = points[self._kp_point]
        else:
            keypoints = self.keypoint_matrix @ points
        return PosedKeypoints(keypoints, frames, points, terms, moved)

    def jacobians(self, posed):
        """Return d kp / d pose_free (21, 3, 3F) and d kp / d shape (21, 3, S) of ``posed``.

        ``posed`` is a :class:`PosedKeypoints` from :meth:`pose`.
        """
        frames, points, moved = posed.frames, posed.points, posed.moved
        free = self.free_bones
        n_free = len(free)
        free_frames = frames[self._free_lm]
        right = rotations.right_jacobian_from_terms(posed.rotation_terms)
        axes = free_frames[:, :, :3] @ right[free]  # (F, 3, 3): column i = world axis i
        flat_axes = np.swapaxes(axes, 0, 1).reshape(3, 3 * n_free)
        # a x (X - o) = -[X]_x a + [o]_x a for every point, free bone and axis component.
        moving = (rotations.skew(points).reshape(-1, 3) @ flat_axes).reshape(-1, 3, 3 * n_free)
        origin = np.swapaxes(rotations.skew(free_frames[:, :, 3]) @ axes, 0, 1)  # (3, F, 3)
        dpoint = (origin.reshape(1, 3, 3 * n_free) - moving)
        dpoint *= self._point_mask
        if self._kp_identity:
            return dpoint, moved[:, :, 1:]
        if self._kp_point is not None:
            return dpoint[self._kp_point], moved[self._kp_point, :, 1:]
        jac_pose = np.einsum('kp,pan->kan', self.keypoint_matrix, dpoint)
        jac_shape = np.einsum('kp,pas->kas', self.keypoint_matrix, moved[:, :, 1:])
        return jac_pose, jac_shape
