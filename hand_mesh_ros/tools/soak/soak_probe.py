"""hand_mesh_node in its own process, fed and observed over DDS by a probe node in this one.

:class:`NodeProbe` starts ``hand_mesh_node`` (``processes.node_command``) in a private ROS
domain, publishes images and camera_info to it like a camera driver would, subscribes to every
output (``/hand/poses``, ``/hand/mesh``, ``/tf``, ``/hand/markers``, ``/diagnostics``),
counts NaN/inf values in everything received, records latency (image stamp -> ``/hand/mesh``
arrival) and samples the node's resident memory. Used by ``hand-mesh soak`` and the
robustness tests.
"""

import array
import math
from pathlib import Path
import random
import time

import numpy as np

from hand_mesh_ros.core.camera.camera import DEFAULT_HFOV_DEG, nominal_focal_px
from hand_mesh_ros.ros import processes

#: ROS domain ids used for private graphs (disjoint from the usual 0).
PRIVATE_DOMAINS = (120, 220)

OUTPUT_TOPICS = ('/hand/poses', '/hand/mesh', '/tf', '/hand/markers', '/diagnostics')


def count_non_finite(msg):
    """Return how many NaN or infinite floating-point values a ROS message holds (recursive)."""
    if isinstance(msg, float):
        return 0 if math.isfinite(msg) else 1
    if isinstance(msg, (array.array, np.ndarray)):
        values = np.asarray(msg)
        if values.dtype.kind != 'f':
            return 0
        return int(values.size - np.count_nonzero(np.isfinite(values)))
    if isinstance(msg, (list, tuple)):
        if msg and hasattr(msg[0], 'get_fields_and_field_types'):
            fields = msg[0].get_fields_and_field_types()
            if all(kind in ('double', 'float') for kind in fields.values()):
                # Points, vectors, colours: one vectorised check for the whole list.
                values = np.array([[getattr(item, name) for name in fields] for item in msg],
                                  dtype=np.float64)
                return int(values.size - np.count_nonzero(np.isfinite(values)))
        return sum(count_non_finite(item) for item in msg)
    fields = getattr(msg, 'get_fields_and_field_types', None)
    if fields is None:
        return 0
    return sum(count_non_finite(getattr(msg, name)) for name in fields())


def stamp_ns(msg):
    """Return a message header's stamp as integer nanoseconds."""
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


def diagnostic_values(msg):
    """Return ``{key: value}`` of the first status with values of a DiagnosticArray."""
    for status in msg.status:
        if status.values:
            return {kv.key: kv.value for kv in status.values}
    return {}


def rss_mb(pid):
    """Return the resident memory of ``pid`` and its children, MiB (0 once it has exited)."""
    import psutil
    try:
        proc = psutil.Process(pid)
        total = proc.memory_info().rss
        for child in proc.children(recursive=True):
            total += child.memory_info().rss
    except psutil.Error:
        return 0.0
    return total / 2 ** 20


