"""End to end over real DDS: camera_source and hand_mesh_node in their own processes.

This test is a third process: it only subscribes, like a robot controller or RViz would. The
input is the first frames of the sample video (with its calibration file) followed by blank
frames, so both "hand" and "no hand" outputs are checked for content, not just arrival.
"""

import json
import math
import subprocess
import sys

import cv2
import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy', reason='ROS 2 (rclpy) is not installed: run bootstrap.sh')

from hand_mesh_ros.core.hand.hand_model import load_hand_model  # noqa: E402
from hand_mesh_ros.paths import data_dir, models_dir  # noqa: E402
from hand_mesh_ros.ros import processes  # noqa: E402
from hand_mesh_ros.ros.tf_frames import FINGERTIPS  # noqa: E402

VIDEO_FRAMES = 30
BLANK_FRAMES = 6
FINGER_OF_TIP = {index: finger for finger, index in FINGERTIPS}


def _stamp_ns(header):
    return header.stamp.sec * 1_000_000_000 + header.stamp.nanosec


def _make_input_folder(folder):
    capture = cv2.VideoCapture(str(data_dir() / 'asl_hand.25fps.mp4'))
    for index in range(VIDEO_FRAMES):
        ok, bgr = capture.read()
        assert ok
        cv2.imwrite(str(folder / ('%03d.png' % index)), bgr)
    capture.release()
    blank = np.full_like(bgr, 200)
    for index in range(VIDEO_FRAMES, VIDEO_FRAMES + BLANK_FRAMES):
        cv2.imwrite(str(folder / ('%03d.png' % index)), blank)


