"""``hand-mesh eval report``: keypoints, root, mesh, jitter and the video fit in one JSON report.

Sections (each one calls the evaluation that defines it; a section that fails records its
error and the others still run):

- ``video``: the full pipeline (:class:`HandMeshPipeline`, as in the node) on the sample ASL
  video, twice: with the tailor's temporal terms (the default, "refined") and without
  ("per-frame"). Per-frame 2D error of the network's keypoints and of the refined model's
  reprojected keypoints against MediaPipe's golden 2D keypoints; 2D PCK / AUC (0-20 px);
  PA-MPJPE of the 21 joints against the golden world landmarks; MobRecon's Acc of the joints
  and the root for both runs; median per-stage latency; detection rate.
- ``keypoints``: :func:`eval_keypoints.evaluate_keypoints` (tracker on video and photo).
- ``root``: :func:`eval_root.root_error_table` (root error vs keypoint noise and distance).
- ``mesh``: :mod:`eval_mesh` synthetic and video metrics of the learned lifting, plus F@5 mm
  and F@15 mm of the mesh vertices on the synthetic set.
- ``jitter``: :func:`eval_jitter.run_static` (and ``run_moving`` unless ``--quick``).

Plots (PNG, ``--out`` directory): ``error_over_time.png``, ``pck_curve.png``,
``accel_histogram.png``, ``stage_latency.png``, ``root_error_vs_noise.png``,
``root_error_vs_distance.png``. The JSON report is written to ``report.json`` there too.
"""

import argparse
import json
from pathlib import Path
import sys
import time
import traceback

import numpy as np

from hand_mesh_ros.core.fitting.least_squares import mean_reprojection_error_px
from hand_mesh_ros.paths import data_dir
from hand_mesh_ros.tools.evaluation import mesh_metrics

VIDEO = 'asl_hand.25fps.mp4'
GOLDEN_2D = 'asl_hand.full.json'
GOLDEN_3D = 'asl_hand_3d.full.json'
PCK_MAX_PX = 20.0
F_THRESHOLDS_M = (0.005, 0.015)
QUICK = {'video_frames': 100, 'keypoint_frames': 100, 'root_trials': 25,
         'mesh_samples': 200, 'fscore_samples': 50, 'jitter_frames': 50, 'moving': False}
FULL = {'video_frames': None, 'keypoint_frames': None, 'root_trials': 200,
        'mesh_samples': 1000, 'fscore_samples': 200, 'jitter_frames': 100, 'moving': True}


def _golden():
    gold_2d = np.asarray(json.loads((data_dir() / GOLDEN_2D).read_text()))[:, :, :2]
    gold_3d = np.asarray(json.loads((data_dir() / GOLDEN_3D).read_text()))
    return gold_2d, gold_3d


def _track(pipeline, max_frames, gold_2d):
    """Run the pipeline on the video; return per-frame arrays (NaN where no hand)."""
    from hand_mesh_ros.core.types import Frame
    from hand_mesh_ros.tools.video_frames import iter_frames
    n = len(gold_2d) if max_frames is None else min(max_frames, len(gold_2d))
    observed = np.full((n, 21, 2), np.nan)
    model_px = np.full((n, 21, 2), np.nan)
    joints = np.full((n, 21, 3), np.nan)
    timings, wall_ms = {}, []
    for index, stamp_ns, rgb in iter_frames(data_dir() / VIDEO, max_frames=n):
        start = time.perf_counter()
        result = pipeline.process(Frame(rgb=rgb, stamp_ns=stamp_ns))
        wall_ms.append(1e3 * (time.perf_counter() - start))
        for stage, value in result.timings_ms.items():
            timings.setdefault(stage, []).append(float(value))
        if not result.hands:
            continue
        errors = [mean_reprojection_error_px(h.observed_keypoints_px, gold_2d[index])
                  for h in result.hands]
        hand = result.hands[int(np.argmin(errors))]
        observed[index] = hand.observed_keypoints_px
        model_px[index] = hand.keypoints_px
        # The reference is MediaPipe's world landmarks: compare the landmark convention.
        joints[index] = hand.keypoints_m
    return {'observed_px': observed, 'model_px': model_px, 'joints_m': joints,
            'timings_ms': timings, 'wall_ms': wall_ms}


def _longest_run(valid):
    """Return (start, stop) of the longest run of True in ``valid``."""
    best, start = (0, 0), None
    for i, ok in enumerate(list(valid) + [False]):
        if ok and start is None:
            start = i
        elif not ok and start is not None:
            if i - start > best[1] - best[0]:
                best = (start, i)
            start = None
    return best


def _pck_figures(pred, gold, valid):
    if not np.any(valid):
        return None
    thresholds = np.linspace(0.0, PCK_MAX_PX, 41)
    curve = mesh_metrics.pck(pred[valid], gold[valid], thresholds)
    return {'pck_5px': float(mesh_metrics.pck(pred[valid], gold[valid], [5.0])[0]),
            'pck_10px': float(mesh_metrics.pck(pred[valid], gold[valid], [10.0])[0]),
            'auc_0_20px': mesh_metrics.pck_auc(pred[valid], gold[valid], PCK_MAX_PX),
            'curve_thresholds_px': thresholds.tolist(), 'curve': curve.round(4).tolist()}


