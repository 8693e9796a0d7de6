"""``hand-mesh bench``: per-stage timings, the MediaPipe peer, end-to-end latency over DDS.

1. Per-stage milliseconds per frame of the pipeline on the sample video in tracking mode
   (ONNX Runtime on the CPU unless ``--backend`` says otherwise), medians, with the node's
   default detection schedule (up to 2 hands, palm detector every 10 frames while fewer are
   tracked).
2. The peer, measured in the same run and with the same detection schedule: MediaPipe's own
   Python pipeline (``mediapipe==0.10.14`` ``solutions.hands``, full model, tracking) run by
   ``tools/bench/peer_mediapipe.py`` under ``--mediapipe-python`` (a throwaway venv), once per
   setting of :data:`PEER_SETTINGS`, against our pipeline (keypoints only, and whole) with
   the same number of hands and the palm detector run as often as MediaPipe runs it.
3. End to end over DDS: camera_source at the video's 25 FPS -> hand_mesh_node -> this
   process; latency from image stamp to ``/hand/mesh`` arrival (p50, p95), the node's own
   steps (medians from its /diagnostics) and its resident memory.
4. The mesh network (landmark network + lifting + skinning in one graph) against the bare
   landmark network, full and lite, one crop, same session settings, alternating.

``--threads`` sets ``model.num_threads`` for every session, the node's included.
With ``--json`` the last line is one JSON object with top-level ``stages_ms``,
``num_threads``, ``mesh_network_vs_landmark`` ({variant: landmark_ms, mesh_ms, ratio}),
``targets`` (the latency targets measured in this run: target, value, limit, met),
``keypoints_only_ms``, ``e2e_latency_p50_ms``, ``e2e_latency_p95_ms``, ``node_overhead_ms``
(end to end minus the node's pipeline step, p50), ``node_steps_ms`` (receive, queue, convert,
pipeline, build, publish, published_age), ``e2e_vs_frame_total`` and ``node_rss_mb``; with a
peer, ``peer_comparison`` (one row per setting) and ``ratio_vs_mediapipe`` /
``ratio_full_pipeline_vs_mediapipe`` (keypoints only / whole pipeline, 1 hand: the fair
comparison) and ``landmark_network_vs_mediapipe`` (the bare landmark network's one inference
against MediaPipe's whole 1-hand frame: the floor of any pipeline running that network).
"""

import argparse
import json
from pathlib import Path
import subprocess
import sys
import tempfile
import time

import numpy as np

from hand_mesh_ros.paths import data_dir
from hand_mesh_ros.tools.bench.targets import target_checks

#: Seconds between samples of the node's resident memory in the end-to-end run.
RSS_PERIOD_S = 0.2

#: Like-for-like settings of the peer comparison: (name, MediaPipe max_num_hands, our
#: pipeline's detection parameters giving the same palm-detector schedule, that schedule).
PEER_SETTINGS = (
    ('1 hand', 1, {'detection.max_hands': 1},
     'palm detector only while no hand is tracked (both)'),
    ('2 hands', 2, {'detection.max_hands': 2, 'detection.detect_interval': 1},
     'palm detector on every frame while fewer than 2 hands are tracked (both)'),
)

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


def bench_keypoints_only(video, variant='full', backend='onnxruntime', max_frames=None,
                         max_hands=2, detect_interval=10, num_threads=2):
    """Return the median ms per frame of detection + tracking + landmarks alone.

    The same work as MediaPipe's hand pipeline (bare landmark network, no mesh, no root
    recovery, no tailor), for a like-for-like comparison with the peer.
    """
    from hand_mesh_ros.tools.evaluation.eval_keypoints import create_tracker
    from hand_mesh_ros.tools.video_frames import iter_frames
    tracker = create_tracker(variant=variant, backend=backend, num_threads=num_threads,
                             max_hands=max_hands, detect_interval=detect_interval)
    times_ms = []
    for _, stamp_ns, rgb in iter_frames(video, max_frames=max_frames):
        start = time.perf_counter()
        tracker.process(rgb, stamp_ns * 1e-9)
        times_ms.append((time.perf_counter() - start) * 1e3)
    return round(float(np.median(times_ms)), 3)


