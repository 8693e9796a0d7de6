"""Transforms between frames at a stamp: tf2_ros where it exists, else a stand-in buffer.

:func:`create_transform_lookup` returns an object with one method,
``lookup(target_frame, source_frame, stamp_ns) -> (4, 4) T_target_source`` (it maps points
in ``source_frame`` into ``target_frame``), raising :class:`TransformError` with a ``kind``
('unknown_frame', 'connectivity', 'extrapolation', 'loop') when there is no answer. On a ROS
distribution it is tf2_ros's Buffer and TransformListener. The pip-wheel setup has no
tf2_ros; there :class:`TransformStore` (fed from ``/tf`` and ``/tf_static``) answers with
tf2's lookup rules, as tf2's BufferCore documents them:

- a frame has one parent per sample; a transform message names parent (header.frame_id)
  and child (child_frame_id);
- a frame first set from ``/tf_static`` holds one value for all time (a later value
  replaces it); a frame first set from ``/tf`` keeps its stamped samples for
  ``cache_time_s`` behind its newest one;
- between two samples the translation is interpolated linearly and the rotation by slerp;
  at a sample's stamp that sample is returned; before the oldest or after the newest sample
  the lookup fails (extrapolation into the past or the future: tf2 never extrapolates);
- stamp 0 asks for the latest time at which every frame of the chain has data;
- the chain goes from both frames up to their common ancestor; frames in trees that do
  not meet fail with 'connectivity'; a parent chain longer than MAX_GRAPH_DEPTH (a loop)
  fails with 'loop'; a frame nobody published fails with 'unknown_frame';
- bad input is ignored (and its reason returned): empty frame ids, a frame that is its own
  parent, non-finite values, a quaternion whose squared norm is off 1 by more than 1e-5, a
  stamp older than the cache, a repeated stamp.
"""

import bisect
import threading

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

#: Longest parent chain walked (tf2's MAX_GRAPH_DEPTH): a longer one is a loop.
MAX_GRAPH_DEPTH = 1000
#: How far the squared norm of a quaternion may be from 1 (tf2's check).
QUATERNION_TOLERANCE = 1e-5


class TransformError(Exception):
    """No transform: ``kind`` is 'unknown_frame', 'connectivity', 'extrapolation' or 'loop'."""

    def __init__(self, kind, message):
        """Keep the kind beside the message."""
        super().__init__(message)
        self.kind = kind


def matrix(translation, quaternion_xyzw):
    """Return the (4, 4) transform of a translation (3,) and a quaternion (x, y, z, w)."""
    t = np.eye(4)
    t[:3, :3] = Rotation.from_quat(quaternion_xyzw).as_matrix()
    t[:3, 3] = translation
    return t


class _FrameCache:
    """One child frame's samples: ``(stamp_ns, parent, translation, quaternion)``."""

    def __init__(self, static):
        self.static = static
        self.stamps = []
        self.samples = []

    def insert(self, sample, cache_time_ns):
        if self.static:
            self.stamps, self.samples = [sample[0]], [sample]
            return ''
        stamp = sample[0]
        if self.stamps and stamp < self.stamps[-1] - cache_time_ns:
            return 'old_data'
        index = bisect.bisect_left(self.stamps, stamp)
        if index < len(self.stamps) and self.stamps[index] == stamp:
            return 'repeated_data'
        self.stamps.insert(index, stamp)
        self.samples.insert(index, sample)
        oldest = self.stamps[-1] - cache_time_ns
        while self.stamps[0] < oldest:
            self.stamps.pop(0)
            self.samples.pop(0)
        return ''

    def at(self, stamp_ns):
        """Return ``(parent, (4, 4) T_parent_child)`` at ``stamp_ns`` (0: the newest)."""
        if self.static or stamp_ns == 0:
            _, parent, translation, quat = self.samples[-1]
            return parent, matrix(translation, quat)
        if stamp_ns < self.stamps[0] or stamp_ns > self.stamps[-1]:
            raise TransformError('extrapolation', 'extrapolation into the %s: %d ns is %s '
                                 'the data (%d .. %d ns)' % (
                                     'past' if stamp_ns < self.stamps[0] else 'future',
                                     stamp_ns, 'before' if stamp_ns < self.stamps[0]
                                     else 'after', self.stamps[0], self.stamps[-1]))
        index = bisect.bisect_left(self.stamps, stamp_ns)
        if self.stamps[index] == stamp_ns:
            _, parent, translation, quat = self.samples[index]
            return parent, matrix(translation, quat)
        (t0, parent0, p0, q0), (t1, parent1, p1, q1) = self.samples[index - 1:index + 1]
        if parent0 != parent1:   # tf2: no interpolation across a parent change
            return parent0, matrix(p0, q0)
        ratio = (stamp_ns - t0) / (t1 - t0)
        rotation = Slerp([0.0, 1.0], Rotation.from_quat([q0, q1]))(ratio)
        return parent0, matrix((1.0 - ratio) * np.asarray(p0) + ratio * np.asarray(p1),
                               rotation.as_quat())

    def newest_ns(self):
        return 0 if self.static else self.stamps[-1]


