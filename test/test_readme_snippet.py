"""The README's controller snippet runs as written and acts only on metric, confident hands."""

import os
from pathlib import Path
import random
import re
import signal
import subprocess
import sys
import time

import pytest

rclpy = pytest.importorskip('rclpy', reason='ROS 2 (rclpy) is not installed: run bootstrap.sh')

from hand_mesh_ros.msg import HandPose, HandPoseArray  # noqa: E402,I100

README = Path(__file__).resolve().parents[1] / 'README.md'


def _subscriber_snippet():
    """Return the README's first Python block (the HandPoseArray subscriber)."""
    blocks = re.findall(r'```python\n(.*?)```', README.read_text(encoding='utf-8'), re.S)
    assert blocks and 'HandPoseArray' in blocks[0]
    return blocks[0]


def _hand(track_id, status, confidence):
    hand = HandPose(track_id=track_id, position_status=status, confidence=confidence)
    hand.wrist_pose.position.z = 0.5
    hand.position_covariance = [4e-4, 0.0, 0.0, 0.0, 4e-4, 0.0, 0.0, 0.0, 9e-4]
    return hand


def test_readme_subscriber_logs_only_metric_confident_hands(tmp_path, monkeypatch):
    script = tmp_path / 'snippet.py'
    script.write_text(_subscriber_snippet())
    domain = str(random.randint(120, 220))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            env=dict(os.environ, ROS_DOMAIN_ID=domain))
    monkeypatch.setenv('ROS_DOMAIN_ID', domain)
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = rclpy.create_node('readme_snippet_publisher', context=context)
        pub = node.create_publisher(HandPoseArray, '/hand/poses', 10)
        msg = HandPoseArray()
        msg.header.frame_id = 'camera_optical_frame'
        msg.hands = [_hand(7, HandPose.POSITION_FULL_INTRINSICS, 0.9),
                     _hand(8, HandPose.POSITION_ASSUMED_FOV, 0.9),
                     _hand(9, HandPose.POSITION_DEPTH_FUSED, 0.2)]
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline and pub.get_subscription_count() == 0:
            time.sleep(0.1)
        for _ in range(10):
            pub.publish(msg)
            time.sleep(0.1)
    finally:
        rclpy.shutdown(context=context)
        proc.send_signal(signal.SIGINT)
        try:
            out = proc.communicate(timeout=20)[0]
        except subprocess.TimeoutExpired:
            proc.kill()
            out = proc.communicate()[0]
    assert 'hand 7 at (0.000, 0.000, 0.500) m +- 0.030 m in camera_optical_frame' in out, out
    assert 'hand 8 ' not in out and 'hand 9 ' not in out
