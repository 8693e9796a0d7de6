"""Per-bone TF frames of each hand, chained along the hand model's kinematic tree.

Frame names (documented in the README): ``<prefix>_<side>[<n>]_<bone>``, e.g.
``hand_right_wrist``, ``hand_left_index_distal``. A name is stable for its track's life
(:class:`HandFrameNames`): the first hand of a side is ``<prefix>_<side>``; a second hand of
that side seen while the first is still tracked gets ``<prefix>_<side>2`` (then 3, ...), and
neither name changes while both tracks go on. A name is released when a published frame no
longer has its track (or the track's side changes); the next new hand of that side takes the
smallest free number. ``<prefix>`` comes from :func:`hand_mesh_ros.ros.frame_names.tf_prefix`.

Fingertips (MediaPipe keypoints 4, 8, 12, 16, 20) get one more frame each,
``<prefix>_<side>_<finger>_tip``, child of the finger's distal bone (``<finger>_distal``) with
that bone's orientation and its origin at the fingertip keypoint.

The root bone's parent is the camera optical frame (the image's frame id); every other bone's
parent is its parent bone's frame, with ``T_parent_bone = inv(T_cam_parent) @ T_cam_bone``, so
composing the chain from the camera gives back each bone's ``T_cam_bone`` (origin at the joint,
axes the hand model's bone rotation).
"""

import numpy as np
from transforms3d.quaternions import mat2quat

from hand_mesh_ros.core.hand.topology import FINGERTIPS


def rotation_to_quaternion(rot):
    """Return unit quaternions (..., 4) as (x, y, z, w), w >= 0, from rotations (..., 3, 3).

    One rotation (3, 3), e.g. a HandPose's wrist orientation, goes through transforms3d's
    ``mat2quat``; a batch (the TF tree's 26 frames per hand) stays vectorised numpy, because
    transforms3d converts one matrix per Python call (measured: one matrix 10 us with
    transforms3d vs 29 us here; 26 matrices 236 us in a transforms3d loop vs 58 us here).
    The batch uses Shepperd's method: the largest of (w, x, y, z) is computed from the
    diagonal and the rest from off-diagonal sums, which stays accurate for every angle.
    """
    rot = np.asarray(rot, dtype=np.float64)
    if rot.shape == (3, 3):
        w, x, y, z = mat2quat(rot)
        quat = np.array([x, y, z, w]) * (-1.0 if w < 0.0 else 1.0)
        return quat / np.linalg.norm(quat)
    m = rot.reshape(-1, 3, 3)
    m00, m11, m22 = m[:, 0, 0], m[:, 1, 1], m[:, 2, 2]
    trace = m00 + m11 + m22
    choice = np.argmax(np.stack([trace, m00, m11, m22], axis=1), axis=1)
    quat = np.empty((len(m), 4))
    for case in range(4):
        sel = choice == case
        if not np.any(sel):
            continue
        r = m[sel]
        if case == 0:
            s = 2.0 * np.sqrt(np.maximum(1.0 + trace[sel], 1e-300))
            q = [(r[:, 2, 1] - r[:, 1, 2]) / s, (r[:, 0, 2] - r[:, 2, 0]) / s,
                 (r[:, 1, 0] - r[:, 0, 1]) / s, 0.25 * s]
        elif case == 1:
            s = 2.0 * np.sqrt(np.maximum(1.0 + r[:, 0, 0] - r[:, 1, 1] - r[:, 2, 2], 1e-300))
            q = [0.25 * s, (r[:, 0, 1] + r[:, 1, 0]) / s, (r[:, 0, 2] + r[:, 2, 0]) / s,
                 (r[:, 2, 1] - r[:, 1, 2]) / s]
        elif case == 2:
            s = 2.0 * np.sqrt(np.maximum(1.0 + r[:, 1, 1] - r[:, 0, 0] - r[:, 2, 2], 1e-300))
            q = [(r[:, 0, 1] + r[:, 1, 0]) / s, 0.25 * s, (r[:, 1, 2] + r[:, 2, 1]) / s,
                 (r[:, 0, 2] - r[:, 2, 0]) / s]
        else:
            s = 2.0 * np.sqrt(np.maximum(1.0 + r[:, 2, 2] - r[:, 0, 0] - r[:, 1, 1], 1e-300))
            q = [(r[:, 0, 2] + r[:, 2, 0]) / s, (r[:, 1, 2] + r[:, 2, 1]) / s, 0.25 * s,
                 (r[:, 1, 0] - r[:, 0, 1]) / s]
        quat[sel] = np.stack(q, axis=1)
    quat *= np.where(quat[:, 3:] < 0.0, -1.0, 1.0)
    quat /= np.linalg.norm(quat, axis=1, keepdims=True)
    return quat.reshape(rot.shape[:-2] + (4,))


