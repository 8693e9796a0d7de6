"""``hand-mesh eval mesh``: the mesh network's lifting (learned vs analytic), video fit, speed.

1. Held-out synthetic hands (seeded; :mod:`hand_mesh_ros.model_building.synthetic_hands`),
   clean and with MediaPipe-like keypoint noise: MPJPE / MPVPE and their Procrustes-aligned
   versions in mm of each lifting graph's right-hand output against the ground truth.
2. The ASL video's golden MediaPipe world landmarks (``data/asl_hand_3d.full.json``): PA-MPJPE
   in mm between the lifted mesh's 21 keypoints and the landmarks (how well the mesh explains
   what the network saw). The chirality that fits the whole video better is reported.
3. Speed on ONNX Runtime CPU (2 threads, batch 1): median time of the mesh network per hand
   against the bare landmark network, and their ratio.

Runs the committed ``lifting_skinning_{analytic,learned}.onnx`` and the generated
``hand_mesh_{full,lite}.onnx`` (built here if missing and the landmark graphs exist); no
torch needed. With ``--json`` the last line is one JSON object.
"""

import argparse
import json
from pathlib import Path
import sys
import time

import numpy as np

from hand_mesh_ros.paths import data_dir, models_dir
from hand_mesh_ros.tools.evaluation import mesh_metrics

LIFTINGS = ('analytic', 'learned')
SYNTHETIC_SEED = 20261122
VIDEO_LANDMARKS = 'asl_hand_3d.full.json'


def open_session(path, num_threads=2):
    """Return an ONNX Runtime session (project backend) for ``path``."""
    from hand_mesh_ros.inference import create_session
    return create_session(path, backend='onnxruntime', num_threads=num_threads)


def lift(session, world_m, chunk=256):
    """Return the lifting graph's outputs for world landmarks (N, 21, 3): dict of arrays."""
    world = np.asarray(world_m, dtype=np.float32).reshape(len(world_m), 63)
    parts = [session.run({'mesh_world_landmarks': world[i:i + chunk]})
             for i in range(0, len(world), chunk)]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def synthetic_metrics(session, model, seed=SYNTHETIC_SEED, n=1000, noisy=False):
    """Return {metric: {'mean', 'median', 'p90'} mm} on a held-out synthetic set."""
    from hand_mesh_ros.model_building.synthetic_hands import make_dataset
    data = make_dataset(model, seed, n, noisy)
    out = lift(session, data['input_m'])
    kps, verts = out['mesh_keypoints'][:, 0], out['mesh_vertices'][:, 0]
    return {'mpjpe': mesh_metrics.summarize_mm(
                mesh_metrics.mean_point_error(kps, data['keypoints_m'])),
            'mpvpe': mesh_metrics.summarize_mm(
                mesh_metrics.mean_point_error(verts, data['vertices_m'])),
            'pa_mpjpe': mesh_metrics.summarize_mm(
                mesh_metrics.pa_mean_point_error(kps, data['keypoints_m'])),
            'pa_mpvpe': mesh_metrics.summarize_mm(
                mesh_metrics.pa_mean_point_error(verts, data['vertices_m']))}


def video_metrics(session, world_m):
    """Return PA-MPJPE / MPJPE summaries (mm) of the lifted keypoints vs landmarks (T, 21, 3)."""
    world_m = np.asarray(world_m, dtype=np.float64)
    target = world_m - world_m[:, :1]
    out = lift(session, world_m)
    per_side = {}
    for index, side in enumerate(('right', 'left')):
        kps = out['mesh_keypoints'][:, index]
        per_side[side] = {'pa_mpjpe': mesh_metrics.pa_mean_point_error(kps, target),
                          'mpjpe': mesh_metrics.mean_point_error(kps, target)}
    best = min(per_side, key=lambda s: float(np.median(per_side[s]['pa_mpjpe'])))
    result = {'frames': len(world_m), 'side': best}
    for side, errs in per_side.items():
        for name, value in errs.items():
            result[('%s_%s' % (name, side)) if side != best else name] = (
                mesh_metrics.summarize_mm(value))
    return result


def median_ms(session, feeds, runs=200, warmup=20):
    """Return the median wall time (ms) of ``session.run(feeds)`` over ``runs`` calls."""
    for _ in range(warmup):
        session.run(feeds)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(feeds)
        times.append(time.perf_counter() - start)
    return 1000.0 * float(np.median(times))


