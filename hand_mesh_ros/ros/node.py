"""hand_mesh_node: camera images in; hand poses, meshes, TF, markers and diagnostics out.

Topics (relative names are remapped in launch files):

- in  ``image`` (sensor_msgs/Image), or ``image/compressed`` (sensor_msgs/CompressedImage)
  when ``input.compressed``; ``camera_info`` (sensor_msgs/CameraInfo); sensor_data QoS.
- in  ``depth`` (``input.depth_topic``; sensor_msgs/Image 16UC1 mm / 32FC1 m registered to
  the colour image, paired by stamp within ``input.depth_pairing_tolerance_s``) and, for
  depth of another size, ``depth/camera_info``: optional; without depth nothing changes.
- in  ``/tf``: watched for TF frames that clash with this node's (:mod:`.frame_names`).
- out ``hand/poses`` (HandPoseArray) and ``hand/mesh`` (HandMeshArray): reliable, depth 10,
  one message per processed image, empty when no hand is seen; ``hand/markers``
  (MarkerArray); ``hand/debug_image`` (Image, drawn only while subscribed). These names are
  relative (``/hand/...`` without a namespace, ``/<ns>/hand/...`` in one); ``/tf``
  (tf2_msgs/TFMessage) and ``/diagnostics`` (DiagnosticArray, every
  ``output.diagnostics_period_s``) stay absolute, as tf2 and the diagnostic aggregator expect.

The image callback reads a raw image's header from its CDR bytes and refuses an unusable one
there, before a message of its size exists; a usable one goes into a latest-frame-wins slot.
One worker thread converts it (straight from the CDR bytes), pairs it with camera_info, runs
the pipeline and publishes. A newer image replaces one still waiting (counted as dropped).

Bad input: an image that cannot be converted (unknown encoding, bad step, truncated, empty,
too large) and an image on which the pipeline raises HandMeshError publish *nothing* (no
empty arrays: those mean "processed, no hand"); the kind is logged (throttled, one line) and
counted in /diagnostics. Unusable camera_info switches to ``camera.fallback_mode`` (logged,
counted, reported in each HandPose.position_status and in /diagnostics).
"""

import signal
import sys
import threading
import time
import traceback

import rclpy
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data, QoSProfile, ReliabilityPolicy

from hand_mesh_ros.core.errors import HandMeshError, ImageConversionError
from hand_mesh_ros.core.types import DepthStatus, Frame
from hand_mesh_ros.log_levels import level_logger
from hand_mesh_ros.ros import camera_info, collision_objects, depth_input, diagnostics
from hand_mesh_ros.ros import frame_names, image_cdr, params_file_check, rectified_input
from hand_mesh_ros.ros import image_conversion, messages, parameter_names, parameters
from hand_mesh_ros.ros.outputs import OUTPUT_TOPICS, OutputBuilder, wanted_outputs
from hand_mesh_ros.ros.spin import run_node
from hand_mesh_ros.ros.stamp_cache import stamp_to_ns
from hand_mesh_ros.ros.worker import FrameWorker

RESULT_QOS_DEPTH = 10


def default_pipeline_factory(config, log=None):
    """Return the core HandMeshPipeline (imported only when the node starts)."""
    from hand_mesh_ros.core.pipeline import HandMeshPipeline
    return HandMeshPipeline(config, log=log)