def relative_bone_transforms(transforms_cam_bone, parents):
    """Return (B, 4, 4) T_parent_bone (T_cam_bone for a root) from (B, 4, 4) T_cam_bone."""
    transforms_cam_bone = np.asarray(transforms_cam_bone, dtype=np.float64)
    relative = transforms_cam_bone.copy()
    for bone, parent in enumerate(np.asarray(parents)):
        if parent >= 0:
            relative[bone] = np.linalg.solve(transforms_cam_bone[parent],
                                             transforms_cam_bone[bone])
    return relative


def fingertip_transforms(hand):
    """Return [(finger, parent bone index, (4, 4) T_distal_tip)] for the model's fingertips.

    Fingers whose distal bone is not named ``<finger>_distal`` are left out.
    """
    names = list(hand.bone_names)
    out = []
    for finger, keypoint in FINGERTIPS:
        bone_name = '%s_distal' % finger
        if bone_name not in names:
            continue
        bone = names.index(bone_name)
        t_cam_bone = np.asarray(hand.bone_transforms[bone], dtype=np.float64)
        tip = np.append(np.asarray(hand.joints_m[keypoint], dtype=np.float64), 1.0)
        t_bone_tip = np.eye(4)
        t_bone_tip[:3, 3] = np.linalg.solve(t_cam_bone, tip)[:3]
        out.append((finger, bone, t_bone_tip))
    return out


def _side_name(prefix, side, number):
    return '%s_%s%s' % (prefix, side, number if number > 1 else '')


class HandFrameNames:
    """Assign frame-name prefixes that stay the same for a track's whole life.

    ``assign(hands)`` is called once per published frame with that frame's hands.
    """

    def __init__(self):
        """Start with no names held."""
        self._held = {}   # track id -> (prefix, side, number)

    def assign(self, hands, prefix='hand'):
        """Return one prefix per hand (``hands`` order): ``<prefix>_<side>[<n>]``."""
        current = {(hand.track_id, hand.side) for hand in hands}
        self._held = {track: held for track, held in self._held.items()
                      if (track, held[1]) in current and held[0] == prefix}
        for hand in sorted(hands, key=lambda h: h.track_id):   # older tracks first
            if hand.track_id in self._held:
                continue
            taken = {n for _, side, n in self._held.values() if side == hand.side}
            number = next(n for n in range(1, len(taken) + 2) if n not in taken)
            self._held[hand.track_id] = (prefix, hand.side, number)
        return [_side_name(*self._held[hand.track_id]) for hand in hands]


def hand_frame_prefixes(hands, prefix='hand'):
    """Return the prefixes of one frame's hands on their own (as a fresh HandFrameNames)."""
    return HandFrameNames().assign(hands, prefix)


def bone_frame_names(hand_prefix, bone_names):
    """Return the TF child frame name of every bone."""
    return ['%s_%s' % (hand_prefix, name) for name in bone_names]


def hand_transforms(hand, hand_prefix, header):
    """Return geometry_msgs/TransformStamped per bone of ``hand`` (a finite HandEstimate).

    ``header`` (std_msgs/Header) gives the stamp and the camera frame (parent of the root).
    """
    from geometry_msgs.msg import TransformStamped
    relative = relative_bone_transforms(hand.bone_transforms, hand.bone_parents)
    quats = rotation_to_quaternion(relative[:, :3, :3])
    names = bone_frame_names(hand_prefix, hand.bone_names)
    out = []
    for bone, parent in enumerate(np.asarray(hand.bone_parents)):
        msg = TransformStamped()
        msg.header.stamp = header.stamp
        msg.header.frame_id = header.frame_id if parent < 0 else names[parent]
        msg.child_frame_id = names[bone]
        t = msg.transform.translation
        t.x, t.y, t.z = (float(v) for v in relative[bone, :3, 3])
        r = msg.transform.rotation
        r.x, r.y, r.z, r.w = (float(v) for v in quats[bone])
        out.append(msg)
    for finger, bone, t_bone_tip in fingertip_transforms(hand):
        msg = TransformStamped()
        msg.header.stamp = header.stamp
        msg.header.frame_id = names[bone]
        msg.child_frame_id = '%s_%s_tip' % (hand_prefix, finger)
        t = msg.transform.translation
        t.x, t.y, t.z = (float(v) for v in t_bone_tip[:3, 3])
        msg.transform.rotation.w = 1.0
        out.append(msg)
    return out


def tf_message(hands, header, prefix='hand', names=None):
    """Return a tf2_msgs/TFMessage with every bone frame of every (finite) hand.

    ``names``: the stream's HandFrameNames (stable names across frames); None names this
    frame's hands on their own.
    """
    from tf2_msgs.msg import TFMessage
    transforms = []
    prefixes = (names or HandFrameNames()).assign(hands, prefix)
    for hand, hand_prefix in zip(hands, prefixes):
        transforms.extend(hand_transforms(hand, hand_prefix, header))
    return TFMessage(transforms=transforms)
