"""FrameResult -> poses, meshes, TF and markers: content, frames, ids and deletions.

The hands are test data made with the real hand model (a posed forward pass placed 0.5 m in
front of the camera), not outputs of the pipeline.
"""

from dataclasses import replace
import math

import numpy as np
import pytest

pytest.importorskip('rclpy', reason='ROS 2 (rclpy) is not installed: run bootstrap.sh first')

from geometry_msgs.msg import Transform  # noqa: E402,I100
from rclpy.serialization import deserialize_message, serialize_message  # noqa: E402
from visualization_msgs.msg import Marker, MarkerArray  # noqa: E402

from hand_mesh_ros.core.hand.hand_model import load_hand_model  # noqa: E402
from hand_mesh_ros.core.hand.rotations import axis_angle_to_matrix  # noqa: E402
from hand_mesh_ros.core.types import HandEstimate  # noqa: E402
from hand_mesh_ros.ros import marker_serialization  # noqa: E402
from hand_mesh_ros.ros import markers as mk  # noqa: E402
from hand_mesh_ros.ros import messages as mm  # noqa: E402
from hand_mesh_ros.ros import tf_frames as tf  # noqa: E402


MODEL = load_hand_model()
STAMP_NS = 1_700_000_123_456_789_000
K = np.array([[600.0, 0.0, 320.0], [0.0, 600.0, 240.0], [0.0, 0.0, 1.0]])


def make_hand(track_id=3, side='right', offset=(0.0, 0.0, 0.5), seed=0, score=0.97):
    """Return a HandEstimate from a random in-limits pose of the real hand model."""
    rng = np.random.default_rng(seed)
    pose = MODEL.clamp_pose(rng.normal(0.0, 0.4, (MODEL.n_bones, 3)))
    out = MODEL.forward(pose, side=side)
    rot = axis_angle_to_matrix(np.array([2.5, 0.3, -0.4]))
    t_cam_hand = np.eye(4)
    t_cam_hand[:3, :3] = rot
    t_cam_hand[:3, 3] = offset

    def to_cam(points):
        return points @ rot.T + np.asarray(offset)

    joints = to_cam(out.joint_centres)
    uvw = to_cam(out.keypoints) @ K.T
    keypoints_px = uvw[:, :2] / uvw[:, 2:]
    return HandEstimate(
        track_id=track_id, side=side, side_score=0.9, score=score,
        keypoints_px=keypoints_px, observed_keypoints_px=keypoints_px + 0.5,
        joints_m=joints, vertices_m=to_cam(out.vertices), faces=out.faces,
        bone_transforms=t_cam_hand @ out.bone_frames, bone_parents=MODEL.parents,
        bone_names=MODEL.bone_names, pose_coefficients=pose,
        shape_coefficients=MODEL.zero_shape(), hand_model='anny', hand_length_m=0.19,
        confidence=0.5, position_covariance_m2=np.eye(3) * 1e-4,
        reprojection_error_px=0.7, position_mode='full_intrinsics',
        keypoints_m=to_cam(out.keypoints))


