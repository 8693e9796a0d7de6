"""Multi-hand tracking on full frames: palm detector when needed, landmarks every frame.

Each frame, every live track's crop is placed from the previous frame's landmarks and the
landmark model runs on all of them (one batch when the session takes one). The palm detector
runs only while fewer than ``max_hands`` hands are tracked, and then only when a track was lost
this frame, when nothing is tracked, or every ``detect_interval`` frames. New detections that
overlap a tracked hand are suppressed; a lost track keeps its id for ``lost_timeout_s`` seconds
and is re-associated when a detection reappears where it was. Track ids increase monotonically
and are never reused.
"""

from dataclasses import dataclass
import time
from typing import Dict, List, NamedTuple, Optional

import numpy as np

from hand_mesh_ros.core.tracking.crop import rotated_rect_iou
from hand_mesh_ros.core.tracking.hand_landmarks import HandLandmarker, landmarks_to_roi
from hand_mesh_ros.core.tracking.mesh_outputs import MeshOutputs
from hand_mesh_ros.core.tracking.palm_detection import box_iou, palm_to_hand_roi, PalmDetector

STAGES = ('palm_pre_post', 'palm_infer', 'landmark_pre_post', 'landmark_infer', 'tracking')


@dataclass(frozen=True)
class TrackedHand:
    """One tracked hand in one frame (raw-image pixels; world joints in metres).

    keypoints_px: (21, 2); keypoint_z: (21,) relative depth in pixel scale; world_joints_m:
    (21, 3) root-relative, image-aligned axes; crop_landmarks: (21, 3) crop pixels as the network
    gave them; roi: the crop's RotatedRect; crop_transform: its CropTransform; side: 'left' or
    'right' (for the tracker's ``image_is_mirrored``), handedness_score: its probability,
    smoothed over the track; frames_tracked: frames this track has been seen, this one included;
    from_detection: whether this frame's crop came from the palm detector; mesh: the mesh
    network's lifted outputs for this hand's crop (None for a landmark-only model).
    """

    track_id: int
    side: str
    handedness_score: float
    presence: float
    keypoints_px: np.ndarray
    keypoint_z: np.ndarray
    world_joints_m: np.ndarray
    roi: object
    crop_transform: object
    crop_landmarks: np.ndarray
    frames_tracked: int
    from_detection: bool
    mesh: Optional[MeshOutputs] = None


class TrackedFrame(NamedTuple):
    """The hands of one frame (by track id) and the tracker's stage times (ms, :data:`STAGES`)."""

    hands: List[TrackedHand]
    timings_ms: Dict[str, float]


class _TimedSession:
    """Session proxy that adds the time spent in ``run`` to a counter (seconds)."""

    def __init__(self, session):
        self._session = session
        self.input_specs = session.input_specs
        self.output_names = session.output_names
        self.elapsed_s = 0.0

    def run(self, feeds):
        start = time.perf_counter()
        try:
            return self._session.run(feeds)
        finally:
            self.elapsed_s += time.perf_counter() - start


class _Track:
    """Mutable per-track state (internal)."""

    def __init__(self, track_id):
        self.track_id = track_id
        self.next_roi = None
        self.last_roi = None
        self.keypoints_px = None
        self.last_seen_s = None
        self.frames_tracked = 0
        self.p_right = None


def keypoint_box_iou(keypoints_a_px, keypoints_b_px):
    """Return the IoU of the axis-aligned boxes around two (21, 2) keypoint sets."""
    box_a = np.concatenate([keypoints_a_px.min(axis=0), keypoints_a_px.max(axis=0)])
    box_b = np.concatenate([keypoints_b_px.min(axis=0), keypoints_b_px.max(axis=0)])
    return float(box_iou(box_a, box_b[None])[0])


