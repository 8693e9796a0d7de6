"""``hand-mesh eval depth``: RGB-D fusion on real colour with synthetic, consistent depth.

For each working distance, the real ASL video (and ``hands.jpg``) runs through the pipeline
from colour alone (pass 1). Each fitted hand becomes a *different* true hand: scaled about the
camera centre by ``L_true / L_fit`` (the track's true hand length is 0.85-1.15x its fitted
one), i.e. moved along its rays so its projection is unchanged: exactly what one colour image
cannot tell apart. Its depth is z-buffer rendered in front of a background plane and degraded
like a D435
(:mod:`hand_mesh_ros.tools.evaluation.depth_synthesis`). Pass 2 runs the pipeline again with
these depth images paired to the frames and compares the fused wrist and hand length with the
truth; pass 1's wrist on the same frames is the RGB-only figure. Depth is withheld for 2 s in
the middle of each video (the dropout figures) to show the track's size staying metric.

The distance is set by the focal length (the video's hand keeps its pixel size; the depth
noise is that of the distance). Run
``python -m hand_mesh_ros.tools.evaluation.eval_depth [--json]``.
"""

import argparse
import json
from pathlib import Path
import time

import cv2
import numpy as np

from hand_mesh_ros.core.camera.camera import CameraModel
from hand_mesh_ros.core.depth.depth_stage import rest_hand_length_m
from hand_mesh_ros.core.types import Frame
from hand_mesh_ros.paths import data_dir
from hand_mesh_ros.tools.evaluation import depth_synthesis

VIDEO = 'asl_hand.25fps.mp4'
IMAGE = 'hands.jpg'
TARGETS_M = (0.4, 0.7, 1.0, 1.5)
TRUE_SCALE_RANGE = (0.85, 1.15)
DROPOUT_S = (6.0, 8.0)
SIZE_AFTER_FRAMES = 30


def make_camera(width, height, focal_px):
    """Return a pinhole CameraModel (principal point a little off-centre)."""
    k = (focal_px, 0.0, 0.5 * width + 2.9, 0.0, focal_px, 0.5 * height - 4.7, 0.0, 0.0, 1.0)
    return CameraModel.from_camera_info_fields(width, height, 'plumb_bob', [0.0] * 5, k,
                                               np.eye(3).ravel(), np.zeros(12))


def load_frames(max_frames):
    """Return [(stamp_ns, rgb)] of the video and the image (rgb arrays)."""
    from hand_mesh_ros.tools.video_frames import iter_frames
    frames = iter_frames(data_dir() / VIDEO, max_frames=max_frames)
    video = [(stamp, rgb) for _, stamp, rgb in frames]
    image = cv2.cvtColor(cv2.imread(str(data_dir() / IMAGE)), cv2.COLOR_BGR2RGB)
    return video, image


def run_pass(pipeline, frames, camera, depths=None):
    """Run frames through a fresh track state; return per frame [hand records], timings."""
    pipeline.reset()
    records, timing = [], {'tailor': 0.0, 'depth_fusion': 0.0, 'hands': 0, 'fused': 0}
    for index, (stamp, rgb) in enumerate(frames):
        depth = None if depths is None else depths[index]
        result = pipeline.process(Frame(rgb=rgb, stamp_ns=stamp, camera=camera, depth=depth))
        hands = []
        for hand in result.hands:
            hands.append({
                'track': hand.track_id, 'wrist': hand.joints_m[0].copy(),
                'vertices': hand.vertices_m, 'faces': hand.faces,
                'length': rest_hand_length_m(pipeline.hand_model, hand.shape_coefficients),
                'fused': hand.position_mode == 'depth_fused', 'px': hand.keypoints_px,
                'pose': hand.pose_coefficients, 'shape': hand.shape_coefficients,
                'side': hand.side})
        records.append(hands)
        timing['tailor'] += result.timings_ms.get('tailor', 0.0)
        if depth is not None:
            timing['depth_fusion'] += result.timings_ms.get('depth_fusion', 0.0)
            timing['hands'] += len(result.hands)
            timing['fused'] += sum(h['fused'] for h in hands)
    return records, timing


