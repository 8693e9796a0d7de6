"""Palm detector: preprocessing, SSD decoding, weighted NMS and hand regions of interest.

Works with MediaPipe's palm detection models (``palm_detection_{full,lite}``: input
(1, 192, 192, 3) float32 NHWC RGB in [0, 1]; outputs (1, 2016, 18) box/keypoint regressors and
(1, 2016, 1) score logits). The session is injected: any object with ``input_specs``,
``output_names`` and ``run(feeds) -> dict`` works (see :mod:`hand_mesh_ros.inference`).

All results are in raw-image pixels (the letterbox is undone). Palm keypoints (7, 2) are, in
MediaPipe's order: wrist centre, index MCP, middle MCP, ring MCP, pinky MCP, thumb CMC, thumb
MCP (approximately; only 0 and 2 are used, for the hand's rotation).
"""

from dataclasses import dataclass

import cv2
import numpy as np

from hand_mesh_ros.core.tracking.crop import normalize_radians, RotatedRect, transform_rect

# MediaPipe palm detection anchor options (SsdAnchorsCalculator): one layer of stride 8 and
# three of stride 16; each layer gives one anchor of aspect 1 plus one interpolated scale,
# all with a fixed (unit) size, offset 0.5 cells.
PALM_STRIDES = (8, 16, 16, 16)
ANCHORS_PER_LAYER = 2
NUM_PALM_KEYPOINTS = 7
WRIST_KEYPOINT = 0
MIDDLE_MCP_KEYPOINT = 2


def count_palm_anchors(input_size_px, strides=PALM_STRIDES,
                       anchors_per_layer=ANCHORS_PER_LAYER):
    """Return how many anchors the SSD layout gives for a square input of ``input_size_px``."""
    total = 0
    for stride in sorted(set(strides)):
        cells = int(np.ceil(input_size_px / stride)) ** 2
        total += cells * anchors_per_layer * strides.count(stride)
    return total


def generate_palm_anchors(input_size_px, strides=PALM_STRIDES,
                          anchors_per_layer=ANCHORS_PER_LAYER):
    """Return anchor centres, (N, 2) float32 (x, y) normalised to [0, 1] of the model input.

    Anchors of consecutive layers with the same stride share one feature map: for every cell
    (row-major) all of that cell's anchors come together, as in MediaPipe's SSD layout.
    """
    centres = []
    layer = 0
    while layer < len(strides):
        stride = strides[layer]
        same = 0
        while layer + same < len(strides) and strides[layer + same] == stride:
            same += 1
        cells = int(np.ceil(input_size_px / stride))
        grid = (np.arange(cells, dtype=np.float64) + 0.5) / cells
        ys, xs = np.meshgrid(grid, grid, indexing='ij')
        cell_centres = np.stack([xs.ravel(), ys.ravel()], axis=1)
        centres.append(np.repeat(cell_centres, same * anchors_per_layer, axis=0))
        layer += same
    return np.concatenate(centres, axis=0).astype(np.float32)


@dataclass(frozen=True)
class Letterbox:
    """How a raw image was fitted into the square model input (continuous pixel coords).

    ``input_px = raw_px * scale + [pad_x_px, pad_y_px]``.
    """

    scale: float
    pad_x_px: float
    pad_y_px: float
    input_size_px: int

    def to_raw(self, points_input_px):
        """Map (N, 2) model-input pixels to raw-image pixels."""
        padding_px = np.array([self.pad_x_px, self.pad_y_px])
        return (np.asarray(points_input_px, dtype=np.float64) - padding_px) / self.scale


def _resize_down(image, size_wh):
    """Resize with anti-aliasing: Gaussian pyramid halvings, then bilinear to the exact size."""
    while image.shape[1] >= 2 * size_wh[0] and image.shape[0] >= 2 * size_wh[1]:
        image = cv2.pyrDown(image)
    return cv2.resize(image, size_wh, interpolation=cv2.INTER_LINEAR)