def _err_px(pred, gold):
    return np.linalg.norm(pred - gold, axis=-1).mean(axis=-1)


def video_section(max_frames=None, models_dir='', variant='full'):
    """Run the pipeline on the ASL video with and without temporal terms; return figures."""
    from hand_mesh_ros.core.config import PipelineConfig
    from hand_mesh_ros.core.pipeline import HandMeshPipeline
    gold_2d, gold_3d = _golden()
    runs = {}
    for name, temporal in (('per_frame', False), ('refined', True)):
        config = PipelineConfig().with_values({
            'model.models_dir': models_dir, 'model.variant': variant,
            'model.backend': 'onnxruntime', 'tailor.temporal': temporal})
        pipeline = HandMeshPipeline(config)
        try:
            runs[name] = _track(pipeline, max_frames, gold_2d)
        finally:
            pipeline.close()
    n = len(runs['refined']['wall_ms'])
    gold_2d, gold_3d = gold_2d[:n], gold_3d[:n]
    valid = np.all(np.isfinite(runs['refined']['observed_px']), axis=(1, 2))
    out = {'video': VIDEO, 'frames': n, 'camera': 'assumed 60 deg horizontal FOV (no K)',
           'detection_rate': float(valid.mean()) if n else 0.0,
           'error_px_per_frame': {
               'network': _err_px(runs['refined']['observed_px'], gold_2d).round(3).tolist(),
               'refined': _err_px(runs['refined']['model_px'], gold_2d).round(3).tolist(),
               'per_frame': _err_px(runs['per_frame']['model_px'], gold_2d).round(3).tolist()},
           'pck': {'network': _pck_figures(runs['refined']['observed_px'], gold_2d, valid)}}
    start, stop = _longest_run(valid)
    out['acc_segment_frames'] = [int(start), int(stop)]
    for name, run in runs.items():
        ok = np.all(np.isfinite(run['model_px']), axis=(1, 2))
        errors = _err_px(run['model_px'], gold_2d)[ok]
        figures = {'median_px_error': float(np.median(errors)) if errors.size else None,
                   'pck': _pck_figures(run['model_px'], gold_2d, ok)}
        if np.any(ok):
            rel = run['joints_m'][ok] - run['joints_m'][ok][:, :1]
            target = gold_3d[ok] - gold_3d[ok][:, :1]
            figures['pa_mpjpe_mm'] = mesh_metrics.summarize_mm(
                mesh_metrics.pa_mean_point_error(rel, target))
        if stop - start >= 3:
            seg = run['joints_m'][start:stop]
            acc = 1e3 * mesh_metrics.joint_acceleration(seg)
            figures.update({'acc_mm_per_frame2': float(acc.mean()),
                            'root_acc_mm_per_frame2': 1e3 * mesh_metrics.mean_acceleration(
                                seg[:, 0]),
                            'acc_per_frame_mm': acc.round(3).tolist()})
        out[name] = figures
    timings = runs['refined']['timings_ms']
    wall = runs['refined']['wall_ms'][1:] or [0.0]    # the first frame loads lazily
    out['median_stage_ms'] = {k: round(float(np.median(v)), 3) for k, v in timings.items()}
    out['mean_stage_ms'] = {k: round(float(np.mean(v)), 3) for k, v in timings.items()}
    out['median_frame_ms'] = round(float(np.median(wall)), 3)
    out['mean_frame_ms'] = round(float(np.mean(wall)), 3)
    return out


def keypoints_section(max_frames=None, variant='full'):
    """Return :func:`evaluate_keypoints` figures (tracker only, video + photo)."""
    from hand_mesh_ros.tools.evaluation.eval_keypoints import evaluate_keypoints
    return evaluate_keypoints(variant=variant, max_frames=max_frames)


def root_section(n_trials):
    """Return :func:`root_error_table` (seeded)."""
    from hand_mesh_ros.tools.evaluation.eval_root import root_error_table
    return root_error_table(seed=0, n_trials=n_trials)


