"""``hand-mesh eval jitter``: temporal coherence, lag and speed of the tailor.

Static test (MobRecon's static-hand protocol, the default): one hand of ``data/hands.jpg``
(the golden MediaPipe 2D keypoints of its first hand, a left hand) held still for 100 frames
at 30 fps. A 3D hand is fitted once to those keypoints; each frame then gets sensor-like noise:
Gaussian 1 px on every keypoint, a random crop shift of up to +-2 px (uniform, the same for
all keypoints of a frame), 4 mm Gaussian noise on the network's root-relative 3D joints and
0.05 rad on its pose. The initial translation comes from root recovery, as in the pipeline.
The camera is an assumed one for the 720x382 image (the data has no intrinsics): fx = fy =
600 px, principal point (352, 198) px, plumb_bob D = (-0.05, 0.01, 0, 0, 0).

Reported (mm, mm/frame^2): std and mean acceleration of the 21 camera-frame joints and of the
root, for the tailor with and without its temporal terms and for the network input (root
recovery + network joints). ``accel_reduction`` = 1 - acc(with) / acc(without temporal terms);
``root_std_mm`` is with temporal terms.

``--moving``: a synthetic hand moving sinusoidally (translation, rotation, finger flexion);
reports the lag of the refined output behind the truth (frames, by shifting the truth) and
the mean 2D reprojection error of the network's mesh versus the refined one.
``--bench``: median wall and CPU (process) time of one ``refine`` call (at most 5
iterations, warm start from the track) on the static sequence.
"""

import argparse
import json
import time

import numpy as np

from hand_mesh_ros.core.camera.camera import CameraModel
from hand_mesh_ros.core.config import TailorConfig
from hand_mesh_ros.core.fitting.root_recovery import recover_root
from hand_mesh_ros.core.fitting.tailor import HandTailor
from hand_mesh_ros.core.hand.hand_model import load_hand_model
from hand_mesh_ros.core.track import Track
from hand_mesh_ros.paths import data_dir
from hand_mesh_ros.tools.evaluation import mesh_metrics

FPS = 30.0


def acceleration_mm(joints_seq_m):
    """Return the per-frame acceleration (T - 2,) in mm/frame^2 of a (T, N, 3) metre sequence.

    See :func:`hand_mesh_ros.tools.evaluation.mesh_metrics.joint_acceleration`.
    """
    return 1e3 * mesh_metrics.joint_acceleration(joints_seq_m)


def mobrecon_acc_mm(joints_seq_m):
    """Return MobRecon's Acc in mm/frame^2 (:func:`mesh_metrics.mean_acceleration`)."""
    return 1e3 * mesh_metrics.mean_acceleration(joints_seq_m)


def std_mm(joints_seq_m):
    """Return the mean over joints of each joint's positional std over time (3D norm), mm."""
    seq = np.asarray(joints_seq_m, dtype=np.float64)
    if seq.ndim == 2:
        seq = seq[:, None, :]
    return float(1e3 * np.mean(np.sqrt(np.sum(np.var(seq, axis=0), axis=-1))))


def assumed_camera():
    """Return the documented camera assumed for hands.jpg (720x382)."""
    k = [600.0, 0.0, 352.0, 0.0, 600.0, 198.0, 0.0, 0.0, 1.0]
    return CameraModel.from_camera_info_fields(720, 382, 'plumb_bob', [-0.05, 0.01, 0, 0, 0],
                                               k, np.eye(3).ravel(), np.zeros(12))


def _golden_keypoints():
    """Return the golden 2D keypoints (21, 2) of the first hand of hands.jpg."""
    with open(data_dir() / 'hands_expected_keypoints.json') as f:
        return np.asarray(json.load(f)['hands'][0], dtype=np.float64)


def fit_static_hand(model, camera, keypoints_px, side='left'):
    """Fit a plausible 3D hand to 2D keypoints once; return (pose, shape, translation, err)."""
    tailor = HandTailor(model, TailorConfig(iterations=60, temporal=False, w_joints3d=0.0,
                                            w_pose_prior=0.1))
    best = None
    # Fingers up in the image: palm towards or away from the camera.
    for root_aa in ([np.pi, 0.0, 0.0], [0.0, 0.0, np.pi]):
        pose = model.zero_pose()
        pose[0] = root_aa
        shape = model.zero_shape()
        rest = model.forward(pose, shape, side=side).keypoints
        root = recover_root(keypoints_px, rest, camera)
        result = tailor.refine(Track(0), keypoints_px, rest, pose, shape, root.translation_m,
                               camera, 0.0, side)
        if best is None or result.reprojection_error_after_px < best.reprojection_error_after_px:
            best = result
    return best.pose_aa, best.shape, best.translation_m, best.reprojection_error_after_px


