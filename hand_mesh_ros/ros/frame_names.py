"""Names of a node's hand TF frames, unique per camera, and the clashes that break TF.

``output.tf_prefix`` names the frames ``<prefix>_<side>[<n>]_<bone>``. Left empty (the
default) the prefix comes from the node's namespace: ``hand`` at the root, ``cam_a_hand`` in
``/cam_a``, ``robot_left_hand`` in ``/robot/left``, so that two cameras in two namespaces never
publish the same child frame under two parents.

A clash is reported, never silently published: a camera frame id that has the shape of a hand
frame of this node (the tree would loop), a hand frame of this node that another publisher
puts under another parent (two parents), and a camera frame id that another node publishes as
one of its hand frames.
"""

import re
import time

from hand_mesh_ros.core.hand.topology import FINGER_NAMES

#: A clash not seen again for this long is over (seconds).
CLASH_MEMORY_S = 10.0
#: The prefix at the root namespace, and the last part of every derived prefix.
DEFAULT_TF_PREFIX = 'hand'
#: ``<prefix>_<side>[<n>]_<bone>`` of any prefix: the hand model's root and wrist bones and
#: every ``<finger>_<segment>`` (``index_distal``, ``thumb_tip``).
HAND_FRAME_RE = re.compile(r'(?P<prefix>[A-Za-z][A-Za-z0-9_]*)_(?:left|right)[0-9]*_'
                           r'(?:root|wrist|(?:%s)_[a-z]+)' % '|'.join(FINGER_NAMES))


def tf_prefix(parameter_value, namespace, base=DEFAULT_TF_PREFIX):
    """Return the prefix of the node's hand frames.

    Args:
        parameter_value: ``output.tf_prefix`` ('' = derive from ``namespace``).
        namespace: the node's namespace, e.g. '/', '/cam_a', '/robot/left'.
        base: the derived prefix's last part (``fused`` for the fusion node).

    """
    if parameter_value:
        return parameter_value
    return '_'.join([part for part in namespace.split('/') if part] + [base])


def is_hand_frame(frame_id, prefix=None):
    """Return True when ``frame_id`` is a hand frame name (of ``prefix`` when given)."""
    match = HAND_FRAME_RE.fullmatch(frame_id)
    return match is not None and (prefix is None or match.group('prefix') == prefix)


class FrameClashMonitor:
    """Watch /tf for transforms that clash with this node's frames; report the problems.

    The worker tells it the frames in use (:meth:`note_frames`); the /tf subscription hands
    it every message (:meth:`observe`); /diagnostics reads :meth:`problems`: the clashes
    seen in the last ``memory_s`` seconds.
    """

    def __init__(self, memory_s=CLASH_MEMORY_S, clock=time.monotonic):
        """Start with no frames in use and no clash seen."""
        self._memory_s = memory_s
        self._clock = clock
        self._camera_frame_id = None
        self._prefix = None
        self._clashes = {}   # kind, frame -> (sentence, last seen)

    def note_frames(self, camera_frame_id, prefix):
        """Record the camera frame id and hand frame prefix of the latest image."""
        self._camera_frame_id, self._prefix = camera_frame_id, prefix
        if is_hand_frame(camera_frame_id, prefix):
            self._record(('loop', camera_frame_id), (
                "camera frame %r is named like this node's own hand frames (tf prefix %r): "
                'the TF tree would loop; set another output.tf_prefix'
                % (camera_frame_id, prefix)))

    def observe(self, transforms):
        """Record the clashes in ``transforms`` (geometry_msgs/TransformStamped) seen on /tf.

        This node's own transforms (its hand frames under its camera frame or under its own
        hand frames) are no clash.
        """
        camera_frame_id, prefix = self._camera_frame_id, self._prefix
        if camera_frame_id is None:
            return
        for transform in transforms:
            child, parent = transform.child_frame_id, transform.header.frame_id
            ours = parent == camera_frame_id or is_hand_frame(parent, prefix)
            if is_hand_frame(child, prefix) and not ours:
                self._record(('parent', child), (
                    'hand frame %r is also published under %r (another node uses tf prefix '
                    '%r): give each camera its own namespace or output.tf_prefix'
                    % (child, parent, prefix)))
            elif child == camera_frame_id and is_hand_frame(child):
                self._record(('camera', child), (
                    'camera frame %r is a hand frame of another node (published under %r): '
                    "set the camera driver's frame id or that node's output.tf_prefix"
                    % (child, parent)))

    def _record(self, key, sentence):
        self._clashes[key] = (sentence, self._clock())

    def problems(self):
        """Return the clashes seen in the last ``memory_s`` seconds, sorted (one sentence each)."""
        oldest = self._clock() - self._memory_s
        return sorted(sentence for sentence, seen in list(self._clashes.values())
                      if seen >= oldest)


def watch_tf(node, depth=100):
    """Subscribe ``node`` to /tf with a new FrameClashMonitor; return the monitor.

    The subscription lives as long as ``node`` and counts as one reader of the node's own
    /tf publisher.
    """
    from rclpy.qos import QoSProfile
    from tf2_msgs.msg import TFMessage
    monitor = FrameClashMonitor()
    node.create_subscription(TFMessage, '/tf', lambda msg: monitor.observe(msg.transforms),
                             QoSProfile(depth=depth))
    return monitor