def transform_problem(parent, child, translation, quaternion_xyzw):
    """Return why a transform is refused (tf2's checks), or ''."""
    if not parent or not child:
        return 'empty_frame_id'
    if parent == child:
        return 'self_transform'
    values = np.concatenate([np.asarray(translation, dtype=np.float64),
                             np.asarray(quaternion_xyzw, dtype=np.float64)])
    if not np.all(np.isfinite(values)):
        return 'nan_input'
    if abs(float(np.sum(values[3:] ** 2)) - 1.0) > QUATERNION_TOLERANCE:
        return 'denormalized_quaternion'
    return ''


class TransformStore:
    """tf2's buffer semantics (see the module docstring) over numpy; thread-safe."""

    def __init__(self, cache_time_s=10.0):
        """Keep dynamic samples ``cache_time_s`` behind each frame's newest one."""
        self.cache_time_ns = int(cache_time_s * 1e9)
        self._frames = {}   # child -> _FrameCache
        self._parents = set()
        self._lock = threading.Lock()

    def set_transform(self, parent, child, stamp_ns, translation, quaternion_xyzw,
                      static=False):
        """Store one transform; return '' or why it was ignored."""
        problem = transform_problem(parent, child, translation, quaternion_xyzw)
        if problem:
            return problem
        sample = (int(stamp_ns), parent, tuple(float(v) for v in translation),
                  tuple(float(v) for v in quaternion_xyzw))
        with self._lock:
            cache = self._frames.setdefault(child, _FrameCache(static))
            self._parents.add(parent)
            return cache.insert(sample, self.cache_time_ns)

    def frame_exists(self, frame):
        """Return True for a frame seen as a child or a parent."""
        with self._lock:
            return frame in self._frames or frame in self._parents

    def lookup(self, target_frame, source_frame, stamp_ns):
        """Return (4, 4) T_target_source at ``stamp_ns`` (0: latest common time)."""
        with self._lock:
            for frame in (target_frame, source_frame):
                if frame not in self._frames and frame not in self._parents:
                    raise TransformError('unknown_frame', 'frame %r does not exist' % frame)
            if target_frame == source_frame:
                return np.eye(4)
            if stamp_ns == 0:
                stamp_ns = self._latest_common_ns(target_frame, source_frame)
            source_chain = self._chain(source_frame, stamp_ns)
            target_chain = self._chain(target_frame, stamp_ns)
        target_index = {frame: i for i, (frame, _) in enumerate(target_chain)}
        for frame, t_frame_source in source_chain:
            if frame in target_index:
                t_frame_target = target_chain[target_index[frame]][1]
                return np.linalg.solve(t_frame_target, t_frame_source)
        raise TransformError('connectivity', 'could not find a connection between %r and %r '
                             'because they are not part of the same tree'
                             % (target_frame, source_frame))

    def _chain(self, frame, stamp_ns):
        """Return ``[(ancestor, T_ancestor_frame)]`` from ``frame`` itself up to its root."""
        chain = [(frame, np.eye(4))]
        current, t_current = frame, np.eye(4)
        while current in self._frames:
            if len(chain) > MAX_GRAPH_DEPTH:
                raise TransformError('loop', 'the tf tree contains a loop (frame %r has more '
                                     'than %d ancestors)' % (frame, MAX_GRAPH_DEPTH))
            parent, t_parent_current = self._frames[current].at(stamp_ns)
            current, t_current = parent, t_parent_current @ t_current
            chain.append((current, t_current))
        return chain

    def _latest_common_ns(self, target_frame, source_frame):
        """Return the newest stamp every dynamic frame of both chains has (0: all static)."""
        newest = []
        for frame in (target_frame, source_frame):
            current, depth = frame, 0
            while current in self._frames and depth <= MAX_GRAPH_DEPTH:
                cache = self._frames[current]
                if not cache.static:
                    newest.append(cache.newest_ns())
                current, depth = cache.samples[-1][1], depth + 1
        return min(newest) if newest else 0


