"""Evaluate root recovery on synthetic data: full intrinsics versus common approximations.

Real hand skeletons (MediaPipe world landmarks of the sample ASL video, made root-relative)
are rotated randomly, placed at a given distance in front of a realistic camera (640x480,
fx = fy = 615 px, off-centre principal point, mild plumb_bob distortion) and projected with
distortion; Gaussian noise is added to the keypoints. The root is then recovered from the same
keypoints and the exact root-relative 3D joints with:

- ``full_intrinsics``: the true camera model (K, D) -- this project's method;
- ``k_no_distortion``: the true K but distortion ignored;
- ``assumed_fov``: the no-camera_info mode (60 degree horizontal FOV, centred);
- ``fixed_focal``: HaMeR/WiLoR-style: focal 5000 px for a 256 px crop scaled to the image
  (5000 / 256 * max(width, height)), principal point at the image centre, no distortion.

Run ``python -m hand_mesh_ros.tools.evaluation.eval_root [--json]``.
"""

import json
import math

import numpy as np
from scipy.spatial.transform import Rotation

from hand_mesh_ros.core.camera.camera import CameraModel
from hand_mesh_ros.core.errors import HandMeshError
from hand_mesh_ros.core.fitting.root_recovery import recover_root
from hand_mesh_ros.paths import data_dir
from hand_mesh_ros.tools.evaluation.figures_cli import figures_parser, print_figures

NOISE_PX = (0.5, 1.0, 2.0, 4.0)
DISTANCES_M = (0.3, 0.6, 1.0, 1.5)
METHODS = ('full_intrinsics', 'k_no_distortion', 'assumed_fov', 'fixed_focal')
WIDTH, HEIGHT = 640, 480
K_TRUE = (615.0, 0.0, 331.0, 0.0, 615.0, 246.0, 0.0, 0.0, 1.0)
D_TRUE = (0.09, -0.2, 0.0008, -0.0005, 0.1)
MAX_TILT_DEG = 30.0


def load_hand_skeletons():
    """Return (F, 21, 3) root-relative hand joints in metres from the sample world landmarks."""
    with open(data_dir() / 'asl_hand_3d.full.json', encoding='utf-8') as stream:
        joints_m = np.asarray(json.load(stream), dtype=float)
    return joints_m - joints_m[:, :1, :]


def build_cameras():
    """Return the true camera model and the approximations, keyed by method name."""
    eye, zeros = np.eye(3).ravel(), np.zeros(12)
    true_cam = CameraModel.from_camera_info_fields(
        WIDTH, HEIGHT, 'plumb_bob', D_TRUE, K_TRUE, eye, zeros)
    no_dist = CameraModel.from_camera_info_fields(WIDTH, HEIGHT, '', [], K_TRUE, eye, zeros)
    focal_px = 5000.0 / 256.0 * max(WIDTH, HEIGHT)
    fixed = CameraModel.from_camera_info_fields(
        WIDTH, HEIGHT, '', [],
        (focal_px, 0.0, WIDTH / 2.0, 0.0, focal_px, HEIGHT / 2.0, 0.0, 0.0, 1.0), eye, zeros)
    return {'full_intrinsics': true_cam, 'k_no_distortion': no_dist,
            'assumed_fov': CameraModel.assumed_fov(WIDTH, HEIGHT), 'fixed_focal': fixed}


def _place_hand(rng, camera, joints_rel_m, distance_m, margin_px=8.0, tries=100):
    """Return (root (3,), joints (21, 3)) at depth ``distance_m`` with all joints in view."""
    for _ in range(tries):
        tilt = Rotation.from_rotvec(rng.normal(size=3) * math.radians(MAX_TILT_DEG) / 2.0)
        joints = tilt.apply(joints_rel_m)
        pixel = rng.uniform([0.15 * WIDTH, 0.15 * HEIGHT], [0.85 * WIDTH, 0.85 * HEIGHT])
        ray = camera.undistort_pixels(pixel[None, :])[0]
        root_m = np.array([ray[0], ray[1], 1.0]) * distance_m
        px = camera.project(root_m + joints)
        inside = (np.all(px >= margin_px) and np.all(px[:, 0] <= WIDTH - margin_px)
                  and np.all(px[:, 1] <= HEIGHT - margin_px))
        if inside and np.min(root_m[2] + joints[:, 2]) > 0.1:
            return root_m, joints
    raise RuntimeError(f'could not place a hand in view at {distance_m} m')


