"""Publish colour, camera_info and (where present) registered depth frames; record /hand/poses.

Test helper for ``test_depth_end_to_end.py``, run as its own process (its DDS transport
profile is set before its first participant, like the node's):
``python test/rgbd_publisher.py FRAMES.npz RATE_HZ OUT.json``. The file holds ``rgb``
(N, H, W, 3) uint8, ``depth_mm`` (N, H, W) uint16 (all zero = no depth message for that
frame), ``stamps_ns`` (N,) and ``k`` (9,). Waits for the node's three subscriptions first;
writes every received HandPoseArray (stamp, frame id, per hand: status, wrist, whether every
number is finite) to OUT.json.
"""

import json
import math
import sys
import time

import numpy as np
import rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image

from hand_mesh_ros.msg import HandPoseArray  # noqa: I100
from hand_mesh_ros.ros.image_conversion import rgb_to_image
from hand_mesh_ros.ros.messages import ns_to_time

FRAME_ID = 'camera_color_optical_frame'
DEPTH_TOPIC = '/camera/aligned_depth_to_color/image_raw'


def depth_message(depth_mm, stamp_ns):
    """Return a 16UC1 sensor_msgs/Image (millimetres) of ``depth_mm``."""
    msg = Image(height=depth_mm.shape[0], width=depth_mm.shape[1], encoding='16UC1',
                is_bigendian=False, step=2 * depth_mm.shape[1])
    msg.data = depth_mm.astype('<u2').tobytes()
    msg.header.stamp = ns_to_time(stamp_ns)
    msg.header.frame_id = FRAME_ID
    return msg


def info_message(k, width, height, stamp_ns):
    """Return the CameraInfo of the colour camera (no distortion)."""
    msg = CameraInfo(width=width, height=height, distortion_model='plumb_bob')
    msg.d = [0.0] * 5
    msg.k = [float(v) for v in k]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg.p = [k[0], 0.0, k[2], 0.0, 0.0, k[4], k[5], 0.0, 0.0, 0.0, 1.0, 0.0]
    msg.header.stamp = ns_to_time(stamp_ns)
    msg.header.frame_id = FRAME_ID
    return msg


def summary(msg):
    """Return a JSON-able summary of a HandPoseArray."""
    hands = []
    for hand in msg.hands:
        values = [hand.score, hand.reprojection_error_px]
        values += [c for j in hand.joints for c in (j.x, j.y, j.z)]
        values += list(hand.keypoints_px) + list(hand.shape_coefficients)
        position = hand.wrist_pose.position
        hands.append({'status': int(hand.position_status),
                      'wrist': [position.x, position.y, position.z],
                      'finite': all(math.isfinite(v) for v in values)})
    return {'stamp_ns': msg.header.stamp.sec * 10 ** 9 + msg.header.stamp.nanosec,
            'frame_id': msg.header.frame_id, 'hands': hands}


def spin_for(node, seconds):
    """Spin ``node`` for ``seconds``."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=max(0.0, min(0.05, end - time.monotonic())))


def main(argv):
    """Publish every frame of the file at ``RATE_HZ``; return 0."""
    data = np.load(argv[1])
    rate_hz = float(argv[2])
    rclpy.init()
    node = rclpy.create_node('rgbd_publisher')
    qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
    image_pub = node.create_publisher(Image, '/camera/image_raw', qos)
    info_pub = node.create_publisher(CameraInfo, '/camera/camera_info', qos)
    depth_pub = node.create_publisher(Image, DEPTH_TOPIC, qos)
    received = []
    node.create_subscription(HandPoseArray, '/hand/poses', lambda m: received.append(
        summary(m)), QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))
    deadline = time.monotonic() + 120.0
    while time.monotonic() < deadline and min(
            p.get_subscription_count() for p in (image_pub, info_pub, depth_pub)) == 0:
        rclpy.spin_once(node, timeout_sec=0.1)
    spin_for(node, 1.0)
    height, width = data['rgb'].shape[1:3]
    for rgb, depth_mm, stamp in zip(data['rgb'], data['depth_mm'], data['stamps_ns']):
        stamp = int(stamp)
        if depth_mm.any():
            depth_pub.publish(depth_message(depth_mm, stamp))
        info_pub.publish(info_message(data['k'], width, height, stamp))
        image_pub.publish(rgb_to_image(rgb, stamp=ns_to_time(stamp), frame_id=FRAME_ID))
        spin_for(node, 1.0 / rate_hz)
    spin_for(node, 4.0)
    with open(argv[3], 'w', encoding='utf-8') as stream:
        json.dump(received, stream)
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