class NodeProbe:
    """hand_mesh_node (child process) plus a probe node (this process) in a private domain.

    Attributes:
        node_process: the :class:`processes.ManagedProcess` of the node.
        received: ``{topic: [message, ...]}`` for the output topics (``keep=True`` ones).
        counts: ``{topic: messages received}``.
        non_finite: ``{topic: NaN/inf values seen}``.
        latency_ms: ``[(arrival monotonic s, stamp -> /hand/mesh arrival ms)]``.
        track_ids: every HandPose.track_id seen.
        position_status: ``{HandPose.position_status: count}``.
        diagnostics: the latest /diagnostics values (``{key: value}``).

    """

    def __init__(self, log_path, params=None, shared_memory=True, keep=OUTPUT_TOPICS,
                 domain_id=None, count_only=(), profile=None):
        """Start the node and the probe; ``params`` override the node's parameters.

        Topics in ``count_only`` are received serialised and only counted (no NaN check):
        a light probe for overload runs, the node's work is the same.

        ``shared_memory`` selects the shared-memory Fast DDS profile (needed for full-size
        images). Fast DDS reads the profile once per process, so the probe can only use it
        when it is this process's first DDS participant; otherwise both sides use the default
        transports (fine for images up to a few hundred kB). ``profile`` names another
        shared-memory profile file (e.g. one with a larger segment).
        """
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        self.domain_id = int(domain_id if domain_id is not None
                             else random.randint(*PRIVATE_DOMAINS))
        env = processes.dds_environment(shared_memory=False)
        if shared_memory:
            env = processes.dds_environment(shared_memory=True, profile=profile)
            processes.apply_dds_profile(env)
        env['ROS_DOMAIN_ID'] = str(self.domain_id)
        self.env = env
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=self.domain_id)
        self.node = rclpy.create_node('hand_mesh_probe', context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._keep = set(keep)
        self._count_only = set(count_only)
        self.received = {topic: [] for topic in OUTPUT_TOPICS}
        self.counts = dict.fromkeys(OUTPUT_TOPICS, 0)
        self.non_finite = dict.fromkeys(OUTPUT_TOPICS, 0)
        self.latency_ms = []
        self.mesh_stamps = set()
        self.track_ids = set()
        self.position_status = {}
        self.diagnostics = {}
        self._create_endpoints()
        self.node_process = processes.ManagedProcess(
            'hand_mesh_node', processes.node_command(params), log_path, env)
        self.closed = False

    def _create_endpoints(self):
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import CameraInfo, Image
        from tf2_msgs.msg import TFMessage
        from visualization_msgs.msg import MarkerArray
        from hand_mesh_ros.msg import HandMeshArray, HandPoseArray
        image_qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT)
        self.image_pub = self.node.create_publisher(Image, processes.IMAGE_TOPIC, image_qos)
        self.info_pub = self.node.create_publisher(CameraInfo, processes.CAMERA_INFO_TOPIC,
                                                   image_qos)
        reliable = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        types = {'/hand/poses': HandPoseArray, '/hand/mesh': HandMeshArray, '/tf': TFMessage,
                 '/hand/markers': MarkerArray, '/diagnostics': DiagnosticArray}
        for topic, kind in types.items():
            qos = reliable if topic != '/tf' else QoSProfile(depth=100)
            self.node.create_subscription(
                kind, topic, lambda msg, topic=topic: self._on_output(topic, msg), qos,
                raw=topic in self._count_only)

    def _on_output(self, topic, msg):
        now_ns = time.time_ns()
        self.counts[topic] += 1
        if topic in self._count_only:
            return
        self.non_finite[topic] += count_non_finite(msg)
        if topic in self._keep:
            self.received[topic].append(msg)
        if topic == '/hand/mesh':
            self.mesh_stamps.add(stamp_ns(msg))
            self.latency_ms.append((time.monotonic(), (now_ns - stamp_ns(msg)) / 1e6))
        elif topic == '/hand/poses':
            for hand in msg.hands:
                self.track_ids.add(int(hand.track_id))
                status = int(hand.position_status)
                self.position_status[status] = self.position_status.get(status, 0) + 1
        elif topic == '/diagnostics':
            self.diagnostics = diagnostic_values(msg)

    # ------------------------------------------------------------------ driving
    def spin(self, duration_s=0.0):
        """Handle incoming messages for ``duration_s`` seconds (at least once)."""
        end = time.monotonic() + duration_s
        while True:
            self.executor.spin_once(timeout_sec=max(0.0, min(0.02, end - time.monotonic())))
            if time.monotonic() >= end:
                return

    def wait_for(self, predicate, timeout_s):
        """Spin until ``predicate()`` is true or ``timeout_s`` passed; return the predicate."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if predicate():
                return True
            if not self.node_process.running():
                break
            self.executor.spin_once(timeout_sec=0.02)
        return bool(predicate())

    def wait_ready(self, timeout_s=90.0):
        """Wait until the node subscribes to the images and every output is matched."""
        def ready():
            return (self.image_pub.get_subscription_count() > 0
                    and self.info_pub.get_subscription_count() > 0
                    and all(self.node.count_publishers(t) > 0 for t in OUTPUT_TOPICS))
        if not self.wait_for(ready, timeout_s):
            raise RuntimeError('hand_mesh_node did not come up (exit %s):\n%s'
                               % (self.node_process.proc.poll(), self.node_process.log_tail()))
        self.spin(0.3)   # let the reliable output subscriptions match too

    def publish(self, image, info=None, stamp=None):
        """Publish ``image`` (and ``info``) with ``stamp`` ns (default: now); return it."""
        stamp = time.time_ns() if stamp is None else int(stamp)
        sec, nanosec = divmod(stamp, 1_000_000_000)
        image.header.stamp.sec, image.header.stamp.nanosec = sec, nanosec
        if not image.header.frame_id:
            image.header.frame_id = 'camera_optical_frame'
        if info is not None:
            info.header.stamp.sec, info.header.stamp.nanosec = sec, nanosec
            info.header.frame_id = image.header.frame_id
            self.info_pub.publish(info)
        self.image_pub.publish(image)
        return stamp

    def process_one(self, image, info=None, timeout_s=2.0, attempts=3):
        """Publish ``image`` until its /hand/mesh answer arrives; return its stamp or None.

        Best-effort image delivery may lose a frame, so it is sent again (new stamp) up to
        ``attempts`` times.
        """
        for _ in range(attempts):
            stamp = self.publish(image, info)
            if self.wait_for(lambda: stamp in self.mesh_stamps, timeout_s):
                return stamp
        return None

    def poses_for(self, stamp):
        """Return the /hand/poses message of ``stamp`` (kept messages only), or None."""
        for msg in reversed(self.received['/hand/poses']):
            if stamp_ns(msg) == stamp:
                return msg
        return None

    def rss_mb(self):
        """Return the node's resident memory in MiB."""
        return rss_mb(self.node_process.pid)

    def log_text(self):
        """Return the node's log so far."""
        return Path(self.node_process.log_path).read_text(errors='replace')

    def total_non_finite(self):
        """Return the NaN/inf values seen on every output topic together."""
        return sum(self.non_finite.values())

    def close(self, timeout_s=10.0):
        """Stop the node (SIGINT) and the probe; return the node's exit code."""
        if self.closed:
            return self.node_process.proc.returncode
        import rclpy
        self.closed = True
        code = self.node_process.stop(timeout_s)
        self.executor.shutdown(timeout_sec=2.0)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        return code


def load_frames(video, max_frames=None, scale=1.0):
    """Return the RGB frames ((H, W, 3) uint8) of ``video``, optionally resized by ``scale``."""
    import cv2
    from hand_mesh_ros.tools.video_frames import iter_frames
    frames = []
    for _, _, rgb in iter_frames(video, max_frames=max_frames):
        if scale != 1.0:
            size = (int(round(rgb.shape[1] * scale)), int(round(rgb.shape[0] * scale)))
            rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        frames.append(np.ascontiguousarray(rgb))
    return frames


def camera_info_for(width, height, hfov_deg=DEFAULT_HFOV_DEG):
    """Return a valid sensor_msgs/CameraInfo (pinhole, ``hfov_deg``, centred) for a size."""
    from sensor_msgs.msg import CameraInfo
    focal_px = nominal_focal_px(width, hfov_deg)
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    msg = CameraInfo(width=int(width), height=int(height), distortion_model='plumb_bob')
    msg.d = [0.0] * 5
    msg.k = [focal_px, 0.0, cx, 0.0, focal_px, cy, 0.0, 0.0, 1.0]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg.p = [focal_px, 0.0, cx, 0.0, 0.0, focal_px, cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return msg
