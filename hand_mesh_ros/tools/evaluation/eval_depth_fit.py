"""``hand-mesh eval depth-fit``: the articulated depth fit on hands that differ from the estimate.

True hands come from the real colour images: the pipeline's colour-only fits of the ASL
video (every ``--stride``-th frame) and of ``hands.jpg``, each given a hand length drawn
from the population's spread and moved along its rays accordingly (the same projection),
at a working distance set by the focal length. Each is rendered into a registered depth
image with its forearm and a background, degraded like a stereo sensor (noise ``c z^2``,
holes, more of them at the silhouette, flying pixels, misregistration;
:mod:`hand_mesh_ros.tools.evaluation.depth_scenes`). The network's view of it is simulated
the way real estimates are off: its finger bones perturbed by ``--finger-deg``, its global
rotation by ``--global-deg`` about a random axis, the population's mean hand length; its 2D
keypoints are the true ones with pixel noise. The tailor refines that (colour only: the
"rgb" figures), then the depth stage fuses distance and size ("fused") or also fits the
hand to the depth surface ("articulated"). Errors are absolute, camera frame: the wrist
joint centre and the mean over the 21 joints, against the true hand.

Run ``python -m hand_mesh_ros.tools.evaluation.eval_depth_fit [--quick] [--json]``.
"""

import json
import time

import numpy as np

from hand_mesh_ros.core.config import DepthConfig
from hand_mesh_ros.core.depth.depth_stage import HandDepthFusion
from hand_mesh_ros.core.hand.hand_size import population_hand_length_prior_m
from hand_mesh_ros.core.track import MetricLength, Track
from hand_mesh_ros.tools.evaluation import depth_scenes, depth_synthesis
from hand_mesh_ros.tools.evaluation.eval_depth import load_frames, make_camera, run_pass
from hand_mesh_ros.tools.evaluation.figures_cli import figures_parser

DISTANCES_M = (0.5, 0.8, 1.2)
VARIANTS = ('rgb', 'fused', 'articulated')
#: The 95 % quantile of chi-square with 3 degrees of freedom: a wrist whose squared
#: Mahalanobis distance under its covariance exceeds it lies outside its 95 % ellipsoid.
CHI2_3_95 = 7.815
#: 2D keypoint noise (1 sigma) as a fraction of the hand's box diagonal in pixels.
KEYPOINT_NOISE_REL = 0.01


def base_hands(pipeline, frames, width, height):
    """Return [(pose, shape, translation, side)] of the colour-only fits (focal 900 px)."""
    camera = make_camera(width, height, 900.0)
    records, _ = run_pass(pipeline, frames, camera)
    hands = []
    for record in (h for frame in records for h in frame):
        out = pipeline.hand_model.forward(record['pose'], record['shape'], side=record['side'])
        translation = record['vertices'][0] - out.vertices[0]
        hands.append((record['pose'], record['shape'], translation, record['side']))
    return hands


def tailor_estimate(pipeline, case_id, case, camera):
    """Return the tailor's colour-only HandEstimate of the perturbed network hand."""
    est = case.estimate
    model = pipeline.hand_model
    net = est.keypoints_m - est.keypoints_m[0]
    refined = pipeline.tailor.refine(
        Track(case_id), case.observed_px, net, est.pose_coefficients, est.shape_coefficients,
        est.keypoints_m[0] - model.forward(est.pose_coefficients, est.shape_coefficients,
                                           side=est.side).keypoints[0],
        camera, 0.0, est.side, temporal=False)
    return depth_scenes.hand_estimate(model, refined.pose_aa, refined.shape,
                                      refined.translation_m, camera, case.observed_px,
                                      est.side, case_id, refined.hand_length_m)


def evaluate_hand(pipeline, case_id, base, camera, rng, args, rays):
    """Return ({variant: (wrist mm, mean joint mm)}, articulated stage ms, fused?) of a hand."""
    pose, shape, translation, side = base
    size = pipeline.tailor.size
    mean_m, sd_m = population_hand_length_prior_m()
    true_length = float(np.clip(rng.normal(mean_m, sd_m), mean_m - 2.5 * sd_m,
                                mean_m + 2.5 * sd_m))
    true_shape = size.with_length(shape, true_length)
    t_true = translation * (true_length / size.length_m(shape))
    extent = np.ptp(camera.project(pipeline.hand_model.forward(
        pose, true_shape, side=side).keypoints + t_true), axis=0)
    case = depth_scenes.perturbed_case(
        pipeline.hand_model, size, camera, rng, pose, true_shape, t_true,
        finger_deg=args.finger_deg, global_deg=args.global_deg,
        length_factor=true_length / mean_m, noise_coeff_per_m=args.noise_coeff,
        keypoint_noise_px=args.keypoint_noise_rel * float(np.linalg.norm(extent)), side=side,
        rays=rays)
    estimate = tailor_estimate(pipeline, case_id, case, camera)
    errors = {'rgb': _errors_mm(estimate, case.true_joints_m)}
    stage_ms = {}
    for variant in ('fused', 'articulated'):
        config = DepthConfig(noise_coeff_per_m=args.noise_coeff,
                             articulated=variant == 'articulated')
        stage = HandDepthFusion(pipeline.hand_model)
        start = time.perf_counter()
        fused, fusion = stage.apply(estimate, case.depth_m, camera, camera, config,
                                    MetricLength(), size, pipeline.tailor.free_bones)
        stage_ms[variant] = (time.perf_counter() - start) * 1e3
        errors[variant] = _errors_mm(fused, case.true_joints_m)
    return errors, stage_ms['articulated'] - stage_ms['fused'], fusion.fused


