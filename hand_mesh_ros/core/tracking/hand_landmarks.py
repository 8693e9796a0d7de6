"""Hand landmark model: crop preprocessing, output decoding and the next frame's hand region.

Works with MediaPipe's ``hand_landmark_{full,lite}`` models: input (B, 224, 224, 3) float32 NHWC
RGB in [0, 1] (a rotated square crop, hand pointing up); outputs ``Identity`` (B, 63) 21x3
landmarks in crop pixels (z relative to the wrist, negative towards the camera, in crop pixels
times 0.4), ``Identity_1`` (B, 1) hand presence, ``Identity_2`` (B, 1) handedness, ``Identity_3``
(B, 63) 21x3 world landmarks in metres (origin near the hand's centre, crop-aligned axes).

Handedness: the model's score is the probability of MediaPipe's label "Left" (index 0 of its
binary label map ``Left, Right``) *for a mirrored (selfie) image*. A robot camera is not
mirrored, so by default (``image_is_mirrored=False``) the label is swapped: the score is the
probability of an anatomical **right** hand. Checked on ``data/hands.jpg``: two left hands seen
from the back (nails visible; thumb on the image's right for the fingers-up hand, on its left
for the fingers-down hand); the model scores both ~0.03, which MediaPipe reports as "Right" and
we report as 'left'.

World landmarks are rotated about the camera's optical axis by the crop's rotation, so their
x/y axes are aligned with the image (x right, y down, z away from the camera, metres): the same
frame MediaPipe publishes. They stay root-relative (no absolute translation).
"""

from dataclasses import dataclass
from typing import Optional

import numpy as np

from hand_mesh_ros.core.hand.rotations import rotation_about_z
from hand_mesh_ros.core.hand.topology import (FINGER_CHAINS, INDEX_MCP, MIDDLE_MCP,
                                              NUM_KEYPOINTS as NUM_LANDMARKS, RING_MCP, WRIST)
from hand_mesh_ros.core.tracking.crop import (normalize_radians, RotatedRect, transform_rect,
                                              warp_crop)
from hand_mesh_ros.core.tracking.mesh_outputs import decode_mesh_outputs, MeshOutputs

# Landmarks MediaPipe uses to place the next crop: wrist, thumb CMC/MCP/IP, and the MCP and
# PIP joints of the four fingers (finger tips are left out: they move fastest).
ROI_LANDMARKS = (WRIST,) + FINGER_CHAINS[0][:3] + tuple(
    k for chain in FINGER_CHAINS[1:] for k in chain[:2])
LANDMARK_OUTPUTS = ('Identity', 'Identity_1', 'Identity_2', 'Identity_3')
# MediaPipe divides the network's z by 0.4 (TensorsToLandmarks ``normalize_z``) to bring it to
# the scale of x and y; the golden z of the sample video confirms it (ratio 2.5).
Z_NORMALIZATION = 0.4


@dataclass(frozen=True)
class HandLandmarks:
    """Decoded landmark-model result for one hand crop.

    keypoints_px: (21, 2) raw-image pixels; keypoint_z: (21,) relative depth in raw-image pixel
    scale as MediaPipe reports it (network z / 0.4; wrist ~0, negative = nearer the camera);
    crop_landmarks: (21, 3) as the network gave them (crop pixels); world_joints_m: (21, 3)
    metres, image-aligned axes; presence in [0, 1]; handedness_raw: the model's raw handedness
    output (MediaPipe's P("Left") in its mirrored convention); side: 'left' or 'right' for the
    caller's camera; handedness_score: probability of ``side``; roi and crop_transform: the
    crop used; mesh: the mesh network's lifted outputs for this crop (None for a landmark-only
    model).
    """

    keypoints_px: np.ndarray
    keypoint_z: np.ndarray
    crop_landmarks: np.ndarray
    world_joints_m: np.ndarray
    presence: float
    handedness_raw: float
    side: str
    handedness_score: float
    roi: RotatedRect
    crop_transform: object
    mesh: Optional[MeshOutputs] = None


def side_from_score(handedness_raw, image_is_mirrored=False):
    """Return ``(side, probability of side)`` from the model's raw handedness output.

    The raw output is MediaPipe's probability of "Left" assuming a mirrored selfie image; for
    a camera that is not mirrored it is the probability of an anatomical right hand.
    """
    raw = float(handedness_raw)
    p_right = 1.0 - raw if image_is_mirrored else raw
    if p_right >= 0.5:
        return 'right', float(p_right)
    return 'left', float(1.0 - p_right)


def rotate_world_landmarks(world_crop_m, rotation_rad):
    """Rotate (21, 3) crop-aligned world landmarks about z by the crop's rotation."""
    return np.asarray(world_crop_m, dtype=np.float64) @ rotation_about_z(rotation_rad).T