def speed(root, variant, runs=200):
    """Return median ms per hand of the bare landmark and the mesh network, and the ratio."""
    rng = np.random.default_rng(0)
    crop = rng.uniform(size=(1, 224, 224, 3)).astype(np.float32)
    bare = open_session(root / ('hand_landmark_%s.onnx' % variant))
    mesh = open_session(root / ('hand_mesh_%s.onnx' % variant))
    # Interleave the two measurements so that load from other processes hits both alike.
    bare_ms, mesh_ms = [], []
    for _ in range(5):
        bare_ms.append(median_ms(bare, {'input_1': crop}, runs // 5 + 1, 10))
        mesh_ms.append(median_ms(mesh, {'input_1': crop}, runs // 5 + 1, 10))
    bare_t, mesh_t = float(np.median(bare_ms)), float(np.median(mesh_ms))
    return {'landmark_ms': round(bare_t, 3), 'mesh_ms': round(mesh_t, 3),
            'ratio': round(mesh_t / bare_t, 3), 'runs': 5 * (runs // 5 + 1)}


def _print_table(results):
    """Print the human-readable tables."""
    for noise in ('clean', 'noisy'):
        print('synthetic (%s, n=%d): median / mean mm' % (noise, results['synthetic_n']))
        print('  %-9s %15s %15s %15s %15s' % ('lifting', 'MPJPE', 'MPVPE', 'PA-MPJPE',
                                              'PA-MPVPE'))
        for name in LIFTINGS:
            row = results['synthetic'][name][noise]
            print('  %-9s' % name + ''.join(
                ' %7.2f / %5.2f' % (row[k]['median'], row[k]['mean'])
                for k in ('mpjpe', 'mpvpe', 'pa_mpjpe', 'pa_mpvpe')))
    for name in LIFTINGS:
        video = results['video'][name]
        pa = video['pa_mpjpe']
        values = (name, video['frames'], video['side'], pa['median'], pa['mean'], pa['p90'],
                  video['mpjpe']['median'])
        print('video %s (%d frames, %s): PA-MPJPE median %.2f mm (mean %.2f, p90 %.2f), '
              'MPJPE median %.2f mm' % values)
    for variant, row in results.get('speed', {}).items():
        print('speed %s: landmark %.2f ms, mesh %.2f ms, ratio %.2f'
              % (variant, row['landmark_ms'], row['mesh_ms'], row['ratio']))


def main(argv=None):
    """Run the evaluation; print tables (and JSON last with --json); return an exit code."""
    parser = argparse.ArgumentParser(prog='hand-mesh eval mesh',
                                     description=__doc__.split('\n')[0])
    parser.add_argument('--models-dir', type=Path, default=None,
                        help='models directory (default: the package models)')
    parser.add_argument('--samples', type=int, default=1000, help='synthetic hands per set')
    parser.add_argument('--runs', type=int, default=200, help='timed runs per network')
    parser.add_argument('--no-speed', action='store_true', help='skip the timing')
    parser.add_argument('--json', action='store_true', help='print one JSON object last')
    args = parser.parse_args(argv)
    root = args.models_dir or models_dir()
    from hand_mesh_ros.core.hand.hand_model import load_hand_model
    from hand_mesh_ros.model_building import export_mesh_network as emn
    model = load_hand_model(root / 'hand_model_right.npz')
    world = np.asarray(json.loads((data_dir() / VIDEO_LANDMARKS).read_text()), dtype=np.float64)
    results = {'synthetic_n': args.samples, 'synthetic_seed': SYNTHETIC_SEED,
               'default_lifting': emn.DEFAULT_LIFTING, 'synthetic': {}, 'video': {}}
    for name in LIFTINGS:
        session = open_session(root / emn.LIFTING_FILES[name])
        results['synthetic'][name] = {
            noise: synthetic_metrics(session, model, n=args.samples, noisy=noise == 'noisy')
            for noise in ('clean', 'noisy')}
        results['video'][name] = video_metrics(session, world)
    if not args.no_speed:
        manifest = emn.prepare_mesh_networks(root)
        results['speed'] = {v: speed(root, v, args.runs) for v in manifest['models']}
    _print_table(results)
    if args.json:
        print(json.dumps(results, sort_keys=True))
    return 0


if __name__ == '__main__':
    sys.exit(main())
