"""hand_fusion_node's conversions: HandPose -> HandObservation, FusedHand -> HandPose and TF.

A fused HandPose reuses the per-camera message: its header names the fusion frame and the
common stamp, ``track_id`` is the fused id, every position, orientation and the covariance
are in the fusion frame. The articulation-level fields (``keypoints_px``,
``reprojection_error_px``, ``hand_model``, ``shape_coefficients``, ``hand_length_m``,
``shape_source``) are those of the best-conditioned camera whose articulation the fused hand
carries.

TF of a fused hand: ``<prefix>_<side>[<n>]_wrist`` (parent: the fusion frame, the fused wrist
pose) and one frame per other keypoint, ``<prefix>_<side>[<n>]_<keypoint>`` (e.g.
``fused_right_index_tip``), child of the wrist frame with its orientation.
"""

from collections import namedtuple

import numpy as np
from scipy.spatial.transform import Rotation

from hand_mesh_ros.core.fusion.observation import HandObservation
from hand_mesh_ros.core.hand.topology import KEYPOINT_NAMES, NUM_KEYPOINTS
from hand_mesh_ros.ros.messages import make_header, POSITION_STATUS, SIDE_VALUE
from hand_mesh_ros.ros.tf_frames import rotation_to_quaternion

_SIDES = {value: side for side, value in SIDE_VALUE.items()}
_MODES = {value: mode for mode, value in POSITION_STATUS.items()}
#: How far a wrist quaternion's norm may be from 1 before the hand is refused.
QUATERNION_NORM_TOLERANCE = 1e-3
#: The message-level extras carried from a camera's HandPose to the fused one.
Details = namedtuple('Details', 'hand_model shape_coefficients hand_length_m keypoints_px '
                     'reprojection_error_px shape_source')
#: What HandFrameNames needs of a hand.
_Named = namedtuple('_Named', 'track_id side')


