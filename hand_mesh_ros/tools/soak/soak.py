"""``hand-mesh soak``: overload and long-run checks of hand_mesh_node in its own process.

Both runs start ``hand_mesh_node`` as a child process in a private ROS domain (shared-memory
Fast DDS) and drive it from this process with the sample video (:mod:`soak_probe`).

- **overload**: measures the node's processing time per frame (its own /diagnostics
  ``latency_p50_ms`` after a warm-up), then publishes images at ``--factor`` (3) times that
  rate for ``--duration`` (60) seconds. Reports the node's resident memory (start, end, max),
  the image-stamp -> ``/hand/mesh`` latency p50/p95 in the first and the last third of the
  run (latest frame wins, so it must stay bounded), and the drops the node counted.
- **long**: ``--frames`` (10,000) frames of the sample video, looped, each published once the
  previous one was answered. Reports resident-memory growth after a warm-up, the distinct
  track ids seen (the video shows one hand), the frames answered and with a hand, and NaN/inf
  values found in every output (``/hand/poses``, ``/hand/mesh``, ``/tf``, ``/hand/markers``,
  ``/diagnostics``).

With ``--json`` the last line of output is one JSON object ``{"overload": {...}, "long":
{...}}``. The exit code is 1 when the node died, answered nothing, or published a NaN/inf.
"""

import json
from pathlib import Path
import sys
import tempfile
import time

import numpy as np

from hand_mesh_ros.paths import data_dir
from hand_mesh_ros.tools.evaluation.figures_cli import figures_parser
from hand_mesh_ros.tools.soak.soak_probe import camera_info_for, load_frames, NodeProbe

RSS_PERIOD_S = 0.5


def _percentiles(values):
    """Return (p50, p95) of ``values`` in ms rounded to 0.1, or (None, None) when empty."""
    if len(values) == 0:
        return None, None
    return (round(float(np.percentile(values, 50)), 1),
            round(float(np.percentile(values, 95)), 1))


def latency_by_third(samples, start_s, end_s):
    """Return p50/p95 latency of the first and the last third of [start_s, end_s].

    Args:
        samples: ``[(arrival monotonic s, latency ms)]``.
        start_s: start of the run (monotonic s).
        end_s: end of the run (monotonic s).

    """
    third = (end_s - start_s) / 3.0
    first = [ms for t, ms in samples if start_s <= t < start_s + third]
    last = [ms for t, ms in samples if end_s - third <= t <= end_s]
    first_p50, first_p95 = _percentiles(first)
    last_p50, last_p95 = _percentiles(last)
    return {'latency_first_third_p50_ms': first_p50, 'latency_first_third_p95_ms': first_p95,
            'latency_last_third_p50_ms': last_p50, 'latency_last_third_p95_ms': last_p95,
            'latency_samples': len(first) + len(last)}


def _image_messages(frames):
    """Return one prebuilt sensor_msgs/Image per RGB frame (the stamp is set when sent)."""
    from hand_mesh_ros.ros.image_conversion import rgb_to_image
    return [rgb_to_image(rgb, frame_id='camera_optical_frame') for rgb in frames]


def _fresh_diagnostics(probe, timeout_s=5.0):
    """Wait for the next /diagnostics message; return its values."""
    seen = probe.counts['/diagnostics']
    probe.wait_for(lambda: probe.counts['/diagnostics'] > seen, timeout_s)
    return dict(probe.diagnostics)


def _int(values, key):
    return int(values.get(key, 0) or 0)


def _float(values, key):
    try:
        return float(values[key])
    except (KeyError, ValueError):
        return None


def _warm_up(probe, images, info, frames):
    """Process ``frames`` images closed-loop; return the node's own latency p50 in ms."""
    answered = 0
    for i in range(frames):
        answered += probe.process_one(images[i % len(images)], info) is not None
    if not answered:
        raise RuntimeError('hand_mesh_node answered no image during the warm-up:\n%s'
                           % probe.node_process.log_tail())
    values = _fresh_diagnostics(probe)
    try:
        return float(values['latency_p50_ms'])
    except (KeyError, ValueError):
        return float(np.median([ms for _, ms in probe.latency_ms]))


