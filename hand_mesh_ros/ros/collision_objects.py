"""Hands as MoveIt collision objects on ``/collision_object`` (moveit_msgs/CollisionObject).

One object per tracked hand, id ``<prefix>_<side>[<n>]`` (the hand's TF name prefix), in the
frame its hand is published in, with the object's pose at the wrist:

- ADD once, with the geometry (primitives relative to the wrist);
- MOVE while the hand is tracked, at most ``output.collision_update_rate_hz`` per object
  (pose only, as MoveIt requires); when the hand's shape in its wrist frame (articulation or
  padding) changes by more than RESHAPE_TOLERANCE_M the object is sent again with ADD,
  which MoveIt documents as replacing it;
- REMOVE once its hand was not seen for ``output.collision_lost_timeout_s`` (at most 0.9 s;
  checked every 0.1 s on a timer, so also when no message arrives at all: an object goes
  within 1 s of its hand's loss) and for every object when the node stops.

Shape (``output.collision_shape``): 'capsules' (default) gives each of the 20 bones of the
keypoint tree a cylinder and every joint a sphere, so consecutive bones form capsules; the
palm gets thicker capsules from the wrist to each finger base. 'spheres' puts a sphere on
every joint and every bone's midpoint. Both are primitives for which MoveIt's collision
checker (FCL) has closed-form distances, about 40 per hand, and padding them is exact (a
larger radius); a hand mesh (about 3200 triangles) would cost far more per check and
cannot be padded without rebuilding it. Padding: ``output.collision_padding_sigma`` times
the standard deviation of the wrist position along its worst axis (the covariance's largest
eigenvalue), added to every radius, so the robot keeps clear by more when it is less sure.
"""

from dataclasses import dataclass
import threading
import time

import numpy as np

from hand_mesh_ros.core.hand.topology import BONE_PAIRS, FINGER_CHAINS, NUM_KEYPOINTS
from hand_mesh_ros.ros.tf_frames import HandFrameNames, rotation_to_quaternion

#: Radius of a finger bone or joint, metres (an adult finger is 15-20 mm thick).
FINGER_RADIUS_M = 0.009
#: Radius of the palm's capsules (wrist to each finger base), metres.
PALM_RADIUS_M = 0.018
#: A shape change (primitive position or radius, metres) that re-sends the geometry.
RESHAPE_TOLERANCE_M = 0.01
#: Period of the loss check, seconds.
EXPIRE_PERIOD_S = 0.1
#: The collision object operations (moveit_msgs/CollisionObject constants).
ADD, REMOVE, MOVE = 0, 1, 3
#: Shapes of the ``output.collision_shape`` parameter.
SHAPES = ('capsules', 'spheres')
#: Primitive kinds (shape_msgs/SolidPrimitive constants).
SPHERE, CYLINDER = 2, 3


@dataclass(frozen=True)
class CollisionHand:
    """What a collision object is made of: one hand in one frame (metres).

    name: the object id; frame_id/stamp_ns: the frame and stamp of the hand;
    t_frame_wrist: (4, 4) wrist pose; joints_m: (21, 3) joints in ``frame_id``;
    covariance_m2: (3, 3) wrist position covariance in ``frame_id``.
    """

    name: str
    frame_id: str
    stamp_ns: int
    t_frame_wrist: np.ndarray
    joints_m: np.ndarray
    covariance_m2: np.ndarray


def padding_m(covariance_m2, padding_sigma):
    """Return ``padding_sigma`` times the standard deviation of the covariance's worst axis."""
    worst = float(np.linalg.eigvalsh(np.asarray(covariance_m2, dtype=np.float64))[-1])
    return float(padding_sigma) * np.sqrt(max(worst, 0.0))


def _bone_radius(parent, child):
    return PALM_RADIUS_M if parent == 0 else FINGER_RADIUS_M


def hand_primitives(joints_wrist_m, padding, shape='capsules'):
    """Return ``[(kind, dimensions, (4, 4) pose in the wrist frame)]`` of one hand.

    ``joints_wrist_m``: (21, 3) joints in the wrist frame. Cylinders run along their z axis
    (dimensions: height, radius); spheres have dimensions (radius,).
    """
    joints = np.asarray(joints_wrist_m, dtype=np.float64)
    radius = np.full(NUM_KEYPOINTS, FINGER_RADIUS_M)
    radius[0] = PALM_RADIUS_M
    radius[[chain[0] for chain in FINGER_CHAINS]] = PALM_RADIUS_M
    out = []
    for k in range(NUM_KEYPOINTS):
        out.append((SPHERE, (radius[k] + padding,), _translation(joints[k])))
    for parent, child in BONE_PAIRS:
        start, end = joints[parent], joints[child]
        if shape == 'spheres':
            out.append((SPHERE, (_bone_radius(parent, child) + padding,),
                        _translation(0.5 * (start + end))))
            continue
        length = float(np.linalg.norm(end - start))
        if length < 1e-6:
            continue
        out.append((CYLINDER, (length, _bone_radius(parent, child) + padding),
                    _segment_pose(start, end)))
    return out


