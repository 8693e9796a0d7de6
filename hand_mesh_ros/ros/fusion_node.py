"""hand_fusion_node: several cameras' hands, one hand per physical hand, in a common frame.

Topics:

- in  ``<camera>/hand/poses`` (HandPoseArray) of every camera in ``input.cameras``
  (reliable); ``/tf`` and ``/tf_static`` (through tf2_ros, or the stand-in buffer of
  :mod:`hand_mesh_ros.ros.tf_buffer` where tf2_ros is missing).
- out ``hands/poses`` (HandPoseArray in ``fusion.frame``, reliable, one per output, empty when
  no hand is seen), ``/tf`` (``<prefix>_<side>[<n>]_<keypoint>`` frames, see
  :mod:`hand_mesh_ros.ros.fusion_messages`), ``/diagnostics`` (a status per camera and one
  for the fusion), and ``/collision_object`` when ``output.collision_objects`` is on.

Every ``1 / fusion.rate_hz`` seconds, once every camera that is not stale sent new hands (or
the oldest new message waited ``fusion.max_wait_s``): the cameras that are not stale and not
out of sync are chosen (:mod:`hand_mesh_ros.core.fusion.sync`), a camera
claiming the frame id of a camera listed before it is left out, each camera's hands are
transformed into ``fusion.frame`` at their own stamp (a camera without a transform is left
out), and the fuser (:class:`hand_mesh_ros.core.fusion.tracker.HandFuser`) brings them to
the common stamp and fuses them. Hands that cannot be fused (NaN, a covariance that is not a
covariance, an unknown side) are refused and counted per camera and reason; nothing
non-finite is published.
"""

from collections import Counter
import sys
import time

import numpy as np
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy

from hand_mesh_ros.core.fusion.observation import in_frame, observation_problem
from hand_mesh_ros.core.fusion.sync import choose_cameras, output_due, STALE
from hand_mesh_ros.core.fusion.tracker import HandFuser
from hand_mesh_ros.ros import collision_objects, frame_names, fusion_messages, fusion_status
from hand_mesh_ros.ros import parameter_names, parameters, params_file_check
from hand_mesh_ros.ros.fusion_parameters import FUSED_TF_PREFIX, FUSION_PARAMETERS
from hand_mesh_ros.ros.spin import run_until_signal
from hand_mesh_ros.ros.tf_buffer import create_transform_lookup, TransformError
from hand_mesh_ros.ros.tf_frames import HandFrameNames

RESULT_QOS_DEPTH = 10
OUTPUT_TOPICS = {'poses': 'hands/poses', 'tf': '/tf', 'diagnostics': '/diagnostics'}


