"""Tests for the palm detector's anchors, decoding, weighted NMS and hand regions."""

import json

import cv2
import numpy as np
import pytest

from hand_mesh_ros.core.tracking.palm_detection import (count_palm_anchors, decode_palm_boxes,
                                                        generate_palm_anchors, Letterbox,
                                                        letterbox_image, palm_to_hand_roi,
                                                        PalmDetection, PalmDetector,
                                                        preprocess_palm_image, weighted_nms)
from hand_mesh_ros.paths import data_dir, models_dir


def test_anchor_count_matches_mediapipe_models():
    assert count_palm_anchors(192) == 2016  # palm_detection_{full,lite}
    assert count_palm_anchors(128) == 896   # the older 128 px palm model
    assert generate_palm_anchors(192).shape == (2016, 2)
    assert generate_palm_anchors(128).shape == (896, 2)


def test_anchor_layout_cells_row_major_with_repeats():
    anchors = generate_palm_anchors(192)
    # stride 8: 24x24 cells, 2 anchors per cell.
    np.testing.assert_allclose(anchors[0], [0.5 / 24, 0.5 / 24], atol=1e-7)
    np.testing.assert_allclose(anchors[1], anchors[0])
    np.testing.assert_allclose(anchors[2], [1.5 / 24, 0.5 / 24], atol=1e-7)
    np.testing.assert_allclose(anchors[2 * 24], [0.5 / 24, 1.5 / 24], atol=1e-7)
    np.testing.assert_allclose(anchors[1151], [23.5 / 24, 23.5 / 24], atol=1e-7)
    # stride 16 (three layers): 12x12 cells, 6 anchors per cell.
    np.testing.assert_allclose(anchors[1152:1158], np.tile([0.5 / 12, 0.5 / 12], (6, 1)),
                               atol=1e-7)
    np.testing.assert_allclose(anchors[1158], [1.5 / 12, 0.5 / 12], atol=1e-7)
    np.testing.assert_allclose(anchors[-1], [11.5 / 12, 11.5 / 12], atol=1e-7)


def test_decode_offsets_relative_to_anchor_and_thresholds_scores():
    anchors = np.array([[0.25, 0.5], [0.75, 0.75]], dtype=np.float32)
    raw = np.zeros((2, 18))
    raw[0, :4] = [4.0, -2.0, 20.0, 10.0]
    raw[0, 4:6] = [1.0, 3.0]
    logits = np.array([[3.0], [-3.0]])
    boxes, kps, scores = decode_palm_boxes(raw, logits, anchors, 100, min_score=0.5)
    assert boxes.shape == (1, 4) and kps.shape == (1, 7, 2)
    np.testing.assert_allclose(boxes[0], [19.0, 43.0, 39.0, 53.0])
    np.testing.assert_allclose(kps[0, 0], [26.0, 53.0])
    np.testing.assert_allclose(kps[0, 1], [25.0, 50.0])
    np.testing.assert_allclose(scores, [1 / (1 + np.exp(-3.0))])
    # Huge logits are clipped, not overflowing.
    _, _, clipped = decode_palm_boxes(raw, np.array([1e6, -1e6]), anchors, 100, 0.0, 100.0)
    assert np.all(np.isfinite(clipped)) and clipped[0] == pytest.approx(1.0)


def test_weighted_nms_blends_overlapping_boxes():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], dtype=float)
    kps = np.zeros((3, 7, 2))
    kps[0, :, 0], kps[1, :, 0], kps[2, :, 0] = 2.0, 5.0, 55.0
    scores = np.array([0.6, 0.9, 0.7])
    out_boxes, out_kps, out_scores = weighted_nms(boxes, kps, scores, iou_threshold=0.3)
    assert out_scores.tolist() == [0.9, 0.7]
    w0, w1 = 0.6 / 1.5, 0.9 / 1.5
    np.testing.assert_allclose(out_boxes[0], w0 * boxes[0] + w1 * boxes[1])
    np.testing.assert_allclose(out_kps[0, :, 0], w0 * 2.0 + w1 * 5.0)
    np.testing.assert_allclose(out_boxes[1], boxes[2])
    # Below the threshold nothing is merged.
    _, _, separate = weighted_nms(boxes, kps, scores, iou_threshold=0.95)
    assert len(separate) == 3
    empty = weighted_nms(np.zeros((0, 4)), np.zeros((0, 7, 2)), np.zeros(0))
    assert [a.shape for a in empty] == [(0, 4), (0, 7, 2), (0,)]