class HandTracker:
    """Detect and track up to ``max_hands`` hands in a video stream."""

    def __init__(self, palm_session, hand_session, *, max_hands=2, min_detection_score=0.5,
                 min_presence=0.5, detect_interval=10, lost_timeout_s=0.5,
                 duplicate_iou=0.5, reassociate_iou=0.2, nms_iou_threshold=0.3,
                 image_is_mirrored=False, handedness_smoothing=0.8, palm_roi_scale=2.6,
                 palm_roi_shift_y=-0.5, landmark_roi_scale=2.0, landmark_roi_shift_y=-0.1,
                 landmark_max_batch=None):
        """Build a tracker on two injected sessions (``run``/``input_specs``/``output_names``).

        ``hand_session`` runs on each hand's crop: the hand mesh network (landmark outputs and
        :class:`MeshOutputs`) or a landmark-only model.

        detect_interval: frames between palm-detector runs while fewer than ``max_hands`` are
        tracked (1 = every frame, like MediaPipe). duplicate_iou: a new hand whose crop or
        keypoint box overlaps a tracked hand by more than this is dropped. reassociate_iou: a
        new hand overlapping a recently lost track's last crop this much takes over its id.
        handedness_smoothing: weight of the track's history in its right-hand probability.
        landmark_max_batch: most crops per landmark-model call (None: the session's own
            ``max_batch`` where it has one, e.g. a TensorRT profile maximum; else all hands).
        """
        if max_hands < 1:
            raise ValueError('max_hands must be at least 1')
        if detect_interval < 1:
            raise ValueError('detect_interval must be at least 1 frame')
        self._palm_session = _TimedSession(palm_session)
        self._landmark_session = _TimedSession(hand_session)
        self.palm_detector = PalmDetector(self._palm_session, min_score=min_detection_score,
                                          nms_iou_threshold=nms_iou_threshold)
        if landmark_max_batch is None:
            landmark_max_batch = getattr(hand_session, 'max_batch', None)
        self.landmarker = HandLandmarker(self._landmark_session,
                                         image_is_mirrored=image_is_mirrored,
                                         max_batch=landmark_max_batch)
        self.max_hands = int(max_hands)
        self.min_presence = float(min_presence)
        self.detect_interval = int(detect_interval)
        self.lost_timeout_s = float(lost_timeout_s)
        self.duplicate_iou = float(duplicate_iou)
        self.reassociate_iou = float(reassociate_iou)
        self.handedness_smoothing = float(handedness_smoothing)
        self.palm_roi_scale = float(palm_roi_scale)
        self.palm_roi_shift_y = float(palm_roi_shift_y)
        self.landmark_roi_scale = float(landmark_roi_scale)
        self.landmark_roi_shift_y = float(landmark_roi_shift_y)
        self.frames_processed = 0
        self.detector_runs = 0
        self.landmark_crops = 0
        self._tracks = []
        self._next_id = 1
        self._frames_since_detection = None

    def reset(self):
        """Forget all tracks (ids keep increasing)."""
        self._tracks = []
        self._frames_since_detection = None

    @property
    def next_track_id(self):
        """Return the id the next new track will get (ids are never reused)."""
        return self._next_id

    def continue_ids_from(self, other):
        """Start new track ids after those ``other`` (a replaced tracker) has handed out.

        Keeps ids monotonic when a reconfiguration replaces the tracker; never lowers them.
        """
        self._next_id = max(self._next_id, int(other.next_track_id))

    @property
    def num_tracks(self):
        """Return how many tracks exist, lost ones within their timeout included."""
        return len(self._tracks)

    def process(self, rgb, timestamp_s):
        """Track hands in ``rgb`` (H, W, 3) uint8 RGB at ``timestamp_s``; return visible hands."""
        return self.track(rgb, timestamp_s).hands

    def track(self, rgb, timestamp_s):
        """Return the :class:`TrackedFrame` of ``rgb`` (H, W, 3) uint8 RGB at ``timestamp_s``."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError('expected an (H, W, 3) uint8 RGB image, got %s %s'
                             % (rgb.shape, rgb.dtype))
        start = time.perf_counter()
        self._palm_session.elapsed_s = 0.0
        self._landmark_session.elapsed_s = 0.0
        palm_s = landmark_s = 0.0
        self.frames_processed += 1
        self._tracks = [t for t in self._tracks
                        if t.next_roi is not None or timestamp_s - t.last_seen_s
                        <= self.lost_timeout_s]

        stage = time.perf_counter()
        active = [t for t in self._tracks if t.next_roi is not None]
        results = self.landmarker.run(rgb, [t.next_roi for t in active])
        self.landmark_crops += len(active)
        landmark_s += time.perf_counter() - stage
        visible = []
        lost_now = False
        for track, result in zip(active, results):
            if self._accept(result):
                visible.append((track, self._update(track, result, timestamp_s), False))
            else:
                track.next_roi = None
                lost_now = True
        visible = self._drop_duplicate_tracks(visible)

        if self._frames_since_detection is not None:
            self._frames_since_detection += 1
        due = (self._frames_since_detection is None
               or self._frames_since_detection >= self.detect_interval)
        if len(visible) < self.max_hands and (lost_now or not visible or due):
            stage = time.perf_counter()
            detections = self.palm_detector.detect(rgb)
            palm_s += time.perf_counter() - stage
            self.detector_runs += 1
            self._frames_since_detection = 0
            stage = time.perf_counter()
            visible += self._add_detections(rgb, detections, visible, timestamp_s)
            landmark_s += time.perf_counter() - stage

        hands = [self._to_hand(track, result, from_det) for track, result, from_det in visible]
        total_s = time.perf_counter() - start
        palm_infer = self._palm_session.elapsed_s
        landmark_infer = self._landmark_session.elapsed_s
        timings_ms = {
            'palm_pre_post': 1e3 * (palm_s - palm_infer),
            'palm_infer': 1e3 * palm_infer,
            'landmark_pre_post': 1e3 * (landmark_s - landmark_infer),
            'landmark_infer': 1e3 * landmark_infer,
            'tracking': 1e3 * (total_s - palm_s - landmark_s),
        }
        return TrackedFrame(sorted(hands, key=lambda hand: hand.track_id), timings_ms)

    def _accept(self, result):
        return (result.presence >= self.min_presence
                and bool(np.all(np.isfinite(result.keypoints_px)))
                and bool(np.all(np.isfinite(result.world_joints_m))))

    def _update(self, track, result, timestamp_s):
        track.last_roi = result.roi
        track.keypoints_px = result.keypoints_px
        track.next_roi = landmarks_to_roi(result.keypoints_px, scale=self.landmark_roi_scale,
                                          shift_y=self.landmark_roi_shift_y)
        track.last_seen_s = float(timestamp_s)
        track.frames_tracked += 1
        p_right = result.handedness_score if result.side == 'right' else \
            1.0 - result.handedness_score
        if track.p_right is None:
            track.p_right = p_right
        else:
            w = self.handedness_smoothing
            track.p_right = w * track.p_right + (1.0 - w) * p_right
        return result

    def _drop_duplicate_tracks(self, visible):
        kept = []
        for entry in sorted(visible, key=lambda e: e[0].track_id):
            if any(keypoint_box_iou(entry[1].keypoints_px, other[1].keypoints_px)
                   > self.duplicate_iou for other in kept):
                self._tracks.remove(entry[0])
                continue
            kept.append(entry)
        return kept

    def _overlaps_visible(self, roi, visible):
        for track, result, _ in visible:
            if rotated_rect_iou(roi, result.roi) > self.duplicate_iou:
                return True
            if rotated_rect_iou(roi, track.next_roi) > self.duplicate_iou:
                return True
        return False

    def _add_detections(self, rgb, detections, visible, timestamp_s):
        free = self.max_hands - len(visible)
        rois = []
        for detection in detections:
            roi = palm_to_hand_roi(detection, scale=self.palm_roi_scale,
                                   shift_y=self.palm_roi_shift_y)
            if not self._overlaps_visible(roi, visible) and all(
                    rotated_rect_iou(roi, other) <= self.duplicate_iou for other in rois):
                rois.append(roi)
        rois = rois[:free]
        results = self.landmarker.run(rgb, rois)
        self.landmark_crops += len(rois)
        added = []
        for result in results:
            if not self._accept(result):
                continue
            taken = visible + added
            if any(keypoint_box_iou(result.keypoints_px, r.keypoints_px) > self.duplicate_iou
                   for _, r, _ in taken):
                continue
            track = self._reassociate(result, [t for t, _, _ in taken])
            if track is None:
                track = _Track(self._next_id)
                self._next_id += 1
                self._tracks.append(track)
            added.append((track, self._update(track, result, timestamp_s), True))
        return added

    def _reassociate(self, result, taken):
        roi = landmarks_to_roi(result.keypoints_px, scale=self.landmark_roi_scale,
                               shift_y=self.landmark_roi_shift_y)
        best, best_iou = None, self.reassociate_iou
        for track in self._tracks:
            if track.next_roi is not None or track in taken or track.last_roi is None:
                continue
            iou = rotated_rect_iou(roi, track.last_roi)
            if iou > best_iou:
                best, best_iou = track, iou
        return best

    def _to_hand(self, track, result, from_detection):
        side = 'right' if track.p_right >= 0.5 else 'left'
        score = track.p_right if side == 'right' else 1.0 - track.p_right
        return TrackedHand(track.track_id, side, float(score), result.presence,
                           result.keypoints_px, result.keypoint_z, result.world_joints_m,
                           result.roi, result.crop_transform, result.crop_landmarks,
                           track.frames_tracked, from_detection, result.mesh)
