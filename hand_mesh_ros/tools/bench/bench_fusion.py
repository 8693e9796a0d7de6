"""Fusion of several cameras' hands on synthetic scenes: accuracy, time offset, cost.

``python -m hand_mesh_ros.tools.bench.bench_fusion [--json]``

Prints, for two cameras 90 degrees apart seeing hands about 1 m away with a monocular depth
error along each camera's ray (tools/bench/fusion_scenes.py):

- the median wrist error of each camera alone and of the fused hand (300 random hands);
- the mean fused error added by a 20 ms offset between the cameras at 1 m/s, with the
  motion compensation and without it;
- the cost of :meth:`HandFuser.fuse` per call and per hand (association, motion, fusion;
  no ROS), for 1, 2 and 4 hands seen by 2 cameras.

The last line is one JSON object.
"""

import argparse
import json
import time

import numpy as np

from hand_mesh_ros.core.fusion.tracker import HandFuser
from hand_mesh_ros.tools.bench.fusion_scenes import (
    circle, run_sequence, two_cameras, world_observations)

#: One hand moving back and forth along a line at 1 m/s, turning every 0.6 s.
SPEED_MPS = np.array([0.6, 0.8, 0.0])


def wrist_errors(trials=300, seed=1):
    """Return {camera or 'fused': [wrist errors, m]} and the fused hands' joint offsets.

    Each trial puts one hand at a random place; each camera misjudges the size of its own
    covariance by up to +-30 %.
    """
    rng = np.random.default_rng(seed)
    cameras = two_cameras(angle_deg=90.0)
    errors = {'cam_a': [], 'cam_b': [], 'fused': []}
    fused_hands = []
    for _ in range(trials):
        truth = np.array([0.0, 0.0, 1.0]) + rng.uniform(-0.15, 0.15, 3)
        scales = {name: rng.uniform(0.7, 1.3) for name in cameras}
        observations = world_observations(cameras, [('right', truth, np.eye(3))],
                                          dict.fromkeys(cameras, 0), rng, scales=scales)
        for obs in observations:
            errors[obs.camera].append(float(np.linalg.norm(obs.wrist_m - truth)))
        hands = HandFuser().fuse(observations, 0)
        fused_hands.append(hands)
        errors['fused'].extend(float(np.linalg.norm(h.wrist_m - truth)) for h in hands)
    return errors, fused_hands


def line_truth(t_s):
    """Return the wrist of the 1 m/s back-and-forth motion at ``t_s``."""
    phase = t_s % 1.2
    return np.array([0.0, -0.2, 1.0]) + SPEED_MPS * (min(phase, 1.2 - phase) - 0.3)


def offset_error_m(offset_ns, velocity_window_s, frames=240, seed=4):
    """Return the mean fused wrist error on the straight stretches with cam_b offset."""
    rng = np.random.default_rng(seed)
    outputs = run_sequence(HandFuser(velocity_window_s=velocity_window_s), two_cameras(),
                           lambda t_s: [('right', line_truth(t_s), np.eye(3))], frames, rng,
                           offsets_ns={'cam_b': offset_ns})
    # Away from the turns (a velocity window after a turn still sees the old motion).
    errors = [np.linalg.norm(hand.wrist_m - line_truth(stamp * 1e-9))
              for stamp, hands in outputs if 0.28 < (stamp * 1e-9) % 0.6 < 0.58
              for hand in hands]
    return float(np.mean(errors))


def fusion_cost_ms(n_hands, frames=300, seed=7):
    """Return (median, p95) milliseconds per fuse() call for ``n_hands`` and 2 cameras."""
    rng = np.random.default_rng(seed)
    cameras = two_cameras()
    centres = [np.array([0.0, -0.2 + 0.15 * k, 1.0]) for k in range(n_hands)]
    sides = ['right', 'left'] * n_hands
    fuser = HandFuser()
    times = []
    for frame in range(frames):
        stamp = frame * 33_333_333
        hands = [(sides[k], circle(stamp * 1e-9, centres[k], radius_m=0.03), np.eye(3))
                 for k in range(n_hands)]
        observations = world_observations(cameras, hands, dict.fromkeys(cameras, stamp), rng)
        start = time.perf_counter()
        fused = fuser.fuse(observations, stamp)
        times.append((time.perf_counter() - start) * 1e3)
        assert len(fused) == n_hands
    times = np.array(times[10:])
    return float(np.median(times)), float(np.percentile(times, 95))


def main(argv=None):
    """Print the figures; the last line is one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--json', action='store_true', help='(the JSON line is always last)')
    parser.parse_args(argv)
    errors, _ = wrist_errors()
    median_mm = {k: 1e3 * float(np.median(v)) for k, v in errors.items()}
    better = min(median_mm['cam_a'], median_mm['cam_b'])
    print('median wrist error: cam_a %.1f mm, cam_b %.1f mm, fused %.1f mm (%.2fx the better)'
          % (median_mm['cam_a'], median_mm['cam_b'], median_mm['fused'],
             median_mm['fused'] / better))
    offsets = {}
    for window_s, label in ((0.15, 'compensated'), (0.0, 'uncompensated')):
        added = offset_error_m(20_000_000, window_s) - offset_error_m(0, window_s)
        offsets[label] = 1e3 * added
        print('20 ms offset at 1 m/s adds %.2f mm (%s)' % (1e3 * added, label))
    cost = {}
    for n_hands in (1, 2, 4):
        median, p95 = fusion_cost_ms(n_hands)
        cost[n_hands] = {'median_ms': median, 'p95_ms': p95,
                         'per_hand_ms': median / n_hands}
        print('fuse(): %d hand(s) x 2 cameras: median %.3f ms, p95 %.3f ms, %.3f ms per hand'
              % (n_hands, median, p95, median / n_hands))
    print(json.dumps({'median_wrist_error_mm': median_mm,
                      'offset_20ms_added_mm': offsets, 'fuse_cost': cost}))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
