"""One frame in, every hand out: tracking, mesh network, root recovery, tailor.

The pipeline owns the inference sessions, the tracker, the hand model and the tailor. It is
pure core code: the sessions are built by :mod:`hand_mesh_ros.inference` (imported lazily),
and nothing here imports ROS.
"""

import math
from pathlib import Path
import time
from typing import Callable, Optional, Tuple

import numpy as np

from hand_mesh_ros.core.camera.camera import (CameraMode, CameraModel, fallback_camera,
                                              nominal_focal_px)
from hand_mesh_ros.core.config import PipelineConfig
from hand_mesh_ros.core.depth.depth_stage import check_depth, DEPTH_FUSED, DEPTH_NOT_FUSED
from hand_mesh_ros.core.depth.depth_stage import HandDepthFusion
from hand_mesh_ros.core.errors import HandMeshError, InputError, TailorError
from hand_mesh_ros.core.fitting.plausibility import (check_plausibility, joints3d_trust,
                                                     mirrored_network_error_px,
                                                     TrackContinuity)
from hand_mesh_ros.core.fitting.refit_2d import PosePrior, refit_from_2d
from hand_mesh_ros.core.fitting.root_recovery import recover_root
from hand_mesh_ros.core.fitting.tailor import HandTailor
from hand_mesh_ros.core.fitting.tailor_terms import Projector, TailorResult
from hand_mesh_ros.core.fitting.uncertainty import hand_confidence, position_covariance_m2
from hand_mesh_ros.core.hand import rotations
from hand_mesh_ros.core.hand.hand_model import load_hand_model
from hand_mesh_ros.core.tracking.hand_tracking import HandTracker
from hand_mesh_ros.core.types import (Frame, FrameResult, HandEstimate, SHAPE_NETWORK,
                                      SHAPE_REFIT_2D)
from hand_mesh_ros.paths import models_dir as default_models_dir

#: Extra outputs of the mesh network graph (index 0: lifted as a right hand, 1: as a left).
MESH_OUTPUTS = ('mesh_pose_aa', 'mesh_shape', 'mesh_keypoints')
SIDE_INDEX = {'right': 0, 'left': 1}
MIN_IMAGE_SIDE_PX = 32
#: The tailor stops a fit that runs beyond this many times the gates' far depth ('too_far');
#: between the two the gate drops it ('implausible_depth').
TAILOR_DEPTH_FACTOR = 2.0
#: Gate failures of the network's 3D after which the hand is refitted from its 2D alone.
REFIT_REASONS = ('inconsistent_3d_2d', 'implausible_reprojection', 'too_far')


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


def _rot_z(angle_rad):
    c, s = math.cos(angle_rad), math.sin(angle_rad)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def camera_root_pose(pose_aa, roi_rotation_rad, side):
    """Return ``pose_aa`` with its root rotation expressed in the camera-aligned frame.

    The network's lifting gives the root rotation in the crop's world frame; the crop is
    rotated by ``roi_rotation_rad`` about the optical axis. A left hand is a mirrored right
    model (x -> -x), for which a rotation about z by theta acts as one by -theta.
    """
    angle = roi_rotation_rad if side == 'right' else -roi_rotation_rad
    pose = np.array(pose_aa, dtype=np.float64)
    root = _rot_z(angle) @ rotations.axis_angle_to_matrix(pose[0])
    pose[0] = rotations.matrix_to_axis_angle(root)
    return pose