def letterbox_image(rgb, input_size_px):
    """Resize ``rgb`` (H, W, 3) uint8 into a zero-padded square keeping the aspect ratio.

    Returns ``(square (S, S, 3) uint8, Letterbox)``; the padding is split evenly.
    """
    height, width = rgb.shape[:2]
    scale = input_size_px / max(height, width)
    new_w = max(1, int(round(width * scale)))
    new_h = max(1, int(round(height * scale)))
    resized = _resize_down(rgb, (new_w, new_h))
    pad_x = (input_size_px - new_w) // 2
    pad_y = (input_size_px - new_h) // 2
    square = np.zeros((input_size_px, input_size_px, 3), dtype=np.uint8)
    square[pad_y:pad_y + new_h, pad_x:pad_x + new_w] = resized
    # Exact scale per axis differs by rounding; use the continuous mapping of the resize.
    letterbox = Letterbox(scale=new_w / width if width >= height else new_h / height,
                          pad_x_px=float(pad_x), pad_y_px=float(pad_y),
                          input_size_px=int(input_size_px))
    return square, letterbox


def preprocess_palm_image(rgb, input_size_px):
    """Return the model input (1, S, S, 3) float32 in [0, 1] and its :class:`Letterbox`."""
    square, letterbox = letterbox_image(rgb, input_size_px)
    tensor = square.astype(np.float32)[None] * np.float32(1.0 / 255.0)
    return tensor, letterbox


def decode_palm_boxes(raw_boxes, raw_scores, anchors, input_size_px, min_score=0.5,
                      score_clip=100.0):
    """Decode SSD regressors into candidate palms in model-input pixels.

    raw_boxes: (N, 18) [dx, dy, w, h, kx0, ky0, ... kx6, ky6] in input pixels relative to the
    anchor centre; raw_scores: (N,) or (N, 1) logits; anchors: (N, 2) normalised centres.
    Returns ``(boxes (M, 4) xyxy, keypoints (M, 7, 2), scores (M,))`` in input pixels for the
    anchors whose sigmoid score is at least ``min_score``.
    """
    raw_boxes = np.asarray(raw_boxes, dtype=np.float64).reshape(len(anchors), -1)
    logits = np.clip(np.asarray(raw_scores, dtype=np.float64).reshape(-1),
                     -score_clip, score_clip)
    scores = 1.0 / (1.0 + np.exp(-logits))
    keep = np.flatnonzero(scores >= min_score)
    anchor_px = anchors[keep].astype(np.float64) * input_size_px
    sel = raw_boxes[keep]
    centre = anchor_px + sel[:, 0:2]
    half = np.abs(sel[:, 2:4]) / 2.0
    boxes = np.concatenate([centre - half, centre + half], axis=1)
    keypoints = sel[:, 4:4 + 2 * NUM_PALM_KEYPOINTS].reshape(-1, NUM_PALM_KEYPOINTS, 2)
    keypoints = keypoints + anchor_px[:, None, :]
    return boxes, keypoints, scores[keep]


