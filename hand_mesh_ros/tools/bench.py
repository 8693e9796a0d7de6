"""``hand-mesh bench``: per-stage timings, the MediaPipe peer, end-to-end latency over DDS.

1. Per-stage milliseconds per frame of the pipeline on the sample video in tracking mode
   (ONNX Runtime on the CPU unless ``--backend`` says otherwise), medians.
2. The peer, measured in the same run: MediaPipe's own Python pipeline
   (``mediapipe==0.10.14`` ``solutions.hands``, full model, tracking) run by
   ``tools/peer_mediapipe.py`` under ``--mediapipe-python`` (a throwaway venv).
3. End to end over DDS: camera_source at the video's 25 FPS -> hand_mesh_node -> this
   process; latency from image stamp to ``/hand/mesh`` arrival (p50, p95) and the node's
   resident memory.

With ``--json`` the last line is one JSON object with top-level ``e2e_latency_p50_ms``,
``e2e_latency_p95_ms``, ``node_rss_mb``, ``stages_ms``, ``keypoints_only_ms`` and (with a
peer) ``ratio_vs_mediapipe`` (keypoints only, the same work as the peer) and
``ratio_full_pipeline_vs_mediapipe``.
"""

import argparse
import json
import os
from pathlib import Path
import subprocess
import sys
import tempfile
import time

import numpy as np

from hand_mesh_ros.paths import data_dir

STAGE_NAMES = {
    'palm_infer': 'palm detector (frames where it ran)',
    'palm_pre_post': 'palm pre/post (frames where it ran)',
    'landmark_infer': 'mesh network (landmarks + lifting + skinning)',
    'landmark_pre_post': 'crop + landmark decoding',
    'tracking': 'tracking logic',
    'root_recovery': 'root recovery',
    'tailor': 'tailor',
    'frame_total': 'whole frame',
}


def bench_stages(video, config=None, max_frames=None, repeats=1):
    """Return per-stage medians (ms) of the pipeline on ``video`` in tracking mode."""
    from hand_mesh_ros.core.pipeline import HandMeshPipeline
    from hand_mesh_ros.core.types import Frame
    from hand_mesh_ros.tools.video_frames import iter_frames
    frames = list(iter_frames(video, max_frames=max_frames))
    pipeline = HandMeshPipeline(config)
    samples = {name: [] for name in STAGE_NAMES}
    hands = 0
    for repeat in range(repeats):
        pipeline.reset()
        for _, stamp_ns, rgb in frames:
            stamp_ns += repeat * (len(frames) + 25) * 40_000_000
            start = time.perf_counter()
            result = pipeline.process(Frame(rgb, stamp_ns, 'camera', None))
            samples['frame_total'].append((time.perf_counter() - start) * 1e3)
            hands += len(result.hands)
            for name, value in result.timings_ms.items():
                if name.startswith('palm') and result.timings_ms.get('palm_infer', 0.0) == 0.0:
                    continue
                if name in samples and name != 'frame_total':
                    samples[name].append(value)
    pipeline.close()
    stats = {name: round(float(np.median(v)), 3) for name, v in samples.items() if v}
    return {'stages_ms': stats, 'frames': len(frames) * repeats,
            'hands_per_frame': hands / max(1, len(frames) * repeats),
            'palm_runs': len(samples['palm_infer']), 'backend': pipeline.backend_name}


def bench_keypoints_only(video, variant='full', backend='onnxruntime', max_frames=None):
    """Return the median ms per frame of detection + tracking + landmarks alone.

    The same work as MediaPipe's hand pipeline (bare landmark network, no mesh, no root
    recovery, no tailor), for a like-for-like comparison with the peer.
    """
    from hand_mesh_ros.tools.eval_keypoints import create_tracker
    from hand_mesh_ros.tools.video_frames import iter_frames
    tracker = create_tracker(variant=variant, backend=backend)
    times_ms = []
    for _, stamp_ns, rgb in iter_frames(video, max_frames=max_frames):
        start = time.perf_counter()
        tracker.process(rgb, stamp_ns * 1e-9)
        times_ms.append((time.perf_counter() - start) * 1e3)
    return round(float(np.median(times_ms)), 3)


def bench_mediapipe(python, video):
    """Run the MediaPipe peer under ``python``; return its JSON summary (or an error)."""
    script = Path(__file__).with_name('peer_mediapipe.py')
    proc = subprocess.run([str(python), str(script), str(video)], capture_output=True,
                          text=True, timeout=900)
    lines = [line for line in proc.stdout.splitlines() if line.startswith('{')]
    if proc.returncode != 0 or not lines:
        return {'error': 'peer failed (exit %d): %s' % (proc.returncode, proc.stderr[-500:])}
    return json.loads(lines[-1])