class HandMeshNode(Node):
    """The hand mesh ROS 2 node (see the module docstring for topics and behaviour)."""

    def __init__(self, pipeline_factory=None, **kwargs):
        """Declare parameters, build the pipeline, create topics and start the worker.

        Args:
            pipeline_factory: ``factory(config, log=log)`` (``log(level, message)``, see
                :func:`~hand_mesh_ros.log_levels.level_logger`) returning an object
                with ``process(frame) -> FrameResult``, ``update_config(config)``,
                ``backend_name`` and ``close()``; default: the core HandMeshPipeline.
            **kwargs: passed to rclpy.node.Node (context, parameter_overrides, ...).

        """
        super().__init__('hand_mesh_node', **kwargs)
        self._log = self.get_logger()
        values = parameters.declare_all(self)
        self._values = values
        self._config = parameters.pipeline_config(values)
        self._pending_config = None
        # Guards the hand-over of _pending_config from the parameter callback to the worker.
        self._config_lock = threading.Lock()
        factory = pipeline_factory or default_pipeline_factory
        self._pipeline = factory(self._config, log=level_logger(self._log))
        self._backend = str(getattr(self._pipeline, 'backend_name', 'unknown'))
        self._stats = diagnostics.NodeStats()
        self._throttle = diagnostics.ThrottledLog(period_s=5.0)
        self._seen_tracebacks = set()
        self._warned_once = set()
        self._camera = camera_info.CameraResolver(
            capacity=values['input.camera_info_cache_size'],
            fallback_mode=values['camera.fallback_mode'],
            assumed_hfov_deg=values['camera.assumed_hfov_deg'],
            stale_after_s=values['input.camera_info_timeout_s'],
            rectified=values['input.rectified'])
        self._outputs = OutputBuilder(tf_prefix=values['output.tf_prefix'],
                                      marker_lifetime_s=values['output.marker_lifetime_s'],
                                      namespace=self.get_namespace())
        self._last_report = None
        self._depth = depth_input.DepthInput(capacity=values['input.camera_info_cache_size'])
        self._depth_seen = False
        self._params = parameters.ParameterHandler(self, values, self._apply_parameters)
        self._create_topics(values)
        self._collisions = collision_objects.create(self, values)   # None when off
        rectified_input.warn_rect_topic(self._log.warning, self._image_sub.topic_name,
                                        values['input.rectified'])
        self._closed = False
        self._worker = FrameWorker(self._process, self._on_worker_error)
        self._worker.start()
        self._diag_timer = self.create_timer(values['output.diagnostics_period_s'],
                                             self._publish_diagnostics)
        self._log.info('hand_mesh_node ready: backend %s, input %s, camera fallback %s'
                       % (self._backend, 'image/compressed' if values['input.compressed']
                          else 'image', values['camera.fallback_mode']))

    # ------------------------------------------------------------------ set-up
    def _create_topics(self, values):
        from diagnostic_msgs.msg import DiagnosticArray
        from hand_mesh_ros.msg import HandMeshArray, HandPoseArray
        from sensor_msgs.msg import CameraInfo, CompressedImage, Image
        from tf2_msgs.msg import TFMessage
        from visualization_msgs.msg import MarkerArray
        sensor_qos = QoSProfile(depth=values['input.queue_size'],
                                reliability=qos_profile_sensor_data.reliability,
                                durability=qos_profile_sensor_data.durability,
                                history=qos_profile_sensor_data.history)
        if values['input.compressed']:
            self._image_sub = self.create_subscription(
                CompressedImage, 'image/compressed', self._on_image, sensor_qos)
        else:
            # Raw: the callback reads the CDR header and refuses an oversize frame before
            # rclpy builds a message of its size (see _on_raw_image).
            self._image_sub = self.create_subscription(Image, 'image', self._on_raw_image,
                                                       sensor_qos, raw=True)
        self._info_sub = self.create_subscription(CameraInfo, 'camera_info',
                                                  self._on_camera_info, sensor_qos)
        self._depth_sub = self._depth_info_sub = None
        if values['input.depth_topic']:
            self._depth_sub = self.create_subscription(Image, values['input.depth_topic'],
                                                       self._depth.add_image, sensor_qos)
        if values['input.depth_topic'] and values['input.depth_camera_info_topic']:
            self._depth_info_sub = self.create_subscription(
                CameraInfo, values['input.depth_camera_info_topic'],
                self._depth.add_camera_info, sensor_qos)
        reliable = QoSProfile(depth=RESULT_QOS_DEPTH, reliability=ReliabilityPolicy.RELIABLE)
        self._output_pubs = {
            'mesh': self.create_publisher(HandMeshArray, OUTPUT_TOPICS['mesh'], reliable),
            'poses': self.create_publisher(HandPoseArray, OUTPUT_TOPICS['poses'], reliable),
            'tf': self.create_publisher(TFMessage, OUTPUT_TOPICS['tf'], QoSProfile(depth=100)),
            'markers': self.create_publisher(MarkerArray, OUTPUT_TOPICS['markers'], reliable),
            'debug_image': self.create_publisher(Image, OUTPUT_TOPICS['debug_image'],
                                                 QoSProfile(depth=1))}
        self._frame_clashes = frame_names.watch_tf(self)
        self._diag_pub = self.create_publisher(DiagnosticArray, OUTPUT_TOPICS['diagnostics'],
                                               QoSProfile(depth=10))

    def _apply_parameters(self, changes, new_values):
        """Apply validated run-time changes (called by the set-parameters callback)."""
        if any(name in parameters.SPECS and parameters.SPECS[name].pipeline
               for name in changes):
            with self._config_lock:
                config = parameters.pipeline_config(new_values, base=self._config)
                self._config = config
                self._pending_config = config   # the worker applies it before its next frame
        if 'camera.fallback_mode' in changes or 'camera.assumed_hfov_deg' in changes:
            self._camera.set_fallback(new_values['camera.fallback_mode'],
                                      new_values['camera.assumed_hfov_deg'])
        if 'input.camera_info_timeout_s' in changes:
            self._camera.stale_after_s = new_values['input.camera_info_timeout_s']
        if 'output.marker_lifetime_s' in changes:
            self._outputs.markers.lifetime_s = new_values['output.marker_lifetime_s']
        if 'output.tf_prefix' in changes:
            self._outputs.set_tf_prefix(new_values['output.tf_prefix'])
        self._values = new_values
        self._log.info('parameters changed: %s' % ', '.join(
            '%s=%r' % item for item in sorted(changes.items())))

    # ------------------------------------------------------------------ callbacks
    def _on_image(self, msg):
        """Store the newest image for the worker (never blocks)."""
        dropped = self._worker.submit((msg, time.monotonic_ns(), time.time_ns()))
        self._stats.image_received(dropped)

    def _on_raw_image(self, cdr):
        """Refuse an unusable image on its CDR header; store a usable one for the worker.

        The worker converts the pixels straight from the CDR bytes (no deserialised copy).
        """
        try:
            image = image_cdr.read_usable_image_cdr(
                cdr, max_pixels=self._values['input.max_image_pixels'])
        except ImageConversionError as exc:
            self._stats.image_received(False)
            self._bad_input('image_' + exc.reason, 'image dropped: %s' % exc)
            return
        self._on_image(image)

    def _on_camera_info(self, msg):
        """Store a camera_info for pairing by stamp (one with an invalid stamp is skipped)."""
        problem = camera_info.stamp_problem(msg.header.stamp)
        if problem:
            self._bad_input('camera_info_bad_stamp', 'camera_info dropped: %s' % problem)
            return
        self._camera.add_camera_info(msg, received_ns=time.monotonic_ns())

    # ------------------------------------------------------------------ worker
    def _process(self, item):
        """Convert, pair with camera_info and depth, run the pipeline, publish (worker thread)."""
        msg, received_mono_ns, received_wall_ns = item
        timer = diagnostics.StepTimer(received_mono_ns)
        timer.end('queue')
        stamp_ns, frame_id = self._image_stamp_and_frame(msg)
        if stamp_ns is None:
            return
        rgb = self._to_rgb(msg)
        if rgb is None:
            return
        resolution = self._resolve_camera(stamp_ns, rgb, received_mono_ns)
        self._apply_pending_config()
        depth, depth_camera = self._paired_depth(stamp_ns)
        frame = Frame(rgb=rgb, stamp_ns=stamp_ns, frame_id=frame_id, camera=resolution.camera,
                      depth=depth, depth_camera=depth_camera, position_mode=resolution.mode,
                      assumed_hfov_deg=resolution.hfov_deg)
        timer.end('convert')
        result = self._run_pipeline(frame)
        if result is None:
            return
        hands = self._published_hands(result)
        timer.end('pipeline')
        self._count_depth(result.depth)
        outputs = self._build_outputs(stamp_ns, frame_id, hands, rgb, resolution.camera)
        timer.end('build')
        for publisher, message in outputs:
            publisher.publish(message)
        if self._collisions is not None:
            self._collisions.update_estimates(hands, self._outputs.tf_prefix, frame_id, stamp_ns)
        timer.end('publish')
        self._record_timing(timer, stamp_ns, received_wall_ns)

    def _image_stamp_and_frame(self, msg):
        """Return the image's ``(stamp_ns, frame_id)``; ``(None, None)`` when unusable.

        An image with an invalid stamp or frame id is counted and never published: an output
        carries the input's stamp and frame. An empty frame id becomes
        ``input.default_frame_id`` (logged).
        """
        for kind, problem in (
                ('image_bad_stamp', camera_info.stamp_problem(msg.header.stamp)),
                ('image_bad_frame_id', msg.header.frame_id
                 and parameter_names.frame_id_problem(msg.header.frame_id, 'header.frame_id'))):
            if problem:
                self._bad_input(kind, 'image dropped: %s' % problem)
                return None, None
        frame_id = msg.header.frame_id or self._values['input.default_frame_id']
        if not msg.header.frame_id:
            self._warn('empty_frame_id', 'image has an empty frame_id; using %r' % frame_id)
        return stamp_to_ns(msg.header.stamp), frame_id

    def _to_rgb(self, msg):
        """Return the (H, W, 3) uint8 RGB image of ``msg``, or None (counted) when unusable."""
        max_pixels = self._values['input.max_image_pixels']
        try:
            if hasattr(msg, 'encoding'):
                return image_conversion.image_to_rgb(msg, max_pixels=max_pixels)
            return image_conversion.compressed_to_rgb(msg, max_pixels=max_pixels)
        except ImageConversionError as exc:
            self._bad_input('image_' + exc.reason, 'image dropped: %s' % exc)
            return None

    def _resolve_camera(self, stamp_ns, rgb, received_mono_ns):
        """Return the image's CameraResolution; count it and log a fallback."""
        height, width = rgb.shape[:2]
        resolution = self._camera.resolve(stamp_ns, width, height, received_mono_ns)
        self._stats.camera(resolution)
        if resolution.status in (camera_info.STATUS_UNPAIRED, camera_info.STATUS_UNCALIBRATED):
            if resolution.status not in self._warned_once:   # documented cases: warn once
                self._warned_once.add(resolution.status)
                self._log.warning('%s; using %s mode (warned once)'
                                  % (resolution.problem, resolution.mode))
        elif resolution.status != camera_info.STATUS_OK:
            self._stats.count(self._stats.bad_input, 'camera_info_' + resolution.status)
            self._warn('camera_info_' + resolution.status,
                       '%s; using %s mode' % (resolution.problem, resolution.mode))
        return resolution

    def _apply_pending_config(self):
        """Hand a configuration changed at run time to the pipeline (before the next frame)."""
        with self._config_lock:   # take and clear in one step; a newer change waits here
            config, self._pending_config = self._pending_config, None
        if config is not None:
            self._pipeline.update_config(config)

    def _paired_depth(self, stamp_ns):
        """Return (depth metres, its camera model or None) paired with ``stamp_ns``."""
        values = self._values
        if self._depth_sub is None or not values['depth.enabled'] or not len(self._depth.images):
            return None, None
        tolerance = values['input.depth_pairing_tolerance_s']
        try:
            paired = self._depth.paired(stamp_ns, tolerance, wait_s=tolerance,
                                        scale_m_per_unit=values['input.depth_scale_m_per_unit'],
                                        max_pixels=values['input.max_image_pixels'])
        except ImageConversionError as exc:
            self._bad_input('depth_' + exc.reason, 'depth image not used: %s' % exc)
            return None, None
        except HandMeshError as exc:
            self._bad_input('depth_camera_info_invalid', 'depth camera_info: %s' % exc)
            return None, None
        self._stats.count(self._stats.counts, 'depth_unpaired' if paired is None
                          else 'depth_paired')
        return paired or (None, None)

    def _run_pipeline(self, frame):
        """Return the pipeline's FrameResult, or None (counted, logged) on HandMeshError."""
        try:
            return self._pipeline.process(frame)
        except HandMeshError as exc:
            kind = 'pipeline_%s' % getattr(exc, 'reason', type(exc).__name__)
            self._stats.count(self._stats.errors, kind)
            self._warn(kind, 'image not processed: %s' % exc)
            return None

    def _published_hands(self, result):
        """Return the result's finite hands; count them by shape source, and the others."""
        hands, non_finite = messages.finite_hands(result.hands)
        if non_finite:
            self._stats.count(self._stats.rejected_hands, 'non_finite', non_finite)
            self._warn('non_finite_hand', '%d hand(s) with NaN/inf dropped' % non_finite)
        for reason, count in (result.rejected or {}).items():
            self._stats.count(self._stats.rejected_hands, reason, count)
        for hand in hands:
            self._stats.count(self._stats.shape_sources, hand.shape_source)
        return hands

    def _count_depth(self, depth):
        """Count a frame's DepthOutcome; a refused depth image is bad input (logged)."""
        if depth.status in (DepthStatus.FUSED, DepthStatus.NOT_FUSED):
            self._stats.count(self._stats.counts, 'depth_' + depth.status.value)
            if depth.status is DepthStatus.FUSED and not self._depth_seen:
                self._depth_seen = True
                self._log.info('depth paired and fused: positions are depth-fused')
        elif depth.status is DepthStatus.REFUSED:
            self._bad_input(depth.reason, 'depth image refused (%s): colour only for this '
                            'frame' % depth.reason)

    def _build_outputs(self, stamp_ns, frame_id, hands, rgb, camera):
        """Return ``[(publisher, message)]``: every output of one image (``hands`` finite).

        An output nobody subscribed to is not built (it would cost time and be dropped).
        """
        self._frame_clashes.note_frames(frame_id, self._outputs.tf_prefix)
        built = self._outputs.build(messages.make_header(stamp_ns, frame_id), hands,
                                    wanted_outputs(self._output_pubs, self._values),
                                    rgb=rgb, camera=camera)
        return [(self._output_pubs[name], message) for name, message in built]

    def _record_timing(self, timer, stamp_ns, received_wall_ns):
        """Record one published image's latency, age and step times in the node's stats."""
        # The age of the image (stamp -> publish) on the node's clock: sim time when
        # use_sim_time is set (a bag played with --clock), system time otherwise.
        self._stats.published(timer.total_ms(),
                              (self.get_clock().now().nanoseconds - stamp_ns) / 1e6)
        steps_ms = dict(timer.steps_ms)
        receive_ms = diagnostics.receive_ms(stamp_ns, received_wall_ns)
        if receive_ms is not None:
            steps_ms['receive'] = receive_ms
        self._stats.steps(steps_ms)

    def _warn(self, kind, message):
        """Log a warning of ``kind``, throttled (one line per kind every few seconds)."""
        text = self._throttle(kind, message)
        if text:
            self._log.warning(text)

    def _bad_input(self, kind, message):
        self._stats.count(self._stats.bad_input, kind)
        self._warn(kind, message)

    def _on_worker_error(self, exc):
        """Log an unexpected worker exception (traceback once per kind) and count it."""
        if not self.context.ok():
            return   # ROS was shut down under the worker (external shutdown): not a bug
        kind = 'unexpected_%s' % type(exc).__name__
        self._stats.count(self._stats.errors, kind)
        if kind not in self._seen_tracebacks:
            self._seen_tracebacks.add(kind)
            self._log.error('unexpected error while processing an image (the node keeps '
                            'running):\n%s' % ''.join(traceback.format_exception(
                                type(exc), exc, exc.__traceback__)))
        else:
            text = self._throttle(kind, '%s: %s' % (type(exc).__name__, exc))
            if text:
                self._log.error(text)

    def _publish_diagnostics(self):
        snapshot = self._stats.snapshot()
        header = messages.make_header(self.get_clock().now().nanoseconds,
                                      self._values['input.default_frame_id'])
        # Named after the node ('cam_a/hand_mesh_node: pipeline' in a namespace): two nodes on
        # two cameras must not report as one on the global /diagnostics.
        self._diag_pub.publish(diagnostics.diagnostic_array(
            snapshot, header, self._backend, previous=self._last_report,
            frame_clashes=self._frame_clashes.problems(),
            name='%s: pipeline' % self.get_fully_qualified_name().lstrip('/')))
        self._last_report = snapshot

    # ------------------------------------------------------------------ public
    @property
    def stats(self):
        """Return the node's NodeStats (counters used for /diagnostics)."""
        return self._stats

    def close(self):
        """Stop the worker and close the pipeline (idempotent)."""
        if not self._closed:
            self._closed = True
            self._worker.stop()
            if self._collisions is not None:
                self._collisions.close()
            close = getattr(self._pipeline, 'close', None)
            if close is not None:
                close()


def main(argv=None):
    """Run hand_mesh_node until Ctrl-C or SIGTERM; return the exit code.

    SIGINT and SIGTERM only ask the spin loop to stop: the worker then finishes the image it
    is processing and publishes it while ROS is still up, and only then is rclpy shut down
    (with rclpy's own handlers the context would be invalidated under the worker's feet).
    """
    from rclpy.exceptions import ParameterException
    from rclpy.signals import SignalHandlerOptions
    from hand_mesh_ros.inference.base import InferenceError
    rclpy.init(args=argv, signal_handler_options=SignalHandlerOptions.NO)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda signum, frame: stop.set())
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return run_node('hand_mesh_node',
                        lambda: params_file_check.warned(HandMeshNode(), argv or sys.argv),
                        lambda node: stop.is_set(),
                        (HandMeshError, InferenceError, ValueError, ParameterException),
                        events_executor=True)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == '__main__':
    sys.exit(main())