def make_truth(records, rng, k_true=None):
    """Return per frame [(true scale, hand record)] and the true length per track.

    A track's true length is ``k_true`` (random in TRUE_SCALE_RANGE when None) times the
    median of its fitted lengths.
    """
    true_lengths = {}
    for track in {h['track'] for hands in records for h in hands}:
        fitted = np.median([h['length'] for hands in records for h in hands
                            if h['track'] == track])
        k = rng.uniform(*TRUE_SCALE_RANGE) if k_true is None else k_true
        true_lengths[track] = fitted * k
    truth = [[(true_lengths[h['track']] / h['length'], h) for h in hands] for hands in records]
    return truth, true_lengths


def perturb_fingers(truth, model, rng, sigma_deg):
    """Give each true hand its own finger pose: N(0, sigma_deg) per axis on every finger bone.

    The bones below the model's wrist bone are perturbed (not the root and the wrist bone,
    which would turn the whole hand); the fitted model then no longer matches the
    true surface exactly (as for a real hand). Stores 'true_vertices' (before the true scale)
    per hand.
    """
    fingers = np.array([bone for bone in range(model.n_bones) if model.parents[bone] > 0])
    for hands in truth:
        for _, hand in hands:
            pose = np.array(hand['pose'], dtype=np.float64)
            pose[fingers] += rng.normal(0.0, np.radians(sigma_deg), pose[fingers].shape)
            out = model.forward(pose, hand['shape'], side=hand['side'])
            hand['true_vertices'] = out.vertices + (hand['wrist'] - out.keypoints[0])


def _true_vertices(scale, hand):
    return scale * hand.get('true_vertices', hand['vertices'])


def render_depths(truth, camera, rng, noise_coeff, dropout=None):
    """Return per frame the degraded depth (float32 m, None inside ``dropout`` indices)."""
    rays = depth_synthesis.pixel_rays(camera)
    depths, holes = [], []
    for index, hands in enumerate(truth):
        if dropout is not None and dropout[0] <= index < dropout[1]:
            depths.append(None)
            continue
        wrist_z = max([s * h['wrist'][2] for s, h in hands] or [1.0])
        clean = depth_synthesis.scene_depth([_true_vertices(s, h) for s, h in hands],
                                            [h['faces'] for _, h in hands], camera, rays,
                                            rng, wrist_z)
        depth, _, info = depth_synthesis.degrade(clean, rng, noise_coeff_per_m=noise_coeff)
        holes.append(info['hole_fraction'])
        depths.append(depth)
    return depths, holes


def match(hand, candidates):
    """Return the candidate whose keypoints are nearest ``hand``'s (or None)."""
    if not candidates:
        return None

    def distance(candidate):
        return float(np.mean(np.linalg.norm(candidate['px'] - hand['px'], axis=1)))

    return min(candidates, key=distance)


def compare(truth, fused_records, true_lengths, gap, video):
    """Return lists of per-hand errors (root mm fused / RGB-only, size %, gap, ...)."""
    out = {'root': [], 'root_rgb': [], 'size': [], 'gap_root': [], 'gap_root_rgb': [],
           'gap_size': [], 'not_fused': 0}
    for index, (hands, fused) in enumerate(zip(truth, fused_records)):
        in_gap = gap is not None and gap[0] <= index < gap[1]
        for scale, hand in hands:
            got = match(hand, fused)
            if got is None:
                continue
            true_wrist = scale * hand['wrist']
            err = 1e3 * float(np.linalg.norm(got['wrist'] - true_wrist))
            err_rgb = 1e3 * float(np.linalg.norm(hand['wrist'] - true_wrist))
            size = 100.0 * abs(got['length'] / true_lengths[hand['track']] - 1.0)
            if in_gap:
                out['gap_root'].append(err)
                out['gap_root_rgb'].append(err_rgb)
                out['gap_size'].append(size)
                continue
            if not got['fused']:
                out['not_fused'] += 1
                continue
            out['root'].append(err)
            out['root_rgb'].append(err_rgb)
            if not video or index >= SIZE_AFTER_FRAMES:
                out['size'].append(size)
    return out


def _stats(values, q=50):
    return float(np.percentile(values, q)) if len(values) else float('nan')


