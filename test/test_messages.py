"""The package's messages import, carry every documented field and survive serialisation."""

import json
import math
import os
from pathlib import Path
import sys

import pytest

rclpy_serialization = pytest.importorskip(
    'rclpy.serialization', reason='ROS 2 (rclpy) is not installed: run bootstrap.sh first')

from hand_mesh_ros.msg import HandMesh, HandMeshArray, HandPose, HandPoseArray  # noqa: E402,I100
from hand_mesh_ros.ros.smoke import make_sample_messages  # noqa: E402

STAMP_NS = 1_700_000_000_123_456_789


def _roundtrip(message):
    data = rclpy_serialization.serialize_message(message)
    return rclpy_serialization.deserialize_message(data, type(message))


def test_hand_pose_fields_and_constants():
    pose = HandPose()
    assert len(pose.joints) == 21
    assert len(pose.keypoints_px) == 42
    assert {HandPose.SIDE_LEFT, HandPose.SIDE_RIGHT} == {0, 1}
    assert {HandPose.POSITION_FULL_INTRINSICS, HandPose.POSITION_ASSUMED_FOV,
            HandPose.POSITION_WEAK_PERSPECTIVE} == {0, 1, 2}
    for field in ('header', 'track_id', 'side', 'side_score', 'score', 'wrist_pose',
                  'joints', 'keypoints_px', 'hand_model', 'pose_coefficients',
                  'shape_coefficients', 'hand_length_m', 'reprojection_error_px',
                  'position_status', 'confidence', 'position_covariance'):
        assert hasattr(pose, field), field


def test_pose_array_roundtrip_keeps_every_value():
    poses, _, _ = make_sample_messages(STAMP_NS, frame_id='cam_optical')
    back = _roundtrip(poses)
    assert back.header.stamp.sec * 10**9 + back.header.stamp.nanosec == STAMP_NS
    assert back.header.frame_id == 'cam_optical'
    assert len(back.hands) == 1
    hand, orig = back.hands[0], poses.hands[0]
    assert hand.track_id == 7 and hand.side == HandPose.SIDE_RIGHT
    assert hand.hand_model == 'anny'
    assert math.isclose(hand.score, 0.95, rel_tol=1e-6)
    assert math.isclose(hand.hand_length_m, 0.19, rel_tol=1e-6)
    assert math.isclose(hand.confidence, 0.8, rel_tol=1e-6)
    assert list(hand.position_covariance) == list(orig.position_covariance)
    assert [(j.x, j.y, j.z) for j in hand.joints] == [(j.x, j.y, j.z) for j in orig.joints]
    assert list(hand.keypoints_px) == pytest.approx(list(orig.keypoints_px))
    assert list(hand.shape_coefficients) == pytest.approx([0.1, -0.2, 0.0, 0.3])
    assert len(hand.pose_coefficients) == 63
    assert hand.position_status == HandPose.POSITION_FULL_INTRINSICS


def test_empty_arrays_roundtrip():
    assert len(_roundtrip(HandPoseArray()).hands) == 0
    assert len(_roundtrip(HandMeshArray()).hands) == 0


def test_mesh_roundtrip_layout():
    _, meshes, _ = make_sample_messages(STAMP_NS)
    back = _roundtrip(meshes)
    mesh = back.hands[0]
    assert mesh.side == HandMesh.SIDE_RIGHT and mesh.track_id == 7
    assert len(mesh.vertices) == 12 and len(mesh.triangles) == 12
    assert list(mesh.triangles) == [0, 2, 1, 0, 1, 3, 0, 3, 2, 1, 2, 3]
    assert list(mesh.vertices) == pytest.approx(list(meshes.hands[0].vertices))


def test_tf_message_has_the_real_type_hash():
    """Check TFMessage (real or built from vendor/) is wire-compatible with real tf2."""
    _, _, tf_message = make_sample_messages(STAMP_NS)
    back = _roundtrip(tf_message)
    assert back.transforms[0].child_frame_id == 'hand_right_wrist'
    prefixes = [p for p in os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep) if p]
    candidates = [Path(p) / 'share/tf2_msgs/msg/TFMessage.json'
                  for p in prefixes + [sys.prefix]]
    path = next((c for c in candidates if c.is_file()), None)
    assert path is not None, 'TFMessage.json not found in %s' % candidates
    description = json.loads(path.read_text())
    hashes = [h['hash_string'] for h in description['type_hashes']
              if h['type_name'] == 'tf2_msgs/msg/TFMessage']
    assert hashes == [
        'RIHS01_e369d0f05a23ae52508854b66f6aa0437f3449d652e8cbf22d5abe85d020f087']