class HandFusionNode(Node):
    """The fusion node (see the module docstring)."""

    def __init__(self, **kwargs):
        """Declare parameters, subscribe to every camera, start the fusion timer."""
        super().__init__('hand_fusion_node', **kwargs)
        values = parameters.declare_all(self, FUSION_PARAMETERS)
        self._values = values
        keys = values['input.cameras'].replace(',', ' ').split()
        self._cameras = {key: fusion_status.CameraInput(key) for key in keys}
        self._fuser = HandFuser(gate_probability=values['fusion.gate_probability'],
                                track_timeout_s=values['fusion.track_timeout_s'],
                                velocity_window_s=values['fusion.velocity_window_s'])
        self._names = HandFrameNames()
        self._counts = Counter()
        self._last_stamp_ns = -1
        self._reported_refused = 0
        self._tf = create_transform_lookup(self, values['input.tf_cache_s'])
        self._params = parameters.ParameterHandler(self, values, self._reject_changes,
                                                   FUSION_PARAMETERS)
        self._create_topics()
        self._collisions = collision_objects.create(self, values)
        self._fuse_timer = self.create_timer(1.0 / values['fusion.rate_hz'], self._fuse)
        self._diag_timer = self.create_timer(values['output.diagnostics_period_s'],
                                             self._publish_diagnostics)
        self._closed = False
        self.get_logger().info('hand_fusion_node ready: %d camera(s) (%s) into %r; tf: %s'
                               % (len(keys), ', '.join(c.topic for c in
                                                       self._cameras.values()),
                                  values['fusion.frame'], self._tf.name))

    def _create_topics(self):
        from diagnostic_msgs.msg import DiagnosticArray
        from hand_mesh_ros.msg import HandPoseArray
        from tf2_msgs.msg import TFMessage
        reliable = QoSProfile(depth=RESULT_QOS_DEPTH, reliability=ReliabilityPolicy.RELIABLE)
        self._subs = [self.create_subscription(
            HandPoseArray, camera.topic,
            lambda msg, key=camera.key: self._on_poses(key, msg), reliable)
            for camera in self._cameras.values()]
        self._pose_pub = self.create_publisher(HandPoseArray, OUTPUT_TOPICS['poses'], reliable)
        self._tf_pub = self.create_publisher(TFMessage, OUTPUT_TOPICS['tf'], QoSProfile(depth=100))
        self._diag_pub = self.create_publisher(DiagnosticArray, OUTPUT_TOPICS['diagnostics'],
                                               QoSProfile(depth=10))

    def _reject_changes(self, changes, new_values):
        raise ValueError('every hand_fusion_node parameter needs a restart')

    # ------------------------------------------------------------------ input
    def _on_poses(self, key, msg):
        """Check one camera's HandPoseArray and keep its usable hands."""
        camera = self._cameras[key]
        header = msg.header
        problem = parameter_names.frame_id_problem(header.frame_id, 'header.frame_id')
        if problem:
            camera.refused['bad_frame_id'] += 1
            return
        observations = []
        for hand in msg.hands:
            obs, problem = fusion_messages.observation_from_msg(key, hand, header)
            problem = problem or observation_problem(obs)
            if problem:
                camera.refused[problem] += 1
            else:
                observations.append(obs)
        camera.offer(fusion_messages.stamp_ns(header.stamp), header.frame_id, observations,
                     time.monotonic_ns())

    # ------------------------------------------------------------------ fusion
    def _fuse(self):
        """Choose cameras, bring their hands into the fusion frame, fuse, publish."""
        values = self._values
        now_ns = self.get_clock().now().nanoseconds
        stamp_ns, used, live = self._choose(now_ns)
        if stamp_ns is None or not any(self._cameras[k].has_new for k in used):
            return
        if not output_due({k: self._cameras[k].new_since_ns for k in live},
                          time.monotonic_ns(), values['fusion.max_wait_s']):
            return
        if stamp_ns < self._last_stamp_ns:   # the leading camera dropped out: skip these
            self._counts['stamp_backwards'] += 1
            for key in used:
                self._cameras[key].fused_seq = self._cameras[key].latest.seq
            return
        observations = []
        for key in used:
            observations.extend(self._in_fusion_frame(self._cameras[key]))
        hands = self._fuser.fuse(observations, stamp_ns)
        finite = [hand for hand in hands if fusion_messages.fused_hand_is_finite(hand)]
        self._counts['non_finite'] += len(hands) - len(finite)
        self._last_stamp_ns = stamp_ns
        self._counts['outputs'] += 1
        self._counts['fused_hands'] += len(finite)
        self._publish(finite, stamp_ns, values['fusion.frame'])

    def _choose(self, now_ns):
        """Return ``(common stamp or None, used keys, live keys)``; set each ``left_out``.

        Live cameras are those not stale (an output waits for their new hands).
        """
        values = self._values
        latest = {key: c.latest.stamp_ns for key, c in self._cameras.items()
                  if c.latest is not None}
        stamp_ns, used, left_out = choose_cameras(
            latest, now_ns, values['fusion.stale_after_s'], values['fusion.sync_tolerance_s'])
        order = list(self._cameras)
        used = sorted(used, key=order.index)
        # A frame id claimed twice by live cameras is reported whether or not they are in
        # sync now (the first listed keeps it).
        duplicates = fusion_status.duplicate_frames(
            self._cameras, [key for key in order if key in latest
                            and left_out.get(key) != STALE])
        for key, camera in self._cameras.items():
            if camera.latest is None:
                camera.left_out = 'nothing received on %s' % camera.topic
            elif key in duplicates:
                camera.left_out = 'frame id %r is also the frame of camera %s' % (
                    camera.latest.frame_id, duplicates[key])
            elif key in left_out:
                camera.left_out = '%s (newest stamp %.3f s behind)' % (
                    left_out[key], ((stamp_ns or now_ns) - camera.latest.stamp_ns) * 1e-9)
            else:   # in this output unless its transform fails (as it did last time)
                camera.left_out = camera.tf_problem
        live = [key for key in latest if left_out.get(key) != STALE and key not in duplicates]
        return stamp_ns, [key for key in used if key not in duplicates], live

    def _in_fusion_frame(self, camera):
        """Return the camera's newest hands in the fusion frame ([] when TF has no answer)."""
        frame = self._values['fusion.frame']
        hands = camera.latest
        camera.fused_seq = hands.seq   # processed: not fused again without a newer message
        try:
            transform = self._tf.lookup(frame, hands.frame_id, hands.stamp_ns)
        except TransformError as exc:
            camera.tf_problem = camera.left_out = 'no transform %s <- %s (%s): %s' % (
                frame, hands.frame_id, exc.kind, exc)
            return []
        camera.tf_problem = camera.left_out = ''
        return [in_frame(obs, transform, frame) for obs in hands.observations]

    # ------------------------------------------------------------------ output
    def _publish(self, hands, stamp_ns, frame):
        values = self._values
        self._pose_pub.publish(fusion_messages.fused_pose_array_msg(hands, stamp_ns, frame))
        prefix = frame_names.tf_prefix(values['output.tf_prefix'], self.get_namespace(),
                                       base=FUSED_TF_PREFIX)
        prefixes = fusion_messages.hand_names(self._names, hands, prefix)
        if values['output.publish_tf'] and hands:
            self._tf_pub.publish(fusion_messages.fused_tf_message(hands, prefixes, stamp_ns,
                                                                  frame))
        if self._collisions is not None:
            self._collisions.update([collision_objects.CollisionHand(
                name=name, frame_id=frame, stamp_ns=stamp_ns,
                t_frame_wrist=_pose_matrix(hand.rotation, hand.wrist_m),
                joints_m=hand.joints_m, covariance_m2=hand.covariance_m2)
                for hand, name in zip(hands, prefixes)])

    def _publish_diagnostics(self):
        from hand_mesh_ros.ros.messages import make_header
        counts = Counter(self._counts)
        for reason, count in getattr(self._tf, 'refused', {}).items():
            counts['tf_refused.' + reason] = count
        msg, self._reported_refused = fusion_status.fusion_diagnostics(
            self._cameras, counts, make_header(self.get_clock().now().nanoseconds,
                                               self._values['fusion.frame']),
            self.get_fully_qualified_name().lstrip('/'), self._reported_refused)
        self._diag_pub.publish(msg)

    def close(self):
        """REMOVE every collision object (idempotent)."""
        if not self._closed:
            self._closed = True
            if self._collisions is not None:
                self._collisions.close()


def _pose_matrix(rotation, position):
    t = np.eye(4)
    t[:3, :3] = rotation
    t[:3, 3] = position
    return t


def main(argv=None):
    """Run hand_fusion_node until Ctrl-C or SIGTERM (collision objects REMOVEd); exit code."""
    from rclpy.exceptions import ParameterException
    return run_until_signal(
        'hand_fusion_node',
        lambda: params_file_check.warned(HandFusionNode(), argv or sys.argv),
        (ValueError, ParameterException), argv)


if __name__ == '__main__':
    sys.exit(main())