@pytest.fixture(scope='module')
def outputs(tmp_path_factory):
    """Run camera_source -> hand_mesh_node -> recorder; return what the recorder received.

    ``hand-mesh demo`` starts the three processes (source, node, and a recorder that
    subscribes like any ROS tool and writes every output topic to an MCAP bag); this test
    process then reads the bag. The recorder runs in its own process because Fast DDS reads
    its transport profile once per process, and the lossless shared-memory profile must be
    in place before the first participant is created.
    """
    if not (models_dir() / 'hand_mesh_full.onnx').is_file():
        pytest.fail('models missing: run `hand-mesh setup-models` (bootstrap.sh does)')
    from rclpy.serialization import deserialize_message
    from hand_mesh_ros.ros.bag_io import message_class, read_bag

    tmp = tmp_path_factory.mktemp('e2e')
    folder = tmp / 'frames'
    folder.mkdir()
    _make_input_folder(folder)
    proc = subprocess.run(
        [sys.executable, '-m', 'hand_mesh_ros.tools.demo', '--source', str(folder),
         '--out', str(tmp / 'out'), '--rate-hz', '8', '--timeout', '120', '--json'],
        capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    keys = {processes.CAMERA_INFO_TOPIC: 'info', '/hand/poses': 'poses', '/hand/mesh': 'mesh',
            '/tf': 'tf', '/hand/markers': 'markers', '/diagnostics': 'diag'}
    got = {key: [] for key in keys.values()}
    for topic, msgtype, _, cdr in read_bag(summary['bag']):
        if topic in keys:
            got[keys[topic]].append(deserialize_message(cdr, message_class(msgtype)))
    got['node_exit_code'] = summary['node_exit_code']
    return got


def _frame_index(outputs):
    """Map image stamps to input frame indices (camera_info arrives once per image)."""
    return {_stamp_ns(info.header): i for i, info in enumerate(outputs['info'])}


def test_every_image_gets_outputs_with_its_stamp(outputs):
    assert len(outputs['info']) == VIDEO_FRAMES + BLANK_FRAMES
    index = _frame_index(outputs)
    assert len(outputs['poses']) >= 0.8 * len(outputs['info'])  # latest-frame-wins may drop
    assert [_stamp_ns(m.header) for m in outputs['poses']] == \
        [_stamp_ns(m.header) for m in outputs['mesh']]
    for msg in outputs['poses'] + outputs['mesh']:
        assert _stamp_ns(msg.header) in index
        assert msg.header.frame_id == outputs['info'][0].header.frame_id
    assert outputs['node_exit_code'] == 0


def test_mesh_keypoints_match_the_golden_keypoints(outputs):
    """Model keypoints projected with K (HandPose.keypoints_px) vs MediaPipe's golden 2D."""
    golden = np.array(json.loads((data_dir() / 'asl_hand.full.json').read_text()))[..., :2]
    index = _frame_index(outputs)
    errors = []
    for msg in outputs['poses']:
        i = index[_stamp_ns(msg.header)]
        if i >= VIDEO_FRAMES:
            continue
        assert len(msg.hands) == 1, 'frame %d: %d hands' % (i, len(msg.hands))
        keypoints = np.asarray(msg.hands[0].keypoints_px, dtype=float).reshape(21, 2)
        errors.append(np.linalg.norm(keypoints - golden[i], axis=1))
    assert len(errors) >= 0.8 * VIDEO_FRAMES
    assert np.median(errors) <= 8.0


def test_blank_images_give_empty_arrays(outputs):
    index = _frame_index(outputs)
    blank = [m for m in outputs['poses'] if index[_stamp_ns(m.header)] >= VIDEO_FRAMES + 2]
    assert blank, 'no blank frame was processed'
    assert all(len(m.hands) == 0 for m in blank)
    meshes = {_stamp_ns(m.header): m for m in outputs['mesh']}
    assert all(len(meshes[_stamp_ns(m.header)].hands) == 0 for m in blank)


def test_mesh_message_layout_and_values(outputs):
    model = load_hand_model()
    with_hand = [m for m in outputs['mesh'] if m.hands]
    assert with_hand
    for msg in with_hand:
        mesh = msg.hands[0]
        vertices = np.asarray(mesh.vertices).reshape(-1, 3)
        triangles = np.asarray(mesh.triangles).reshape(-1, 3)
        assert vertices.shape == (model.n_vertices, 3)
        assert triangles.shape == model.faces.shape and triangles.max() < len(vertices)
        assert np.all(np.isfinite(vertices)) and np.all(vertices[:, 2] > 0.1)


def _transforms_by_stamp(tf_messages):
    """Return {stamp ns: {child frame id: TransformStamped}} of recorded /tf messages."""
    by_stamp = {}
    for msg in tf_messages:
        for t in msg.transforms:
            by_stamp.setdefault(_stamp_ns(t.header), {})[t.child_frame_id] = t
    return by_stamp


def test_tf_chain_reproduces_the_pose_joints(outputs):
    """Compose /tf from the camera frame; each keypoint frame lands on HandPose.joints."""
    model = load_hand_model()
    tf_by_stamp = _transforms_by_stamp(outputs['tf'])
    checked = 0
    for msg in outputs['poses']:
        if not msg.hands:
            continue
        frames = tf_by_stamp[_stamp_ns(msg.header)]
        hand = msg.hands[0]
        prefix = 'hand_%s' % ('right' if hand.side == hand.SIDE_RIGHT else 'left')
        for k, joint in enumerate(hand.joints):
            bone = model.keypoint_joint_index[k]
            name = ('%s_%s_tip' % (prefix, FINGER_OF_TIP[k]) if bone < 0
                    else '%s_%s' % (prefix, model.bone_names[bone]))
            position = _compose(frames, name, msg.header.frame_id)
            assert np.allclose(position, [joint.x, joint.y, joint.z], atol=1e-4), name
        checked += 1
    assert checked >= 10


def _compose(frames, child, root):
    """Return the position of ``child`` in ``root`` by chaining TF transforms."""
    return _compose_matrix(frames, child, root)[:3, 3]


def _compose_matrix(frames, child, root):
    """Return the (4, 4) transform of ``child`` in ``root`` by chaining TF transforms."""
    chain = []
    while child != root:
        t = frames[child]
        chain.append(t.transform)
        child = t.header.frame_id
    matrix = np.eye(4)
    for tr in reversed(chain):
        q = tr.rotation
        x, y, z, w = q.x, q.y, q.z, q.w
        assert math.isclose(x * x + y * y + z * z + w * w, 1.0, abs_tol=1e-6)
        rot = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
        step = np.eye(4)
        step[:3, :3] = rot
        step[:3, 3] = [tr.translation.x, tr.translation.y, tr.translation.z]
        matrix = matrix @ step
    return matrix


def test_markers_are_well_formed(outputs):
    from visualization_msgs.msg import Marker
    model = load_hand_model()
    frame_id = outputs['info'][0].header.frame_id
    meshes = [m for arr in outputs['markers'] for m in arr.markers
              if m.action == Marker.ADD and m.type == Marker.TRIANGLE_LIST]
    assert meshes
    for marker in meshes:
        assert marker.header.frame_id == frame_id
        assert len(marker.points) == 3 * len(model.faces)
        assert 0.0 < marker.color.a <= 1.0
        assert all(math.isfinite(p.x + p.y + p.z) for p in marker.points[:50])
    kinds = {m.type for arr in outputs['markers'] for m in arr.markers if m.action == m.ADD}
    assert {Marker.LINE_LIST, Marker.SPHERE_LIST, Marker.TEXT_VIEW_FACING} <= kinds
    deletes = [m for arr in outputs['markers'] for m in arr.markers if m.action == m.DELETE]
    assert deletes, 'markers of the lost hand must be deleted'


def test_nothing_published_is_nan(outputs):
    for msg in outputs['poses']:
        for hand in msg.hands:
            values = [hand.score, hand.side_score, hand.hand_length_m, hand.confidence,
                      hand.reprojection_error_px, hand.wrist_pose.position.z]
            values += list(hand.position_covariance)
            assert 0.0 <= hand.confidence <= 1.0
            values += [c for j in hand.joints for c in (j.x, j.y, j.z)]
            values += list(hand.keypoints_px) + list(hand.pose_coefficients)
            assert all(math.isfinite(v) for v in values)
            assert hand.position_status == hand.POSITION_FULL_INTRINSICS
    for msg in outputs['tf']:
        for t in msg.transforms:
            tr = t.transform
            values = (tr.translation.x, tr.translation.y, tr.translation.z, tr.rotation.w)
            assert all(math.isfinite(v) for v in values)


def test_diagnostics_report_the_backend_and_camera(outputs):
    values = {kv.key: kv.value for arr in outputs['diag'] for s in arr.status for kv in s.values}
    assert values.get('backend') == 'onnxruntime'
    assert values.get('camera_mode') == 'full_intrinsics'
    assert int(values.get('frames_received', 0)) > 0


def test_documented_wrist_axes_match_the_published_tf(outputs):
    """HandPose.msg: wrist +y towards the middle MCP, +z palmar, +x to the thumb (right)."""
    tf_by_stamp = _transforms_by_stamp(outputs['tf'])
    checked = 0
    for msg in outputs['poses']:
        if not msg.hands:
            continue
        hand = msg.hands[0]
        side = 'right' if hand.side == hand.SIDE_RIGHT else 'left'
        frames = tf_by_stamp[_stamp_ns(msg.header)]
        rotation = _compose_matrix(frames, 'hand_%s_wrist' % side, msg.header.frame_id)[:3, :3]
        x_axis, y_axis, z_axis = rotation.T
        joints = np.array([[j.x, j.y, j.z] for j in hand.joints])
        wrist, index_mcp, middle_mcp, pinky_mcp = joints[[0, 5, 9, 17]]
        towards_middle = (middle_mcp - wrist) / np.linalg.norm(middle_mcp - wrist)
        across = (index_mcp - pinky_mcp) / np.linalg.norm(index_mcp - pinky_mcp)
        assert towards_middle @ y_axis > 0.8
        thumb_side = across if side == 'right' else -across
        assert thumb_side @ x_axis > 0.5
        # Palmar: the palm normal (right-handed wrist frame) agrees with +z; the quaternion of
        # HandPose.wrist_pose is the same frame.
        assert np.cross(x_axis, y_axis) @ z_axis > 0.99
        q = hand.wrist_pose.orientation
        assert abs(abs(np.dot([q.x, q.y, q.z, q.w], _quaternion_of(rotation))) - 1.0) < 1e-4
        checked += 1
    assert checked >= 10


def _quaternion_of(rotation):
    from hand_mesh_ros.ros.tf_frames import rotation_to_quaternion
    return rotation_to_quaternion(rotation)