def _errors_mm(estimate, true_joints_m):
    """Return (wrist error mm, mean joint error mm, wrist error's squared Mahalanobis)."""
    offset = np.asarray(estimate.joints_m) - true_joints_m
    err = 1e3 * np.linalg.norm(offset, axis=1)
    mahalanobis2 = offset[0] @ np.linalg.solve(estimate.position_covariance_m2, offset[0])
    return float(err[0]), float(err.mean()), float(mahalanobis2)


def summarise(rows):
    """Return the figures of per-hand rows [(errors, extra ms, fused)]."""
    out = {'hands': len(rows), 'hands_fused': int(sum(r[2] for r in rows))}
    for variant in VARIANTS:
        wrist = np.array([r[0][variant][0] for r in rows])
        joints = np.array([r[0][variant][1] for r in rows])
        mahalanobis2 = np.array([r[0][variant][2] for r in rows])
        out[variant] = {'wrist_median_mm': float(np.median(wrist)),
                        'wrist_within_95_fraction': float(np.mean(mahalanobis2 <= CHI2_3_95)),
                        'wrist_p95_mm': float(np.percentile(wrist, 95)),
                        'joint_mean_median_mm': float(np.median(joints)),
                        'joint_mean_mean_mm': float(np.mean(joints))}
    out['articulated_extra_ms_median'] = float(np.median([r[1] for r in rows]))
    return out


def evaluate(pipeline, args):
    """Run the evaluation; return the figures (dict)."""
    rng = np.random.default_rng(args.seed)
    video, image = load_frames(args.max_frames)
    sets = [(video[::args.stride], video[0][1].shape), ([(0, image)], image.shape)]
    bases = [(hands, shape) for frames, shape in sets
             for hands in [base_hands(pipeline, frames, shape[1], shape[0])]]
    pooled, per_distance, case_id = [], {}, 10 ** 6
    for distance in args.distances:
        rows = []
        for hands, shape in bases:
            if not hands:
                continue
            z_ref = float(np.median([h[2][2] for h in hands]))
            camera = make_camera(shape[1], shape[0], 900.0 * distance / z_ref)
            rays = depth_synthesis.pixel_rays(camera)
            for base in hands:
                case_id += 1
                rows.append(evaluate_hand(pipeline, case_id, base, camera, rng, args, rays))
        per_distance['%.1f' % distance] = summarise(rows)
        pooled.extend(rows)
    return {'finger_deg': args.finger_deg, 'global_deg': args.global_deg,
            'keypoint_noise_rel': args.keypoint_noise_rel,
            'noise_coeff_per_m': args.noise_coeff, 'all': summarise(pooled),
            'per_distance': per_distance}


def print_figures(figures):
    """Print one line per variant and distance."""
    print('finger %.0f deg, global %.0f deg, noise c = %.4f /m, 2D noise %.3f of the hand' % (
        figures['finger_deg'], figures['global_deg'], figures['noise_coeff_per_m'],
        figures['keypoint_noise_rel']))
    for name, block in [('all', figures['all'])] + sorted(figures['per_distance'].items()):
        print('%-5s hands %d, fused %d, articulated extra %.2f ms/hand (median)' % (
            name, block['hands'], block['hands_fused'], block['articulated_extra_ms_median']))
        for variant in VARIANTS:
            v = block[variant]
            print('  %-12s wrist median %5.1f mm  p95 %5.1f mm   mean joint error median '
                  '%5.1f mm  mean %5.1f mm   wrists inside their 95 %% ellipsoid %.2f' % (
                      variant, v['wrist_median_mm'], v['wrist_p95_mm'],
                      v['joint_mean_median_mm'], v['joint_mean_mean_mm'],
                      v['wrist_within_95_fraction']))


def main(argv=None):
    """Run the evaluation; print the figures (and one JSON line with --json)."""
    parser = figures_parser('hand-mesh eval depth-fit', __doc__)
    parser.add_argument('--quick', action='store_true', help='every 40th video frame, 0.8 m')
    parser.add_argument('--stride', type=int, default=10, help='use every n-th video frame')
    parser.add_argument('--max-frames', type=int, default=None,
                        help='at most this many video frames (default: all)')
    parser.add_argument('--distances', type=float, nargs='+', default=list(DISTANCES_M),
                        help='hand distances, metres')
    parser.add_argument('--finger-deg', type=float, default=8.0,
                        help='finger bones of the true hand turned by this (1 sigma), degrees')
    parser.add_argument('--global-deg', type=float, default=10.0,
                        help='the true hand turned by this (1 sigma), degrees')
    parser.add_argument('--noise-coeff', type=float, default=0.005,
                        help='depth noise c in sigma = c z^2 (per metre)')
    parser.add_argument('--keypoint-noise-rel', type=float, default=KEYPOINT_NOISE_REL,
                        help="2D keypoint noise (1 sigma), fraction of the hand's box diagonal")
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    args = parser.parse_args(argv)
    if args.quick:
        args.stride, args.distances = 40, [0.8]
    from hand_mesh_ros.core.config import PipelineConfig
    from hand_mesh_ros.core.pipeline import HandMeshPipeline
    pipeline = HandMeshPipeline(PipelineConfig().with_values({'model.backend': 'onnxruntime'}))
    start = time.perf_counter()
    try:
        figures = evaluate(pipeline, args)
    finally:
        pipeline.close()
    figures['wall_s'] = time.perf_counter() - start
    print_figures(figures)
    if args.json:
        print(json.dumps(figures))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
