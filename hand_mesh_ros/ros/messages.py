"""FrameResult -> HandPoseArray (/hand/poses) and HandMeshArray (/hand/mesh).

Every message carries the image's stamp and the camera's frame id. Hands that fail
``HandEstimate.is_finite()`` are dropped (and counted by the caller) so nothing NaN or
infinite is ever published. An empty ``hands`` array means "processed, no hand seen".
"""

import array

import numpy as np

#: HandEstimate.position_mode -> HandPose.position_status value.
POSITION_STATUS = {'full_intrinsics': 0, 'assumed_fov': 1, 'weak_perspective': 2,
                   'depth_fused': 3}
#: HandEstimate.shape_source -> HandPose.shape_source value.
SHAPE_SOURCE = {'network': 0, 'refit_2d': 1}
#: HandEstimate.side -> HandPose/HandMesh side value.
SIDE_VALUE = {'left': 0, 'right': 1}


def ns_to_time(stamp_ns):
    """Return a builtin_interfaces/Time for integer nanoseconds."""
    from builtin_interfaces.msg import Time
    stamp_ns = int(stamp_ns)
    return Time(sec=stamp_ns // 1_000_000_000, nanosec=stamp_ns % 1_000_000_000)


def make_header(stamp_ns, frame_id):
    """Return a std_msgs/Header with the image stamp and camera frame id."""
    from std_msgs.msg import Header
    return Header(stamp=ns_to_time(stamp_ns), frame_id=str(frame_id))


def finite_hands(hands):
    """Return ``(kept, n_dropped)``: the hands whose every number is finite."""
    kept = [hand for hand in hands if hand.is_finite()]
    return kept, len(hands) - len(kept)


def wrist_bone_index(bone_names):
    """Return the index of the bone named 'wrist' (0 when there is none)."""
    names = list(bone_names)
    return names.index('wrist') if 'wrist' in names else 0


def _float32_array(values):
    """Return ``values`` flattened as array.array('f') (fast assignment to float32[])."""
    return array.array('f', np.ascontiguousarray(values, dtype=np.float32).ravel().tobytes())


def hand_pose_msg(hand, header):
    """Return a hand_mesh_ros/HandPose for one finite HandEstimate."""
    from geometry_msgs.msg import Point
    from hand_mesh_ros.msg import HandPose
    from hand_mesh_ros.ros.tf_frames import rotation_to_quaternion
    msg = HandPose()
    msg.header = header
    msg.track_id = int(hand.track_id) % (2 ** 32)
    msg.side = SIDE_VALUE[hand.side]
    msg.side_score = float(hand.side_score)
    msg.score = float(hand.score)
    t_cam_wrist = np.asarray(hand.bone_transforms[wrist_bone_index(hand.bone_names)])
    position = msg.wrist_pose.position
    position.x, position.y, position.z = (float(v) for v in t_cam_wrist[:3, 3])
    qx, qy, qz, qw = rotation_to_quaternion(t_cam_wrist[:3, :3])
    orientation = msg.wrist_pose.orientation
    orientation.x, orientation.y, orientation.z, orientation.w = (
        float(qx), float(qy), float(qz), float(qw))
    joints = []
    for x, y, z in np.asarray(hand.joints_m, dtype=np.float64).tolist():
        p = Point()
        p.x, p.y, p.z = x, y, z
        joints.append(p)
    msg.joints = joints
    msg.keypoints_px = _float32_array(hand.keypoints_px)
    msg.hand_model = str(hand.hand_model)
    msg.pose_coefficients = _float32_array(hand.pose_coefficients)
    msg.shape_coefficients = _float32_array(hand.shape_coefficients)
    msg.hand_length_m = float(hand.hand_length_m)
    msg.confidence = float(hand.confidence)
    msg.position_covariance = np.asarray(hand.position_covariance_m2,
                                         dtype=np.float64).ravel().tolist()
    msg.reprojection_error_px = float(hand.reprojection_error_px)
    msg.position_status = POSITION_STATUS[hand.position_mode]
    msg.shape_source = SHAPE_SOURCE[hand.shape_source]
    return msg


def pose_array_msg(header, hands):
    """Return a HandPoseArray for the (finite) hands; empty ``hands`` when there is none."""
    from hand_mesh_ros.msg import HandPoseArray
    return HandPoseArray(header=header, hands=[hand_pose_msg(h, header) for h in hands])


def hand_mesh_msg(hand):
    """Return a hand_mesh_ros/HandMesh for one finite HandEstimate."""
    from hand_mesh_ros.msg import HandMesh
    msg = HandMesh()
    msg.track_id = int(hand.track_id) % (2 ** 32)
    msg.side = SIDE_VALUE[hand.side]
    msg.hand_model = str(hand.hand_model)
    msg.vertices = _float32_array(hand.vertices_m)
    msg.triangles = array.array(
        'I', np.ascontiguousarray(hand.faces, dtype=np.uint32).ravel().tobytes())
    return msg


def mesh_array_msg(header, hands):
    """Return a HandMeshArray for the (finite) hands; empty ``hands`` when there is none."""
    from hand_mesh_ros.msg import HandMeshArray
    return HandMeshArray(header=header, hands=[hand_mesh_msg(h) for h in hands])
