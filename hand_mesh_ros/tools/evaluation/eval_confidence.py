"""Does the confidence rank hands, and is it calibrated? Synthetic hands with known truth.

Scenes of :mod:`hand_mesh_ros.tools.evaluation.confidence_scenes` (population hand lengths,
noisy and occluded 2D, a network 3D that errs the real way on curled fingers). ``full``: the
true camera; ``assumed``: cameras of 45-90 degrees FOV with an offset principal point, fitted
with the assumed 60 degree pinhole. For each: the mean predicted P(wrist error < 5 cm)
against the observed fraction, per predicted-probability bin; the rank correlation between
confidence and wrist error; the median error of the most and least confident thirds.

``--fit`` fits the error model's coefficients (:mod:`hand_mesh_ros.core.fitting.error_model`)
on one seed's scenes and reports the calibration on another seed's with them.

Run ``hand-mesh eval confidence [--fit] [--json]``.
"""

import numpy as np
from scipy.optimize import minimize
from scipy.stats import spearmanr

from hand_mesh_ros.core.camera.camera import CameraModel
from hand_mesh_ros.core.config import PipelineConfig, TailorConfig
from hand_mesh_ros.core.fitting import error_model, uncertainty
from hand_mesh_ros.core.fitting.tailor import HandTailor
from hand_mesh_ros.core.hand.hand_model import load_hand_model
from hand_mesh_ros.tools.evaluation import confidence_scenes as scenes
from hand_mesh_ros.tools.evaluation.figures_cli import figures_parser, print_figures

#: Predicted-probability bins of the calibration table.
BINS = ((0.0, 0.7), (0.7, 0.8), (0.8, 0.85), (0.85, 0.9), (0.9, 1.01))
MODES = ('full', 'assumed')


def _camera_pair(mode, rng):
    """Return (the true camera, the camera the fit uses) of one scene."""
    if mode == 'full':
        camera = scenes.pinhole(600.0, 320.0, 240.0)
        return camera, camera
    focal = 320.0 / np.tan(np.radians(rng.uniform(45.0, 90.0)) / 2.0)
    true_camera = scenes.pinhole(focal, 320.0 + rng.normal(scale=15.0),
                                 240.0 + rng.normal(scale=15.0))
    return true_camera, CameraModel.assumed_fov(640, 480, hfov_deg=60.0)


def run_scenes(mode, n_hands, seed, model):
    """Return the SceneResults of the hands published out of ``n_hands`` scenes.

    The gates refuse a few, as in the node.
    """
    config = PipelineConfig(tailor=TailorConfig(temporal=False))
    tailor = HandTailor(model, config.tailor)
    reference = model.forward(model.zero_pose(), model.zero_shape()).keypoints
    rng = np.random.default_rng(seed)
    results = []
    for _ in range(n_hands):
        true_camera, fit_camera = _camera_pair(mode, rng)
        scene = scenes.make_scene(rng, model, tailor.size, true_camera)
        scene.camera = fit_camera
        result = scenes.run_scene(scene, model, tailor, config, reference)
        if result is not None:
            results.append(result)
    return results


def predicted_within(result, coefficients=None):
    """Return the published P(wrist error < 5 cm) of one scene result."""
    covariance = result.fit_covariance_m2 + error_model.evidence_covariance_m2(
        result.translation_m, result.evidence, coefficients)
    return uncertainty.probability_within(covariance)


def calibration_table(results, coefficients=None):
    """Return the calibration dict of scene results (see the module docstring)."""
    predicted = np.array([predicted_within(r, coefficients) for r in results])
    error = np.array([np.linalg.norm(r.wrist_error_m) for r in results])
    hit = (error < uncertainty.CONFIDENCE_RADIUS_M).astype(float)
    bins = []
    for lo, hi in BINS:
        sel = (predicted >= lo) & (predicted < hi)
        if sel.any():
            bins.append({'range': [lo, min(hi, 1.0)], 'n': int(sel.sum()),
                         'predicted': round(float(predicted[sel].mean()), 3),
                         'observed': round(float(hit[sel].mean()), 3)})
    order = np.argsort(-predicted)
    third = max(len(order) // 3, 1)
    return {'n': int(len(results)), 'predicted': round(float(predicted.mean()), 3),
            'observed': round(float(hit.mean()), 3),
            'rank_correlation': round(float(spearmanr(predicted, error)[0]), 3),
            'median_error_mm_most_confident_third': round(
                float(np.median(error[order[:third]])) * 1e3, 1),
            'median_error_mm_least_confident_third': round(
                float(np.median(error[order[-third:]])) * 1e3, 1),
            'bins': bins}


NAMES = ('floor', 'network_error', 'bone_shortening', 'reprojection_error', 'lateral')


def fit_coefficients(results):
    """Return error-model coefficients that best predict which wrists lie within 5 cm.

    Maximum likelihood of the observed hits (wrist error < radius) under the published
    probability: the confidence's own meaning, so the fit calibrates it and ranks by it.
    """
    hit = np.array([np.linalg.norm(r.wrist_error_m) < uncertainty.CONFIDENCE_RADIUS_M
                    for r in results])

    def log_loss(log_gains):
        coefficients = dict(zip(NAMES, np.exp(log_gains)))
        p = np.clip([predicted_within(r, coefficients) for r in results], 1e-3, 1 - 1e-3)
        return -float(np.sum(np.where(hit, np.log(p), np.log1p(-p))))

    start = np.log([0.02, 0.2, 0.1, 0.2, 0.5])
    best = minimize(log_loss, start, method='Nelder-Mead',
                    options={'maxiter': 600, 'xatol': 1e-2, 'fatol': 1e-2})
    return {name: round(float(g), 4) for name, g in zip(NAMES, np.exp(best.x))}


def _format_calibration(out):
    """Return the text report of :func:`main`'s figures."""
    lines = []
    if 'coefficients' in out:
        lines.append('fitted coefficients: %s' % out['coefficients'])
    for mode in MODES:
        row = out[mode]
        lines.append('%-8s n=%d  P(wrist error < 5 cm): predicted %.3f, observed %.3f; rank '
                     'correlation with the error %.2f; median error of the most / least '
                     'confident third %.1f / %.1f mm' % (
                         mode, row['n'], row['predicted'], row['observed'],
                         row['rank_correlation'], row['median_error_mm_most_confident_third'],
                         row['median_error_mm_least_confident_third']))
        lines += ['    %.2f-%.2f  n=%3d  predicted %.3f  observed %.3f' % (
            b['range'][0], b['range'][1], b['n'], b['predicted'], b['observed'])
            for b in row['bins']]
    return '\n'.join(lines)


def main(argv=None):
    """Print the calibration per mode; with ``--json`` one JSON object as the last line."""
    parser = figures_parser('hand-mesh eval confidence', __doc__)
    parser.add_argument('--hands', type=int, default=300, help='synthetic hands per mode')
    parser.add_argument('--seed', type=int, default=0, help='random seed of the scenes')
    parser.add_argument('--fit', action='store_true',
                        help='fit the error model on other scenes (seed + 1000), report with it')
    parser.add_argument('--fit-hands', type=int, default=600,
                        help='synthetic hands the --fit fits on')
    args = parser.parse_args(argv)
    model = load_hand_model()
    coefficients = None
    out = {}
    if args.fit:
        coefficients = fit_coefficients(
            run_scenes('full', args.fit_hands, args.seed + 1000, model))
        out['coefficients'] = coefficients
    for mode in MODES:
        out[mode] = calibration_table(run_scenes(mode, args.hands, args.seed, model),
                                      coefficients)
    print_figures(out, args.json, _format_calibration)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
