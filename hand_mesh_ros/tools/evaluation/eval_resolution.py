"""``hand-mesh eval resolution``: the same scene at another resolution gives the same root.

Scenes: ``data/hands.jpg`` (two hands, one still; the tracks are reset for every variant)
and the first 30 frames of the ASL video (one hand, tracked, temporal terms on). Neither has
a calibration: the cameras are assumed (hands.jpg: fx = fy = 600 px, principal point (352,
198), plumb_bob D = (-0.05, 0.01, 0, 0, 0); ASL: the 60 deg FOV focal length, principal point
off centre by (+7, -5) px, the same D) and every variant transforms K exactly like the image:

- ``scale_0.5`` / ``scale_2``: ``u' = s (u + 0.5) - 0.5`` (pixel centres), fx, fy times s;
- ``crop``: 37 px off the left, 23 px off the top, 23 / 17 px off the right / bottom: the
  principal point shifts by (-37, -23).

Two versions, each reported as the wrist's displacement relative to its depth at 1x (median
and max over hands and frames):

- ``exact``: the network runs once, at 1x; its 2D keypoints are mapped exactly into the
  transformed image, its 3D output is kept, and root recovery + tailor + gates run with the
  transformed camera. This isolates the fit from the network (target < 0.01 % of depth).
- ``pipeline``: the whole pipeline on the resized / cropped image. Reported beside the
  network's own noise floor: the same 1x image re-encoded as JPEG (quality 90), and padded
  by 2, 4, 8 and 16 px on every side (edge pixels repeated; principal point shifted alike).
"""

import dataclasses

import cv2
import numpy as np

from hand_mesh_ros.core.camera.camera import CameraModel, nominal_focal_px
from hand_mesh_ros.core.config import PipelineConfig
from hand_mesh_ros.core.pipeline import HandMeshPipeline
from hand_mesh_ros.core.tracking.hand_tracking import TrackedFrame
from hand_mesh_ros.core.types import Frame
from hand_mesh_ros.paths import data_dir
from hand_mesh_ros.tools.evaluation.figures_cli import figures_parser, print_figures
from hand_mesh_ros.tools.video_frames import iter_frames

DISTORTION = (-0.05, 0.01, 0.0, 0.0, 0.0)
CROP_PX = (37, 23, 23, 17)  # left, top, right, bottom
PADS_PX = (2, 4, 8, 16)
ASL_FRAMES = 30
TRANSFORMS = ('scale_0.5', 'scale_2', 'crop')


@dataclasses.dataclass(frozen=True)
class PixelMap:
    """An image transform u' = scale * (u + 0.5) - 0.5 - offset, with its image size."""

    scale: float
    offset_px: tuple
    size: tuple  # (width, height)

    def points(self, uv):
        """Map (N, 2) pixels of the original image into the transformed one."""
        return self.scale * (np.asarray(uv, dtype=np.float64) + 0.5) - 0.5 - np.asarray(
            self.offset_px, dtype=np.float64)

    def camera(self, camera):
        """Return ``camera`` (no ROI / binning) with K transformed like the pixels."""
        k = np.array(camera.k, dtype=np.float64)
        k[0, 0] *= self.scale
        k[1, 1] *= self.scale
        k[0, 1] *= self.scale
        k[:2, 2] = self.points(k[:2, 2][None])[0]
        return CameraModel.from_camera_info_fields(
            self.size[0], self.size[1], camera.distortion_model, camera.d, k.ravel(),
            np.eye(3).ravel(), np.zeros(12))

    def image(self, rgb):
        """Return ``rgb`` transformed (resized with area / linear interpolation or cropped)."""
        if self.scale != 1.0:
            interpolation = cv2.INTER_AREA if self.scale < 1.0 else cv2.INTER_LINEAR
            return cv2.resize(rgb, self.size, interpolation=interpolation)
        x0, y0 = int(self.offset_px[0]), int(self.offset_px[1])
        if x0 < 0 or y0 < 0:  # padding
            return cv2.copyMakeBorder(rgb, -y0, -y0, -x0, -x0, cv2.BORDER_REPLICATE)
        return np.ascontiguousarray(rgb[y0:y0 + self.size[1], x0:x0 + self.size[0]])


def pixel_map(name, width, height):
    """Return the :class:`PixelMap` called ``name`` for a width x height image."""
    if name.startswith('scale_'):
        s = float(name.split('_')[1])
        return PixelMap(s, (0.0, 0.0), (int(round(width * s)), int(round(height * s))))
    if name == 'crop':
        left, top, right, bottom = CROP_PX
        return PixelMap(1.0, (left, top), (width - left - right, height - top - bottom))
    if name.startswith('pad_'):
        pad = int(name.split('_')[1])
        return PixelMap(1.0, (-pad, -pad), (width + 2 * pad, height + 2 * pad))
    return PixelMap(1.0, (0.0, 0.0), (width, height))


def scene_camera(scene, width, height):
    """Return the assumed 1x camera of a scene (see the module docstring)."""
    if scene == 'hands':
        k = [600.0, 0.0, 352.0, 0.0, 600.0, 198.0, 0.0, 0.0, 1.0]
    else:
        f = nominal_focal_px(width)
        k = [f, 0.0, width / 2.0 + 7.0, 0.0, f, height / 2.0 - 5.0, 0.0, 0.0, 1.0]
    return CameraModel.from_camera_info_fields(width, height, 'plumb_bob', list(DISTORTION),
                                               k, np.eye(3).ravel(), np.zeros(12))