def _run_tailor(tailor, frames, camera, side, temporal):
    """Refine every frame; return joints (T, 21, 3), roots (T, 3), errors before/after (T,)."""
    joints, roots, before, after = [], [], [], []
    track = Track(1)
    for i, frame in enumerate(frames):
        result = tailor.refine(track, frame['keypoints_px'], frame['joints_rel_m'],
                               frame['pose'], frame['shape'], frame['translation_m'], camera,
                               i / FPS, side, temporal=temporal)
        joints.append(result.joints_m)
        roots.append(result.translation_m)
        before.append(result.reprojection_error_before_px)
        after.append(result.reprojection_error_after_px)
    return np.array(joints), np.array(roots), np.array(before), np.array(after)


def _network_frame(rng, camera, keypoints_px, truth_rel, pose, shape, noise_3d_m=0.004,
                   noise_pose_rad=0.05):
    """Return one frame of simulated network output around the truth."""
    joints_rel = truth_rel + rng.normal(scale=noise_3d_m, size=truth_rel.shape)
    joints_rel -= joints_rel[0]
    root = recover_root(keypoints_px, joints_rel, camera)
    return {'keypoints_px': keypoints_px, 'joints_rel_m': joints_rel,
            'pose': pose + rng.normal(scale=noise_pose_rad, size=pose.shape),
            'shape': shape + rng.normal(scale=0.1, size=shape.shape),
            'translation_m': root.translation_m}


def _summary(joints, roots):
    """Return std/acceleration figures of a joint and root sequence."""
    return {'joints_std_mm': std_mm(joints), 'joints_accel_mm': mobrecon_acc_mm(joints),
            'root_std_mm': std_mm(roots), 'root_accel_mm': mobrecon_acc_mm(roots)}


def run_static(n_frames=100, seed=0, config=None, model=None):
    """Run the static-hand test; return a dict of figures (see the module docstring)."""
    model = load_hand_model() if model is None else model
    config = TailorConfig() if config is None else config
    camera = assumed_camera()
    golden = _golden_keypoints()
    side = 'left'
    pose, shape, translation, fit_err = fit_static_hand(model, camera, golden, side)
    truth = model.forward(pose, shape, side=side).keypoints
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n_frames):
        shift = rng.uniform(-2.0, 2.0, size=2)
        observed = golden + rng.normal(scale=1.0, size=golden.shape) + shift
        frames.append(_network_frame(rng, camera, observed, truth, pose, shape))
    net_joints = np.array([f['joints_rel_m'] + f['translation_m'] for f in frames])
    net_roots = np.array([f['translation_m'] for f in frames])
    out = {'frames': n_frames, 'truth_fit_error_px': float(fit_err),
           'camera': 'fx=fy=600 cx=352 cy=198 plumb_bob(-0.05, 0.01) 720x382 (assumed)',
           'network': _summary(net_joints, net_roots)}
    for name, temporal in (('without_temporal', False), ('with_temporal', True)):
        joints, roots, before, after = _run_tailor(HandTailor(model, config), frames, camera,
                                                   side, temporal)
        out[name] = dict(_summary(joints, roots), reprojection_before_px=float(np.mean(before)),
                         reprojection_after_px=float(np.mean(after)))
    out['accel_reduction'] = 1.0 - (out['with_temporal']['joints_accel_mm']
                                    / out['without_temporal']['joints_accel_mm'])
    out['root_accel_reduction'] = 1.0 - (out['with_temporal']['root_accel_mm']
                                         / out['without_temporal']['root_accel_mm'])
    out['root_std_mm'] = out['with_temporal']['root_std_mm']
    return out


def moving_truth(model, n_frames=150):
    """Return a sinusoidally moving right hand: poses (T, J, 3), shape, translations (T, 3)."""
    frames = np.arange(n_frames)
    phase = 2.0 * np.pi * frames / 60.0
    translations = np.stack([0.05 * np.sin(phase), 0.03 * np.sin(0.7 * phase + 1.0),
                             0.55 + 0.1 * np.sin(0.5 * phase)], axis=1)
    poses = np.zeros((n_frames, model.n_bones, 3))
    poses[:, 0] = np.stack([np.pi + 0.3 * np.sin(0.8 * phase), 0.3 * np.sin(phase + 0.5),
                            0.2 * np.sin(0.6 * phase)], axis=1)
    flex = 0.6 + 0.5 * np.sin(1.3 * phase)
    for name_index, name in enumerate(model.bone_names):
        if name.endswith(('_proximal', '_middle', '_distal')) and not name.startswith('thumb'):
            poses[:, name_index, 0] = flex * (0.8 if name.endswith('_distal') else 1.0)
    poses = model.clamp_pose(poses)
    return poses, model.zero_shape(), translations


def _lag_frames(output, truth, max_shift=4.0):
    """Return the shift d (frames, 0.05 steps) minimising |output(t) - truth(t - d)|^2."""
    frames = np.arange(len(truth))
    flat = truth.reshape(len(truth), -1)
    best, best_err = 0.0, np.inf
    margin = int(np.ceil(max_shift)) + 1
    for shift in np.arange(-max_shift, max_shift + 1e-9, 0.05):
        shifted = np.stack([np.interp(frames - shift, frames, col) for col in flat.T], axis=1)
        err = np.mean((output.reshape(len(output), -1) - shifted)[margin:-margin] ** 2)
        if err < best_err:
            best, best_err = round(float(shift), 2), err
    return best


