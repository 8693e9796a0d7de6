"""``hand-mesh eval gates``: the plausibility gates keep real hands and drop runaways.

- ``real``: the whole pipeline (default gates) on every frame of the ASL video (tracked), on
  ``hands.jpg`` and on ``hands.jpg`` padded by 240 px left and 120 px top, and by 240 px
  right and 120 px bottom (its assumed camera shifted to match): hands published (and how
  many of them were refitted from their 2D alone), hands rejected by reason, and the
  distribution (median, max) of every gate figure, beside the default thresholds.
- ``injection``: the network's output is corrupted for one hand in every 10th ASL frame, on
  a fresh track (tracks reset before the frame) and in the middle of a track. Corruptions of
  keypoints that no hand can explain: ``shuffle`` (2D keypoints permuted), ``mirror`` (2D
  keypoints mirrored about their centroid's vertical line), ``scale3d_3x`` (the network's 3D
  hand three times its size). Reported: injected hands published (must be 0) and rejections
  by reason. ``scale2d_3x`` (2D keypoints spread 3x about their centroid) *can* be a hand
  three times closer; it is reported, not required to be dropped: it is dropped when that
  hand leaves the working range or would have moved faster than ``gates.max_speed_mps``.
- ``tailor``: the ASL video with the tailor off (``tailor.enabled`` false), per frame
  (``tailor.temporal`` false) and with temporal terms: 2D error of the published keypoints
  against MediaPipe's golden 2D, PA-MPJPE against its golden world landmarks, and MobRecon's
  Acc of the root-relative joints beside MediaPipe's world landmarks' own (what the tailor
  and its temporal terms add or lose).

The camera is the assumed 60 deg FOV (the data carry no intrinsics).
"""

import argparse
import dataclasses
import json

import cv2
import numpy as np

from hand_mesh_ros.core.config import PipelineConfig
from hand_mesh_ros.core.pipeline import HandMeshPipeline
from hand_mesh_ros.core.types import Frame
from hand_mesh_ros.paths import data_dir
from hand_mesh_ros.tools.evaluation import mesh_metrics
from hand_mesh_ros.tools.evaluation.eval_resolution import PixelMap, scene_camera
from hand_mesh_ros.tools.video_frames import iter_frames

INJECTIONS = ('shuffle', 'mirror', 'scale3d_3x', 'scale2d_3x')
#: Injections that no hand can explain: they must never be published.
MUST_DROP = ('shuffle', 'mirror', 'scale3d_3x')
FIGURES = ('depth_m', 'hand_size_px', 'bone_ratio_min', 'bone_ratio_max', 'network_scale',
           'network_error', 'reprojection_error', 'speed_mps')
#: Paddings of hands.jpg (left, top, right, bottom), px.
PADS = {'left_top': (240, 120, 0, 0), 'right_bottom': (0, 0, 240, 120)}


def corrupt(hand, name, rng):
    """Return a copy of a TrackedHand with its network output corrupted by ``name``."""
    kp = np.asarray(hand.keypoints_px, dtype=np.float64)
    centre = kp.mean(axis=0)
    if name == 'shuffle':
        order = rng.permutation(21)
        while np.any(order == np.arange(21)):
            order = rng.permutation(21)
        return dataclasses.replace(hand, keypoints_px=kp[order])
    if name == 'mirror':
        mirrored = kp.copy()
        mirrored[:, 0] = 2.0 * centre[0] - kp[:, 0]
        return dataclasses.replace(hand, keypoints_px=mirrored)
    if name == 'scale2d_3x':
        return dataclasses.replace(hand, keypoints_px=centre + 3.0 * (kp - centre))
    if name == 'scale3d_3x':
        mesh = dataclasses.replace(hand.mesh, keypoints_m=3.0 * np.asarray(
            hand.mesh.keypoints_m, dtype=np.float64))
        return dataclasses.replace(hand, mesh=mesh)
    raise ValueError('unknown injection %r' % name)


