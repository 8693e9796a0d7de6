"""The hand-written rotation conversions against transforms3d, an independent implementation.

The batched numpy code stays on the hot paths (the tailor, the skinning, the TF tree) because
transforms3d converts one matrix per Python call; here it serves as the reference.
"""

import math

import numpy as np
import pytest
from transforms3d import axangles, quaternions

from hand_mesh_ros.core.hand import rotations


def _random_axis_angles(n, seed):
    rng = np.random.default_rng(seed)
    axes = rng.normal(size=(n, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    angles = rng.uniform(0.0, math.pi, n)
    angles[:6] = [0.0, 1e-9, 1e-5, math.pi - 1e-7, math.pi - 1e-3, math.pi]
    return axes, angles


def test_axis_angle_to_matrix_matches_transforms3d():
    axes, angles = _random_axis_angles(400, 1)
    ours = rotations.axis_angle_to_matrix(axes * angles[:, None])
    for rot, axis, angle in zip(ours, axes, angles):
        np.testing.assert_allclose(rot, axangles.axangle2mat(axis, angle), atol=1e-12)


def test_matrix_to_axis_angle_matches_transforms3d_up_to_the_sign_at_pi():
    axes, angles = _random_axis_angles(400, 2)
    rots = np.array([axangles.axangle2mat(a, t) for a, t in zip(axes, angles)])
    ours = rotations.matrix_to_axis_angle(rots)
    for vec, rot, angle in zip(ours, rots, angles):
        ref_axis, ref_angle = axangles.mat2axangle(rot)
        assert np.linalg.norm(vec) == pytest.approx(abs(ref_angle), abs=2e-7)
        assert np.linalg.norm(vec) == pytest.approx(angle, abs=2e-7)
        if 1e-6 < angle < math.pi - 1e-3:
            np.testing.assert_allclose(vec, ref_axis * ref_angle, atol=1e-8)
        # Whatever the sign at pi, the vector must give back the rotation.
        np.testing.assert_allclose(rotations.axis_angle_to_matrix(vec), rot, atol=1e-6)


def test_one_rotation_and_a_batch_give_the_same_quaternions():
    pytest.importorskip('rclpy', reason='ROS 2 (rclpy) is not installed: run bootstrap.sh')
    from hand_mesh_ros.ros.tf_frames import rotation_to_quaternion
    axes, angles = _random_axis_angles(300, 3)
    rots = rotations.axis_angle_to_matrix(axes * angles[:, None])
    batch = rotation_to_quaternion(rots)
    single = np.array([rotation_to_quaternion(rot) for rot in rots])
    assert single.shape == batch.shape == (300, 4)
    np.testing.assert_allclose(np.linalg.norm(single, axis=1), 1.0, atol=1e-12)
    assert np.all(single[:, 3] >= 0.0) and np.all(batch[:, 3] >= 0.0)
    for q_one, q_batch, rot in zip(single, batch, rots):
        # q and -q are one rotation; they differ only where w == 0.
        sign = 1.0 if np.dot(q_one, q_batch) >= 0.0 else -1.0
        np.testing.assert_allclose(q_one, sign * q_batch, atol=1e-9)
        wxyz = np.roll(q_one, 1)
        np.testing.assert_allclose(quaternions.quat2mat(wxyz), rot, atol=1e-10)