def run_moving(n_frames=150, seed=0, config=None, model=None):
    """Run the moving-hand test; return lag (frames) and reprojection figures.

    The size prior is set to the true hand size (unless ``config`` is given), so that the
    errors measure tracking rather than the monocular scale ambiguity.
    """
    model = load_hand_model() if model is None else model
    if config is None:
        size = HandTailor(model).size.length_m(model.zero_shape())
        config = TailorConfig(hand_length_m=size)
    camera = CameraModel.from_camera_info_fields(
        640, 480, 'plumb_bob', [-0.1, 0.02, 0.001, -0.001, 0.0],
        [610.0, 0.0, 330.0, 0.0, 605.0, 250.0, 0.0, 0.0, 1.0], np.eye(3).ravel(), np.zeros(12))
    poses, shape, translations = moving_truth(model, n_frames)
    rng = np.random.default_rng(seed)
    frames, truth_joints = [], []
    for pose, translation in zip(poses, translations):
        rel = model.forward(pose, shape).keypoints
        truth_joints.append(rel + translation)
        observed = camera.project(rel + translation) + rng.normal(scale=1.0, size=(21, 2))
        frames.append(_network_frame(rng, camera, observed, rel, pose, shape,
                                     noise_pose_rad=0.1))
    truth_joints = np.array(truth_joints)
    out = {'frames': n_frames}
    for name, temporal in (('without_temporal', False), ('with_temporal', True)):
        joints, roots, before, after = _run_tailor(HandTailor(model, config), frames, camera,
                                                   'right', temporal)
        out[name] = {'root_lag_frames': _lag_frames(roots, translations),
                     'joints_lag_frames': _lag_frames(joints, truth_joints),
                     'joints_error_mm': float(1e3 * np.mean(np.linalg.norm(
                         joints - truth_joints, axis=-1))),
                     'reprojection_before_px': float(np.mean(before)),
                     'reprojection_after_px': float(np.mean(after))}
    return out


def run_bench(n_frames=300, seed=0, config=None, model=None):
    """Time ``refine`` on the static sequence with temporal terms; return ms figures."""
    model = load_hand_model() if model is None else model
    config = TailorConfig() if config is None else config
    camera = assumed_camera()
    golden = _golden_keypoints()
    pose, shape, _, _ = fit_static_hand(model, camera, golden, 'left')
    truth = model.forward(pose, shape, side='left').keypoints
    rng = np.random.default_rng(seed)
    tailor = HandTailor(model, config)
    times, cpu_times, iterations = [], [], []
    track = Track(1)
    for i in range(n_frames):
        observed = golden + rng.normal(scale=1.0, size=golden.shape)
        frame = _network_frame(rng, camera, observed, truth, pose, shape)
        start, cpu_start = time.perf_counter(), time.process_time()
        result = tailor.refine(track, frame['keypoints_px'], frame['joints_rel_m'],
                               frame['pose'], frame['shape'], frame['translation_m'], camera,
                               i / FPS, 'left')
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
        iterations.append(result.iterations)
    times_ms = 1e3 * np.array(times[10:])
    return {'refine_median_ms': float(np.median(times_ms)),
            'refine_p90_ms': float(np.percentile(times_ms, 90)),
            'refine_cpu_median_ms': float(np.median(1e3 * np.array(cpu_times[10:]))),
            'iterations_median': float(np.median(iterations)),
            'max_iterations': int(config.iterations), 'frames': n_frames}


def main(argv=None):
    """Run the static test (default), ``--moving`` or ``--bench``; print figures."""
    parser = argparse.ArgumentParser(prog='hand-mesh eval jitter', description=__doc__.split(
        '\n\n')[0])
    parser.add_argument('--json', action='store_true', help='print one JSON object last')
    parser.add_argument('--frames', type=int, default=None, help='sequence length')
    parser.add_argument('--seed', type=int, default=0, help='random seed of the noise')
    parser.add_argument('--moving', action='store_true', help='moving-hand lag test')
    parser.add_argument('--bench', action='store_true', help='time refine() calls')
    parser.add_argument('--all-iterations', action='store_true',
                        help='with --bench: no early stop, always config.iterations steps')
    args = parser.parse_args(argv)
    if args.moving:
        out = run_moving(n_frames=args.frames or 150, seed=args.seed)
    elif args.bench:
        config = TailorConfig(min_relative_gain=0.0) if args.all_iterations else None
        out = run_bench(n_frames=args.frames or 300, seed=args.seed, config=config)
    else:
        out = run_static(n_frames=args.frames or 100, seed=args.seed)
    if args.json:
        print(json.dumps(out))
    else:
        print(json.dumps(out, indent=2))
    return 0