def mesh_section(n_samples, n_fscore):
    """Return the learned lifting's synthetic + video metrics and vertex F-scores."""
    from hand_mesh_ros.core.hand.hand_model import load_hand_model
    from hand_mesh_ros.model_building import export_mesh_network as emn
    from hand_mesh_ros.model_building.synthetic_hands import make_dataset
    from hand_mesh_ros.paths import models_dir
    from hand_mesh_ros.tools.evaluation import eval_mesh
    root = models_dir()
    model = load_hand_model(root / 'hand_model_right.npz')
    session = eval_mesh.open_session(root / emn.LIFTING_FILES[emn.DEFAULT_LIFTING])
    out = {'lifting': emn.DEFAULT_LIFTING, 'synthetic_n': n_samples,
           'synthetic': {noise: eval_mesh.synthetic_metrics(session, model, n=n_samples,
                                                            noisy=noise == 'noisy')
                         for noise in ('clean', 'noisy')},
           'video': eval_mesh.video_metrics(
               session, json.loads((data_dir() / GOLDEN_3D).read_text()))}
    for noise in ('clean', 'noisy'):
        data = make_dataset(model, eval_mesh.SYNTHETIC_SEED, n_fscore, noise == 'noisy')
        verts = eval_mesh.lift(session, data['input_m'])['mesh_vertices'][:, 0]
        for threshold in F_THRESHOLDS_M:
            scores = [mesh_metrics.f_score(p, t, threshold)[0]
                      for p, t in zip(verts, data['vertices_m'])]
            out['synthetic'][noise]['f_at_%dmm' % round(threshold * 1e3)] = round(
                float(np.mean(scores)), 4)
    out['fscore_n'] = n_fscore
    return out


def jitter_section(n_frames, moving):
    """Return :func:`run_static` (and :func:`run_moving`) figures."""
    from hand_mesh_ros.tools.evaluation import eval_jitter
    out = {'static': eval_jitter.run_static(n_frames=n_frames)}
    if moving:
        out['moving'] = eval_jitter.run_moving()
    return out


def build_report(quick=False, only=None, log=None, models_dir=''):
    """Run every section (or those in ``only``); return the report dict.

    ``models_dir`` ('' = the package's models) is where the pipeline's networks are read.
    """
    log = log or (lambda message: None)
    sizes = QUICK if quick else FULL
    sections = {
        'video': lambda: video_section(sizes['video_frames'], models_dir),
        'keypoints': lambda: keypoints_section(sizes['keypoint_frames']),
        'root': lambda: root_section(sizes['root_trials']),
        'mesh': lambda: mesh_section(sizes['mesh_samples'], sizes['fscore_samples']),
        'jitter': lambda: jitter_section(sizes['jitter_frames'], sizes['moving']),
    }
    report = {'quick': bool(quick), 'sizes': dict(sizes), 'errors': {}}
    for name, run in sections.items():
        if only and name not in only:
            continue
        log('running %s ...' % name)
        start = time.monotonic()
        try:
            report[name] = run()
        except Exception as exc:  # noqa: B902 - one failing section must not hide the rest
            report['errors'][name] = '%s: %s' % (type(exc).__name__, exc)
            log(traceback.format_exc().rstrip())
        report.setdefault('section_s', {})[name] = round(time.monotonic() - start, 1)
    return report


def main(argv=None):
    """Build the report, write report.json and the PNG plots; print a summary."""
    from hand_mesh_ros.tools.evaluation.plots import render_plots
    parser = argparse.ArgumentParser(prog='hand-mesh eval report',
                                     description=__doc__.split('\n\n')[0].replace('``', ''))
    parser.add_argument('--out', default='eval_report', help='directory for report.json + PNGs')
    parser.add_argument('--quick', action='store_true',
                        help='fewer frames, trials and samples (about a minute)')
    parser.add_argument('--only', nargs='+', default=None,
                        choices=('video', 'keypoints', 'root', 'mesh', 'jitter'),
                        help='run only these sections (default: all)')
    parser.add_argument('--models-dir', default='',
                        help='networks for the video section (default: the package models)')
    parser.add_argument('--json', action='store_true', help='print one JSON object last')
    args = parser.parse_args(argv)

    def note(message):
        print('hand-mesh eval report: %s' % message, file=sys.stderr)

    report = build_report(quick=args.quick, only=args.only, log=note,
                          models_dir=args.models_dir)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report['plots'] = {name: str(path) for name, path in render_plots(report, out).items()}
    (out / 'report.json').write_text(json.dumps(report, indent=1) + '\n')
    for line in summary_lines(report):
        print(line)
    if args.json:
        print(json.dumps(report))
    return 1 if report['errors'] else 0


def summary_lines(report):
    """Return a short human-readable summary of the report."""
    lines = []
    video = report.get('video')
    if video:
        for name in ('per_frame', 'refined'):
            row = video[name]
            lines.append('video %-9s: 2D median %s px, PA-MPJPE median %s mm, Acc %s mm/f^2'
                         % (name, _fmt(row.get('median_px_error')),
                            _fmt(row.get('pa_mpjpe_mm', {}).get('median')),
                            _fmt(row.get('acc_mm_per_frame2'))))
        lines.append('video: detection %.3f, median frame %.1f ms'
                     % (video['detection_rate'], video['median_frame_ms']))
    mesh = report.get('mesh')
    if mesh:
        for noise, row in mesh['synthetic'].items():
            lines.append('mesh %s: PA-MPVPE median %.2f mm, F@5 %.3f, F@15 %.3f' % (
                noise, row['pa_mpvpe']['median'], row['f_at_5mm'], row['f_at_15mm']))
    for name, error in report['errors'].items():
        lines.append('%s FAILED: %s' % (name, error))
    return lines


def _fmt(value):
    return '-' if value is None else '%.2f' % value


if __name__ == '__main__':
    sys.exit(main())