def stamp_ns(stamp):
    """Return integer nanoseconds of a builtin_interfaces/Time."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def observation_from_msg(camera, msg, header):
    """Return ``(HandObservation or None, problem)`` for one HandPose of ``camera``."""
    side = _SIDES.get(int(msg.side))
    mode = _MODES.get(int(msg.position_status))
    if side is None:
        return None, 'unknown_side'
    if mode is None:
        return None, 'unknown_position_status'
    o = msg.wrist_pose.orientation
    quat = np.array([o.x, o.y, o.z, o.w], dtype=np.float64)
    norm = float(np.linalg.norm(quat))
    if not np.isfinite(norm) or abs(norm - 1.0) > QUATERNION_NORM_TOLERANCE:
        return None, 'bad_wrist_orientation'
    p = msg.wrist_pose.position
    pose = np.asarray(msg.pose_coefficients, dtype=np.float64)
    return HandObservation(
        camera=camera, track_id=int(msg.track_id), side=side, stamp_ns=stamp_ns(header.stamp),
        frame_id=header.frame_id, wrist_m=np.array([p.x, p.y, p.z], dtype=np.float64),
        rotation=Rotation.from_quat(quat / norm).as_matrix(),
        joints_m=np.array([[j.x, j.y, j.z] for j in msg.joints], dtype=np.float64),
        covariance_m2=np.asarray(msg.position_covariance, dtype=np.float64).reshape(3, 3),
        score=float(msg.score), side_score=float(msg.side_score),
        confidence=float(msg.confidence), position_mode=mode,
        pose_coefficients=pose.reshape(-1, 3) if pose.size % 3 == 0 else np.zeros((0, 3)),
        details=Details(str(msg.hand_model), np.asarray(msg.shape_coefficients),
                        float(msg.hand_length_m), np.asarray(msg.keypoints_px),
                        float(msg.reprojection_error_px), int(msg.shape_source))), ''


def fused_hand_is_finite(hand):
    """Return True when every published number of a FusedHand is finite."""
    arrays = (hand.wrist_m, hand.covariance_m2, hand.rotation, hand.joints_m,
              hand.pose_coefficients)
    return all(np.all(np.isfinite(a)) for a in arrays) and np.isfinite(
        [hand.score, hand.side_score, hand.confidence]).all()


def fused_pose_msg(hand, header):
    """Return a HandPose (fusion frame) for one finite FusedHand."""
    from geometry_msgs.msg import Point
    from hand_mesh_ros.msg import HandPose
    details = hand.best.details
    msg = HandPose(header=header, track_id=int(hand.fused_id) % (2 ** 32),
                   side=SIDE_VALUE[hand.side], side_score=float(hand.side_score),
                   score=float(hand.score), confidence=float(hand.confidence),
                   position_covariance=np.asarray(hand.covariance_m2).ravel().tolist(),
                   position_status=POSITION_STATUS[hand.position_mode])
    position = msg.wrist_pose.position
    position.x, position.y, position.z = (float(v) for v in hand.wrist_m)
    q = rotation_to_quaternion(hand.rotation)
    orientation = msg.wrist_pose.orientation
    orientation.x, orientation.y, orientation.z, orientation.w = (float(v) for v in q)
    msg.joints = [Point(x=x, y=y, z=z) for x, y, z in np.asarray(hand.joints_m).tolist()]
    msg.pose_coefficients = np.asarray(hand.pose_coefficients, np.float32).ravel().tolist()
    if details:
        msg.hand_model = details.hand_model
        msg.shape_coefficients = np.asarray(details.shape_coefficients,
                                            np.float32).ravel().tolist()
        msg.hand_length_m = details.hand_length_m
        if len(details.keypoints_px) == 2 * NUM_KEYPOINTS:
            msg.keypoints_px = np.asarray(details.keypoints_px, np.float32).tolist()
        msg.reprojection_error_px = details.reprojection_error_px
        msg.shape_source = details.shape_source
    return msg


def fused_pose_array_msg(hands, stamp, frame_id):
    """Return a HandPoseArray of the fused hands at the common stamp in the fusion frame."""
    from hand_mesh_ros.msg import HandPoseArray
    header = make_header(stamp, frame_id)
    return HandPoseArray(header=header, hands=[fused_pose_msg(h, header) for h in hands])


def hand_names(names, hands, prefix):
    """Return the fused hands' name prefixes ``<prefix>_<side>[<n>]`` (stable per track)."""
    return names.assign([_Named(h.fused_id, h.side) for h in hands], prefix)


def fused_transforms(hand, hand_prefix, header):
    """Return the TransformStamped list of one fused hand (see the module docstring)."""
    from geometry_msgs.msg import TransformStamped
    rotation = np.asarray(hand.rotation)
    local = (np.asarray(hand.joints_m) - hand.wrist_m) @ rotation
    out = []
    for k, name in enumerate(KEYPOINT_NAMES):
        msg = TransformStamped()
        msg.header.stamp = header.stamp
        msg.header.frame_id = header.frame_id if k == 0 else hand_prefix + '_wrist'
        msg.child_frame_id = '%s_%s' % (hand_prefix, name)
        t = msg.transform.translation
        t.x, t.y, t.z = (float(v) for v in (hand.wrist_m if k == 0 else local[k]))
        r = msg.transform.rotation
        if k == 0:
            r.x, r.y, r.z, r.w = (float(v) for v in rotation_to_quaternion(rotation))
        else:
            r.w = 1.0
        out.append(msg)
    return out


def fused_tf_message(hands, prefixes, stamp, frame_id):
    """Return a tf2_msgs/TFMessage with every fused hand's frames."""
    from tf2_msgs.msg import TFMessage
    header = make_header(stamp, frame_id)
    transforms = []
    for hand, prefix in zip(hands, prefixes):
        transforms.extend(fused_transforms(hand, prefix, header))
    return TFMessage(transforms=transforms)