def run_overload(video, log_dir, duration_s=60.0, factor=3.0, scale=1.0, warm_up=30,
                 log=print):
    """Publish images at ``factor`` x the node's processing rate for ``duration_s``; report."""
    frames = load_frames(video, scale=scale)
    images = _image_messages(frames)
    info = camera_info_for(frames[0].shape[1], frames[0].shape[0])
    # Markers and TF are still subscribed (the node builds them) but only counted here, so
    # that this process keeps up with its own publishing and receiving.
    probe = NodeProbe(Path(log_dir) / 'soak_overload_node.log', keep=(),
                      params={'output.diagnostics_period_s': 0.5},
                      count_only=('/hand/markers', '/tf'))
    try:
        probe.wait_ready()
        processing_ms = max(1.0, _warm_up(probe, images, info, warm_up))
        rate_hz = factor * 1000.0 / processing_ms
        log('overload: node processes a frame in %.1f ms; publishing at %.1f Hz for %.0f s'
            % (processing_ms, rate_hz, duration_s))
        before = _fresh_diagnostics(probe)
        mesh_before = probe.counts['/hand/mesh']
        rss = [probe.rss_mb()]
        rss_times = [0.0]
        rss_start = rss[0]
        period_s = 1.0 / rate_hz
        sent = 0
        start = time.monotonic()
        next_send = next_rss = start
        end = start + duration_s
        while True:
            now = time.monotonic()
            if now >= end or not probe.node_process.running():
                break
            if now >= next_send:
                probe.publish(images[sent % len(images)], info)
                sent += 1
                next_send = max(next_send + period_s, now)
            if now >= next_rss:
                rss.append(probe.rss_mb())
                rss_times.append(now - start)
                next_rss += RSS_PERIOD_S
            probe.executor.spin_once(timeout_sec=max(0.0, min(0.005, next_send - now)))
        stop = time.monotonic()
        probe.spin(2.0)   # the last answers
        rss.append(probe.rss_mb())
        after = _fresh_diagnostics(probe)
    finally:
        code = probe.close()
    report = {
        'duration_s': round(stop - start, 1), 'processing_ms': round(processing_ms, 1),
        'publish_rate_hz': round(sent / (stop - start), 1), 'images_sent': sent,
        'node_received': _int(after, 'frames_received') - _int(before, 'frames_received'),
        'node_processed': _int(after, 'frames_processed') - _int(before, 'frames_processed'),
        'node_dropped': _int(after, 'frames_dropped') - _int(before, 'frames_dropped'),
        'mesh_messages': probe.counts['/hand/mesh'] - mesh_before,
        'rss_start_mb': round(rss_start, 1), 'rss_end_mb': round(rss[-1], 1),
        'rss_max_mb': round(max(rss), 1), 'rss_growth_mb': round(rss[-1] - rss_start, 1),
        'rss_trace_mb': [(round(t), round(mb, 1)) for t, mb in zip(rss_times, rss)][::10],
        'node_latency_p95_ms': _float(after, 'latency_p95_ms'),
        'non_finite_values': probe.total_non_finite(),
        'non_finite_checked': ['/hand/poses', '/hand/mesh', '/diagnostics'],
        'node_exit_code': code,
    }
    report.update(latency_by_third(probe.latency_ms, start, stop))
    return report


