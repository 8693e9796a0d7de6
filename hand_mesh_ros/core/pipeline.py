"""One frame in, every hand out: tracking, mesh network, root recovery, tailor, gates, depth.

:meth:`HandMeshPipeline.process` reads top to bottom: check the image, take the frame's
camera decision, track the hands, estimate and gate each hand (refitting once from scratch
when a fit that used its track's state fails, then from its 2D keypoints alone when the
network's 3D fails a gate of ``REFIT_REASONS``), fuse depth, return the
:class:`~hand_mesh_ros.core.types.FrameResult`. The maths lives in
:mod:`~hand_mesh_ros.core.hand_estimation`, the tracker, the tailor and the depth stage; the
per-track state in :mod:`~hand_mesh_ros.core.track`. Pure core code: the sessions are built
by :mod:`hand_mesh_ros.inference` (imported lazily), and nothing here imports ROS.
"""

import time
from typing import Callable, Optional, Tuple

import numpy as np

from hand_mesh_ros.core import model_loading
from hand_mesh_ros.core.camera.decision import CameraDecision, frame_camera_decision
from hand_mesh_ros.core.config import PipelineConfig
from hand_mesh_ros.core.depth.depth_stage import check_depth_image, HandDepthFusion
from hand_mesh_ros.core.errors import InputError
from hand_mesh_ros.core.fitting.tailor import HandTailor
from hand_mesh_ros.core.hand_estimation import checked_hand, refit_hand, REFIT_REASONS
from hand_mesh_ros.core.network_outputs import decode_network_hand
from hand_mesh_ros.core.track import TrackBook
from hand_mesh_ros.core.tracking.hand_tracking import HandTracker
from hand_mesh_ros.core.types import DepthOutcome, DepthStatus, Frame, FrameResult

MIN_IMAGE_SIDE_PX = 32


def check_rgb(rgb: np.ndarray) -> None:
    """Raise :class:`InputError` unless ``rgb`` is a usable (H, W, 3) uint8 image."""
    if not isinstance(rgb, np.ndarray):
        raise InputError('image must be a numpy array, got %s' % type(rgb).__name__,
                         reason='bad_type')
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise InputError('image must be (H, W, 3) uint8, got %s %s' % (rgb.shape, rgb.dtype),
                         reason='bad_shape')
    if min(rgb.shape[:2]) < MIN_IMAGE_SIDE_PX:
        raise InputError('image %dx%d is smaller than %d px'
                         % (rgb.shape[1], rgb.shape[0], MIN_IMAGE_SIDE_PX), reason='too_small')


def camera_key(camera):
    """Return a hashable summary of a camera model (size, K, distortion); None for none."""
    if camera is None:
        return None
    return (int(camera.width), int(camera.height), str(camera.distortion_model),
            tuple(np.asarray(camera.k, dtype=np.float64).ravel().tolist()),
            tuple(np.asarray(camera.d, dtype=np.float64).ravel().tolist()))


