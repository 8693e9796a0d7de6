"""Tests for the multi-hand tracker on the real sample photo and video (ONNX models)."""

import json

import cv2
import numpy as np
import pytest

from hand_mesh_ros.core.tracking.hand_tracking import HandTracker
from hand_mesh_ros.paths import data_dir

FPS = 25.0


@pytest.fixture(scope='module')
def video_frames():
    capture = cv2.VideoCapture(str(data_dir() / 'asl_hand.25fps.mp4'))
    frames = []
    while len(frames) < 40:
        ok, bgr = capture.read()
        assert ok
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    capture.release()
    golden = json.loads((data_dir() / 'asl_hand.full.json').read_text())[:40]
    return frames, [np.asarray(g, dtype=float)[:, :2] for g in golden]


@pytest.fixture(scope='module')
def golden_world_m():
    golden = json.loads((data_dir() / 'asl_hand_3d.full.json').read_text())[:40]
    return [np.asarray(g, dtype=float) for g in golden]


@pytest.fixture(scope='module')
def photo():
    bgr = cv2.imread(str(data_dir() / 'hands.jpg'))
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def test_tracks_video_with_one_id_and_rare_detection(sessions, video_frames, golden_world_m):
    frames, golden = video_frames
    tracker = HandTracker(*sessions, max_hands=2, detect_interval=10)
    errors, world_errors_m, ids, from_detection = [], [], set(), 0
    for index, rgb in enumerate(frames):
        hands = tracker.process(rgb, index / FPS)
        assert len(hands) == 1
        hand = hands[0]
        ids.add(hand.track_id)
        from_detection += hand.from_detection
        assert hand.frames_tracked == index + 1
        assert hand.keypoints_px.shape == (21, 2) and hand.world_joints_m.shape == (21, 3)
        assert hand.crop_landmarks.shape == (21, 3) and hand.keypoint_z.shape == (21,)
        errors.append(np.linalg.norm(hand.keypoints_px - golden[index], axis=1).mean())
        world_errors_m.append(np.linalg.norm(hand.world_joints_m - golden_world_m[index],
                                             axis=1).mean())
    assert ids == {1}
    assert from_detection == 1  # only the first frame's crop came from the palm detector
    # One hand of max_hands=2: the detector looks for a second hand every 10 frames only.
    assert tracker.detector_runs == 4
    assert np.median(errors) < 4.0
    # World joints are in MediaPipe's image-aligned frame (rotated by the crop's rotation).
    assert np.median(world_errors_m) < 0.002
    # The crop transform maps the network's landmarks back to the reported keypoints.
    np.testing.assert_allclose(hand.crop_transform.to_image(hand.crop_landmarks[:, :2]),
                               hand.keypoints_px, atol=1e-6)


def test_detector_runs_once_when_max_hands_tracked(sessions, video_frames):
    frames, _ = video_frames
    tracker = HandTracker(*sessions, max_hands=1, detect_interval=1)
    for index, rgb in enumerate(frames[:15]):
        assert len(tracker.process(rgb, index / FPS)) == 1
    assert tracker.detector_runs == 1
    assert tracker.landmark_crops == 15


@pytest.mark.parametrize('max_hands', [1, 2, 3])
def test_max_hands_respected_and_duplicates_suppressed(sessions, photo, max_hands):
    tracker = HandTracker(*sessions, max_hands=max_hands, detect_interval=1)
    for frame in range(4):
        hands = tracker.process(photo, frame / FPS)
        assert len(hands) == min(max_hands, 2)
        # Ids are stable: the detector's repeated hits on tracked hands are suppressed.
        assert [h.track_id for h in hands] == list(range(1, min(max_hands, 2) + 1))
        assert all(h.side == 'left' for h in hands)
    assert tracker.num_tracks == min(max_hands, 2)
    assert tracker.detector_runs == (1 if max_hands <= 2 else 4)


def test_lost_track_keeps_id_within_timeout_and_expires_after(sessions, video_frames):
    frames, _ = video_frames
    blank = np.full_like(frames[0], 200)
    tracker = HandTracker(*sessions, max_hands=1, lost_timeout_s=0.5)
    assert [h.track_id for h in tracker.process(frames[0], 0.0)] == [1]
    assert tracker.process(blank, 0.04) == []
    assert tracker.num_tracks == 1  # lost, but kept for re-association
    hands = tracker.process(frames[1], 0.2)
    assert [h.track_id for h in hands] == [1]
    assert hands[0].frames_tracked == 2
    assert tracker.process(blank, 0.3) == []
    assert tracker.process(blank, 1.0) == []
    assert tracker.num_tracks == 0  # timed out
    assert [h.track_id for h in tracker.process(frames[2], 1.1)] == [2]  # ids never reused
    tracker.reset()
    assert [h.track_id for h in tracker.process(frames[3], 1.2)] == [3]


def test_mirrored_camera_flips_side(sessions, photo):
    hands = HandTracker(*sessions, image_is_mirrored=True).process(photo, 0.0)
    assert [h.side for h in hands] == ['right', 'right']
    assert all(h.handedness_score > 0.9 for h in hands)


def test_rejects_wrong_image_type(sessions):
    tracker = HandTracker(*sessions)
    with pytest.raises(ValueError):
        tracker.process(np.zeros((10, 10), np.uint8), 0.0)
    with pytest.raises(ValueError):
        HandTracker(*sessions, max_hands=0)