def bench_mesh_overhead(video, variants=('full', 'lite'), backend='onnxruntime',
                        num_threads=2, crops=60, passes=5):
    """Return {variant: ms of the bare landmark network and of the mesh network, ratio}.

    Both sessions are made as the pipeline makes them (same backend and threads), fed the
    same 224 x 224 crops of the video's frames one hand at a time, alternating in ``passes``
    rounds; each keeps its best round median (load from other processes hits both alike).
    The mesh network is the landmark network plus lifting and skinning in one graph.
    """
    import cv2
    from hand_mesh_ros.inference import create_session
    from hand_mesh_ros.paths import models_dir
    from hand_mesh_ros.tools.video_frames import iter_frames
    images = [cv2.resize(rgb, (224, 224)).astype(np.float32)[None] / 255.0
              for _, _, rgb in iter_frames(video, max_frames=crops)]
    report = {}
    for variant in variants:
        sessions = {name: create_session(str(models_dir() / ('%s_%s.onnx' % (name, variant))),
                                         backend=backend, num_threads=num_threads, max_batch=1)
                    for name in ('hand_landmark', 'hand_mesh')}
        rounds = {name: [] for name in sessions}
        for _ in range(max(1, int(passes))):
            for name, session in sessions.items():
                feed = next(iter(session.input_specs))
                session.run({feed: images[0]})
                times_ms = []
                for image in images:
                    start = time.perf_counter()
                    session.run({feed: image})
                    times_ms.append((time.perf_counter() - start) * 1e3)
                rounds[name].append(float(np.median(times_ms)))
        for session in sessions.values():
            session.close()
        bare, mesh = min(rounds['hand_landmark']), min(rounds['hand_mesh'])
        report[variant] = {'landmark_ms': round(bare, 3), 'mesh_ms': round(mesh, 3),
                           'ratio': round(mesh / bare, 3)}
    return report


def bench_mediapipe(python, video, max_hands=2, max_frames=None):
    """Run the MediaPipe peer under ``python``; return its JSON summary (or an error)."""
    script = Path(__file__).with_name('peer_mediapipe.py')
    argv = [str(python), str(script), str(video), '--max-hands', str(int(max_hands))]
    if max_frames:
        argv += ['--max-frames', str(int(max_frames))]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    lines = [line for line in proc.stdout.splitlines() if line.startswith('{')]
    if proc.returncode != 0 or not lines:
        return {'error': 'peer failed (exit %d): %s' % (proc.returncode, proc.stderr[-500:])}
    return json.loads(lines[-1])