def landmarks_to_roi(keypoints_px, scale=2.0, shift_y=-0.1):
    """Return the next crop's :class:`RotatedRect` from (21, 2) image-pixel landmarks.

    MediaPipe's hand-landmarks-to-rect logic: rotation from the wrist to the middle of the
    index/ring MCPs averaged with the middle MCP (pointing up in the crop); the box is the
    bounding box of :data:`ROI_LANDMARKS` in that rotated frame, shifted by ``shift_y`` of its
    height along the hand axis, squared on the long side and scaled by ``scale``.
    """
    pts = np.asarray(keypoints_px, dtype=np.float64)
    wrist = pts[WRIST]
    finger = ((pts[INDEX_MCP] + pts[RING_MCP]) / 2.0 + pts[MIDDLE_MCP]) / 2.0
    rotation = normalize_radians(np.pi / 2 - np.arctan2(-(finger[1] - wrist[1]),
                                                        finger[0] - wrist[0]))
    subset = pts[list(ROI_LANDMARKS)]
    rot = rotation_about_z(rotation)[:2, :2]
    # Express points in the rect's local frame (inverse rotation), box them, map the centre back.
    local = subset @ rot
    lo, hi = local.min(axis=0), local.max(axis=0)
    centre_local = (lo + hi) / 2.0
    centre = rot @ centre_local
    box = RotatedRect(float(centre[0]), float(centre[1]), float(hi[0] - lo[0]),
                      float(hi[1] - lo[1]), rotation)
    return transform_rect(box, scale_x=scale, scale_y=scale, shift_y=shift_y, square_long=True)


def preprocess_hand_crop(rgb, roi, input_size_px):
    """Return the crop tensor (S, S, 3) float32 in [0, 1] and its crop transform."""
    crop, transform = warp_crop(rgb, roi, input_size_px)
    return crop.astype(np.float32) * np.float32(1.0 / 255.0), transform


def decode_hand_landmarks(landmarks, presence, handedness, world, roi, transform,
                          image_is_mirrored=False, mesh=None):
    """Decode one hand's raw outputs into a :class:`HandLandmarks` in raw-image pixels.

    landmarks, world: (63,) arrays; presence, handedness: scalars; ``transform`` is the
    :class:`~hand_mesh_ros.core.tracking.crop.CropTransform` used for the crop; ``mesh`` the
    crop's :class:`MeshOutputs` or None.
    """
    crop_lm = np.asarray(landmarks, dtype=np.float64).reshape(NUM_LANDMARKS, 3)
    keypoints = transform.to_image(crop_lm[:, :2])
    z = crop_lm[:, 2] * (transform.image_px_per_crop_px / Z_NORMALIZATION)
    world_m = rotate_world_landmarks(np.asarray(world).reshape(NUM_LANDMARKS, 3),
                                     transform.rotation_rad)
    score = float(np.asarray(handedness).reshape(-1)[0])
    side, side_score = side_from_score(score, image_is_mirrored)
    return HandLandmarks(keypoints, z, crop_lm, world_m,
                         float(np.asarray(presence).reshape(-1)[0]), score, side, side_score,
                         roi, transform, mesh)


def _is_dynamic(dim):
    return dim is None or isinstance(dim, str) or (isinstance(dim, int) and dim < 0)


class HandLandmarker:
    """Run a hand landmark session on rotated crops of a frame."""

    def __init__(self, session, image_is_mirrored=False, max_batch=None):
        """Wrap ``session``; batch over hands when its input batch dimension is dynamic.

        max_batch: largest batch to send at once to a dynamic-batch session (e.g. the top of a
        TensorRT optimisation profile); None for no limit.
        """
        self._session = session
        self._input_name, (shape, _) = next(iter(session.input_specs.items()))
        if _is_dynamic(shape[1]):
            raise ValueError('landmark model needs a fixed input size, got %r' % (shape,))
        self.input_size_px = int(shape[1])
        self.supports_batch = _is_dynamic(shape[0]) or int(shape[0]) > 1
        self.fixed_batch = None if _is_dynamic(shape[0]) else int(shape[0])
        self.max_batch = None if max_batch is None else max(1, int(max_batch))
        self.image_is_mirrored = bool(image_is_mirrored)
        names = list(session.output_names)
        if all(name in names for name in LANDMARK_OUTPUTS):
            self._outputs = LANDMARK_OUTPUTS
        elif len(names) == 4:
            self._outputs = tuple(names)
        else:
            raise ValueError('landmark model must have 4 outputs, got %r' % (names,))
        self._extra = tuple(n for n in names if n not in self._outputs)

    def run(self, rgb, rois):
        """Return one :class:`HandLandmarks` per ROI in ``rois`` for ``rgb`` (H, W, 3) uint8."""
        if not rois:
            return []
        crops, transforms = zip(*(preprocess_hand_crop(rgb, roi, self.input_size_px)
                                  for roi in rois))
        raw = []
        if self.supports_batch and self.fixed_batch is None:
            step = self.max_batch or len(crops)
            for start in range(0, len(crops), step):
                out = self._session.run({self._input_name: np.stack(crops[start:start + step])})
                raw += [self._slice(out, i) for i in range(len(crops[start:start + step]))]
        else:
            batch = self.fixed_batch or 1
            for start in range(0, len(crops), batch):
                chunk = list(crops[start:start + batch])
                used = len(chunk)
                chunk += [np.zeros_like(crops[0])] * (batch - used)
                out = self._session.run({self._input_name: np.stack(chunk)})
                raw += [self._slice(out, i) for i in range(used)]
        return [decode_hand_landmarks(*values, roi, transform, self.image_is_mirrored, mesh)
                for (values, mesh), roi, transform in zip(raw, rois, transforms)]

    def _slice(self, out, i):
        """Return (landmark outputs, MeshOutputs or None) of batch item ``i``."""
        return ([np.asarray(out[n])[i] for n in self._outputs],
                decode_mesh_outputs({n: np.asarray(out[n])[i] for n in self._extra}))