def video_frames(max_frames=None):
    """Return [(index, stamp_ns, rgb)] of the ASL video."""
    return list(iter_frames(data_dir() / 'asl_hand.25fps.mp4', max_frames=max_frames))


def run_injection(pipeline, frames, name, midtrack, every=10, seed=0):
    """Corrupt every ``every``-th frame's hands; return published and rejected counts."""
    rng = np.random.default_rng(seed)
    original = pipeline.tracker.track
    state = {'on': False}

    def corrupted(rgb, timestamp_s):
        tracked = original(rgb, timestamp_s)
        if not state['on']:
            return tracked
        return tracked._replace(hands=[corrupt(h, name, rng) for h in tracked.hands])

    pipeline.reset()
    pipeline.tracker.track = corrupted
    injected = published = 0
    rejected = {}
    try:
        for index, stamp, rgb in frames:
            state['on'] = index % every == every // 2
            if state['on'] and not midtrack:
                pipeline.reset()
            result = pipeline.process(Frame(rgb=rgb, stamp_ns=stamp))
            if state['on']:
                injected += len(result.hands) + sum(result.rejected.values())
                published += len(result.hands)
                for reason, count in result.rejected.items():
                    rejected[reason] = rejected.get(reason, 0) + count
    finally:
        pipeline.tracker.track = original
    return {'injected': injected, 'published': published, 'rejected': rejected}


def run_real(pipeline, frames):
    """Return hands kept / rejected and gate-figure statistics on the video and hands.jpg."""
    pipeline.reset()
    figures, rejected, with_hand = [], {}, 0
    for _, stamp, rgb in frames:
        result = pipeline.process(Frame(rgb=rgb, stamp_ns=stamp))
        with_hand += bool(result.hands)
        figures += result.gate_figures
        for reason, count in result.rejected.items():
            rejected[reason] = rejected.get(reason, 0) + count
    stats = {}
    for key in FIGURES:
        values = np.array([f[key] for f in figures if f[key] is not None], dtype=np.float64)
        if values.size:
            stats[key] = {'min': float(values.min()), 'median': float(np.median(values)),
                          'max': float(values.max())}
    pipeline.reset()
    bgr = cv2.imread(str(data_dir() / 'hands.jpg'), cv2.IMREAD_COLOR)
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    still = pipeline.process(Frame(rgb=rgb, stamp_ns=0))
    return {'video_frames': len(frames), 'video_frames_with_hand': with_hand,
            'video_rejected': rejected, 'figures': stats,
            'hands_jpg_hands': len(still.hands), 'hands_jpg_rejected': dict(still.rejected),
            'hands_jpg_padded': {name: run_padded(pipeline, rgb, pad)
                                 for name, pad in PADS.items()}}


def run_padded(pipeline, rgb, pad_px):
    """Return hands published / refitted / rejected on ``rgb`` padded by (l, t, r, b) px."""
    height, width = rgb.shape[:2]
    left, top, right, bottom = pad_px
    pmap = PixelMap(1.0, (-left, -top), (width + left + right, height + top + bottom))
    camera = pmap.camera(scene_camera('hands', width, height))
    padded = cv2.copyMakeBorder(rgb, top, bottom, left, right, cv2.BORDER_CONSTANT)
    pipeline.reset()
    result = pipeline.process(Frame(rgb=padded, stamp_ns=0, camera=camera))
    return {'hands': len(result.hands), 'rejected': dict(result.rejected),
            'refitted_from_2d': sum(h.shape_source == 'refit_2d' for h in result.hands)}