def bench_end_to_end(video, out_dir, max_frames=0):
    """Return e2e latency percentiles and node memory over real DDS (separate processes)."""
    import psutil
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from hand_mesh_ros.msg import HandMeshArray
    from hand_mesh_ros.ros import processes
    from hand_mesh_ros.ros.spin import spin_node_while

    env = processes.dds_environment()
    os.environ['FASTDDS_DEFAULT_PROFILES_FILE'] = env['FASTDDS_DEFAULT_PROFILES_FILE']
    rclpy.init()
    node = rclpy.create_node('hand_mesh_bench')
    latency_ms = []

    def on_mesh(msg):
        stamp_ns = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        latency_ms.append((time.time_ns() - stamp_ns) / 1e6)

    node.create_subscription(HandMeshArray, '/hand/mesh', on_mesh,
                             QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE))
    hand_node = processes.ManagedProcess('hand_mesh_node', processes.node_command(),
                                         Path(out_dir) / 'bench_node.log', env)
    rss_mb = []
    camera = None
    try:
        processes.wait_for(lambda: node.count_publishers('/hand/mesh') > 0, 90.0,
                           spin=lambda: rclpy.spin_once(node, timeout_sec=0.1))
        camera = processes.ManagedProcess(
            'camera_source', processes.source_command(
                video, params={'wait_for_subscribers': 1, 'max_frames': max_frames}),
            Path(out_dir) / 'bench_source.log', env)
        proc = psutil.Process(hand_node.pid)
        spin_node_while(node, camera.running, settle_s=2.0,
                        each=lambda: rss_mb.append(proc.memory_info().rss / 2**20))
    finally:
        if camera is not None:
            camera.stop()
        hand_node.stop()
        node.destroy_node()
        rclpy.try_shutdown()
    lat = np.array(latency_ms) if latency_ms else np.full(1, np.nan)
    return {'e2e_latency_p50_ms': round(float(np.percentile(lat, 50)), 2),
            'e2e_latency_p95_ms': round(float(np.percentile(lat, 95)), 2),
            'e2e_messages': len(latency_ms),
            'node_rss_mb': round(float(max(rss_mb, default=float('nan'))), 1)}


def main(argv=None):
    """Run the benchmarks; print a table (and JSON last with --json)."""
    parser = argparse.ArgumentParser(prog='hand-mesh bench', description=__doc__.split('\n')[0])
    parser.add_argument('--video', type=Path, default=data_dir() / 'asl_hand.25fps.mp4')
    parser.add_argument('--variant', choices=('full', 'lite'), default='full')
    parser.add_argument('--backend', default='onnxruntime',
                        help='inference backend for the stage timings (default onnxruntime)')
    parser.add_argument('--repeats', type=int, default=1, help='passes over the video')
    parser.add_argument('--max-frames', type=int, default=None)
    parser.add_argument('--mediapipe-python', type=Path, default=None,
                        help='python of a throwaway venv with mediapipe==0.10.14 (the peer)')
    parser.add_argument('--no-e2e', action='store_true', help='skip the DDS end-to-end part')
    parser.add_argument('--json', action='store_true', help='print one JSON object last')
    args = parser.parse_args(argv)

    from hand_mesh_ros.core.config import PipelineConfig
    config = PipelineConfig().with_values({'model.variant': args.variant,
                                           'model.backend': args.backend})
    report = bench_stages(args.video, config, args.max_frames, args.repeats)
    print('per-stage median ms per frame (%s, %s, %d frames, tracking mode):'
          % (args.variant, report['backend'], report['frames']))
    for name, value in report['stages_ms'].items():
        print('  %-48s %7.2f' % (STAGE_NAMES[name], value))
    report['keypoints_only_ms'] = bench_keypoints_only(args.video, args.variant,
                                                       args.backend, args.max_frames)
    print('  %-48s %7.2f' % ('keypoints only (what MediaPipe computes)',
                             report['keypoints_only_ms']))
    if args.mediapipe_python:
        peer = bench_mediapipe(args.mediapipe_python, args.video)
        report['mediapipe'] = peer
        if 'median_ms' in peer:
            report['ratio_vs_mediapipe'] = round(
                report['keypoints_only_ms'] / peer['median_ms'], 3)
            report['ratio_full_pipeline_vs_mediapipe'] = round(
                report['stages_ms']['frame_total'] / peer['median_ms'], 3)
            print('MediaPipe solutions.hands (same run): %.2f ms/frame median; ours / '
                  'MediaPipe: keypoints %.2f, full pipeline with mesh + root + tailor %.2f'
                  % (peer['median_ms'], report['ratio_vs_mediapipe'],
                     report['ratio_full_pipeline_vs_mediapipe']))
        else:
            print('MediaPipe peer: %s' % peer['error'])
    if not args.no_e2e:
        with tempfile.TemporaryDirectory() as tmp:
            report.update(bench_end_to_end(args.video, tmp))
        print('end to end over DDS at the video rate: p50 %(e2e_latency_p50_ms).1f ms, '
              'p95 %(e2e_latency_p95_ms).1f ms (%(e2e_messages)d messages); node RSS '
              '%(node_rss_mb).0f MB' % report)
    if args.json:
        print(json.dumps(report))
    return 0


if __name__ == '__main__':
    sys.exit(main())