def draw_panel(rgb, depth, truth_hands, fused_hands, camera, path):
    """Write a PNG: colour + fused mesh | depth image | side view (true, RGB-only, fused)."""
    height = 480
    scale = height / rgb.shape[0]
    colour = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR).copy()
    for hand in fused_hands:
        for uv in camera.project(hand['vertices'])[::3]:
            cv2.circle(colour, (int(uv[0]), int(uv[1])), 1, (0, 255, 0), -1)
    colour = cv2.resize(colour, (int(rgb.shape[1] * scale), height))
    valid = depth > 0
    lo, hi = (np.percentile(depth[valid], [1, 99]) if valid.any() else (0.0, 1.0))
    norm = np.clip((depth - lo) / max(hi - lo, 1e-6), 0, 1)
    vis = cv2.applyColorMap((255 * (1 - norm)).astype(np.uint8), cv2.COLORMAP_TURBO)
    vis[~valid] = 0
    vis = cv2.resize(vis, colour.shape[1::-1], interpolation=cv2.INTER_NEAREST)
    side = np.full((height, height, 3), 255, np.uint8)
    clouds = [([_true_vertices(s, h)[::2] for s, h in truth_hands], (90, 90, 90), 2),
              ([h['vertices'][::2] for _, h in truth_hands], (0, 0, 255), 1),
              ([h['vertices'][::2] for h in fused_hands], (0, 170, 0), 1)]
    points = [v for c, _, _ in clouds for v in c] or [np.zeros((1, 3))]
    low = np.min([p.min(axis=0) for p in points], axis=0)
    high = np.max([p.max(axis=0) for p in points], axis=0)
    zc, yc = 0.5 * (low[2] + high[2]), 0.5 * (low[1] + high[1])
    span = max(high[2] - low[2], high[1] - low[1], 0.05) * 1.15
    for cloud, color, radius in clouds:
        for verts in cloud:
            for z, y in verts[:, 1:][:, ::-1]:
                u = int((z - zc) / span * height + height / 2)
                v = int((y - yc) / span * height + height / 2)
                if 0 <= u < height and 0 <= v < height:
                    cv2.circle(side, (u, v), radius - 1, color, -1)
    cv2.putText(side, 'side view (z right): grey true, red RGB-only, green fused', (5, 15),
                cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1)
    cv2.putText(side, '%.0f mm across' % (span * 1e3), (5, height - 8),
                cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1)
    cv2.imwrite(str(path), np.hstack([colour, vis, side]))


def evaluate(pipeline, targets, max_frames, noise_coeff, seed, out_dir, pose_noise_deg=0.0):
    """Run the whole evaluation; return the figures (dict)."""
    rng = np.random.default_rng(seed)
    video, image = load_frames(max_frames)
    vid_h, vid_w = video[0][1].shape[:2]
    img_h, img_w = image.shape[:2]
    fps = 25.0
    gap = tuple(int(round(t * fps)) for t in DROPOUT_S)
    gap = gap if gap[1] <= len(video) else None
    # Calibration: the wrist depth the colour-only fit gives at a reference focal length.
    ref_f = 900.0
    ref, _ = run_pass(pipeline, video[::10], make_camera(vid_w, vid_h, ref_f))
    z_ref = float(np.median([h['wrist'][2] for hands in ref for h in hands]))
    ref_img, _ = run_pass(pipeline, [(0, image)], make_camera(img_w, img_h, ref_f))
    z_ref_img = float(np.median([h['wrist'][2] for hands in ref_img for h in hands]))
    per_target, pooled = {}, {}
    timing = {'tailor': 0.0, 'depth_fusion': 0.0, 'hands': 0, 'fused': 0}
    for target in targets:
        k_true = rng.uniform(*TRUE_SCALE_RANGE)
        sets = [('video', video, vid_w, vid_h, ref_f * target / (z_ref * k_true), gap),
                ('image', [(0, image)] * 1, img_w, img_h,
                 ref_f * target / (z_ref_img * k_true), None)]
        for name, frames, width, height, focal, dropout in sets:
            camera = make_camera(width, height, focal)
            rgb_records, _ = run_pass(pipeline, frames, camera)
            trials = 1 if name == 'video' else 5
            for _ in range(trials):
                truth, lengths = make_truth(rgb_records, rng,
                                            k_true if name == 'video' else None)
                if pose_noise_deg > 0.0:
                    perturb_fingers(truth, pipeline.hand_model, rng, pose_noise_deg)
                depths, holes = render_depths(truth, camera, rng, noise_coeff, dropout)
                fused, tim = run_pass(pipeline, frames, camera, depths)
                for key in timing:
                    timing[key] += tim[key]
                errs = compare(truth, fused, lengths, dropout, name == 'video')
                bucket = per_target.setdefault('%.1f' % target, {})
                for key, values in errs.items():
                    if key == 'not_fused':
                        bucket[key] = bucket.get(key, 0) + values
                        pooled[key] = pooled.get(key, 0) + values
                        continue
                    bucket.setdefault(key, []).extend(values)
                    pooled.setdefault(key, []).extend(values)
                bucket.setdefault('holes', []).extend(holes)
            if out_dir is not None:
                pick = min(len(frames) - 1, 100)
                draw_panel(frames[pick][1], depths[pick] if depths[pick] is not None
                           else np.zeros((height, width)), truth[pick], fused[pick], camera,
                           Path(out_dir) / ('depth_%s_%.1fm.png' % (name, target)))
    hands = max(timing['hands'], 1)
    figures = {
        'root_error_median_mm': _stats(pooled['root']),
        'root_error_p95_mm': _stats(pooled['root'], 95),
        'rgb_only_root_error_median_mm': _stats(pooled['root_rgb']),
        'rgb_only_root_error_p95_mm': _stats(pooled['root_rgb'], 95),
        'hand_size_error_pct': _stats(pooled['size']),
        'hand_size_error_p95_pct': _stats(pooled['size'], 95),
        'dropout_root_error_median_mm': _stats(pooled.get('gap_root', [])),
        'dropout_rgb_only_root_error_median_mm': _stats(pooled.get('gap_root_rgb', [])),
        'dropout_hand_size_error_pct': _stats(pooled.get('gap_size', [])),
        'fusion_ms_per_hand': timing['depth_fusion'] / hands,
        'tailor_ms_per_hand': timing['tailor'] / hands,
        'fusion_to_tailor_ratio': timing['depth_fusion'] / max(timing['tailor'], 1e-9),
        'hands_with_depth': timing['hands'], 'hands_fused': timing['fused'],
        'noise_coeff_per_m': noise_coeff, 'pose_noise_deg': pose_noise_deg,
        'per_distance': {}}
    for key, bucket in per_target.items():
        figures['per_distance'][key] = {
            'root_error_median_mm': _stats(bucket['root']),
            'root_error_p95_mm': _stats(bucket['root'], 95),
            'rgb_only_root_error_median_mm': _stats(bucket['root_rgb']),
            'hand_size_error_pct': _stats(bucket['size']),
            'dropout_root_error_median_mm': _stats(bucket.get('gap_root', [])),
            'hands': len(bucket['root']), 'not_fused': bucket.get('not_fused', 0),
            'hole_fraction_median': _stats(bucket['holes'])}
    return figures