def scene_frames(scene):
    """Return [(stamp_ns, rgb)] of a scene."""
    if scene == 'hands':
        bgr = cv2.imread(str(data_dir() / 'hands.jpg'), cv2.IMREAD_COLOR)
        return [(0, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))]
    return [(stamp, rgb) for _, stamp, rgb in iter_frames(data_dir() / 'asl_hand.25fps.mp4',
                                                          max_frames=ASL_FRAMES)]


def _roots(result):
    """Return {track id: wrist (3,)} of a FrameResult."""
    return {h.track_id: np.asarray(h.joints_m[0], dtype=np.float64) for h in result.hands}


def _run(pipeline, frames, camera, pmap, captured=None, replay=None, jpeg=False):
    """Run the pipeline over frames; return [{track: wrist}] per frame.

    ``captured``: a list to append each frame's tracked hands to; ``replay``: a list of
    tracked hands per frame, fed (keypoints mapped by ``pmap``) instead of the tracker's.
    """
    pipeline.reset()
    original = pipeline.tracker.track
    out = []
    try:
        for index, (stamp, rgb) in enumerate(frames):
            if replay is not None:
                hands = [dataclasses.replace(h, keypoints_px=pmap.points(h.keypoints_px))
                         for h in replay[index]]
                pipeline.tracker.track = lambda image, t, hands=hands: TrackedFrame(hands, {})
                image = np.zeros((pmap.size[1], pmap.size[0], 3), np.uint8)
            else:
                image = pmap.image(rgb)
                if jpeg:
                    ok, data = cv2.imencode('.jpg', image, [cv2.IMWRITE_JPEG_QUALITY, 90])
                    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
            result = pipeline.process(Frame(rgb=image, stamp_ns=stamp, camera=camera))
            if captured is not None:
                captured.append(list(pipeline.tracker.last_hands))
            out.append(_roots(result))
    finally:
        pipeline.tracker.track = original
    return out


def _displacements(reference, variant):
    """Return relative wrist displacements (|d| / depth) of matched hands, and misses."""
    rel, missed = [], 0
    for ref, var in zip(reference, variant):
        for root in ref.values():
            if not var:
                missed += 1
                continue
            other = min(var.values(), key=lambda r: np.linalg.norm(r - root))
            rel.append(float(np.linalg.norm(other - root)) / float(root[2]))
    return rel, missed


def _stats(rel, missed):
    if not rel:
        return {'hands': 0, 'missed': missed}
    rel = np.asarray(rel)
    return {'hands': int(rel.size), 'missed': int(missed),
            'median_pct_of_depth': float(100.0 * np.median(rel)),
            'max_pct_of_depth': float(100.0 * np.max(rel))}


class _Recorder:
    """Wrap a tracker's ``track`` to keep its last hands (``last_hands``)."""

    def __init__(self, tracker):
        self.tracker = tracker
        self.track = tracker.track
        tracker.last_hands = []

        def recording(rgb, timestamp_s):
            tracked = self.track(rgb, timestamp_s)
            tracker.last_hands = tracked.hands
            return tracked
        tracker.track = recording


def evaluate_scene(pipeline, scene):
    """Return the exact and pipeline figures of one scene."""
    frames = scene_frames(scene)
    height, width = frames[0][1].shape[:2]
    camera = scene_camera(scene, width, height)
    identity = pixel_map('identity', width, height)
    _Recorder(pipeline.tracker)
    captured = []
    reference = _run(pipeline, frames, camera, identity, captured=captured)
    out = {'frames': len(frames), 'hands_at_1x': sum(len(r) for r in reference),
           'exact': {}, 'pipeline': {}, 'noise_floor': {}}
    replayed = _run(pipeline, frames, camera, identity, replay=captured)
    out['exact']['identity'] = _stats(*_displacements(reference, replayed))
    for name in TRANSFORMS:
        pmap = pixel_map(name, width, height)
        cam = pmap.camera(camera)
        out['exact'][name] = _stats(*_displacements(
            reference, _run(pipeline, frames, cam, pmap, replay=captured)))
        out['pipeline'][name] = _stats(*_displacements(
            reference, _run(pipeline, frames, cam, pmap)))
    for pad_px in PADS_PX:
        pad = pixel_map('pad_%d' % pad_px, width, height)
        out['noise_floor']['pad_%dpx' % pad_px] = _stats(*_displacements(
            reference, _run(pipeline, frames, pad.camera(camera), pad)))
    out['noise_floor']['jpeg_q90'] = _stats(*_displacements(
        reference, _run(pipeline, frames, camera, identity, jpeg=True)))
    return out


def run(variant='full', models_dir=''):
    """Return the figures of both scenes (see the module docstring)."""
    config = PipelineConfig().with_values({'model.variant': variant,
                                           'model.models_dir': models_dir,
                                           'model.backend': 'onnxruntime'})
    pipeline = HandMeshPipeline(config)
    try:
        figures = {scene: evaluate_scene(pipeline, scene) for scene in ('hands', 'asl')}
    finally:
        pipeline.close()
    exact = [row['max_pct_of_depth'] for scene in figures.values()
             for row in scene['exact'].values() if 'max_pct_of_depth' in row]
    figures['exact_max_pct_of_depth'] = max(exact) if exact else None
    return figures


def main(argv=None):
    """Print the resolution-invariance figures (JSON last with ``--json``)."""
    parser = figures_parser('hand-mesh eval resolution', __doc__)
    parser.add_argument('--variant', default='full', choices=('full', 'lite'),
                        help='network size, as model.variant (default: full)')
    args = parser.parse_args(argv)
    print_figures(run(variant=args.variant), args.json)
    return 0
