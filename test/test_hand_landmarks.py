"""Tests for landmark decoding, handedness and the landmarks-to-ROI step."""

import json

import cv2
import numpy as np
import pytest

from hand_mesh_ros.core.tracking.crop import crop_transform, RotatedRect
from hand_mesh_ros.core.tracking.hand_landmarks import (decode_hand_landmarks, HandLandmarker,
                                                        landmarks_to_roi, ROI_LANDMARKS,
                                                        side_from_score)
from hand_mesh_ros.core.tracking.palm_detection import palm_to_hand_roi, PalmDetector
from hand_mesh_ros.paths import data_dir


def _golden_hands():
    data = json.loads((data_dir() / 'hands_expected_keypoints.json').read_text())
    return [np.asarray(hand, dtype=float) for hand in data['hands']]


def _rotate(points, angle_rad, centre):
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    return (points - centre) @ np.array([[c, -s], [s, c]]).T + centre


def test_landmarks_to_roi_upright_hand():
    hand = _golden_hands()[0]  # fingers up
    roi = landmarks_to_roi(hand, scale=1.0, shift_y=0.0)
    assert abs(roi.rotation_rad) < 0.35
    # Every ROI landmark lies inside the (unscaled) box; finger tips may not.
    c, s = np.cos(roi.rotation_rad), np.sin(roi.rotation_rad)
    local = (hand[list(ROI_LANDMARKS)] - [roi.center_x_px, roi.center_y_px]) @ np.array(
        [[c, -s], [s, c]])
    assert np.all(np.abs(local) <= roi.width_px / 2 + 1e-9)
    scaled = landmarks_to_roi(hand)
    assert scaled.width_px == pytest.approx(2.0 * roi.width_px)
    assert scaled.height_px == scaled.width_px


def test_landmarks_to_roi_is_rotation_equivariant():
    hand = _golden_hands()[0]
    centre = hand.mean(axis=0)
    base = landmarks_to_roi(hand)
    turned = landmarks_to_roi(_rotate(hand, np.pi / 2, centre))
    assert turned.rotation_rad == pytest.approx(base.rotation_rad + np.pi / 2, abs=1e-9)
    assert turned.width_px == pytest.approx(base.width_px)
    moved = _rotate(np.array([[base.center_x_px, base.center_y_px]]), np.pi / 2, centre)[0]
    assert (turned.center_x_px, turned.center_y_px) == pytest.approx(tuple(moved))
    # The shift moves the centre towards the fingers (up for an upright hand).
    assert landmarks_to_roi(hand, shift_y=-0.1).center_y_px < landmarks_to_roi(
        hand, shift_y=0.0).center_y_px


def test_side_from_score_for_mirrored_and_plain_cameras():
    assert side_from_score(0.03) == ('left', pytest.approx(0.97))
    assert side_from_score(0.03, image_is_mirrored=True) == ('right', pytest.approx(0.97))
    assert side_from_score(0.9) == ('right', pytest.approx(0.9))


def test_decode_maps_crop_to_image_and_rotates_world():
    roi = RotatedRect(100.0, 200.0, 448.0, 448.0, np.pi / 2)
    transform = crop_transform(roi, 224)
    crop = np.zeros((21, 3))
    crop[:, 0], crop[:, 1], crop[:, 2] = 112.0, np.linspace(0, 224, 21), -10.0
    world = np.zeros((21, 3))
    world[:, 1] = -0.05  # 5 cm "up" in the crop
    hand = decode_hand_landmarks(crop.ravel(), [0.9], [0.2], world.ravel(), roi, transform)
    np.testing.assert_allclose(hand.keypoints_px, transform.to_image(crop[:, :2]))
    np.testing.assert_allclose(hand.keypoints_px[0], [100.0 + 224.0, 200.0], atol=1e-9)
    np.testing.assert_allclose(hand.keypoint_z, -20.0 / 0.4)  # 2 image px per crop px
    np.testing.assert_allclose(hand.world_joints_m[0], [0.05, 0.0, 0.0], atol=1e-12)
    np.testing.assert_array_equal(hand.crop_landmarks, crop)
    assert (hand.presence, hand.side) == (pytest.approx(0.9), 'left')


class _FakeSession:
    """Landmark session double returning a fixed crop-centre hand; counts calls."""

    def __init__(self, batch):
        self.input_specs = {'input_1': ((batch, 224, 224, 3), np.float32)}
        self.output_names = ['Identity', 'Identity_1', 'Identity_2', 'Identity_3']
        self.batches = []

    def run(self, feeds):
        x = feeds['input_1']
        self.batches.append(x.shape[0])
        n = x.shape[0]
        return {'Identity': np.full((n, 63), 112.0, np.float32),
                'Identity_1': np.full((n, 1), 0.8, np.float32),
                'Identity_2': np.full((n, 1), 0.7, np.float32),
                'Identity_3': np.zeros((n, 63), np.float32)}


def test_landmarker_batches_when_possible_else_loops():
    rgb = np.zeros((100, 100, 3), np.uint8)
    rois = [RotatedRect(30.0, 30.0, 20.0, 20.0), RotatedRect(70.0, 60.0, 20.0, 20.0, 0.3)]
    dynamic, fixed = _FakeSession(None), _FakeSession(1)
    out_dyn = HandLandmarker(dynamic).run(rgb, rois)
    out_fix = HandLandmarker(fixed).run(rgb, rois)
    assert dynamic.batches == [2] and fixed.batches == [1, 1]
    capped = _FakeSession(None)
    out_cap = HandLandmarker(capped, max_batch=1).run(rgb, rois)
    assert capped.batches == [1, 1] and len(out_cap) == 2
    for out in (out_dyn, out_fix):
        np.testing.assert_allclose(out[1].keypoints_px[0], [70.0, 60.0], atol=1e-9)
        assert out[0].side == 'right'
    assert HandLandmarker(dynamic).run(rgb, []) == []


@pytest.mark.parametrize('mirrored,expected', [(False, 'left'), (True, 'right')])
def test_real_handedness_on_photo_of_two_left_hands(sessions, mirrored, expected):
    rgb = cv2.cvtColor(cv2.imread(str(data_dir() / 'hands.jpg')), cv2.COLOR_BGR2RGB)
    rois = [palm_to_hand_roi(d) for d in PalmDetector(sessions[0]).detect(rgb)]
    hands = HandLandmarker(sessions[1], image_is_mirrored=mirrored).run(rgb, rois)
    assert len(hands) == 2
    for hand in hands:
        assert hand.presence > 0.9
        assert hand.side == expected and hand.handedness_score > 0.9
        errors = [np.linalg.norm(hand.keypoints_px - g, axis=1).mean() for g in _golden_hands()]
        assert min(errors) < 8.0
        # World joints are metric: wrist to middle MCP is a few centimetres.
        assert 0.05 < np.linalg.norm(hand.world_joints_m[9] - hand.world_joints_m[0]) < 0.12
