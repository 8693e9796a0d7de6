"""A test participant for hand_fusion_node over real DDS: cameras' hands and TF in, results out.

:class:`FusionScene` publishes ``/tf_static`` and each camera's ``<camera>/hand/poses`` and
records what the fusion node publishes (``hands/poses``, ``/collision_object``,
``/diagnostics``, ``/tf``) with the monotonic time of arrival. :func:`start_fusion_node`
runs the node as its own process on the same ROS domain.
"""

import os
import subprocess
import sys
import threading
import time

import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from scipy.spatial.transform import Rotation

from hand_mesh_ros.ros.messages import make_header, POSITION_STATUS, SIDE_VALUE


def hand_pose_msg(obs, header):
    """Return a HandPose of a HandObservation (camera frame)."""
    from geometry_msgs.msg import Point
    from hand_mesh_ros.msg import HandPose
    msg = HandPose(header=header, track_id=obs.track_id, side=SIDE_VALUE[obs.side],
                   side_score=obs.side_score, score=obs.score, confidence=obs.confidence,
                   position_covariance=np.asarray(obs.covariance_m2).ravel().tolist(),
                   position_status=POSITION_STATUS[obs.position_mode], hand_model='anny',
                   hand_length_m=0.18)
    p = msg.wrist_pose.position
    p.x, p.y, p.z = (float(v) for v in obs.wrist_m)
    q = Rotation.from_matrix(obs.rotation).as_quat()
    o = msg.wrist_pose.orientation
    o.x, o.y, o.z, o.w = (float(v) for v in q)
    msg.joints = [Point(x=x, y=y, z=z) for x, y, z in np.asarray(obs.joints_m).tolist()]
    return msg


def transform_msg(parent, child, t_parent_child):
    """Return a TransformStamped (stamp 0) of a (4, 4) transform."""
    from geometry_msgs.msg import TransformStamped
    msg = TransformStamped()
    msg.header.frame_id, msg.child_frame_id = parent, child
    tr = msg.transform.translation
    tr.x, tr.y, tr.z = (float(v) for v in t_parent_child[:3, 3])
    q = Rotation.from_matrix(t_parent_child[:3, :3]).as_quat()
    r = msg.transform.rotation
    r.x, r.y, r.z, r.w = (float(v) for v in q)
    return msg


class FusionScene:
    """The test side of a fusion run (see the module docstring)."""

    def __init__(self, domain_id, cameras):
        """Create publishers for ``cameras`` and the recording subscriptions; start spinning."""
        from diagnostic_msgs.msg import DiagnosticArray
        from hand_mesh_ros.msg import HandPoseArray
        from moveit_msgs.msg import CollisionObject
        from tf2_msgs.msg import TFMessage
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node('fusion_scene', context=self.context)
        reliable = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        static = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                            durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.tf_static = self.node.create_publisher(TFMessage, '/tf_static', static)
        self.poses = {camera: self.node.create_publisher(HandPoseArray,
                                                         '/%s/hand/poses' % camera, reliable)
                      for camera in cameras}
        self.lock = threading.Lock()
        self.received = {'poses': [], 'collision': [], 'diagnostics': [], 'tf': []}
        for key, kind, topic, qos in (('poses', HandPoseArray, '/hands/poses', reliable),
                                      ('collision', CollisionObject, '/collision_object',
                                       reliable),
                                      ('diagnostics', DiagnosticArray, '/diagnostics',
                                       QoSProfile(depth=100)),
                                      ('tf', TFMessage, '/tf', QoSProfile(depth=100))):
            self.node.create_subscription(kind, topic,
                                          lambda m, key=key: self._record(key, m), qos)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._spin = threading.Thread(target=self._run, daemon=True)
        self._stop = False
        self._spin.start()

    def _run(self):
        while not self._stop and self.context.ok():
            self.executor.spin_once(timeout_sec=0.02)

    def _record(self, key, msg):
        with self.lock:
            self.received[key].append((time.monotonic(), msg))

    def messages(self, key):
        """Return ``[(arrival monotonic s, message)]`` received on ``key`` so far."""
        with self.lock:
            return list(self.received[key])

    def publish_static(self, transforms):
        """Publish ``[(parent, child, (4, 4))]`` on /tf_static as one message."""
        from tf2_msgs.msg import TFMessage
        self.tf_static.publish(TFMessage(transforms=[transform_msg(*t) for t in transforms]))

    def publish_hands(self, camera, frame_id, stamp_ns, observations):
        """Publish one HandPoseArray of ``camera`` with HandObservations (camera frame)."""
        from hand_mesh_ros.msg import HandPoseArray
        header = make_header(stamp_ns, frame_id)
        self.poses[camera].publish(HandPoseArray(
            header=header, hands=[hand_pose_msg(obs, header) for obs in observations]))

    def wait_for(self, predicate, timeout_s):
        """Return True once ``predicate()`` holds, False after ``timeout_s``."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if predicate():
                return True
            time.sleep(0.02)
        return False

    def wait_for_subscribers(self, timeout_s=20.0):
        """Wait until the fusion node subscribes to every camera topic."""
        return self.wait_for(lambda: all(p.get_subscription_count() > 0
                                         for p in self.poses.values()), timeout_s)

    def close(self):
        """Stop spinning and shut this participant down."""
        self._stop = True
        self._spin.join(timeout=5.0)
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


def start_fusion_node(domain_id, params):
    """Start hand_fusion_node as a process on ``domain_id`` with ``{name: value}``."""
    args = [sys.executable, '-m', 'hand_mesh_ros.ros.fusion_node', '--ros-args']
    for name, value in params.items():
        if isinstance(value, bool):
            value = 'true' if value else 'false'
        args += ['-p', '%s:=%s' % (name, value)]
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain_id), RCUTILS_LOGGING_BUFFERED_STREAM='1')
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
