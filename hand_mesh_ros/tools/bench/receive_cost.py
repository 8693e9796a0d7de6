"""What receiving an image costs: a typed subscription vs the node's raw (CDR) one, A/B.

Usage: ``python -m hand_mesh_ros.tools.bench.receive_cost [--frames N] [--rounds R] [--json]``.

This process publishes camera-sized rgb8 images at 25 Hz over the package's shared-memory
profile to a subscriber process started once per mode and round, alternating
``typed, raw, typed, raw, ...`` so both see the same machine load. Each subscriber turns every
image into the RGB array the pipeline consumes, the way the node does in that mode:

- ``typed``: rclpy deserialises a sensor_msgs/Image; ``image_to_rgb(msg)``.
- ``raw``: rclpy hands over the CDR bytes; ``read_usable_image_cdr`` checks the header, then
  ``image_to_rgb`` converts straight from the bytes.

Per mode: the median latency publish -> RGB ready (transport, take, conversion) and the
subscriber's CPU time per image (process CPU over the stream / images). Prints medians over
rounds and the raw/typed ratios (<= 1.0: the raw path is no slower).
"""

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

from hand_mesh_ros.ros import processes

SIZES = ((640, 480), (1920, 1080))
MODES = ('typed', 'raw')
TOPIC = '/bench/image'
PERIOD_S = 0.04
MODULE = 'hand_mesh_ros.tools.bench.receive_cost'


def _subscriber(mode, frames):
    """Receive ``frames`` images in ``mode``; print ``{latency_ms, cpu_ms_per_image}``."""
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image
    from hand_mesh_ros.ros.image_cdr import read_usable_image_cdr
    from hand_mesh_ros.ros.image_conversion import image_to_rgb
    from hand_mesh_ros.ros.spin import create_executor
    rclpy.init()
    node = rclpy.create_node('receive_cost_%s' % mode)
    latencies_ms, cpu = [], []

    def on_image(msg):
        image = read_usable_image_cdr(msg) if mode == 'raw' else msg
        rgb = image_to_rgb(image)
        stamp = image.header.stamp
        latencies_ms.append((time.time_ns() - (stamp.sec * 10 ** 9 + stamp.nanosec)) / 1e6)
        if len(latencies_ms) == 1:
            cpu.append(time.process_time())
        assert rgb.shape[2] == 3

    node.create_subscription(Image, TOPIC, on_image,
                             QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT),
                             raw=(mode == 'raw'))
    executor, _ = create_executor()
    executor.add_node(node)
    print('ready', flush=True)
    end = time.monotonic() + frames * PERIOD_S + 20.0
    while len(latencies_ms) < frames and time.monotonic() < end:
        executor.spin_once(timeout_sec=0.1)
    images = max(len(latencies_ms) - 1, 1)
    print(json.dumps({'latency_ms': float(np.median(latencies_ms)) if latencies_ms else None,
                      'cpu_ms_per_image': (time.process_time() - cpu[0]) * 1e3 / images
                      if cpu else None, 'received': len(latencies_ms)}), flush=True)
    rclpy.try_shutdown()


def _one_stream(node, publisher, mode, size, frames, env):
    """Start a ``mode`` subscriber, stream ``frames`` images of ``size`` to it; its figures."""
    from hand_mesh_ros.ros.image_conversion import rgb_to_image
    child = subprocess.Popen([sys.executable, '-m', MODULE, '--subscriber', mode,
                              '--frames', str(frames)], stdout=subprocess.PIPE, text=True,
                             env=env)
    child.stdout.readline()                              # 'ready'
    import rclpy
    end = time.monotonic() + 20.0
    while publisher.get_subscription_count() == 0 and time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=0.05)
    time.sleep(0.5)
    rgb = np.random.default_rng(0).integers(0, 256, (size[1], size[0], 3), np.uint8)
    msg = rgb_to_image(rgb)
    for _ in range(frames + 10):
        if child.poll() is not None:
            break
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(time.time_ns(), 10 ** 9)
        publisher.publish(msg)
        time.sleep(PERIOD_S)
    out, _ = child.communicate(timeout=30)
    return json.loads(out.strip().splitlines()[-1])


def run(frames, rounds):
    """Return ``{size: {mode: {figure: median over rounds}}, 'ratios': ...}``."""
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image
    env = processes.dds_environment(shared_memory=True)
    env['ROS_DOMAIN_ID'] = env.get('ROS_DOMAIN_ID', str(os.getpid() % 100 + 110))
    processes.apply_dds_profile(env)
    os.environ['ROS_DOMAIN_ID'] = env['ROS_DOMAIN_ID']
    rclpy.init()
    node = rclpy.create_node('receive_cost_publisher')
    publisher = node.create_publisher(
        Image, TOPIC, QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT))
    results = {}
    try:
        for size in SIZES:
            runs = {mode: [] for mode in MODES}
            for _ in range(rounds):
                for mode in MODES:
                    runs[mode].append(_one_stream(node, publisher, mode, size, frames, env))
            results['%dx%d' % size] = _summarise(runs)
    finally:
        rclpy.try_shutdown()
    return results


def _summarise(runs):
    summary = {mode: {key: float(np.median([r[key] for r in rs if r[key] is not None]))
                      for key in ('latency_ms', 'cpu_ms_per_image')}
               for mode, rs in runs.items()}
    summary['raw_over_typed'] = {key: summary['raw'][key] / summary['typed'][key]
                                 for key in ('latency_ms', 'cpu_ms_per_image')}
    return summary


def main(argv=None):
    """Run the A/B bench and print its figures (``--json``: one JSON object last)."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--frames', type=int, default=100, help='images per stream')
    parser.add_argument('--rounds', type=int, default=3, help='A/B rounds per image size')
    parser.add_argument('--json', action='store_true', help='print one JSON object last')
    parser.add_argument('--subscriber', choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.subscriber:
        _subscriber(args.subscriber, args.frames)
        return 0
    results = run(args.frames, args.rounds)
    for size, summary in results.items():
        print('%s: latency typed %.2f ms, raw %.2f ms (x%.2f); CPU/image typed %.2f ms, raw '
              '%.2f ms (x%.2f); raw no slower: %s'
              % (size, summary['typed']['latency_ms'], summary['raw']['latency_ms'],
                 summary['raw_over_typed']['latency_ms'], summary['typed']['cpu_ms_per_image'],
                 summary['raw']['cpu_ms_per_image'], summary['raw_over_typed']['cpu_ms_per_image'],
                 'met' if summary['raw_over_typed']['cpu_ms_per_image'] <= 1.0 else 'not met'))
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
