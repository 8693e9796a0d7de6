"""Time the RGB-D stage per hand: distance and size fusion (A) vs with the articulated fit (B).

``python -m hand_mesh_ros.tools.bench.bench_depth_fit [--max-points 80 160 320] [--json]``

Scenes: 640x480 depth (focal 600 px), a hand at 0.5-0.9 m with its forearm and a
background, its estimate perturbed (8 deg fingers, 10 deg global rotation, population hand
lengths; :mod:`hand_mesh_ros.tools.evaluation.depth_scenes`). The stage
(:class:`~hand_mesh_ros.core.depth.depth_stage.HandDepthFusion`) runs A and B in
alternation, ``--passes`` times over every scene, so both see the same load on a shared
machine; printed are the median milliseconds per hand of A and B (wall clock, and the
process's CPU time, which a busy machine inflates less), their difference (the articulated
fit's cost: segmentation, fit, posing the hand anew) and, per point budget,
the mean joint error after B (the accuracy side of the trade-off). The last line is one JSON
object.
"""

import argparse
import json
import math
import time

import numpy as np

from hand_mesh_ros.core.camera.camera import CameraModel
from hand_mesh_ros.core.config import DepthConfig
from hand_mesh_ros.core.depth.articulated_stage import ArticulatedDepthStage
from hand_mesh_ros.core.depth.depth_stage import HandDepthFusion
from hand_mesh_ros.core.fitting.tailor import HandTailor
from hand_mesh_ros.core.hand.hand_model import load_hand_model
from hand_mesh_ros.core.hand.hand_size import population_hand_length_prior_m
from hand_mesh_ros.core.track import MetricLength
from hand_mesh_ros.tools.evaluation import depth_scenes, depth_synthesis


def make_scenes(model, tailor, count, seed=0):
    """Return (camera, [PerturbedCase]) of ``count`` 640x480 scenes."""
    k = [600.0, 0.0, 323.1, 0.0, 600.0, 237.6, 0.0, 0.0, 1.0]
    camera = CameraModel.from_camera_info_fields(640, 480, 'plumb_bob', [0.0] * 5, k,
                                                 np.eye(3).ravel(), np.zeros(12))
    rays = depth_synthesis.pixel_rays(camera)
    rng = np.random.default_rng(seed)
    mean_m, sd_m = population_hand_length_prior_m()
    cases = []
    for _ in range(count):
        pose = rng.uniform(0.3 * model.joint_limits_min_rad, 0.3 * model.joint_limits_max_rad)
        pose[0] = np.array([math.pi, 0.0, 0.0]) + rng.normal(scale=0.3, size=3)
        pose[np.setdiff1d(np.arange(model.n_bones), tailor.free_bones)] = 0.0
        length = float(np.clip(rng.normal(mean_m, sd_m), mean_m - 2 * sd_m, mean_m + 2 * sd_m))
        shape = tailor.size.with_length(model.zero_shape(), length)
        t = np.array([rng.uniform(-0.05, 0.05), rng.uniform(-0.05, 0.05),
                      rng.uniform(0.5, 0.9)])
        cases.append(depth_scenes.perturbed_case(
            model, tailor.size, camera, rng, pose, shape, t, finger_deg=8.0, global_deg=10.0,
            length_factor=length / mean_m, rays=rays))
    return camera, cases


def time_pass(model, tailor, camera, cases, articulated, max_points):
    """Return (per-hand wall ms (N,), CPU ms (N,), mean joint errors mm (N,)) of one pass."""
    stage = HandDepthFusion(model)
    stage.articulated = ArticulatedDepthStage(model, max_points=max_points)
    config = DepthConfig(articulated=articulated)
    times, cpu, errors = [], [], []
    for case in cases:
        est = case.estimate
        start, start_cpu = time.perf_counter(), time.process_time()
        fused, _ = stage.apply(est, case.depth_m, camera, camera, config, MetricLength(),
                               tailor.size, tailor.free_bones)
        times.append((time.perf_counter() - start) * 1e3)
        cpu.append((time.process_time() - start_cpu) * 1e3)
        errors.append(1e3 * np.mean(np.linalg.norm(fused.joints_m - case.true_joints_m,
                                                   axis=1)))
    return np.array(times), np.array(cpu), np.array(errors)


def main(argv=None):
    """Run the A/B timing; print the figures (last line JSON with --json)."""
    parser = argparse.ArgumentParser(prog='bench_depth_fit', description=__doc__.split('\n')[0])
    parser.add_argument('--scenes', type=int, default=12)
    parser.add_argument('--passes', type=int, default=5)
    parser.add_argument('--max-points', type=int, nargs='+', default=[160])
    parser.add_argument('--json', action='store_true')
    args = parser.parse_args(argv)
    model = load_hand_model()
    tailor = HandTailor(model)
    camera, cases = make_scenes(model, tailor, args.scenes)
    figures = {'scenes': args.scenes, 'passes': args.passes, 'budgets': {}}
    for max_points in args.max_points:
        runs = {False: [], True: []}
        cpu_runs = {False: [], True: []}
        errors = {}
        time_pass(model, tailor, camera, cases[:2], True, max_points)  # warm caches
        for _ in range(args.passes):
            for articulated in (False, True):
                ms, cpu_ms, err = time_pass(model, tailor, camera, cases, articulated,
                                            max_points)
                runs[articulated].append(np.median(ms))
                cpu_runs[articulated].append(np.median(cpu_ms))
                errors[articulated] = err
        a, b = float(np.median(runs[False])), float(np.median(runs[True]))
        a_cpu, b_cpu = float(np.median(cpu_runs[False])), float(np.median(cpu_runs[True]))
        figures['budgets'][max_points] = {
            'fusion_ms': a, 'fusion_and_fit_ms': b, 'fit_ms': b - a,
            'fusion_cpu_ms': a_cpu, 'fit_cpu_ms': b_cpu - a_cpu,
            'joint_error_fused_mm': float(np.median(errors[False])),
            'joint_error_fitted_mm': float(np.median(errors[True]))}
        budget = figures['budgets'][max_points]
        print('max_points %4d: A fusion %.2f ms, B fusion + fit %.2f ms, fit %.2f ms/hand '
              '(CPU time: fusion %.2f, fit %.2f ms); mean joint error (median over hands) '
              '%.1f -> %.1f mm' % (max_points, a, b, b - a, a_cpu, b_cpu - a_cpu,
                                   budget['joint_error_fused_mm'],
                                   budget['joint_error_fitted_mm']))
    if args.json:
        print(json.dumps(figures))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