def _translation(position):
    t = np.eye(4)
    t[:3, 3] = position
    return t


def _segment_pose(start, end):
    """Return a pose at the segment's midpoint whose z axis runs along it."""
    z = (end - start) / np.linalg.norm(end - start)
    helper = np.array([1.0, 0.0, 0.0]) if abs(z[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    x = np.cross(helper, z)
    x /= np.linalg.norm(x)
    t = _translation(0.5 * (start + end))
    t[:3, :3] = np.stack([x, np.cross(z, x), z], axis=1)
    return t


def shape_signature(primitives):
    """Return (N, 4) numbers that change when a primitive moves or changes its size."""
    return np.array([list(pose[:3, 3]) + [dims[-1]] for _, dims, pose in primitives])


class CollisionObjectTracker:
    """Decide ADD / MOVE / REMOVE per object (no ROS): ``update``, ``expire``, ``close``.

    Each returns ``[(operation, hand or None, name, primitives or None)]`` to send.
    """

    def __init__(self, padding_sigma=2.0, update_rate_hz=10.0, lost_timeout_s=0.5,
                 shape='capsules'):
        """Set the padding (k sigma), the MOVE rate per object, the loss timeout, the shape."""
        if shape not in SHAPES:
            raise ValueError('collision shape must be one of %s, got %r' % (SHAPES, shape))
        self.padding_sigma = float(padding_sigma)
        self.period_ns = int(1e9 / float(update_rate_hz))
        self.lost_timeout_ns = int(float(lost_timeout_s) * 1e9)
        self.shape = shape
        self._live = {}   # name -> {'sent_ns', 'seen_ns', 'frame_id', 'signature'}

    @property
    def live_names(self):
        """Return the ids of the objects in the planning scene (ADDed, not REMOVEd)."""
        return sorted(self._live)

    def update(self, hands, now_ns):
        """Return the operations for one frame's tracked ``hands`` (CollisionHand list)."""
        out = []
        for hand in hands:
            t_wrist_frame = np.linalg.inv(hand.t_frame_wrist)
            joints = np.asarray(hand.joints_m) @ t_wrist_frame[:3, :3].T + t_wrist_frame[:3, 3]
            primitives = hand_primitives(
                joints, padding_m(hand.covariance_m2, self.padding_sigma), self.shape)
            signature = shape_signature(primitives)
            state = self._live.get(hand.name)
            if state is None or state['frame_id'] != hand.frame_id or (
                    now_ns - state['sent_ns'] >= self.period_ns
                    and _reshaped(state['signature'], signature)):
                out.append((ADD, hand, hand.name, primitives))
                state = {'sent_ns': now_ns, 'frame_id': hand.frame_id, 'signature': signature}
            elif now_ns - state['sent_ns'] >= self.period_ns:
                out.append((MOVE, hand, hand.name, None))
                state['sent_ns'] = now_ns
            state['seen_ns'] = now_ns
            self._live[hand.name] = state
        return out

    def expire(self, now_ns):
        """Return REMOVE operations for the objects whose hand is lost."""
        lost = [name for name, state in self._live.items()
                if now_ns - state['seen_ns'] > self.lost_timeout_ns]
        return [self._remove(name) for name in sorted(lost)]

    def close(self):
        """Return REMOVE operations for every live object."""
        return [self._remove(name) for name in sorted(self._live)]

    def _remove(self, name):
        state = self._live.pop(name)
        return (REMOVE, None, name, state['frame_id'])


def _reshaped(old, new):
    return old.shape != new.shape or float(np.max(np.abs(old - new))) > RESHAPE_TOLERANCE_M


def _pose_msg(t):
    from geometry_msgs.msg import Pose
    pose = Pose()
    pose.position.x, pose.position.y, pose.position.z = (float(v) for v in t[:3, 3])
    q = rotation_to_quaternion(t[:3, :3])
    pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w = (
        float(v) for v in q)
    return pose


def collision_object_msg(operation, hand, name, extra, stamp_ns):
    """Return a moveit_msgs/CollisionObject for one tracker operation."""
    from moveit_msgs.msg import CollisionObject
    from shape_msgs.msg import SolidPrimitive
    from hand_mesh_ros.ros.messages import make_header
    msg = CollisionObject(id=name, operation=bytes([operation]))   # a byte (octet) field
    if operation == REMOVE:
        msg.header = make_header(stamp_ns, extra)
        return msg
    msg.header = make_header(hand.stamp_ns, hand.frame_id)
    msg.pose = _pose_msg(hand.t_frame_wrist)
    if operation == ADD:
        msg.primitives = [SolidPrimitive(type=kind, dimensions=[float(d) for d in dims])
                          for kind, dims, _ in extra]
        msg.primitive_poses = [_pose_msg(pose) for _, _, pose in extra]
    return msg


class CollisionObjectPublisher:
    """Publish a node's hands on ``/collision_object`` (see the module docstring)."""

    TOPIC = '/collision_object'

    def __init__(self, node, padding_sigma, update_rate_hz, lost_timeout_s, shape):
        """Create the publisher and the loss timer on ``node``.

        Raises:
            ImportError: moveit_msgs is not installed (see :func:`create`).

        """
        from moveit_msgs.msg import CollisionObject
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        self._node = node
        self._tracker = CollisionObjectTracker(padding_sigma, update_rate_hz, lost_timeout_s,
                                               shape)
        self._lock = threading.Lock()   # update (a worker) and the timer (the executor)
        self._pub = node.create_publisher(
            CollisionObject, self.TOPIC,
            QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))
        self._timer = node.create_timer(EXPIRE_PERIOD_S, self.expire)
        self._names = HandFrameNames()   # object ids of HandEstimates (update_estimates)
        self._closed = False

    def _now_ns(self):
        return time.monotonic_ns()

    def _send(self, operations):
        stamp_ns = self._node.get_clock().now().nanoseconds
        for operation in operations:
            self._pub.publish(collision_object_msg(*operation, stamp_ns))
        return len(operations)

    def update(self, hands):
        """Publish the operations for one frame's tracked hands (CollisionHand list)."""
        with self._lock:
            if not self._closed:
                self._send(self._tracker.update(hands, self._now_ns()))

    def update_estimates(self, hands, prefix, frame_id, stamp_ns):
        """Publish the operations for one image's HandEstimates (camera frame ``frame_id``).

        Object ids are the hands' TF name prefixes ``<prefix>_<side>[<n>]``, stable per track.
        """
        names = self._names.assign(hands, prefix)
        self.update(estimate_collision_hands(hands, names, frame_id, stamp_ns))

    def expire(self):
        """Publish REMOVE for the objects whose hand is lost (timer callback)."""
        with self._lock:
            if not self._closed:
                self._send(self._tracker.expire(self._now_ns()))

    def close(self, ack_timeout_s=1.0):
        """Publish REMOVE for every live object and wait until subscribers have them."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            sent = self._send(self._tracker.close())
        self._timer.cancel()
        if sent:
            from rclpy.duration import Duration
            self._pub.wait_for_all_acked(Duration(seconds=ack_timeout_s))


def create(node, values):
    """Return a CollisionObjectPublisher for ``values`` (None when the output is off).

    Without moveit_msgs the output stays off and the node's log says how to get it.
    """
    if not values['output.collision_objects']:
        return None
    try:
        return CollisionObjectPublisher(
            node, values['output.collision_padding_sigma'],
            values['output.collision_update_rate_hz'],
            values['output.collision_lost_timeout_s'], values['output.collision_shape'])
    except ImportError as exc:
        node.get_logger().error(
            'output.collision_objects is on but moveit_msgs cannot be imported (%s): install '
            'ros-$ROS_DISTRO-moveit-msgs, or run bootstrap.sh in the pip setup; no collision '
            'objects are published' % exc)
        return None


def estimate_collision_hands(hands, names, frame_id, stamp_ns):
    """Return CollisionHands of HandEstimates (camera frame) named by ``names``."""
    from hand_mesh_ros.ros.messages import wrist_bone_index
    return [CollisionHand(name=name, frame_id=frame_id, stamp_ns=int(stamp_ns),
                          t_frame_wrist=np.asarray(
                              hand.bone_transforms[wrist_bone_index(hand.bone_names)]),
                          joints_m=np.asarray(hand.joints_m),
                          covariance_m2=np.asarray(hand.position_covariance_m2))
            for hand, name in zip(hands, names)]