def box_iou(box, boxes):
    """Return the IoU of one xyxy box (4,) with many (M, 4), as (M,) float64."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def weighted_nms(boxes, keypoints, scores, iou_threshold=0.3):
    """Blend overlapping detections (MediaPipe's WEIGHTED non-maximum suppression).

    The best-scoring remaining detection and every remaining detection overlapping it with
    IoU above ``iou_threshold`` form a cluster; the output box and keypoints are the
    score-weighted mean of the cluster and the score is the best one's. boxes: (M, 4) xyxy,
    keypoints: (M, K, 2), scores: (M,). Returns arrays of the same layout, best first.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    keypoints = np.asarray(keypoints, dtype=np.float64)
    keypoints = keypoints.reshape(len(boxes), keypoints.shape[-2], 2)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    remaining = np.argsort(-scores, kind='stable')
    out_boxes, out_kps, out_scores = [], [], []
    while remaining.size:
        best = remaining[0]
        overlap = box_iou(boxes[best], boxes[remaining]) > iou_threshold
        overlap[0] = True
        cluster = remaining[overlap]
        weights = scores[cluster] / scores[cluster].sum()
        out_boxes.append(weights @ boxes[cluster])
        out_kps.append(np.tensordot(weights, keypoints[cluster], axes=1))
        out_scores.append(scores[best])
        remaining = remaining[~overlap]
    count = len(out_scores)
    return (np.asarray(out_boxes).reshape(count, 4),
            np.asarray(out_kps).reshape(count, keypoints.shape[1], 2),
            np.asarray(out_scores).reshape(count))


@dataclass(frozen=True)
class PalmDetection:
    """One detected palm in raw-image pixels: score, box (4,) xyxy, keypoints (7, 2)."""

    score: float
    box_xyxy_px: np.ndarray
    keypoints_px: np.ndarray


def palm_to_hand_roi(detection, scale=2.6, shift_y=-0.5):
    """Return the hand's :class:`RotatedRect` for a palm detection (MediaPipe's palm ROI).

    Rotation makes the wrist -> middle-MCP direction point up in the crop; the palm box is
    shifted by ``shift_y`` of its height along that axis (towards the fingers), squared on its
    longer side and scaled by ``scale``.
    """
    wrist = detection.keypoints_px[WRIST_KEYPOINT]
    middle = detection.keypoints_px[MIDDLE_MCP_KEYPOINT]
    rotation = normalize_radians(np.pi / 2 - np.arctan2(-(middle[1] - wrist[1]),
                                                        middle[0] - wrist[0]))
    box = detection.box_xyxy_px
    palm = RotatedRect((box[0] + box[2]) / 2, (box[1] + box[3]) / 2, box[2] - box[0],
                       box[3] - box[1], rotation)
    return transform_rect(palm, scale_x=scale, scale_y=scale, shift_y=shift_y, square_long=True)


def _is_dynamic(dim):
    return dim is None or isinstance(dim, str) or (isinstance(dim, int) and dim < 0)


class PalmDetector:
    """Run a palm detection session on full frames and return palms in raw-image pixels."""

    def __init__(self, session, min_score=0.5, nms_iou_threshold=0.3, score_clip=100.0):
        """Wrap ``session`` (input NHWC float32 square; outputs boxes (1, N, 18), scores)."""
        self._session = session
        self._input_name, (shape, _) = next(iter(session.input_specs.items()))
        size = shape[1]
        if _is_dynamic(size):
            raise ValueError('palm detection model needs a fixed input size, got %r' % (shape,))
        self.input_size_px = int(size)
        self.min_score = float(min_score)
        self.nms_iou_threshold = float(nms_iou_threshold)
        self.score_clip = float(score_clip)
        self._anchors = None
        self._box_name, self._score_name = session.output_names[:2]

    def detect(self, rgb):
        """Return detections for ``rgb`` (H, W, 3) uint8, best score first."""
        tensor, letterbox = preprocess_palm_image(rgb, self.input_size_px)
        outputs = self._session.run({self._input_name: tensor})
        return self.postprocess(outputs, letterbox)

    def postprocess(self, outputs, letterbox):
        """Decode raw session outputs for a frame letterboxed by ``letterbox``."""
        raw_boxes = np.asarray(outputs[self._box_name])
        raw_scores = np.asarray(outputs[self._score_name])
        if raw_boxes.shape[-1] == 1:  # tolerate swapped output order
            raw_boxes, raw_scores = raw_scores, raw_boxes
        raw_boxes = raw_boxes.reshape(-1, raw_boxes.shape[-1])
        if self._anchors is None or len(self._anchors) != len(raw_boxes):
            expected = count_palm_anchors(self.input_size_px)
            if expected != len(raw_boxes):
                raise ValueError('palm model gives %d boxes; the SSD layout for %d px expects %d'
                                 % (len(raw_boxes), self.input_size_px, expected))
            self._anchors = generate_palm_anchors(self.input_size_px)
        boxes, keypoints, scores = decode_palm_boxes(
            raw_boxes, raw_scores, self._anchors, self.input_size_px, self.min_score,
            self.score_clip)
        boxes, keypoints, scores = weighted_nms(boxes, keypoints, scores,
                                                self.nms_iou_threshold)
        detections = []
        for box, kps, score in zip(boxes, keypoints, scores):
            corners = letterbox.to_raw(box.reshape(2, 2)).reshape(4)
            detections.append(PalmDetection(float(score), corners, letterbox.to_raw(kps)))
        return detections