def run_tailor_comparison(pipeline, frames):
    """Return 2D error, PA-MPJPE and root-relative Acc of the video: tailor off / on.

    Runs: ``tailor_off`` (network hand at the recovered root), ``per_frame`` (tailor without
    temporal terms), ``temporal`` (the default). ``mediapipe_world_acc_mm_per_frame2`` is the
    Acc of MediaPipe's own world landmarks (the golden 3D) on the same frames.
    """
    gold_2d = np.asarray(json.loads((data_dir() / 'asl_hand.full.json').read_text()))[..., :2]
    gold_3d = np.asarray(json.loads((data_dir() / 'asl_hand_3d.full.json').read_text()))
    gold_2d, gold_3d = gold_2d[:len(frames)], gold_3d[:len(frames)]
    out = {}
    base = pipeline.config
    runs = (('tailor_off', False, False), ('per_frame', True, False), ('temporal', True, True))
    for name, enabled, temporal in runs:
        pipeline.update_config(base.with_values({'tailor.enabled': enabled,
                                                 'tailor.temporal': temporal}))
        pipeline.reset()
        joints = np.full((len(frames), 21, 3), np.nan)
        px = np.full((len(frames), 21, 2), np.nan)
        for index, stamp, rgb in frames:
            hands = pipeline.process(Frame(rgb=rgb, stamp_ns=stamp)).hands
            if hands:
                joints[index], px[index] = hands[0].joints_m, hands[0].keypoints_px
        ok = np.all(np.isfinite(joints), axis=(1, 2))
        rel = joints[ok] - joints[ok][:, :1]
        target = gold_3d[ok] - gold_3d[ok][:, :1]
        err = np.linalg.norm(px[ok] - gold_2d[ok], axis=-1).mean(axis=-1)
        out[name] = {
            'frames_with_hand': int(ok.sum()), 'median_2d_error_px': float(np.median(err)),
            'pa_mpjpe_mm_median': float(1e3 * np.median(
                mesh_metrics.pa_mean_point_error(rel, target))),
            'rel_acc_mm_per_frame2': float(1e3 * mesh_metrics.mean_acceleration(rel)),
            'root_acc_mm_per_frame2': float(1e3 * mesh_metrics.mean_acceleration(
                joints[ok][:, 0]))}
        out['mediapipe_world_acc_mm_per_frame2'] = float(
            1e3 * mesh_metrics.mean_acceleration(target))
    pipeline.update_config(base)
    out['temporal_acc_ratio_to_mediapipe'] = (out['temporal']['rel_acc_mm_per_frame2']
                                              / out['mediapipe_world_acc_mm_per_frame2'])
    return out


def run(variant='full', max_frames=None):
    """Return every section's figures (see the module docstring)."""
    config = PipelineConfig().with_values({'model.variant': variant,
                                           'model.backend': 'onnxruntime'})
    pipeline = HandMeshPipeline(config)
    frames = video_frames(max_frames)
    try:
        out = {'variant': variant, 'gates': dataclasses.asdict(config.gates),
               'real': run_real(pipeline, frames), 'injection': {}}
        for name in INJECTIONS:
            for midtrack in (False, True):
                key = '%s_%s' % (name, 'midtrack' if midtrack else 'fresh')
                out['injection'][key] = run_injection(pipeline, frames, name, midtrack)
        out['tailor'] = run_tailor_comparison(pipeline, frames)
    finally:
        pipeline.close()
    out['runaways_published'] = sum(row['published'] for key, row in out['injection'].items()
                                    if key.rsplit('_', 1)[0] in MUST_DROP)
    out['real_hands_lost'] = (out['real']['video_frames'] - out['real']['video_frames_with_hand']
                              + max(0, 2 - out['real']['hands_jpg_hands'])
                              + sum(max(0, 2 - row['hands'])
                                    for row in out['real']['hands_jpg_padded'].values()))
    return out


def main(argv=None):
    """Print the gates' figures (JSON last with ``--json``)."""
    parser = argparse.ArgumentParser(prog='hand-mesh eval gates',
                                     description=__doc__.split('\n\n')[0])
    parser.add_argument('--json', action='store_true', help='print one JSON object last')
    parser.add_argument('--variant', default='full', choices=('full', 'lite'),
                        help='network size, as model.variant (default: full)')
    parser.add_argument('--max-frames', type=int, default=None, help='ASL frames to use')
    args = parser.parse_args(argv)
    out = run(variant=args.variant, max_frames=args.max_frames)
    print(json.dumps(out) if args.json else json.dumps(out, indent=2))
    return 0