def store_message(store, msg, static):
    """Put every transform of a tf2_msgs/TFMessage into ``store``; return {reason: count}."""
    refused = {}
    for transform in msg.transforms:
        t, r = transform.transform.translation, transform.transform.rotation
        stamp = transform.header.stamp
        problem = store.set_transform(
            transform.header.frame_id, transform.child_frame_id,
            int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec), (t.x, t.y, t.z),
            (r.x, r.y, r.z, r.w), static=static)
        if problem:
            refused[problem] = refused.get(problem, 0) + 1
    return refused


class StandInLookup:
    """A TransformStore fed by ``/tf`` and ``/tf_static`` subscriptions of ``node``."""

    name = 'stand-in buffer (tf2_ros not importable)'

    def __init__(self, node, cache_time_s=10.0):
        """Subscribe to /tf (volatile) and /tf_static (transient local, like tf2_ros)."""
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
        from tf2_msgs.msg import TFMessage
        self.store = TransformStore(cache_time_s)
        self.refused = {}
        static_qos = QoSProfile(depth=100, durability=DurabilityPolicy.TRANSIENT_LOCAL,
                                reliability=ReliabilityPolicy.RELIABLE)
        self._subs = [
            node.create_subscription(TFMessage, '/tf', lambda m: self._add(m, False),
                                     QoSProfile(depth=100)),
            node.create_subscription(TFMessage, '/tf_static', lambda m: self._add(m, True),
                                     static_qos)]

    def _add(self, msg, static):
        for reason, count in store_message(self.store, msg, static).items():
            self.refused[reason] = self.refused.get(reason, 0) + count

    def lookup(self, target_frame, source_frame, stamp_ns):
        """Return (4, 4) T_target_source at ``stamp_ns`` (see TransformStore.lookup)."""
        return self.store.lookup(target_frame, source_frame, int(stamp_ns))


class Tf2RosLookup:
    """tf2_ros's Buffer and TransformListener behind the same ``lookup``."""

    name = 'tf2_ros'

    def __init__(self, node, cache_time_s=10.0):
        """Create the buffer and its listener on ``node``."""
        import tf2_ros
        from rclpy.duration import Duration
        self._tf2 = tf2_ros
        self.buffer = tf2_ros.Buffer(cache_time=Duration(seconds=cache_time_s), node=node)
        self.listener = tf2_ros.TransformListener(self.buffer, node)
        self.refused = {}

    def lookup(self, target_frame, source_frame, stamp_ns):
        """Return (4, 4) T_target_source at ``stamp_ns`` (tf2_ros errors as TransformError)."""
        from rclpy.time import Time
        tf2 = self._tf2
        try:
            msg = self.buffer.lookup_transform(target_frame, source_frame,
                                               Time(nanoseconds=int(stamp_ns)))
        except tf2.ExtrapolationException as exc:
            raise TransformError('extrapolation', str(exc)) from None
        except tf2.ConnectivityException as exc:
            raise TransformError('connectivity', str(exc)) from None
        except tf2.LookupException as exc:
            kind = 'loop' if 'loop' in str(exc) else 'unknown_frame'
            raise TransformError(kind, str(exc)) from None
        t, r = msg.transform.translation, msg.transform.rotation
        return matrix((t.x, t.y, t.z), (r.x, r.y, r.z, r.w))


def create_transform_lookup(node, cache_time_s=10.0):
    """Return tf2_ros's lookup where tf2_ros imports, else the stand-in (see ``.name``)."""
    try:
        import tf2_ros  # noqa: F401
    except ImportError:
        return StandInLookup(node, cache_time_s)
    return Tf2RosLookup(node, cache_time_s)
