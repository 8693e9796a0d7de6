"""Messages published in one process arrive intact in another over real DDS (no mocks)."""

import json
import subprocess
import sys

import pytest

pytest.importorskip('rclpy', reason='ROS 2 (rclpy) is not installed: run bootstrap.sh first')


def test_pose_mesh_and_tf_cross_processes():
    # The talker (a child process) starts the listener (a grandchild); this test is a
    # third process that only reads the listener's report.
    proc = subprocess.run(
        [sys.executable, '-m', 'hand_mesh_ros.ros.smoke', '--json', '--timeout', '40'],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result['ok'] is True
    assert result['listener_pid'] != result['talker_pid']
    poses = result['poses']
    assert poses['hands'] == 1 and poses['track_ids'] == [7] and poses['joints'] == [21]
    assert poses['wrist_z_m'] == [0.5] and poses['finite'] is True
    assert poses['frame_id'] == 'camera_color_optical_frame'
    assert result['mesh']['vertices'] == [4] and result['mesh']['triangles'] == [4]
    assert result['mesh']['stamp_ns'] == poses['stamp_ns']
    assert result['tf']['child_frames'] == ['hand_right_wrist']
    assert result['tf']['stamp_ns'] == [poses['stamp_ns']]