def test_letterbox_keeps_aspect_and_maps_back():
    rgb = np.zeros((100, 200, 3), dtype=np.uint8)
    rgb[:, :100] = 255
    square, box = letterbox_image(rgb, 192)
    assert square.shape == (192, 192, 3)
    assert box == Letterbox(scale=0.96, pad_x_px=0.0, pad_y_px=48.0, input_size_px=192)
    assert square[0, 0].tolist() == [0, 0, 0] and square[96, 40].tolist() == [255, 255, 255]
    np.testing.assert_allclose(box.to_raw([[0.0, 48.0], [192.0, 144.0]]),
                               [[0.0, 0.0], [200.0, 100.0]])
    tensor, _ = preprocess_palm_image(rgb, 192)
    assert tensor.shape == (1, 192, 192, 3) and tensor.dtype == np.float32
    assert tensor.max() == pytest.approx(1.0) and tensor.min() == 0.0


def _palm(wrist, middle, box):
    kps = np.zeros((7, 2))
    kps[0], kps[2] = wrist, middle
    return PalmDetection(0.9, np.asarray(box, dtype=float), kps)


def test_palm_to_hand_roi_rotation_shift_and_scale():
    up = palm_to_hand_roi(_palm([100, 200], [100, 100], [50, 100, 150, 200]))
    assert up.rotation_rad == pytest.approx(0.0)
    assert (up.center_x_px, up.center_y_px) == pytest.approx((100.0, 100.0))
    assert (up.width_px, up.height_px) == pytest.approx((260.0, 260.0))
    # Fingers pointing right: rotation +90 deg, the shift goes right (towards the fingers).
    right = palm_to_hand_roi(_palm([100, 150], [200, 150], [50, 100, 150, 180]))
    assert right.rotation_rad == pytest.approx(np.pi / 2)
    assert (right.center_x_px, right.center_y_px) == pytest.approx((100.0 + 40.0, 140.0))
    assert right.width_px == pytest.approx(260.0)


@pytest.fixture(scope='module')
def palm_full():
    path = models_dir() / 'palm_detection_full.onnx'
    if not path.is_file():
        pytest.fail('palm_detection_full.onnx missing: run `hand-mesh setup-models`')
    from hand_mesh_ros.inference import create_session
    return PalmDetector(create_session(str(path), backend='onnxruntime', num_threads=2))


def test_real_palm_detector_finds_both_hands_in_photo(palm_full):
    rgb = cv2.cvtColor(cv2.imread(str(data_dir() / 'hands.jpg')), cv2.COLOR_BGR2RGB)
    detections = palm_full.detect(rgb)
    assert len(detections) == 2
    assert all(d.score > 0.9 for d in detections)
    golden = json.loads((data_dir() / 'hands_expected_keypoints.json').read_text())['hands']
    for hand in np.asarray(golden, dtype=float):
        wrist, middle_mcp = hand[0], hand[9]
        best = min(detections, key=lambda d: np.linalg.norm(d.keypoints_px[0] - wrist))
        assert np.linalg.norm(best.keypoints_px[0] - wrist) < 30.0
        assert np.linalg.norm(best.keypoints_px[2] - middle_mcp) < 30.0
        roi = palm_to_hand_roi(best)
        # The hand region contains every golden keypoint.
        c, s = np.cos(roi.rotation_rad), np.sin(roi.rotation_rad)
        local = (hand - [roi.center_x_px, roi.center_y_px]) @ np.array([[c, -s], [s, c]])
        assert np.all(np.abs(local) < roi.width_px / 2)
