"""hand_mesh_node's collision objects (output.collision_objects) over DDS, in one process.

The pipeline is test_node_process's test-data pipeline (the real hand model in front of the
camera); a NaN hand it also returns is dropped by the node and never becomes an object.
"""

import time

import numpy as np
import pytest

pytest.importorskip('rclpy', reason='ROS 2 (rclpy) is not installed')
pytest.importorskip('moveit_msgs.msg', reason='moveit_msgs is not built (bootstrap.sh)')

from moveit_msgs.msg import CollisionObject  # noqa: E402,I100
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from test_node_process import Harness  # noqa: E402


def test_hand_mesh_node_adds_moves_and_removes_collision_objects():
    h = Harness(overrides=[('output.collision_objects', True),
                           ('output.collision_lost_timeout_s', 0.5),
                           ('output.collision_update_rate_hz', 20.0),
                           ('output.tf_prefix', 'cam1')])
    got = []
    h.probe.create_subscription(CollisionObject, '/collision_object',
                                lambda m: got.append((time.monotonic(), m)),
                                QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))
    try:
        h.pipeline.nan_hand = True
        stamp = 1_000_000_000
        for k in range(50):   # until the object moved (a loaded machine drops images)
            h.send(stamp + k * 100_000_000)
            if h.wait(lambda: any(m.operation == b'\x03' for _, m in got), 0.1):
                break
        last_hand = time.monotonic()
        for k in range(50, 56):   # black images: processed, no hand
            h.send(stamp + k * 100_000_000, rgb=np.zeros((240, 320, 3), np.uint8))
            time.sleep(0.1)
        assert h.wait(lambda: any(m.operation == b'\x01' for _, m in got), 10.0), got
        for k in range(60, 80):   # the hand comes back: a new ADD
            h.send(stamp + k * 100_000_000)
            if h.wait(lambda: [m.operation for _, m in got].count(b'\x00') == 2, 0.2):
                break
        h.node.close()   # stopping the node removes what it added
        assert h.wait(lambda: [m.operation for _, m in got].count(b'\x01') == 2, 10.0), got
    finally:
        h.close()
    ops = [(m.id, m.operation) for _, m in got]
    assert {name for name, _ in ops} == {'cam1_right'}   # never the NaN (left) hand
    assert ops[0] == ('cam1_right', b'\x00') and ops[1][1] == b'\x03', ops
    assert [op for _, op in ops].count(b'\x00') == 2, ops
    first = [m for _, m in got][0]
    assert first.header.frame_id == 'cam_optical' and len(first.primitives) == 41
    assert all(np.isfinite(d) for p in first.primitives for d in p.dimensions)
    removed_at = next(t for t, m in got if m.operation == b'\x01')
    assert removed_at - last_hand < 1.0