def root_error_table(seed=0, n_trials=200):
    """Measure root error (mm) per noise level, distance and method.

    Returns
    -------
    dict with 'camera', 'noise_px', 'distance_m', 'methods', 'n_trials' and 'cells': one
    entry per (noise, distance) with, per method, 'median_mm', 'p90_mm' and 'failures'.

    """
    rng = np.random.default_rng(seed)
    skeletons = load_hand_skeletons()
    cameras = build_cameras()
    true_cam = cameras['full_intrinsics']
    cells = []
    for noise_px in NOISE_PX:
        for distance_m in DISTANCES_M:
            errors_mm = {name: [] for name in METHODS}  # noqa: C420 - one list each
            failures = dict.fromkeys(METHODS, 0)
            for _ in range(n_trials):
                joints_rel = skeletons[rng.integers(len(skeletons))]
                root_m, joints = _place_hand(rng, true_cam, joints_rel, distance_m)
                keypoints = true_cam.project(root_m + joints)
                keypoints = keypoints + rng.normal(scale=noise_px, size=keypoints.shape)
                for name in METHODS:
                    try:
                        # No depth cap: the fixed-focal baseline puts hands ~20x too far.
                        result = recover_root(keypoints, joints, cameras[name],
                                              max_depth_m=1000.0)
                    except HandMeshError:
                        failures[name] += 1
                        continue
                    errors_mm[name].append(
                        1000.0 * np.linalg.norm(result.translation_m - root_m))
            cell = {'noise_px': noise_px, 'distance_m': distance_m}
            for name in METHODS:
                errs = np.asarray(errors_mm[name])
                cell[name] = {
                    'median_mm': float(np.median(errs)) if errs.size else None,
                    'p90_mm': float(np.percentile(errs, 90)) if errs.size else None,
                    'failures': failures[name]}
            cells.append(cell)
    return {
        'camera': {'width': WIDTH, 'height': HEIGHT, 'k': list(K_TRUE),
                   'distortion_model': 'plumb_bob', 'd': list(D_TRUE)},
        'noise_px': list(NOISE_PX), 'distance_m': list(DISTANCES_M),
        'methods': list(METHODS), 'n_trials': int(n_trials), 'seed': int(seed),
        'cells': cells}


def format_table(table):
    """Return the table as text: one row per (noise, distance), median / p90 per method."""
    header = f"{'noise px':>8} {'dist m':>6} | " + ' | '.join(
        f'{name:>21}' for name in table['methods'])
    sub = f"{'':>8} {'':>6} | " + ' | '.join(
        f"{'median':>10} {'p90':>10}" for _ in table['methods'])
    lines = ['root error (mm), ' + f"{table['n_trials']} trials per cell", header, sub]
    for cell in table['cells']:
        parts = []
        for name in table['methods']:
            stats = cell[name]
            if stats['median_mm'] is None:
                parts.append(f"{'failed':>21}")
            else:
                parts.append(f"{stats['median_mm']:>10.1f} {stats['p90_mm']:>10.1f}")
        lines.append(f"{cell['noise_px']:>8.1f} {cell['distance_m']:>6.1f} | "
                     + ' | '.join(parts))
    return '\n'.join(lines)


def main(argv=None):
    """Print the root-error table; with ``--json`` also one JSON object as the last line."""
    parser = figures_parser('hand-mesh eval root', __doc__)
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    parser.add_argument('--trials', type=int, default=200, help='trials per table cell')
    args = parser.parse_args(argv)
    print_figures(root_error_table(seed=args.seed, n_trials=args.trials), args.json,
                  format_table)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