def bench_end_to_end(video, out_dir, max_frames=0, node_params=None):
    """Return e2e latency percentiles and node memory over real DDS (separate processes).

    ``node_params`` (name -> value) are passed to hand_mesh_node on its command line.
    """
    import psutil
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from diagnostic_msgs.msg import DiagnosticArray
    from hand_mesh_ros.msg import HandMeshArray
    from hand_mesh_ros.ros import processes
    from hand_mesh_ros.ros.spin import create_executor

    env = processes.dds_environment()
    processes.apply_dds_profile(env)
    rclpy.init()
    node = rclpy.create_node('hand_mesh_bench')
    latency_ms = []

    def on_mesh(msg):
        stamp_ns = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        latency_ms.append((time.time_ns() - stamp_ns) / 1e6)

    node.create_subscription(HandMeshArray, '/hand/mesh', on_mesh,
                             QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE))
    steps_ms = {}

    def on_diagnostics(msg):
        for status in msg.status:
            if status.name.startswith('hand_mesh_node'):
                steps_ms.update(node_steps_ms(status))

    node.create_subscription(DiagnosticArray, '/diagnostics', on_diagnostics,
                             QoSProfile(depth=10))
    hand_node = processes.ManagedProcess('hand_mesh_node', processes.node_command(node_params),
                                         Path(out_dir) / 'bench_node.log', env)
    # One executor for the whole run (rclpy.spin_once(node) would add and remove the node on
    # every call), the node's own kind (C++ events where rclpy has it): the arrival time is
    # that of the callback, as little delayed by this measuring process as it can be.
    executor, _ = create_executor()
    executor.add_node(node)
    rss_mb = []
    camera = None
    try:
        processes.wait_for(lambda: node.count_publishers('/hand/mesh') > 0, 90.0,
                           spin=lambda: executor.spin_once(timeout_sec=0.1))
        camera = processes.ManagedProcess(
            'camera_source', processes.source_command(
                video, params={'wait_for_subscribers': 1, 'max_frames': max_frames}),
            Path(out_dir) / 'bench_source.log', env)
        proc = psutil.Process(hand_node.pid)
        next_rss = 0.0
        while camera.running():
            executor.spin_once(timeout_sec=0.05)
            if time.monotonic() >= next_rss:
                rss_mb.append(proc.memory_info().rss / 2**20)
                next_rss = time.monotonic() + RSS_PERIOD_S
        end = time.monotonic() + 2.0
        while time.monotonic() < end:
            executor.spin_once(timeout_sec=0.05)
    finally:
        if camera is not None:
            camera.stop()
        hand_node.stop()
        executor.remove_node(node)
        node.destroy_node()
        rclpy.try_shutdown()
    lat = np.array(latency_ms) if latency_ms else np.full(1, np.nan)
    p50 = float(np.percentile(lat, 50))
    return {'e2e_latency_p50_ms': round(p50, 2),
            'e2e_latency_p95_ms': round(float(np.percentile(lat, 95)), 2),
            'e2e_messages': len(latency_ms),
            'node_rss_mb': round(float(max(rss_mb, default=float('nan'))), 1),
            'node_steps_ms': steps_ms,
            'node_overhead_ms': round(p50 - steps_ms.get('pipeline', float('nan')), 2)}


def node_steps_ms(status):
    """Return {step: p50 ms} from the node's DiagnosticStatus (``step_<name>_p50_ms`` keys)."""
    steps = {}
    for item in status.values:
        if item.key == 'age_p50_ms':
            try:
                steps['published_age'] = float(item.value)
            except ValueError:
                pass
        elif item.key.startswith('step_') and item.key.endswith('_p50_ms'):
            try:
                steps[item.key[len('step_'):-len('_p50_ms')]] = float(item.value)
            except ValueError:
                pass
    return steps