def _matrix(transform):
    t, r = transform.translation, transform.rotation
    x, y, z, w = r.x, r.y, r.z, r.w
    rot = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                    [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                    [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
    out = np.eye(4)
    out[:3, :3], out[:3, 3] = rot, (t.x, t.y, t.z)
    return out


def _compose_to_camera(transforms, camera_frame):
    by_child = {t.child_frame_id: t for t in transforms}
    result = {}
    for child in by_child:
        chain, name = np.eye(4), child
        while name != camera_frame:
            link = by_child[name]
            chain = _matrix(link.transform) @ chain
            name = link.header.frame_id
        result[child] = chain
    return result


def test_quaternions_match_rotations_and_are_normalised():
    rng = np.random.default_rng(4)
    vectors = rng.normal(0.0, 1.5, (500, 3))
    vectors[:4] = [[math.pi, 0, 0], [0, math.pi, 0], [0, 0, math.pi], [0, 0, 0]]
    rots = axis_angle_to_matrix(vectors)
    quats = tf.rotation_to_quaternion(rots)
    np.testing.assert_allclose(np.linalg.norm(quats, axis=1), 1.0, atol=1e-12)
    assert np.all(quats[:, 3] >= 0.0)
    for rot, q in zip(rots, quats):
        t = Transform()
        t.rotation.x, t.rotation.y, t.rotation.z, t.rotation.w = q
        np.testing.assert_allclose(_matrix(t)[:3, :3], rot, atol=1e-10)


@pytest.mark.parametrize('side', ['right', 'left'])
def test_tf_chain_composes_back_to_camera_frame_bones_and_joints(side):
    hand = make_hand(side=side, seed=1)
    header = mm.make_header(STAMP_NS, 'camera_optical_frame')
    msg = tf.tf_message([hand], header)
    assert len(msg.transforms) == MODEL.n_bones + 5
    names = [t.child_frame_id for t in msg.transforms][:MODEL.n_bones]
    assert names[0] == 'hand_%s_%s' % (side, MODEL.bone_names[0])
    assert 'hand_%s_wrist' % side in names
    roots = [t for t in msg.transforms if t.header.frame_id == 'camera_optical_frame']
    assert len(roots) == 1
    for t in msg.transforms:
        assert (t.header.stamp.sec, t.header.stamp.nanosec) == (
            STAMP_NS // 10 ** 9, STAMP_NS % 10 ** 9)
        q = t.transform.rotation
        assert math.isclose(q.x ** 2 + q.y ** 2 + q.z ** 2 + q.w ** 2, 1.0, abs_tol=1e-12)
    composed = _compose_to_camera(msg.transforms, 'camera_optical_frame')
    for bone, name in enumerate(names):
        np.testing.assert_allclose(composed[name], hand.bone_transforms[bone], atol=1e-6)
    joint_kp = MODEL.keypoint_joint_index
    for kp in np.flatnonzero(joint_kp >= 0):
        origin = composed[names[joint_kp[kp]]][:3, 3]
        np.testing.assert_allclose(origin, hand.joints_m[kp], atol=1e-6)
    # Fingertips: the five tip frames sit on keypoints 4, 8, 12, 16, 20 with the distal
    # bone's orientation; together with the bones every one of the 21 keypoints has a frame.
    for finger, kp in tf.FINGERTIPS:
        tip = composed['hand_%s_%s_tip' % (side, finger)]
        np.testing.assert_allclose(tip[:3, 3], hand.joints_m[kp], atol=1e-6)
        distal = composed['hand_%s_%s_distal' % (side, finger)]
        np.testing.assert_allclose(tip[:3, :3], distal[:3, :3], atol=1e-9)
    covered = set(np.flatnonzero(joint_kp >= 0).tolist()) | {kp for _, kp in tf.FINGERTIPS}
    assert covered == set(range(21))


def test_two_hands_of_one_side_get_distinct_frame_names():
    hands = [make_hand(track_id=3, seed=1), make_hand(track_id=8, seed=2),
             make_hand(track_id=9, side='left', seed=3)]
    assert tf.hand_frame_prefixes(hands) == ['hand_right', 'hand_right2', 'hand_left']
    assert tf.hand_frame_prefixes(hands[:1], prefix='h') == ['h_right']
    msg = tf.tf_message(hands, mm.make_header(STAMP_NS, 'cam'))
    children = [t.child_frame_id for t in msg.transforms]
    assert len(children) == len(set(children)) == 3 * (MODEL.n_bones + 5)


def test_pose_and_mesh_messages_carry_the_hand_and_the_image_header():
    hand = make_hand(seed=5)
    header = mm.make_header(STAMP_NS, 'cam')
    poses = mm.pose_array_msg(header, [hand])
    meshes = mm.mesh_array_msg(header, [hand])
    pose = poses.hands[0]
    assert pose.header.frame_id == 'cam' and poses.header.stamp.nanosec == STAMP_NS % 10 ** 9
    assert (pose.track_id, pose.side, pose.position_status) == (3, 1, 0)
    np.testing.assert_allclose([[p.x, p.y, p.z] for p in pose.joints], hand.joints_m, atol=1e-12)
    np.testing.assert_allclose(np.reshape(pose.keypoints_px, (21, 2)), hand.keypoints_px,
                               atol=1e-3)
    wrist = mm.wrist_bone_index(hand.bone_names)
    position = pose.wrist_pose.position
    np.testing.assert_allclose([position.x, position.y, position.z],
                               hand.bone_transforms[wrist][:3, 3], atol=1e-12)
    assert pose.score == pytest.approx(0.97) and pose.hand_length_m == pytest.approx(0.19)
    assert pose.confidence == pytest.approx(0.5)
    np.testing.assert_allclose(np.reshape(pose.position_covariance, (3, 3)),
                               hand.position_covariance_m2, rtol=1e-12)
    assert len(pose.pose_coefficients) == 3 * MODEL.n_bones
    mesh = meshes.hands[0]
    np.testing.assert_allclose(np.reshape(mesh.vertices, (-1, 3)), hand.vertices_m, atol=1e-6)
    np.testing.assert_array_equal(np.reshape(mesh.triangles, (-1, 3)), hand.faces)
    assert mesh.track_id == 3 and mesh.side == 1 and mesh.hand_model == 'anny'
    assert pose.shape_source == pose.SHAPE_NETWORK == 0
    refit = mm.pose_array_msg(header, [replace(hand, shape_source='refit_2d')]).hands[0]
    assert refit.shape_source == refit.SHAPE_REFIT_2D == 1
    empty = mm.pose_array_msg(header, [])
    assert empty.hands == [] and empty.header.frame_id == 'cam'
    assert mm.mesh_array_msg(header, []).hands == []


def test_non_finite_hands_are_dropped_and_counted():
    good = make_hand(track_id=1, seed=1)
    joints = good.joints_m.copy()
    joints[4, 2] = np.nan
    bad = replace(make_hand(track_id=2, seed=2), joints_m=joints)
    worse = replace(make_hand(track_id=4, seed=3), hand_length_m=float('inf'))
    kept, dropped = mm.finite_hands([good, bad, worse])
    assert [h.track_id for h in kept] == [1] and dropped == 2


def test_markers_ids_colours_frames_and_deletion():
    builder = mk.MarkerBuilder(lifetime_s=0.3)
    header = mm.make_header(STAMP_NS, 'cam')
    right, left = make_hand(track_id=3, seed=1), make_hand(track_id=5, side='left', seed=2)
    first = builder.build(header, [right, left]).markers
    assert len(first) == 8
    assert {(m.ns, m.id) for m in first} == {(ns, i) for ns in mk.NAMESPACES for i in (3, 5)}
    for m in first:
        assert m.header.frame_id == 'cam' and m.action == Marker.ADD
        assert m.header.stamp.sec == STAMP_NS // 10 ** 9
        assert m.frame_locked is False
        assert (m.lifetime.sec, m.lifetime.nanosec) == (0, 300_000_000)
        assert m.pose.orientation.w == 1.0
    by_key = {(m.ns, m.id): m for m in first}
    mesh = by_key[('hand_mesh', 3)]
    assert mesh.type == Marker.TRIANGLE_LIST and len(mesh.points) == 3 * len(right.faces)
    first_triangle = [[p.x, p.y, p.z] for p in mesh.points[:3]]
    np.testing.assert_allclose(first_triangle, right.vertices_m[right.faces[0]], atol=1e-12)
    skeleton = by_key[('hand_skeleton', 3)]
    assert skeleton.type == Marker.LINE_LIST and len(skeleton.points) == 2 * 21
    joints = by_key[('hand_joints', 5)]
    assert joints.type == Marker.SPHERE_LIST and len(joints.points) == 21
    assert by_key[('hand_label', 3)].text == 'right #3 0.97'
    assert by_key[('hand_label', 3)].type == Marker.TEXT_VIEW_FACING
    colour_r = (mesh.color.r, mesh.color.g, mesh.color.b)
    mesh_l = by_key[('hand_mesh', 5)]
    assert colour_r != (mesh_l.color.r, mesh_l.color.g, mesh_l.color.b)
    assert colour_r == pytest.approx(mk.hand_colour('right', 3))
    # The left hand disappears: its four markers are deleted once, then forgotten.
    second = builder.build(header, [right]).markers
    deletes = [m for m in second if m.action == Marker.DELETE]
    assert {(m.ns, m.id) for m in deletes} == {(ns, 5) for ns in mk.NAMESPACES}
    assert all(m.header.frame_id == 'cam' for m in deletes)
    assert len(second) == 8
    third = builder.build(header, []).markers
    assert {(m.ns, m.id, m.action) for m in third} == {
        (ns, 3, Marker.DELETE) for ns in mk.NAMESPACES}
    assert builder.build(header, []).markers == []


def test_fast_marker_serialisation_equals_the_plain_messages():
    assert marker_serialization.self_test()
    header = mm.make_header(STAMP_NS, 'cam')
    hands = [make_hand(track_id=3, seed=1), make_hand(track_id=5, side='left', seed=2)]
    plain, fast = mk.MarkerBuilder(), mk.MarkerBuilder()
    for frame_hands in (hands, hands[:1], []):
        expected = plain.build(header, frame_hands)
        got = fast.build_serialized(header, frame_hands)
        reference = serialize_message(expected)
        assert len(got) == len(reference)
        # Compare content (float32 fields round-tripped on both sides; padding may differ).
        assert (deserialize_message(got, MarkerArray)
                == deserialize_message(reference, MarkerArray))
    back = deserialize_message(fast.build_serialized(header, hands), MarkerArray)
    mesh = back.markers[0]
    assert mesh.ns == 'hand_mesh' and len(mesh.points) == 3 * len(hands[0].faces)
    np.testing.assert_array_equal([[p.x, p.y, p.z] for p in mesh.points],
                                  mk.triangle_corners(hands[0]))


def test_frame_names_are_stable_for_a_tracks_life():
    """A second right hand never renames the first; freed names are reused by new tracks."""
    names = tf.HandFrameNames()
    first = make_hand(track_id=3, seed=1)
    second = make_hand(track_id=8, seed=2)
    third = make_hand(track_id=11, seed=3)
    left = make_hand(track_id=9, side='left', seed=4)
    assert names.assign([first]) == ['hand_right']
    assert names.assign([second, first]) == ['hand_right2', 'hand_right']
    assert names.assign([first, left, second]) == ['hand_right', 'hand_left', 'hand_right2']
    assert names.assign([second]) == ['hand_right2']          # track 3 lost: name released
    assert names.assign([second, third]) == ['hand_right2', 'hand_right']
    assert names.assign([third], prefix='h') == ['h_right']   # a prefix change renames


def test_a_fused_hand_carries_its_best_cameras_shape_source():
    from hand_mesh_ros.core.fusion.fuse import FusedHand
    from hand_mesh_ros.ros import fusion_messages as fm
    header = mm.make_header(STAMP_NS, 'cam')
    hand = replace(make_hand(seed=5), shape_source='refit_2d')
    pose = mm.pose_array_msg(header, [hand]).hands[0]
    observation, problem = fm.observation_from_msg('cam_a', pose, header)
    assert problem == '' and observation.details.shape_source == pose.SHAPE_REFIT_2D
    fused = FusedHand(
        fused_id=1, side=observation.side, stamp_ns=STAMP_NS, frame_id='world',
        wrist_m=observation.wrist_m, covariance_m2=observation.covariance_m2,
        rotation=observation.rotation, joints_m=observation.joints_m,
        pose_coefficients=observation.pose_coefficients, score=observation.score,
        side_score=observation.side_score, confidence=observation.confidence,
        position_mode=observation.position_mode, cameras=('cam_a',), best=observation)
    fused_msg = fm.fused_pose_msg(fused, mm.make_header(STAMP_NS, 'world'))
    assert fused_msg.shape_source == fused_msg.SHAPE_REFIT_2D
    network = fm.observation_from_msg('cam_a', mm.pose_array_msg(
        header, [make_hand(seed=5)]).hands[0], header)[0]
    assert network.details.shape_source == pose.SHAPE_NETWORK
