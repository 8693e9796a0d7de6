"""The open hand model file and its numpy forward pass (shapes, mirroring, keypoints, shape)."""

from collections import Counter

import numpy as np
import pytest

from hand_mesh_ros.core.hand import rotations
from hand_mesh_ros.core.hand.hand_model import load_hand_model, MEDIAPIPE_KEYPOINTS

TIP_KEYPOINTS = (4, 8, 12, 16, 20)
DISTAL_BONES = (4, 8, 12, 16, 20)


@pytest.fixture(scope='module')
def hand():
    return load_hand_model()


def _random_pose(hand, rng, batch=None, scale=0.5):
    size = (hand.n_bones, 3) if batch is None else (batch, hand.n_bones, 3)
    return hand.clamp_pose(rng.normal(0.0, scale, size))


def _boundary_edges(faces):
    count = Counter(tuple(sorted(e)) for f in faces for e in ((f[0], f[1]), (f[1], f[2]),
                                                              (f[2], f[0])))
    return [e for e, n in count.items() if n == 1], max(count.values())


def _signed_volume(vertices, faces):
    """Volume enclosed by the mesh, its open wrist loop closed by a fan to the loop's centre."""
    boundary, _ = _boundary_edges(faces)
    centre = vertices[np.unique(np.array(boundary))].mean(axis=0)
    a, b, c = (vertices[faces[:, i]] - centre for i in range(3))
    return np.einsum('ij,ij->i', a, np.cross(b, c)).sum() / 6.0


def test_file_sizes_and_output_shapes(hand):
    assert (hand.n_vertices, len(hand.faces), hand.n_bones) == (1609, 3196, 21)
    assert hand.n_shapes >= 4
    for name in ('size', 'finger_length', 'finger_thickness', 'palm_width'):
        assert name in hand.shape_names
    out = hand.forward(hand.zero_pose())
    assert out.vertices.shape == (1609, 3) and out.joints.shape == (21, 3)
    assert out.bone_frames.shape == (21, 4, 4) and out.skinning_transforms.shape == (21, 4, 4)
    assert out.keypoints.shape == (21, 3) and len(MEDIAPIPE_KEYPOINTS) == 21
    batch = hand.forward(np.zeros((5, 21, 3)), shape=np.zeros((5, hand.n_shapes)))
    assert batch.vertices.shape == (5, 1609, 3) and batch.keypoints.shape == (5, 21, 3)
    # Skinning weights are normalised and every weight refers to a real bone.
    np.testing.assert_allclose(hand.skin_weights.sum(axis=1), 1.0, atol=1e-6)


def test_zero_pose_reproduces_template(hand):
    out = hand.forward(hand.zero_pose(), shape=hand.zero_shape())
    np.testing.assert_allclose(out.vertices, hand.template_vertices_m, atol=1e-12)
    np.testing.assert_allclose(out.joints, hand.rest_joints_m, atol=1e-12)
    np.testing.assert_allclose(out.skinning_transforms, np.tile(np.eye(4), (21, 1, 1)), atol=1e-12)
    assert np.allclose(out.joints[0], 0.0)  # wrist at the origin


def test_hand_frame_axes(hand):
    kp = hand.forward(hand.zero_pose()).keypoints
    # +y distal: the middle MCP lies on the +y axis; +x radial: the thumb and index on +x.
    assert kp[9, 1] > 0.08 and abs(kp[9, 0]) < 1e-6 and abs(kp[9, 2]) < 1e-6
    assert kp[4, 0] > 0.04 and kp[5, 0] > 0.0 > kp[17, 0]
    # +z palmar: the thumb tip sits in front of the palm and the fingers curl towards +z.
    assert kp[4, 2] > 0.02 and kp[12, 2] > kp[9, 2]
    # Adult hand: wrist to middle fingertip 15-22 cm.
    assert 0.15 < np.linalg.norm(kp[12]) < 0.22


def test_batched_equals_single(hand):
    rng = np.random.default_rng(1)
    poses = _random_pose(hand, rng, batch=3)
    shapes = rng.normal(0.0, 1.0, (3, hand.n_shapes))
    batch = hand.forward(poses, shape=shapes, side='left')
    for i in range(3):
        single = hand.forward(poses[i], shape=shapes[i], side='left')
        np.testing.assert_allclose(batch.vertices[i], single.vertices, atol=1e-12)
        np.testing.assert_allclose(batch.keypoints[i], single.keypoints, atol=1e-12)


def test_joint_limits_and_clamp(hand):
    lo, hi = hand.joint_limits_min_rad, hand.joint_limits_max_rad
    assert lo.shape == hi.shape == (21, 3) and np.all(lo < hi)
    # Every finger joint flexes (+x) further than it extends, PIP joints about 100 degrees.
    for bone in (6, 7, 8, 10, 11, 12, 14, 15, 16, 18, 19, 20):
        assert hi[bone, 0] > -lo[bone, 0] and hi[bone, 0] >= np.radians(80)
    assert np.degrees(hi[11, 0]) == pytest.approx(100.0, abs=1e-3)
    wild = np.random.default_rng(2).normal(0.0, 3.0, (21, 3))
    assert not hand.within_limits(wild).all()
    clamped = hand.clamp_pose(wild)
    assert hand.within_limits(clamped).all()
    inside = hand.within_limits(wild)
    np.testing.assert_array_equal(clamped[inside], wild[inside])
    assert wild.std() > 2.0  # the input was not modified in place