def compare_with_mediapipe(python, video, config, variant, backend, max_frames=None,
                           passes=2):
    """Return one row per :data:`PEER_SETTINGS` entry: ours and MediaPipe's ms per frame.

    Ours and MediaPipe alternate for ``passes`` passes over the video; each keeps its best
    (lowest) per-pass median, so that a burst of load from other processes does not decide
    the ratio. Each row has ``setting``, ``detection_schedule``, ``mediapipe_max_num_hands``,
    ``our_detection`` (parameters), ``mediapipe_ms`` (or ``mediapipe_error``),
    ``ours_keypoints_ms``, ``ours_frame_total_ms``, ``ours_palm_runs`` and the ratios
    ``ratio_keypoints`` and ``ratio_full_pipeline`` (ours / MediaPipe).
    """
    rows = []
    for name, mp_hands, detection, schedule in PEER_SETTINGS:
        row = {'setting': name, 'detection_schedule': schedule,
               'mediapipe_max_num_hands': mp_hands, 'our_detection': detection,
               'passes': int(passes)}
        totals, keypoints, peers = [], [], []
        for _ in range(max(1, int(passes))):
            ours = bench_stages(video, config.with_values(detection), max_frames)
            totals.append(ours['stages_ms']['frame_total'])
            row['ours_palm_runs'] = ours['palm_runs']
            keypoints.append(bench_keypoints_only(
                video, variant, backend, max_frames,
                max_hands=detection['detection.max_hands'],
                detect_interval=detection.get('detection.detect_interval', 10),
                num_threads=config.model.num_threads))
            peer = bench_mediapipe(python, video, max_hands=mp_hands, max_frames=max_frames)
            if 'median_ms' in peer:
                peers.append(float(peer['median_ms']))
                row['mediapipe_frames_with_hand'] = peer.get('frames_with_hand')
            else:
                row['mediapipe_error'] = peer.get('error', 'no result')
        row['ours_frame_total_ms'] = min(totals)
        row['ours_keypoints_ms'] = min(keypoints)
        if peers:
            row.pop('mediapipe_error', None)
            row['mediapipe_ms'] = round(min(peers), 3)
            row['ratio_keypoints'] = round(row['ours_keypoints_ms'] / row['mediapipe_ms'], 3)
            row['ratio_full_pipeline'] = round(row['ours_frame_total_ms'] / row['mediapipe_ms'],
                                               3)
        rows.append(row)
    return rows


def _parse_args(argv):
    """Return the parsed command line of ``hand-mesh bench``."""
    parser = argparse.ArgumentParser(prog='hand-mesh bench', description=__doc__.split('\n')[0])
    parser.add_argument('--video', type=Path, default=data_dir() / 'asl_hand.25fps.mp4',
                        help='video to time (default: the sample video)')
    parser.add_argument('--variant', choices=('full', 'lite'), default='full',
                        help='network size, as model.variant (default: full)')
    parser.add_argument('--backend', default='onnxruntime',
                        help='inference backend for the stage timings (default onnxruntime)')
    parser.add_argument('--threads', type=int, default=None,
                        help='model.num_threads for every session here and in the node '
                             '(default: the parameter default)')
    parser.add_argument('--repeats', type=int, default=1, help='passes over the video')
    parser.add_argument('--max-frames', type=int, default=None,
                        help='use the first N frames of the video (default: all)')
    parser.add_argument('--mediapipe-python', type=Path, default=None,
                        help='python of a throwaway venv with mediapipe==0.10.14 (the peer)')
    parser.add_argument('--peer-passes', type=int, default=2,
                        help='alternating passes of ours and the peer; best median of each')
    parser.add_argument('--no-e2e', action='store_true', help='skip the DDS end-to-end part')
    parser.add_argument('--json', action='store_true', help='print one JSON object last')
    return parser.parse_args(argv)


def main(argv=None):
    """Run the benchmarks; print a table (and JSON last with --json)."""
    args = _parse_args(argv)
    from hand_mesh_ros.core.config import PipelineConfig
    values = {'model.variant': args.variant, 'model.backend': args.backend}
    if args.threads is not None:
        values['model.num_threads'] = args.threads
    config = PipelineConfig().with_values(values)
    threads = config.model.num_threads
    report = bench_stages(args.video, config, args.max_frames, args.repeats)
    print('per-stage median ms per frame (%s, %s, %d frames, tracking mode):'
          % (args.variant, report['backend'], report['frames']))
    for name, value in report['stages_ms'].items():
        print('  %-48s %7.2f' % (STAGE_NAMES[name], value))
    report['num_threads'] = threads
    report['keypoints_only_ms'] = bench_keypoints_only(args.video, args.variant,
                                                       args.backend, args.max_frames,
                                                       num_threads=threads)
    print('  %-48s %7.2f' % ('keypoints only (what MediaPipe computes)',
                             report['keypoints_only_ms']))
    report['mesh_network_vs_landmark'] = bench_mesh_overhead(
        args.video, backend=args.backend, num_threads=threads,
        crops=min(60, args.max_frames or 60))
    print('mesh network vs the bare landmark network, one crop, best of alternating medians:')
    for variant, row in report['mesh_network_vs_landmark'].items():
        print('  %-4s landmark %6.2f ms | mesh network %6.2f ms (x%.2f)'
              % (variant, row['landmark_ms'], row['mesh_ms'], row['ratio']))
    if args.mediapipe_python:
        _peer_comparison(report, args, config)
    if not args.no_e2e:
        _end_to_end(report, args, threads)
    report['targets'] = target_checks(report)
    print('targets (this run):')
    for check in report['targets']:
        verdict = 'met' if check['met'] else 'NOT met'
        print('  %-58s %8.3f vs %8.3f  %s'
              % (check['target'], check['value'], check['limit'], verdict))
    if args.json:
        print(json.dumps(report))
    return 0