def main(argv=None):
    """Run the RGB-D evaluation; print figures (and one JSON line with --json)."""
    parser = argparse.ArgumentParser(prog='hand-mesh eval depth', description=__doc__.split(
        '\n')[0])
    parser.add_argument('--json', action='store_true', help='print one JSON object last')
    parser.add_argument('--quick', action='store_true', help='first 120 video frames only')
    parser.add_argument('--max-frames', type=int, default=None,
                        help='use the first N video frames (default: all)')
    parser.add_argument('--noise-coeff', type=float, default=0.005,
                        help='sensor noise c of sigma = c z^2 (1/m), synthesis and fusion')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    parser.add_argument('--pose-noise-deg', type=float, default=0.0,
                        help='true hand: fitted finger pose + N(0, this) per bone axis, so the '
                             'model does not match the true surface exactly')
    parser.add_argument('--out', default='out/eval_depth', help="PNG folder ('' = none)")
    parser.add_argument('--models-dir', default='',
                        help="models directory ('' = the package models)")
    args = parser.parse_args(argv)
    from hand_mesh_ros.core.config import PipelineConfig
    from hand_mesh_ros.core.pipeline import HandMeshPipeline
    config = PipelineConfig().with_values({
        'model.models_dir': args.models_dir, 'model.backend': 'onnxruntime',
        'depth.noise_coeff_per_m': args.noise_coeff})
    out_dir = None
    if args.out:
        out_dir = Path(args.out)
        out_dir.mkdir(parents=True, exist_ok=True)
    max_frames = 120 if args.quick and args.max_frames is None else args.max_frames
    pipeline = HandMeshPipeline(config)
    start = time.perf_counter()
    try:
        figures = evaluate(pipeline, TARGETS_M, max_frames, args.noise_coeff, args.seed,
                           out_dir, args.pose_noise_deg)
    finally:
        pipeline.close()
    figures['wall_s'] = time.perf_counter() - start
    for key, value in figures.items():
        if key != 'per_distance':
            print('%-40s %s' % (key, value))
    for key, value in figures['per_distance'].items():
        print('distance %s m: %s' % (key, value))
    if args.json:
        print(json.dumps(figures))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
