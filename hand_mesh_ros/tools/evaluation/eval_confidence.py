"""Calibration of the published confidence and wrist covariance on synthetic hands.

Hands of the population's length distribution (ANSUR II prior), random poses, 0.35-1.0 m,
1.5 px keypoint noise, a network that sees no metric size (its 3D joints are a mean-sized
hand). ``full``: the true camera; ``assumed``: cameras of 45-90 degrees FOV with an offset
principal point, fitted with the assumed 60 degree pinhole. For each mode: the mean
predicted P(wrist error < 5 cm) against the observed fraction, per predicted-probability bin.

Run ``hand-mesh eval confidence [--json]``.
"""


import numpy as np

from hand_mesh_ros.core.camera.camera import CameraModel
from hand_mesh_ros.core.config import TailorConfig
from hand_mesh_ros.core.errors import HandMeshError
from hand_mesh_ros.core.fitting import uncertainty
from hand_mesh_ros.core.fitting.tailor import HandTailor
from hand_mesh_ros.core.hand import hand_size
from hand_mesh_ros.core.hand.hand_model import load_hand_model
from hand_mesh_ros.core.track import Track
from hand_mesh_ros.tools.evaluation.figures_cli import figures_parser, print_figures

BINS = ((0.0, 0.5), (0.5, 0.8), (0.8, 1.01))


def _pinhole(focal_px, cx, cy):
    return CameraModel.from_camera_info_fields(
        640, 480, 'plumb_bob', [0.0] * 5, [focal_px, 0.0, cx, 0.0, focal_px, cy, 0, 0, 1],
        np.eye(3).ravel(), np.zeros(12))


def calibration(mode='full', n_hands=150, seed=0, model=None):
    """Return {'predicted', 'observed', 'n', 'median_depth_sd_mm', 'bins'} for ``mode``."""
    model = load_hand_model() if model is None else model
    tailor = HandTailor(model, TailorConfig(temporal=False))
    mean, sd = hand_size.population_hand_length_prior_m()
    assumed = CameraModel.assumed_fov(640, 480, hfov_deg=60.0)
    rng = np.random.default_rng(seed)
    predicted, hit, depth_sd = [], [], []
    for i in range(n_hands):
        length = rng.normal(mean, sd)
        shape = tailor.size.with_length(rng.normal(scale=0.3, size=model.n_shapes), length)
        pose = model.zero_pose()
        pose[0] = (np.pi, 0.0, 0.0) + rng.normal(scale=0.3, size=3)
        pose[1:] = rng.normal(scale=0.15, size=(model.n_bones - 1, 3))
        pose = model.clamp_pose(pose)
        t_true = np.array([rng.uniform(-0.15, 0.15), rng.uniform(-0.1, 0.1),
                           rng.uniform(0.35, 1.0)])
        kp = model.forward(pose, shape).keypoints
        if mode == 'full':
            camera = true_camera = _pinhole(600.0, 320.0, 240.0)
        else:
            focal = 320.0 / np.tan(np.radians(rng.uniform(45.0, 90.0)) / 2.0)
            true_camera = _pinhole(focal, 320.0 + rng.normal(scale=15.0),
                                   240.0 + rng.normal(scale=15.0))
            camera = assumed
        px = true_camera.project(kp + t_true) + rng.normal(scale=1.5, size=(21, 2))
        net = (kp - kp[0]) * (mean / length) + rng.normal(scale=0.004, size=(21, 3))
        try:
            init_pose = pose + rng.normal(scale=0.05, size=pose.shape)
            result = tailor.refine(Track(i), px, net, init_pose, model.zero_shape(),
                                   t_true * rng.uniform(0.8, 1.2), camera, 0.0, 'right')
        except HandMeshError:
            continue
        predicted.append(uncertainty.probability_within(result.position_covariance_m2))
        hit.append(np.linalg.norm(result.translation_m - t_true) < uncertainty.CONFIDENCE_RADIUS_M)
        depth_sd.append(np.sqrt(result.position_covariance_m2[2, 2]))
    predicted, hit = np.array(predicted), np.array(hit, dtype=float)
    bins = []
    for lo, hi in BINS:
        sel = (predicted >= lo) & (predicted < hi)
        if sel.any():
            bins.append({'range': [lo, min(hi, 1.0)], 'n': int(sel.sum()),
                         'predicted': round(float(predicted[sel].mean()), 3),
                         'observed': round(float(hit[sel].mean()), 3)})
    return {'n': int(len(predicted)), 'predicted': round(float(predicted.mean()), 3),
            'observed': round(float(hit.mean()), 3),
            'median_depth_sd_mm': round(float(np.median(depth_sd)) * 1e3, 1), 'bins': bins}


def main(argv=None):
    """Print the calibration per mode; with ``--json`` one JSON object as the last line."""
    parser = figures_parser('hand-mesh eval confidence', __doc__)
    parser.add_argument('--hands', type=int, default=150, help='synthetic hands per mode')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    args = parser.parse_args(argv)
    model = load_hand_model()
    out = {mode: calibration(mode, args.hands, args.seed, model) for mode in ('full', 'assumed')}
    print_figures(out, args.json, _format_calibration)
    return 0


def _format_calibration(out):
    """Return one line of text per mode of :func:`calibration`'s figures."""
    return '\n'.join(
        '%-8s n=%d  P(wrist error < 5 cm): predicted %.3f, observed %.3f; median depth '
        'sigma %.1f mm' % (mode, row['n'], row['predicted'], row['observed'],
                           row['median_depth_sd_mm']) for mode, row in out.items())


if __name__ == '__main__':
    raise SystemExit(main())