def test_flexion_axis_curls_fingers_towards_palm(hand):
    rest = hand.forward(hand.zero_pose()).keypoints
    for mcp_bone, tip in ((6, 8), (10, 12), (14, 16), (18, 20)):
        pose = hand.zero_pose()
        pose[mcp_bone, 0] = np.radians(60)
        kp = hand.forward(pose).keypoints
        assert kp[tip, 2] - rest[tip, 2] > 0.01  # moves out of the palm side (+z)
        assert np.linalg.norm(kp[tip] - kp[0]) < np.linalg.norm(rest[tip] - rest[0])
    # The thumb flexes across the palm, towards the little finger (-x).
    for bone in (2, 3, 4):
        pose = hand.zero_pose()
        pose[bone, 0] = np.radians(40)
        assert hand.forward(pose).keypoints[4, 0] - rest[4, 0] < -0.015


def test_posing_is_rigid_along_bones(hand):
    rng = np.random.default_rng(3)
    shape = rng.normal(0.0, 1.0, hand.n_shapes)
    rest = hand.forward(hand.zero_pose(), shape=shape)
    out = hand.forward(_random_pose(hand, rng), shape=shape)
    for child in range(1, 21):
        parent = hand.parents[child]
        assert np.linalg.norm(out.joints[child] - out.joints[parent]) == pytest.approx(
            np.linalg.norm(rest.joints[child] - rest.joints[parent]), abs=1e-9)
    rot = out.skinning_transforms[:, :3, :3]
    np.testing.assert_allclose(rot @ np.swapaxes(rot, 1, 2), np.tile(np.eye(3), (21, 1, 1)),
                               atol=1e-9)
    # A vertex skinned to one bone only moves with that bone's transform.
    single = np.flatnonzero(hand.skin_weights.max(axis=1) > 0.999999)
    v = single[len(single) // 2]
    bone = int(np.argmax(hand.skin_weights[v]))
    t = out.skinning_transforms[bone]
    np.testing.assert_allclose(out.vertices[v], t[:3, :3] @ rest.vertices[v] + t[:3, 3],
                               atol=1e-6)


def test_mesh_is_nearly_closed_and_normals_point_out_on_both_sides(hand):
    boundary, max_share = _boundary_edges(hand.faces)
    assert max_share == 2  # manifold
    assert len(boundary) == 20  # only the wrist cut is open
    rng = np.random.default_rng(4)
    for pose in (hand.zero_pose(), _random_pose(hand, rng, scale=0.3)):
        right = hand.forward(pose, side='right')
        left = hand.forward(pose, side='left')
        np.testing.assert_allclose(left.vertices, right.vertices * [-1.0, 1.0, 1.0])
        np.testing.assert_allclose(left.keypoints, right.keypoints * [-1.0, 1.0, 1.0])
        vol_right = _signed_volume(right.vertices, right.faces)
        vol_left = _signed_volume(left.vertices, left.faces)
        assert 2e-4 < vol_right < 6e-4  # 200-600 ml, outward normals
        assert vol_left == pytest.approx(vol_right, rel=1e-9)
        # Using the right hand's triangles for the left hand would turn it inside out.
        assert _signed_volume(left.vertices, right.faces) < 0.0
    assert np.linalg.det(left.skinning_transforms[:, :3, :3]) == pytest.approx(np.ones(21))
    # Mirrored transforms act on mirrored rest points.
    rest_left = hand.template_vertices_m * [-1.0, 1.0, 1.0]
    t = left.skinning_transforms[5]
    w = hand.skin_weights[:, 5] > 0.999999
    np.testing.assert_allclose(rest_left[w] @ t[:3, :3].T + t[:3, 3], left.vertices[w],
                               atol=1e-6)
    np.testing.assert_array_equal(hand.faces_for('left'), hand.faces[:, ::-1])
    with pytest.raises(ValueError):
        hand.faces_for('both')


def test_fingertips_lie_on_the_surface_at_the_tip(hand):
    faces = {tuple(sorted(f)) for f in hand.faces.tolist()}
    rng = np.random.default_rng(5)
    for pose in (hand.zero_pose(), _random_pose(hand, rng)):
        out = hand.forward(pose)
        for k, bone in zip(TIP_KEYPOINTS, DISTAL_BONES):
            idx = hand.keypoint_vertex_index[k]
            w = hand.keypoint_vertex_weight[k]
            assert tuple(sorted(idx.tolist())) in faces  # a point of one mesh triangle
            assert np.all(w >= 0) and w.sum() == pytest.approx(1.0, abs=1e-6)
            axis = out.bone_frames[bone, :3, 1]
            head = out.joints[bone]
            along = (out.keypoints[k] - head) @ axis
            assert 0.012 < along < 0.035
            # The bone's owned vertices reach no further than 2 mm past the keypoint.
            owned = hand.skin_weights[:, bone] > 0.5
            assert ((out.vertices[owned] - head) @ axis).max() < along + 0.002
    # The other keypoints are joint centres (bone heads).
    kp = out.keypoints
    np.testing.assert_allclose(kp[[0, 1, 2, 3, 5, 6, 7, 9, 13, 17]],
                               out.joints[[0, 2, 3, 4, 6, 7, 8, 10, 14, 18]])


def _length(hand, shape, a, b):
    kp = hand.forward(hand.zero_pose(), shape=shape).keypoints
    return np.linalg.norm(kp[a] - kp[b])


def _shape(hand, name, value):
    shape = hand.zero_shape()
    shape[hand.shape_names.index(name)] = value
    return shape


def test_shape_directions_do_what_their_names_say(hand):
    zero = hand.zero_shape()
    # size: +1 = +10 % wrist-to-middle-tip length (and every other length).
    assert _length(hand, _shape(hand, 'size', 1.0), 0, 12) == pytest.approx(
        1.1 * _length(hand, zero, 0, 12), rel=1e-5)
    assert _length(hand, _shape(hand, 'size', -2.0), 5, 17) == pytest.approx(
        0.8 * _length(hand, zero, 5, 17), rel=1e-5)
    # finger_length: MCP-to-tip +10 %, palm unchanged.
    longer = _shape(hand, 'finger_length', 1.0)
    for mcp, tip in ((9, 12), (5, 8), (17, 20)):
        assert _length(hand, longer, mcp, tip) == pytest.approx(
            1.1 * _length(hand, zero, mcp, tip), rel=0.02)
    assert _length(hand, longer, 0, 9) == pytest.approx(_length(hand, zero, 0, 9), abs=1e-9)
    # palm_width: index-to-pinky MCP distance +10 %, finger length unchanged.
    wider = _shape(hand, 'palm_width', 1.0)
    assert _length(hand, wider, 5, 17) == pytest.approx(1.1 * _length(hand, zero, 5, 17),
                                                        rel=0.02)
    assert _length(hand, wider, 9, 12) == pytest.approx(_length(hand, zero, 9, 12), rel=1e-3)
    # finger_thickness: the middle phalanx's girth +10 %, its length unchanged.
    thick = _shape(hand, 'finger_thickness', 1.0)
    owned = hand.skin_weights[:, 11] > 0.9
    for shape, factor in ((zero, 1.0), (thick, 1.1)):
        out = hand.forward(hand.zero_pose(), shape=shape)
        rel = out.vertices[owned] - out.joints[11]
        axis = out.bone_frames[11, :3, 1]
        radius = np.linalg.norm(rel - np.outer(rel @ axis, axis), axis=1).mean()
        if factor == 1.0:
            base_radius = radius
        else:
            assert radius == pytest.approx(1.1 * base_radius, rel=1e-3)
            assert 0.006 < base_radius < 0.012
    assert _length(hand, thick, 10, 11) == pytest.approx(_length(hand, zero, 10, 11), abs=1e-9)


def test_rotation_helpers():
    rng = np.random.default_rng(6)
    aa = rng.normal(0.0, 1.0, (50, 3))
    aa[0] = 0.0
    aa[1] = [1e-9, -2e-9, 0.0]
    aa[2] = [0.0, np.pi - 1e-7, 0.0]
    rot = rotations.axis_angle_to_matrix(aa)
    np.testing.assert_allclose(rot @ np.swapaxes(rot, 1, 2), np.tile(np.eye(3), (50, 1, 1)),
                               atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(rot), 1.0, atol=1e-12)
    # Rotation about +x by 90 degrees maps +y to +z.
    np.testing.assert_allclose(rotations.axis_angle_to_matrix([np.pi / 2, 0, 0]) @ [0, 1, 0],
                               [0, 0, 1], atol=1e-12)
    back = rotations.axis_angle_to_matrix(rotations.matrix_to_axis_angle(rot))
    np.testing.assert_allclose(back, rot, atol=1e-6)
    _, jac = rotations.axis_angle_to_matrix_jacobian(aa)
    eps = 1e-6
    for i in range(3):
        step = np.zeros(3)
        step[i] = eps
        numeric = (rotations.axis_angle_to_matrix(aa + step)
                   - rotations.axis_angle_to_matrix(aa - step)) / (2 * eps)
        np.testing.assert_allclose(jac[..., i], numeric, atol=1e-6)
    mirrored = rotations.MIRROR_X @ rot @ rotations.MIRROR_X
    np.testing.assert_allclose(rotations.axis_angle_to_matrix(rotations.mirror_axis_angle(aa)),
                               mirrored, atol=1e-12)
