"""The pipeline inside hand_mesh_node against the same pipeline in-process, alternating.

Usage: ``python -m hand_mesh_ros.tools.bench.node_vs_pipeline [--variant full|lite]
[--rounds R] [--max-frames N] [--json]``.

Each round runs three arms on the first ``--max-frames`` frames of the sample video, one
after the other, so that all three see the same machine load:

- ``back_to_back``: this process runs the pipeline on frame after frame (no pause);
- ``paced``: this process runs the pipeline at the video's 25 FPS (sleeping until each
  frame's time), as the node receives frames: cold caches and sleeping inference threads
  cost here as in the node, the node's threads, executor and conversion do not;
- ``node``: camera_source -> hand_mesh_node over DDS; the node's own ``pipeline`` step
  (p50, from /diagnostics) and end-to-end latency.

Per round the ratios node / back-to-back, paced / back-to-back and node / paced; printed are
the medians over rounds and every round's figure, with the target (node / back-to-back
<= :data:`TARGET_NODE_RATIO`).
"""

import argparse
import json
import tempfile
import time

import numpy as np

from hand_mesh_ros.paths import data_dir

TARGET_NODE_RATIO = 1.1
FRAME_PERIOD_S = 0.04


def pipeline_ms(frames, config, paced):
    """Return the median ms per frame of the pipeline on ``frames`` (paced at 25 FPS or not)."""
    from hand_mesh_ros.core.pipeline import HandMeshPipeline
    from hand_mesh_ros.core.types import Frame
    pipeline = HandMeshPipeline(config)
    times_ms = []
    next_s = time.monotonic()
    for _, stamp_ns, rgb in frames:
        if paced:
            next_s += FRAME_PERIOD_S
            time.sleep(max(0.0, next_s - time.monotonic()))
        start = time.perf_counter()
        pipeline.process(Frame(rgb, stamp_ns, 'camera', None))
        times_ms.append((time.perf_counter() - start) * 1e3)
    pipeline.close()
    return float(np.median(times_ms[5:]))   # the first frames load caches and the detector


def run(variant, rounds, max_frames):
    """Return ``{'rounds': [...], 'median': {...}}`` of the three arms and their ratios."""
    from hand_mesh_ros.core.config import PipelineConfig
    from hand_mesh_ros.tools.bench.bench import bench_end_to_end
    from hand_mesh_ros.tools.video_frames import iter_frames
    video = data_dir() / 'asl_hand.25fps.mp4'
    frames = list(iter_frames(video, max_frames=max_frames))
    config = PipelineConfig().with_values({'model.variant': variant})
    rows = []
    for _ in range(rounds):
        row = {'back_to_back_ms': pipeline_ms(frames, config, paced=False),
               'paced_ms': pipeline_ms(frames, config, paced=True)}
        with tempfile.TemporaryDirectory() as tmp:
            e2e = bench_end_to_end(video, tmp, max_frames=max_frames,
                                   node_params={'model.variant': variant})
        row['node_ms'] = e2e['node_steps_ms'].get('pipeline', float('nan'))
        row['e2e_p50_ms'] = e2e['e2e_latency_p50_ms']
        row['node_receive_ms'] = e2e['node_steps_ms'].get('receive', float('nan'))
        row['node_over_back_to_back'] = row['node_ms'] / row['back_to_back_ms']
        row['paced_over_back_to_back'] = row['paced_ms'] / row['back_to_back_ms']
        row['node_over_paced'] = row['node_ms'] / row['paced_ms']
        rows.append({key: round(value, 3) for key, value in row.items()})
    median = {key: round(float(np.median([row[key] for row in rows])), 3) for key in rows[0]}
    return {'variant': variant, 'rounds': rows, 'median': median,
            'target_node_over_back_to_back': TARGET_NODE_RATIO,
            'met': median['node_over_back_to_back'] <= TARGET_NODE_RATIO}


def main(argv=None):
    """Run the alternating arms and print them (``--json``: one JSON object last)."""
    import rclpy
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--variant', choices=('full', 'lite'), default='full')
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--max-frames', type=int, default=100)
    parser.add_argument('--json', action='store_true', help='print one JSON object last')
    args = parser.parse_args(argv)
    report = run(args.variant, args.rounds, args.max_frames)
    if rclpy.ok():
        rclpy.try_shutdown()
    for i, row in enumerate(report['rounds']):
        print('round %d: back to back %.2f ms, paced %.2f ms, node %.2f ms; node/b2b x%.2f, '
              'paced/b2b x%.2f, node/paced x%.2f; e2e p50 %.2f ms'
              % (i, row['back_to_back_ms'], row['paced_ms'], row['node_ms'],
                 row['node_over_back_to_back'], row['paced_over_back_to_back'],
                 row['node_over_paced'], row['e2e_p50_ms']))
    median = report['median']
    print('%s, median over %d rounds: node / back to back x%.2f (target <= %.1f: %s), paced / '
          'back to back x%.2f, node / paced x%.2f'
          % (args.variant, len(report['rounds']), median['node_over_back_to_back'],
             TARGET_NODE_RATIO, 'met' if report['met'] else 'not met',
             median['paced_over_back_to_back'], median['node_over_paced']))
    if args.json:
        print(json.dumps(report))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