class HandMeshPipeline:
    """Frames in, :class:`FrameResult` out (thread-compatible: one caller at a time)."""

    def __init__(self, config: Optional[PipelineConfig] = None,
                 log: Optional[Callable[[str, str], None]] = None,
                 sessions: Optional[Tuple[object, object]] = None) -> None:
        """Load models and build the stages.

        Args:
            config: a :class:`PipelineConfig` (default: defaults).
            log: callable(level, message) for start-up messages, or None.
            sessions: optional (palm_session, mesh_session) to use instead of loading the
                models named by ``config.model`` (e.g. sessions shared by a benchmark).

        Raises:
            hand_mesh_ros.inference.InferenceError: a model file is missing or corrupt.

        """
        self.config = config or PipelineConfig()
        log = log or (lambda level, message: None)
        loaded = sessions is None
        if loaded:
            sessions = model_loading.load_sessions(self.config.model,
                                                   self.config.detection.max_hands, log)
        self.palm_session, self.mesh_session = sessions
        model_loading.check_mesh_session(self.mesh_session)
        self.backend_name = getattr(self.mesh_session, 'backend_name', 'unknown')
        self.hand_model = model_loading.load_pipeline_hand_model(self.config.model)
        # The mean hand (zero shape) that the bone-length gate compares against.
        self._reference_joints = self.hand_model.forward(
            self.hand_model.zero_pose(), self.hand_model.zero_shape()).keypoints
        self.depth_fusion = HandDepthFusion(self.hand_model)
        self.tracks = TrackBook()
        self.tracker = None
        self.tailor = None
        self._camera_key = None
        self.update_config(self.config)
        if loaded:
            model_loading.check_palm_model(self.tracker.palm_detector, self.palm_session,
                                           MIN_IMAGE_SIDE_PX)

    def update_config(self, config: PipelineConfig) -> None:
        """Apply a new configuration (detection and tailor settings take effect now)."""
        det = config.detection
        previous = self.tracker
        if previous is None or self.config.detection != det:
            self.tracker = HandTracker(
                self.palm_session, self.mesh_session, max_hands=det.max_hands,
                min_detection_score=det.min_detection_score, min_presence=det.min_presence,
                detect_interval=det.detect_interval, lost_timeout_s=det.lost_timeout_s,
                image_is_mirrored=det.image_is_mirrored,
                landmark_max_batch=getattr(self.mesh_session, 'max_batch', None))
            if previous is not None:
                # Keep ids monotonic across a reconfiguration.
                self.tracker.continue_ids_from(previous)
        if self.tailor is None or self.config.tailor != config.tailor:
            self.tailor = HandTailor(self.hand_model, config.tailor)
            self.tracks.reset_fits()
        self.config = config

    def process(self, frame: Frame) -> FrameResult:
        """Return the :class:`FrameResult` of one :class:`Frame`.

        Raises:
            InputError: the image is not a usable (H, W, 3) uint8 array.

        """
        check_rgb(frame.rgb)
        decision = self._camera_decision(frame)
        result = FrameResult(stamp_ns=int(frame.stamp_ns), frame_id=frame.frame_id,
                             image_size=(frame.rgb.shape[1], frame.rgb.shape[0]),
                             position_mode=decision.mode.value)
        tracked = self._track_hands(frame, result)
        depth = self._frame_depth(frame, decision, result)
        for hand in tracked:
            self._process_hand(hand, decision, depth, frame.stamp_ns * 1e-9, result)
        self.tracks.keep_only(hand.track_id for hand in tracked)
        return result

    def _camera_decision(self, frame) -> CameraDecision:
        """Return the frame's camera decision; a new camera model restarts the tracks' state.

        Positions under another camera model are not motion: every track's temporal state
        (motion prediction, pose prior, metric size, speed) restarts; tracks and ids stay.
        """
        height, width = frame.rgb.shape[:2]
        try:
            decision = frame_camera_decision(width, height, frame.camera, frame.position_mode,
                                             frame.assumed_hfov_deg)
        except ValueError as exc:
            raise InputError(str(exc), reason='bad_camera_decision') from exc
        if decision.camera is not None:
            decision.camera.check_image_size(width, height)
        key = camera_key(decision.camera)
        if key != self._camera_key:
            self.tracks.reset_all()
            self._camera_key = key
        return decision

    def _track_hands(self, frame, result):
        """Return the tracker's hands of ``frame``; record its stage times in ``result``."""
        start = time.perf_counter()
        tracked = self.tracker.track(frame.rgb, frame.stamp_ns * 1e-9)
        result.timings_ms.update(tracked.timings_ms)
        result.timings_ms['detect_track_total'] = (time.perf_counter() - start) * 1e3
        result.timings_ms.update(root_recovery=0.0, tailor=0.0)
        return tracked.hands

    def _process_hand(self, hand, decision, depth, timestamp_s, result):
        """Estimate, gate and (with depth) fuse one tracked hand into ``result``.

        A hand whose network 3D fails a gate of ``REFIT_REASONS`` is refitted from its 2D
        keypoints (``gates.refit_from_2d``) and published when the refit passes the gates.
        """
        track = self.tracks.get(hand.track_id)
        network = decode_network_hand(hand)
        hand_args = (network, track, decision, result.image_size, timestamp_s)
        stages = {'tailor': self.tailor, 'hand_model': self.hand_model, 'config': self.config,
                  'reference_joints_m': self._reference_joints}
        # A fit that used the track's state and fails is refitted once from scratch (the
        # state may be wrong, e.g. after a jump); a hand is dropped when that fails too.
        retry = track.fit is not None
        while True:
            outcome = self._recorded(checked_hand(*hand_args, **stages), result)
            if outcome.reason is not None:
                track.reset_fit()
            if outcome.reason is None or not retry:
                break
            retry = False
        if outcome.reason in REFIT_REASONS and self.config.gates.refit_from_2d:
            outcome = self._recorded(refit_hand(*hand_args, outcome.reason, **stages), result)
        if outcome.reason is not None:
            result.rejected[outcome.reason] = result.rejected.get(outcome.reason, 0) + 1
            return
        estimate = outcome.estimate
        if depth is not None:
            estimate = self._fuse_depth(estimate, track, depth, decision, result)
        track.publish(estimate.joints_m[0], timestamp_s)
        result.hands.append(estimate)

    @staticmethod
    def _recorded(outcome, result):
        """Return ``outcome`` after adding its stage times and gate figures to ``result``."""
        result.timings_ms['root_recovery'] += outcome.root_ms
        result.timings_ms['tailor'] += outcome.tailor_ms
        if outcome.figures is not None:
            result.gate_figures.append(outcome.figures)
        return outcome

    def _frame_depth(self, frame, decision, result):
        """Return (depth (H, W) metres, its camera) of ``frame``, or None.

        A depth image that cannot be used is refused (``result.depth`` says why) and the
        frame is processed from colour alone.
        """
        if frame.depth is None or not self.config.depth.enabled:
            return None
        try:
            depth_camera = check_depth_image(frame.depth, frame.depth_camera, frame.rgb.shape,
                                             decision.camera, decision.mode)
        except InputError as exc:
            result.depth = DepthOutcome(DepthStatus.REFUSED, exc.reason)
            return None
        result.depth = DepthOutcome(DepthStatus.NOT_FUSED)
        result.timings_ms['depth_fusion'] = 0.0
        return frame.depth, depth_camera

    def _fuse_depth(self, estimate, track, depth, decision, result):
        """Return ``estimate`` fused with the frame's depth where it can be.

        The fused hand's pose (re-posed by the articulated depth fit) seeds the track's next
        frame.
        """
        start = time.perf_counter()
        estimate, fusion = self.depth_fusion.apply(
            estimate, depth[0], depth[1], decision.camera, self.config.depth,
            track.metric_length, self.tailor.size, self.tailor.free_bones)
        result.timings_ms['depth_fusion'] += (time.perf_counter() - start) * 1e3
        if fusion.fused:
            result.depth = DepthOutcome(DepthStatus.FUSED)
            track.seed_pose(estimate.pose_coefficients)
        return estimate

    def reset(self) -> None:
        """Forget every track (e.g. after a jump in time)."""
        self.tracker.reset()
        self.tracks.keep_only(())

    def close(self) -> None:
        """Release the inference sessions."""
        for session in (self.palm_session, self.mesh_session):
            close = getattr(session, 'close', None)
            if close is not None:
                close()