def run_long(video, log_dir, frames=10000, scale=1.0, warm_up=100, timeout_s=2.0,
             log=print):
    """Process ``frames`` looped video frames closed-loop; report memory, ids and NaNs."""
    source = load_frames(video, scale=scale)
    images = _image_messages(source)
    info = camera_info_for(source[0].shape[1], source[0].shape[0])
    probe = NodeProbe(Path(log_dir) / 'soak_long_node.log', keep=())
    rss_trace = []
    try:
        probe.wait_ready()
        warm_up = min(warm_up, max(1, frames // 10))
        for i in range(warm_up):
            probe.process_one(images[i % len(images)], info, timeout_s=timeout_s)
        rss_start = probe.rss_mb()
        rss_trace.append((0, round(rss_start, 1)))
        hands_before = sum(probe.position_status.values())
        answered = 0
        start = time.monotonic()
        progress_every = max(1, frames // 10)
        for i in range(frames):
            image = images[(warm_up + i) % len(images)]
            stamp = probe.process_one(image, info, timeout_s=timeout_s, attempts=1)
            if stamp is not None:
                answered += 1
            if (i + 1) % 100 == 0 or i + 1 == frames:
                rss_trace.append((i + 1, round(probe.rss_mb(), 1)))
            if (i + 1) % progress_every == 0:
                log('long run: %d/%d frames, node RSS %.1f MB, %d track ids, %d NaN/inf'
                    % (i + 1, frames, rss_trace[-1][1], len(probe.track_ids),
                       probe.total_non_finite()))
            if not probe.node_process.running():
                break
        stop = time.monotonic()
        with_hand = sum(probe.position_status.values()) - hands_before
        diagnostics = _fresh_diagnostics(probe)
    finally:
        code = probe.close()
    rss_values = [mb for _, mb in rss_trace]
    report = {
        'frames': frames, 'frames_answered': answered, 'hands_published': int(with_hand),
        'duration_s': round(stop - start, 1),
        'rss_start_mb': rss_values[0], 'rss_end_mb': rss_values[-1],
        'rss_max_mb': max(rss_values), 'rss_growth_mb': round(rss_values[-1] - rss_values[0], 1),
        'rss_trace_mb': rss_trace[::max(1, len(rss_trace) // 20)] + rss_trace[-1:],
        'track_ids': sorted(probe.track_ids), 'distinct_track_ids': len(probe.track_ids),
        'non_finite_values': probe.total_non_finite(),
        'non_finite_by_topic': dict(probe.non_finite),
        'messages_by_topic': dict(probe.counts),
        'node_dropped': _int(diagnostics, 'frames_dropped'),
        'node_exit_code': code,
    }
    report.update(latency_by_third(probe.latency_ms, start, stop))
    return report


def failed(report):
    """List why a soak report failed: the node died, answered nothing or published NaN/inf."""
    reasons = []
    for name, run in report.items():
        if run.get('node_exit_code') != 0:
            reasons.append('%s: node exit code %s' % (name, run.get('node_exit_code')))
        if run.get('non_finite_values'):
            reasons.append('%s: %d NaN/inf values published' % (name, run['non_finite_values']))
        if not run.get('mesh_messages', run.get('frames_answered')):
            reasons.append('%s: the node answered nothing' % name)
    return reasons


def main(argv=None):
    """Run the soak checks and print their figures (JSON last with --json)."""
    parser = figures_parser('hand-mesh soak', __doc__)
    parser.add_argument('--mode', choices=('overload', 'long', 'both'), default='both',
                        help='overload run, long run or both (default: both)')
    parser.add_argument('--duration', type=float, default=60.0,
                        help='overload: seconds of publishing (default 60)')
    parser.add_argument('--factor', type=float, default=3.0,
                        help="overload: publish rate / the node's processing rate (default 3)")
    parser.add_argument('--frames', type=int, default=10000,
                        help='long run: frames to process (default 10000)')
    parser.add_argument('--video', type=Path, default=data_dir() / 'asl_hand.25fps.mp4',
                        help='video the publisher loops (default: the sample video)')
    parser.add_argument('--scale', type=float, default=1.0,
                        help='resize the video frames by this factor (default 1)')
    parser.add_argument('--log-dir', type=Path, default=None,
                        help='where the node logs go (default: a temporary folder)')
    args = parser.parse_args(argv)
    report = {}
    with tempfile.TemporaryDirectory() as tmp:
        log_dir = args.log_dir or Path(tmp)
        log_dir.mkdir(parents=True, exist_ok=True)
        if args.mode in ('overload', 'both'):
            report['overload'] = run_overload(args.video, log_dir, args.duration,
                                              args.factor, args.scale)
            print('overload: %(images_sent)d images at %(publish_rate_hz).1f Hz, node '
                  'processed %(node_processed)d, dropped %(node_dropped)d; RSS %(rss_start_mb)'
                  '.1f -> %(rss_end_mb).1f MB (max %(rss_max_mb).1f); latency p95 first '
                  'third %(latency_first_third_p95_ms)s ms, last third '
                  '%(latency_last_third_p95_ms)s ms' % report['overload'])
        if args.mode in ('long', 'both'):
            report['long'] = run_long(args.video, log_dir, args.frames, args.scale)
            print('long run: %(frames_answered)d/%(frames)d frames answered, '
                  '%(hands_published)d hands; RSS %(rss_start_mb).1f -> %(rss_end_mb).1f MB '
                  '(max %(rss_max_mb).1f); track ids %(track_ids)s; %(non_finite_values)d '
                  'NaN/inf' % report['long'])
    reasons = failed(report)
    for reason in reasons:
        print('FAILED: %s' % reason)
    if args.json:
        print(json.dumps(report))
    return 1 if reasons else 0


if __name__ == '__main__':
    sys.exit(main())