def _peer_comparison(report, args, config):
    """Add and print the comparison with MediaPipe's own pipeline."""
    rows = compare_with_mediapipe(args.mediapipe_python, args.video, config, args.variant,
                                  args.backend, args.max_frames, args.peer_passes)
    report['peer_comparison'] = rows
    print('vs MediaPipe solutions.hands (full, tracking), same run, same detection '
          'schedule; ms/frame, best of %d alternating medians:' % args.peer_passes)
    for row in rows:
        if 'mediapipe_ms' not in row:
            print('  %s: MediaPipe peer failed: %s' % (row['setting'],
                                                       row['mediapipe_error']))
            continue
        print('  %-8s MediaPipe %6.2f | ours keypoints %6.2f (x%.2f), whole pipeline with '
              'mesh + root + tailor %6.2f (x%.2f) | %s'
              % (row['setting'], row['mediapipe_ms'], row['ours_keypoints_ms'],
                 row['ratio_keypoints'], row['ours_frame_total_ms'],
                 row['ratio_full_pipeline'], row['detection_schedule']))
    if 'ratio_full_pipeline' in rows[0]:
        report['ratio_vs_mediapipe'] = rows[0]['ratio_keypoints']
        report['ratio_full_pipeline_vs_mediapipe'] = rows[0]['ratio_full_pipeline']
        # The floor of any pipeline that runs this landmark network: the bare network's
        # one inference per frame against MediaPipe's whole 1-hand pipeline.
        bare = report['mesh_network_vs_landmark'][args.variant]['landmark_ms']
        report['landmark_network_vs_mediapipe'] = round(bare / rows[0]['mediapipe_ms'], 3)
        print('  floor: the bare %s landmark network alone is x%.2f of the MediaPipe 1-hand '
              'pipeline' % (args.variant, report['landmark_network_vs_mediapipe']))


def _end_to_end(report, args, threads):
    """Add and print the DDS end-to-end figures."""
    with tempfile.TemporaryDirectory() as tmp:
        node_params = {} if args.threads is None else {'model.num_threads': threads}
        report.update(bench_end_to_end(args.video, tmp, node_params=node_params))
    report['e2e_vs_frame_total'] = round(
        report['e2e_latency_p50_ms'] / report['stages_ms']['frame_total'], 3)
    print('end to end over DDS at the video rate: p50 %(e2e_latency_p50_ms).1f ms, '
          'p95 %(e2e_latency_p95_ms).1f ms (%(e2e_messages)d messages); node RSS '
          '%(node_rss_mb).0f MB' % report)
    print('  node steps, p50 ms: %s; node overhead (e2e p50 - pipeline p50) %.1f ms; '
          'e2e p50 / whole frame %.2f (target <= 1.25 x whole frame + 3 ms = %.1f ms)'
          % (', '.join('%s %.2f' % item for item in report['node_steps_ms'].items()),
             report['node_overhead_ms'], report['e2e_vs_frame_total'],
             1.25 * report['stages_ms']['frame_total'] + 3.0))


if __name__ == '__main__':
    sys.exit(main())
