"""A stream of full-data 8K frames sent to hand_mesh_node over shared memory: RSS and refusals.

Usage: ``python -m hand_mesh_ros.tools.bench.big_frames [--frames N] [--json]``.

Starts hand_mesh_node (real pipeline) and this process as its camera, both on a Fast DDS
shared-memory profile whose segment holds an 8K frame (so such a frame does reach the node),
answers one normal frame, then sends ``--frames`` 7680x4320 rgb8 frames with all their data
while sampling the node's resident memory, and answers a normal frame again. Prints the
node's RSS before and at its peak, how many 8K frames the node refused (its
``bad_input.image_too_large`` counter) and whether it still answers, against the target
(peak growth <= :data:`TARGET_RSS_GROWTH_MB`). Must be the first ROS participant of its
process (Fast DDS reads the profile once).
"""

import argparse
import json
from pathlib import Path
import tempfile
import threading
import time

import numpy as np

from hand_mesh_ros.paths import data_dir
from hand_mesh_ros.ros import processes

TARGET_RSS_GROWTH_MB = 150.0
WIDTH_8K, HEIGHT_8K = 7680, 4320
#: A segment holding one 8K rgb8 frame (99.5 MB) with room for the writer's bookkeeping.
SEGMENT_BYTES = 256 * 2 ** 20
TOO_LARGE = 'bad_input.image_too_large'


def write_large_segment_profile(directory):
    """Write the package's shared-memory profile with a :data:`SEGMENT_BYTES` segment."""
    text = processes.config_file('fastdds_shm.xml').read_text()
    start = text.index('<segment_size>') + len('<segment_size>')
    end = text.index('</segment_size>')
    path = Path(directory) / 'fastdds_shm_8k.xml'
    path.write_text(text[:start] + str(SEGMENT_BYTES) + text[end:])
    return path


class PeakSampler:
    """Sample ``read_mb()`` every ``period_s`` in a thread; keep the peak."""

    def __init__(self, read_mb, period_s=0.01):
        """Start sampling."""
        self._read_mb, self._period_s = read_mb, period_s
        self.peak_mb = read_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.wait(self._period_s):
            self.peak_mb = max(self.peak_mb, self._read_mb())

    def stop(self):
        """Stop sampling; return the peak (MiB)."""
        self._stop.set()
        self._thread.join()
        return self.peak_mb


def _counter(probe, key):
    return int(probe.diagnostics.get(key, '0'))


def _answers(probe, frame, info):
    from hand_mesh_ros.ros.image_conversion import rgb_to_image
    return probe.process_one(rgb_to_image(frame), info, timeout_s=5.0, attempts=5) is not None


def stream_8k_frames(probe, frame, info, frames, period_s=0.5):
    """Send ``frames`` 8K frames to the node of ``probe``; return the measured figures."""
    from sensor_msgs.msg import Image
    answered_before = _answers(probe, frame, info)
    probe.spin(1.0)
    refused_before = _counter(probe, TOO_LARGE)
    big = Image(height=HEIGHT_8K, width=WIDTH_8K, encoding='rgb8', step=WIDTH_8K * 3)
    big.data = np.full(WIDTH_8K * HEIGHT_8K * 3, 7, np.uint8).tobytes()
    before_mb = probe.rss_mb()
    sampler = PeakSampler(probe.rss_mb)
    for _ in range(frames):
        probe.publish(big)
        probe.spin(period_s)
    probe.wait_for(lambda: _counter(probe, TOO_LARGE) >= refused_before + frames, 20.0)
    peak_mb = sampler.stop()
    return {'frames_sent': frames, 'refused': _counter(probe, TOO_LARGE) - refused_before,
            'rss_before_mb': round(before_mb, 1), 'rss_peak_mb': round(peak_mb, 1),
            'rss_growth_mb': round(peak_mb - before_mb, 1),
            'answered_before': answered_before, 'answered_after': _answers(probe, frame, info),
            'refusal_logged': ('%dx%d' % (WIDTH_8K, HEIGHT_8K)) in probe.log_text(),
            'node_running': probe.node_process.running()}


def run(frames, log_dir):
    """Start the node and stream 8K frames to it; return the figures (a dict)."""
    from hand_mesh_ros.tools.soak.soak_probe import camera_info_for, load_frames, NodeProbe
    profile = write_large_segment_profile(log_dir)
    frame = load_frames(data_dir() / 'asl_hand.25fps.mp4', max_frames=1, scale=0.5)[0]
    info = camera_info_for(frame.shape[1], frame.shape[0])
    probe = NodeProbe(Path(log_dir) / 'node.log', profile=profile,
                      params={'output.diagnostics_period_s': 0.2})
    try:
        probe.wait_ready()
        figures = stream_8k_frames(probe, frame, info, frames)
    finally:
        probe.close()
    figures['target_rss_growth_mb'] = TARGET_RSS_GROWTH_MB
    figures['met'] = figures['rss_growth_mb'] <= TARGET_RSS_GROWTH_MB
    return figures


def main(argv=None):
    """Run the bench and print its figures (``--json``: one JSON object last)."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--frames', type=int, default=10, help='8K frames to send')
    parser.add_argument('--json', action='store_true', help='print one JSON object last')
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix='hand_mesh_8k_') as log_dir:
        started = time.monotonic()
        figures = run(args.frames, log_dir)
        figures['wall_s'] = round(time.monotonic() - started, 1)
    print('8K frames: %d sent, %d refused; node RSS %.0f MB before, peak %.0f MB '
          '(+%.0f MB; target <= %.0f MB: %s); answers before/after: %s/%s'
          % (figures['frames_sent'], figures['refused'], figures['rss_before_mb'],
             figures['rss_peak_mb'], figures['rss_growth_mb'], TARGET_RSS_GROWTH_MB,
             'met' if figures['met'] else 'not met', figures['answered_before'],
             figures['answered_after']))
    if args.json:
        print(json.dumps(figures))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
