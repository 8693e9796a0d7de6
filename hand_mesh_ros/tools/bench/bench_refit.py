"""Time the refit of a hand from its 2D keypoints alone (what a hand costs that needs it).

``python -m hand_mesh_ros.tools.bench.bench_refit [--hands N] [--passes P]``

The tracker runs once on every ``--every``-th frame of the sample video (up to ``--hands``
hands) and on ``hands.jpg`` padded by 240 px left and 120 px top (its camera shifted to
match; the padding makes the network's 3D of one hand fail the gates); then
:func:`~hand_mesh_ros.core.fitting.refit_2d.refit_from_2d` refits every collected hand,
``--passes`` times. Printed: the median milliseconds per hand of every pass, the median of
those, the median mean 2D error of the refits (px), and as a yardstick on the same machine
and hands the median milliseconds of root recovery and the tailor's refinement of a new
track. The refit runs only for hands whose network 3D fails a gate; every other hand costs
nothing of it. The last line is one JSON object.
"""

import argparse
import json
import time

import cv2
import numpy as np

from hand_mesh_ros.paths import data_dir

#: Padding of hands.jpg (left, top), px.
PAD_PX = (240, 120)


def collect_hands(pipeline, every=25, max_hands=12):
    """Return [(TrackedHand, camera or None, image size)] to refit."""
    from hand_mesh_ros.tools.evaluation import eval_resolution
    from hand_mesh_ros.tools.video_frames import iter_frames
    hands = []
    for index, stamp_ns, rgb in iter_frames(data_dir() / 'asl_hand.25fps.mp4'):
        if index % every == 0 and len(hands) < max_hands:
            pipeline.reset()
            size = rgb.shape[1::-1]
            hands += [(hand, None, size) for hand in pipeline.tracker.process(rgb, 0.0)]
    rgb = cv2.cvtColor(cv2.imread(str(data_dir() / 'hands.jpg')), cv2.COLOR_BGR2RGB)
    height, width = rgb.shape[:2]
    left, top = PAD_PX
    padded = cv2.copyMakeBorder(rgb, top, 0, left, 0, cv2.BORDER_CONSTANT)
    pmap = eval_resolution.PixelMap(1.0, (-left, -top), (width + left, height + top))
    camera = pmap.camera(eval_resolution.scene_camera('hands', width, height))
    pipeline.reset()
    hands += [(hand, camera, pmap.size) for hand in pipeline.tracker.process(padded, 0.0)]
    return hands


def time_refits(pipeline, hands, passes):
    """Return (median ms per hand of every pass, median 2D error px of the refits)."""
    from hand_mesh_ros.core.fitting.refit_2d import PosePrior, refit_from_2d
    from hand_mesh_ros.core.network_outputs import decode_network_hand
    tailor = pipeline.tailor
    prior = PosePrior.from_joint_limits(pipeline.hand_model, tailor.free_bones)
    length_m, length_sd_m = tailor.hand_length_m(None)
    pass_ms, errors = [], []
    for _ in range(passes):
        times = []
        for hand, camera, size in hands:
            pose = decode_network_hand(hand).pose_aa
            start = time.perf_counter()
            refit = refit_from_2d(tailor, hand.side, hand.keypoints_px, camera,
                                  network_pose_aa=pose, hand_length_m=length_m,
                                  hand_length_sd_m=length_sd_m, prior=prior, image_size=size)
            times.append((time.perf_counter() - start) * 1e3)
            if refit is not None:
                errors.append(refit.error_px)
        pass_ms.append(float(np.median(times)))
    return pass_ms, float(np.median(errors)) if errors else float('nan')


def time_tailor(pipeline, hands, passes):
    """Return the median ms of the tailor refining each hand as a new track (per frame)."""
    from hand_mesh_ros.core.fitting.root_recovery import recover_root
    from hand_mesh_ros.core.network_outputs import decode_network_hand
    from hand_mesh_ros.core.track import Track
    times = []
    for _ in range(passes):
        for hand, camera, size in hands:
            network = decode_network_hand(hand)
            start = time.perf_counter()
            try:
                root = recover_root(network.keypoints_px, network.joints_rel_m, camera,
                                    image_size=size)
                pipeline.tailor.refine(Track(network.track_id), network.keypoints_px,
                                       network.joints_rel_m, network.pose_aa, network.shape,
                                       root.translation_m, camera, 0.0, network.side,
                                       image_size=size, temporal=False)
            except Exception:  # noqa: B902 - a failing hand still took its time
                pass
            times.append((time.perf_counter() - start) * 1e3)
    return float(np.median(times))


def main(argv=None):
    """Print the refit's cost per hand (JSON last)."""
    parser = argparse.ArgumentParser(prog='bench_refit', description=__doc__.split('\n\n')[0])
    parser.add_argument('--hands', type=int, default=12, help='video hands to collect')
    parser.add_argument('--every', type=int, default=25, help='use every N-th video frame')
    parser.add_argument('--passes', type=int, default=3, help='timed passes over the hands')
    args = parser.parse_args(argv)
    from hand_mesh_ros.core.config import PipelineConfig
    from hand_mesh_ros.core.pipeline import HandMeshPipeline
    pipeline = HandMeshPipeline(PipelineConfig().with_values({'model.backend': 'onnxruntime'}))
    try:
        hands = collect_hands(pipeline, args.every, args.hands)
        pass_ms, error_px = time_refits(pipeline, hands, args.passes)
        tailor_ms = time_tailor(pipeline, hands, args.passes)
    finally:
        pipeline.close()
    out = {'hands': len(hands), 'passes': args.passes,
           'pass_median_ms_per_hand': [round(ms, 2) for ms in pass_ms],
           'median_ms_per_hand': float(np.median(pass_ms)), 'median_error_px': error_px,
           'tailor_new_track_median_ms': tailor_ms}
    print('refit from 2D: %d hands, median %.1f ms per hand (passes: %s), median 2D error '
          '%.2f px; root recovery + tailor of a new track: %.1f ms'
          % (out['hands'], out['median_ms_per_hand'], out['pass_median_ms_per_hand'], error_px,
             tailor_ms))
    print(json.dumps(out))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