def network_hand(hand):
    """Return the network's pose (J, 3), shape (S,) and root-relative 3D joints (21, 3).

    ``hand`` is a tracked hand with the mesh network's outputs; pose and joints in
    camera-aligned axes (the crop's rotation undone).
    """
    side_index = SIDE_INDEX[hand.side]
    extra = hand.extra_outputs
    pose = camera_root_pose(np.asarray(extra['mesh_pose_aa'])[side_index],
                            hand.roi.rotation_rad, hand.side)
    shape = np.asarray(extra['mesh_shape'], dtype=np.float64)[side_index]
    network_kp = np.asarray(extra['mesh_keypoints'], dtype=np.float64)[side_index]
    joints_rel = (network_kp - network_kp[0]) @ _rot_z(hand.roi.rotation_rad).T
    return pose, shape, joints_rel


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
        self._log = log or (lambda level, message: None)
        model_cfg = self.config.model
        loaded = sessions is None
        if loaded:
            sessions = self._load_sessions(model_cfg)
        self.palm_session, self.mesh_session = sessions
        missing = [n for n in MESH_OUTPUTS if n not in self.mesh_session.output_names]
        if missing:
            raise HandMeshError('%s is not a hand mesh network (missing outputs %s); run '
                                '`hand-mesh setup-models`'
                                % (getattr(self.mesh_session, 'model_path', '?'), missing))
        self.backend_name = getattr(self.mesh_session, 'backend_name', 'unknown')
        self.hand_model = self._load_hand_model(model_cfg)
        # The mean hand (zero shape) that the bone-length gate compares against.
        self._reference_joints = self.hand_model.forward(
            self.hand_model.zero_pose(), self.hand_model.zero_shape()).keypoints
        self._continuity = TrackContinuity()
        #: Figures of the plausibility gates of the last processed frame, one dict per hand.
        self.last_gate_figures = []
        self.depth_fusion = HandDepthFusion(self.hand_model)
        self.tracker = None
        self.tailor = None
        self._tailor_tracks = set()
        self._camera_key = None
        self.update_config(self.config)
        self._pose_prior = PosePrior.from_joint_limits(self.hand_model, self.tailor.free_bones)
        if loaded:
            self._check_palm_model()

    def _load_sessions(self, model_cfg):
        from hand_mesh_ros.inference import create_session
        root = Path(model_cfg.models_dir) if model_cfg.models_dir else default_models_dir()
        kwargs = {'backend': model_cfg.backend, 'num_threads': model_cfg.num_threads,
                  'fp16': model_cfg.fp16, 'log': self._log}
        # Engine profiles: the palm detector always runs one image; the mesh network one
        # crop per hand, up to detection.max_hands at once (HandTracker splits beyond).
        palm = create_session(root / ('palm_detection_%s.onnx' % model_cfg.variant),
                              max_batch=1, **kwargs)
        mesh = create_session(root / ('hand_mesh_%s.onnx' % model_cfg.variant),
                              max_batch=self.config.detection.max_hands, **kwargs)
        return palm, mesh

    def _check_palm_model(self):
        """Run the palm detector once on a blank image, so a wrong model fails at start-up.

        Raises:
            HandMeshError: the palm model does not have the palm detector's interface.

        """
        blank = np.zeros((4 * MIN_IMAGE_SIDE_PX, 4 * MIN_IMAGE_SIDE_PX, 3), np.uint8)
        try:
            self.tracker.palm_detector.detect(blank)
        except Exception as exc:  # noqa: B902 - any failure means the model does not fit
            raise HandMeshError('%s is not a usable palm detection model (%s: %s); run '
                                '`hand-mesh setup-models`'
                                % (getattr(self.palm_session, 'model_path', '?'),
                                   type(exc).__name__, exc)) from exc

    def _load_hand_model(self, model_cfg):
        """Load the hand model; raise HandMeshError naming the file when it cannot be."""
        path = None
        if model_cfg.hand_model == 'mano':
            if not model_cfg.mano_path:
                raise HandMeshError("model.hand_model is 'mano' but model.mano_path is empty: "
                                    'point it at your own MANO_RIGHT.pkl')
            path = Path(model_cfg.mano_path)
            if not path.is_file():
                raise HandMeshError('MANO file not found: %s (model.mano_path)' % path)
        elif model_cfg.models_dir:
            # A custom models directory may hold its own hand model; else the package's.
            candidate = Path(model_cfg.models_dir) / 'hand_model_right.npz'
            path = candidate if candidate.is_file() else None
        try:
            return load_hand_model(path)
        except HandMeshError:
            raise
        except Exception as exc:  # noqa: B902 - a corrupt file can fail in many ways
            raise HandMeshError('cannot load the hand model %s: %s: %s'
                                % (path or 'hand_model_right.npz (package models)',
                                   type(exc).__name__, exc)) from exc

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
            self._tailor_tracks = set()
            self.depth_fusion.reset()
        self.config = config

    def camera_for(self, frame: Frame) -> Tuple[Optional[CameraModel], str]:
        """Return (camera model or None, position mode) for ``frame``."""
        if frame.camera is not None:
            return frame.camera, CameraMode(frame.camera.mode).value
        height, width = frame.rgb.shape[:2]
        camera, mode = fallback_camera(width, height, self.config.camera.fallback_mode,
                                       self.config.camera.assumed_hfov_deg)
        return camera, mode.value

    def process(self, frame: Frame) -> FrameResult:
        """Return the :class:`FrameResult` of one :class:`Frame`.

        Raises:
            InputError: the image is not a usable (H, W, 3) uint8 array.

        """
        check_rgb(frame.rgb)
        height, width = frame.rgb.shape[:2]
        camera, mode = self.camera_for(frame)
        if camera is not None:
            camera.check_image_size(width, height)
        key = camera_key(camera)
        if key != self._camera_key:
            # Positions under another camera model are not motion: restart every track's
            # temporal state (motion prediction, pose prior), keep the tracks and their ids.
            self._forget_lost_tracks(set())
            self._camera_key = key
        result = FrameResult(stamp_ns=int(frame.stamp_ns), frame_id=frame.frame_id,
                             image_size=(width, height), position_mode=mode)
        timestamp_s = frame.stamp_ns * 1e-9
        start = time.perf_counter()
        tracked = self.tracker.process(frame.rgb, timestamp_s)
        result.timings_ms.update(self.tracker.last_timings_ms)
        result.timings_ms['detect_track_total'] = (time.perf_counter() - start) * 1e3
        root_ms = tailor_ms = depth_ms = 0.0
        self.last_gate_figures = []
        depth, depth_camera = self._frame_depth(frame, camera, mode, result)
        for hand in tracked:
            # A fit that used the track's state and fails is refitted once from scratch (the
            # state may be wrong, e.g. after a jump); a hand is dropped when that fails too.
            retry = self.tailor.has_track(hand.track_id)
            while True:
                estimate, reason, stage_ms = self._estimate_checked(
                    hand, camera, mode, (width, height), timestamp_s)
                root_ms += stage_ms[0]
                tailor_ms += stage_ms[1]
                if reason is not None:
                    self.tailor.forget(hand.track_id)
                if reason is None or not retry:
                    break
                retry = False
            if reason is not None:
                result.rejected[reason] = result.rejected.get(reason, 0) + 1
                continue
            if depth is not None:
                estimate, fusion = self.depth_fusion.apply(
                    estimate, estimate.bone_transforms[0, :3, 3], depth, depth_camera, camera,
                    self.config.depth, self.tailor)
                depth_ms += self.depth_fusion.last_ms
                if fusion.fused:
                    result.depth_status = DEPTH_FUSED
                else:
                    result.depth_rejected[fusion.reason] = (
                        result.depth_rejected.get(fusion.reason, 0) + 1)
            self._continuity.publish(hand.track_id, estimate.joints_m[0], timestamp_s)
            result.hands.append(estimate)
        result.timings_ms['root_recovery'] = root_ms
        result.timings_ms['tailor'] = tailor_ms
        if depth is not None:
            result.timings_ms['depth_fusion'] = depth_ms
        self._forget_lost_tracks({h.track_id for h in tracked})
        return result

    def _estimate_checked(self, hand, camera, mode, image_size, timestamp_s):
        """Return (HandEstimate or None, rejection reason or None, (root ms, tailor ms)).

        A hand whose network 3D fails a gate of :data:`REFIT_REASONS` is refitted from its
        2D keypoints (``gates.refit_from_2d``); the refit is published when it passes the
        gates, else the network's reason stands.
        """
        try:
            estimate, stage_ms, network = self._estimate(hand, camera, mode, image_size,
                                                         timestamp_s)
        except HandMeshError as exc:
            estimate, reason, stage_ms = None, getattr(exc, 'reason', type(exc).__name__), (
                0.0, 0.0)
        else:
            reason = ('not_finite' if not estimate.is_finite() else self._gate(
                hand, estimate, network, camera, image_size[0], timestamp_s))
        if reason in REFIT_REASONS and self.config.gates.refit_from_2d:
            start = time.perf_counter()
            refit = self._refit(hand, camera, mode, image_size, timestamp_s)
            stage_ms = (stage_ms[0], stage_ms[1] + (time.perf_counter() - start) * 1e3)
            if refit is not None:
                return refit, None, stage_ms
        return estimate, reason, stage_ms

    def _refit(self, hand, camera, mode, image_size, timestamp_s):
        """Return the hand refitted from its 2D keypoints if it passes the gates, else None."""
        pose, _, joints_rel = network_hand(hand)
        length_m, length_sd_m = self.tailor.hand_length_m(hand.track_id)
        try:
            refit = refit_from_2d(
                self.tailor, hand.side, hand.keypoints_px, camera, network_pose_aa=pose,
                hand_length_m=length_m, hand_length_sd_m=length_sd_m, prior=self._pose_prior,
                image_size=image_size, max_depth_m=self.config.gates.max_depth_m)
        except HandMeshError:
            return None
        if refit is None:
            return None
        estimate = self._hand_estimate(
            hand, refit.pose_aa, refit.shape, refit.translation_m, camera, mode, image_size,
            refit.hand_length_m, refit.position_covariance_m2, SHAPE_REFIT_2D)
        if not estimate.is_finite():
            return None
        mirrored_error_px = mirrored_network_error_px(hand.keypoints_px, joints_rel, camera,
                                                      image_size)
        reason = self._gate(hand, estimate, (joints_rel, None), camera, image_size[0],
                            timestamp_s, refit_mirror_error_px=mirrored_error_px)
        return estimate if reason is None else None

    def _gate(self, hand, estimate, network, camera, width, timestamp_s,
              refit_mirror_error_px=None):
        """Return the reason why ``estimate`` is implausible, or None (core/plausibility).

        ``network`` is (the network's root-relative joints (21, 3), their mean 2D error at
        the recovered root in px, or None). A hand refitted from 2D (given with the
        network's mean 2D error against the mirrored 2D keypoints, px) is held to
        ``gates.max_refit_error``.
        """
        gates = self.config.gates
        refit = refit_mirror_error_px is not None
        network_joints_rel_m, network_error_px = network
        focal_px = (0.5 * (camera.fx + camera.fy) if camera is not None
                    else nominal_focal_px(width))
        # The gates judge the landmark-convention 3D (the points the network and the mean
        # hand are in), not the published anatomical joint centres.
        landmarks_m = (estimate.keypoints_m if estimate.keypoints_m is not None
                       else estimate.joints_m)
        reason, figures = check_plausibility(
            joints_m=landmarks_m, keypoints_px=estimate.keypoints_px,
            observed_px=estimate.observed_keypoints_px,
            network_joints_rel_m=network_joints_rel_m,
            network_error_px=network_error_px, reference_joints_m=self._reference_joints,
            focal_px=focal_px,
            speed_mps=self._continuity.speed_mps(hand.track_id, estimate.joints_m[0],
                                                 timestamp_s, gates.max_gap_s),
            min_depth_m=gates.min_depth_m, max_depth_m=gates.max_depth_m,
            min_bone_ratio=gates.min_bone_ratio, max_bone_ratio=gates.max_bone_ratio,
            max_network_error=gates.max_network_error,
            max_reprojection_error=(gates.max_refit_error if refit
                                    else gates.max_reprojection_error),
            max_speed_mps=gates.max_speed_mps,
            mirrored_network_error_px=refit_mirror_error_px)
        figures.update(track_id=int(hand.track_id), rejected=reason,
                       shape_source=SHAPE_REFIT_2D if refit else SHAPE_NETWORK)
        self.last_gate_figures.append(figures)
        return reason

    def _frame_depth(self, frame, camera, mode, result):
        """Return (depth (H, W) metres, its camera) of ``frame``, or (None, None).

        A depth image that cannot be used is refused (``result.depth_status`` says why) and
        the frame is processed from colour alone.
        """
        if frame.depth is None or not self.config.depth.enabled:
            return None, None
        try:
            depth_camera = check_depth(frame.depth, frame.depth_camera, frame.rgb.shape,
                                       camera, mode)
        except InputError as exc:
            result.depth_status = exc.reason
            return None, None
        result.depth_status = DEPTH_NOT_FUSED
        return frame.depth, depth_camera

    def _forget_lost_tracks(self, current_ids):
        """Drop the tailor's temporal state of tracks that are no longer tracked."""
        for track_id in self._tailor_tracks - set(current_ids):
            self.tailor.forget(track_id)
            self.depth_fusion.forget(track_id)
        self._tailor_tracks = set(current_ids)
        self._continuity.forget_except(current_ids)

    def _estimate(self, hand, camera, mode, image_size, timestamp_s):
        """Return (HandEstimate, (root ms, tailor ms), network) for one tracked hand.

        ``network`` is (the network's root-relative joints (21, 3), their mean 2D error in px
        at the root recovered from them), for the plausibility gates.
        """
        pose, shape, joints_rel = network_hand(hand)
        start = time.perf_counter()
        # Root recovery runs every frame: its residual tells whether the network's 3D can
        # explain its own 2D keypoints (a gate). A new (or re-found) track starts from its
        # robust solution; a tracked hand starts from the tailor's motion prediction, and
        # plain least squares (5x faster) gives the same residual to ~1 %.
        predicted = (self.tailor.predicted_translation(hand.track_id, timestamp_s)
                     if self.config.tailor.enabled else None)
        root = recover_root(hand.keypoints_px, joints_rel, camera, image_size=image_size,
                            robust='huber' if predicted is None else None)
        network_error_px = float(np.mean(root.residuals_px[root.valid_mask]))
        root_ms = (time.perf_counter() - start) * 1e3
        trust = joints3d_trust(network_error_px, joints_rel, root.translation_m, camera,
                               image_size, self.config.gates.max_network_error)
        start = time.perf_counter()
        if self.config.tailor.enabled:
            translation = root.translation_m if predicted is None else predicted
            refined = self.tailor.refine(
                hand.track_id, hand.keypoints_px, None, joints_rel, pose, shape,
                translation, camera, timestamp_s, hand.side, image_size=image_size,
                max_depth_m=TAILOR_DEPTH_FACTOR * self.config.gates.max_depth_m,
                joints3d_trust=trust)
        else:
            refined = self._unrefined(hand, pose, shape, root.translation_m, camera,
                                      image_size)
        tailor_ms = (time.perf_counter() - start) * 1e3
        estimate = self._hand_estimate(
            hand, refined.pose_aa, refined.shape, refined.translation_m, camera, mode,
            image_size, refined.hand_length_m, refined.position_covariance_m2, SHAPE_NETWORK)
        return estimate, (root_ms, tailor_ms), (joints_rel, network_error_px)

    def _hand_estimate(self, hand, pose_aa, shape, translation_m, camera, mode, image_size,
                       hand_length_m, covariance_m2, shape_source):
        """Return the :class:`HandEstimate` of the hand model posed at ``translation_m``.

        Without a camera model the keypoints are projected weak-perspective, as the fit
        projected them (``image_size`` (width, height) px gives its nominal camera).
        """
        out = self.hand_model.forward(pose_aa, shape, side=hand.side)
        translation = np.asarray(translation_m, dtype=np.float64)
        bones = np.array(out.bone_frames, dtype=np.float64)
        bones[:, :3, 3] += translation
        joints_m = out.joint_centres + translation
        if camera is not None:
            keypoints_px = camera.project(out.keypoints + translation)
        else:
            keypoints_px = Projector(None, image_size).project(out.keypoints + translation,
                                                               translation)[0]
            if keypoints_px is None:
                raise TailorError('the hand is behind the camera')
        error_px = float(np.mean(np.linalg.norm(keypoints_px - hand.keypoints_px, axis=1)))
        return HandEstimate(
            track_id=int(hand.track_id), side=hand.side,
            side_score=float(hand.handedness_score), score=float(hand.presence),
            keypoints_px=keypoints_px, observed_keypoints_px=np.asarray(hand.keypoints_px),
            joints_m=joints_m, vertices_m=out.vertices + translation,
            faces=np.asarray(out.faces, dtype=np.int32), bone_transforms=bones,
            bone_parents=np.asarray(self.hand_model.parents),
            bone_names=self.hand_model.bone_names,
            pose_coefficients=np.asarray(pose_aa, dtype=np.float64),
            shape_coefficients=np.asarray(shape, dtype=np.float64),
            hand_model='mano' if self.config.model.hand_model == 'mano' else 'anny',
            hand_length_m=float(hand_length_m), reprojection_error_px=error_px,
            position_mode=mode,
            confidence=hand_confidence(hand.presence, covariance_m2),
            position_covariance_m2=np.asarray(covariance_m2),
            keypoints_m=out.keypoints + translation, shape_source=shape_source)

    def _unrefined(self, hand, pose, shape, translation, camera, image_size):
        """Return the network's hand at the recovered root, as the tailor would (disabled)."""
        joints = self.hand_model.forward(pose, shape, side=hand.side).keypoints + translation
        keypoints_px = None
        if camera is None:
            keypoints_px = Projector(None, image_size).project(joints, translation)[0]
            if keypoints_px is None:
                raise TailorError('the hand is behind the camera')
        mode = CameraMode.WEAK_PERSPECTIVE if camera is None else CameraMode(camera.mode)
        # No fit to take a covariance from: the hand-length prior and the camera mode only.
        length_mean_m, length_sd_m = self.tailor.hand_length_m(hand.track_id)
        covariance = position_covariance_m2(translation, np.zeros((3, 3)), length_mean_m,
                                            length_sd_m, mode)
        return TailorResult(
            pose_aa=np.asarray(pose, dtype=np.float64), shape=shape,
            translation_m=np.asarray(translation, dtype=np.float64),
            keypoints_px=keypoints_px, joints_m=joints, reprojection_error_before_px=math.nan,
            reprojection_error_after_px=math.nan,
            hand_length_m=self.tailor.size.length_m(shape), hand_length_sigma_m=length_sd_m,
            position_covariance_m2=covariance, iterations=0, converged=True, mode=mode,
            temporal=False)

    def reset(self) -> None:
        """Forget every track (e.g. after a jump in time)."""
        self.tracker.reset()
        self._forget_lost_tracks(set())

    def close(self) -> None:
        """Release the inference sessions."""
        for session in (self.palm_session, self.mesh_session):
            close = getattr(session, 'close', None)
            if close is not None:
                close()
