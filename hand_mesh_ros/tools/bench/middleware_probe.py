"""Measure how many camera-sized images arrive between two processes, per middleware setting.

    python -m hand_mesh_ros.tools.bench.middleware_probe [--frames 90] [--rate-hz 30]
        [--sizes 640x480,1280x720,1920x1080] [--settings default,recommended] [--json]

A publisher process sends ``--frames`` rgb8 images at ``--rate-hz`` with the sensor_data QoS
(best effort, depth 5), as a camera driver does; a subscriber process (sensor_data QoS, like
hand_mesh_node) counts what arrives. Both start with the same environment:

- ``default``: no Fast DDS profile, the middleware's default transports, as a camera
  driver's process has;
- ``recommended``: the shared-memory profile ``config/fastdds_shm.xml`` under both variable
  names (``FASTRTPS_DEFAULT_PROFILES_FILE`` for Fast DDS 2.x, ``FASTDDS_...`` for 3.x).

The ROS distribution is the interpreter's (run it with each venv's python). Prints one line
per case (received / sent, receive-to-stamp latency p50) and, with ``--json``, one JSON object.
"""

import argparse
import json
import os
import subprocess
import sys
import time

SETTINGS = ('default', 'recommended')
DEFAULT_SIZES = '640x480,1280x720,1920x1080'


def _environment(setting):
    from hand_mesh_ros.ros import processes
    env = dict(os.environ)
    for name in processes.PROFILE_VARIABLES:
        env.pop(name, None)
    if setting == 'recommended':
        env.update(processes.dds_profile_variables())
    env['RCUTILS_LOGGING_BUFFERED_STREAM'] = '1'
    return env


def _qos():
    from rclpy.qos import qos_profile_sensor_data
    return qos_profile_sensor_data


def run_publisher(width, height, frames, rate_hz, wait_s=20.0):
    """Publish ``frames`` images once a subscriber is matched; return the number sent."""
    import numpy as np
    import rclpy
    from sensor_msgs.msg import Image
    rclpy.init()
    node = rclpy.create_node('middleware_probe_publisher')
    pub = node.create_publisher(Image, 'probe_image', _qos())
    deadline = time.monotonic() + wait_s
    while pub.get_subscription_count() < 1 and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
    time.sleep(0.5)   # let the match settle on both sides
    msg = Image(height=height, width=width, encoding='rgb8', step=3 * width)
    msg.data = np.random.default_rng(0).integers(0, 255, (height, width, 3),
                                                 dtype=np.uint8).tobytes()
    period_s = 1.0 / rate_hz
    start = time.monotonic()
    for index in range(frames):
        target = start + index * period_s
        while time.monotonic() < target:
            time.sleep(min(0.002, max(0.0, target - time.monotonic())))
        msg.header.stamp = node.get_clock().now().to_msg()
        msg.header.frame_id = str(index)
        pub.publish(msg)
    time.sleep(1.0)
    node.destroy_node()
    rclpy.shutdown()
    return frames


def run_subscriber(idle_s=2.0, timeout_s=30.0):
    """Count images until ``idle_s`` without one (after the first); return the figures."""
    import rclpy
    from sensor_msgs.msg import Image
    rclpy.init()
    node = rclpy.create_node('middleware_probe_subscriber')
    received, latency_ms, last = set(), [], [None]

    def on_image(msg):
        now_ns = node.get_clock().now().nanoseconds
        stamp_ns = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        received.add(msg.header.frame_id)
        latency_ms.append((now_ns - stamp_ns) / 1e6)
        last[0] = time.monotonic()

    node.create_subscription(Image, 'probe_image', on_image, _qos())
    print('ready', flush=True)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
        if last[0] is not None and time.monotonic() - last[0] > idle_s:
            break
    node.destroy_node()
    rclpy.shutdown()
    latency_ms.sort()
    return {'received': len(received),
            'latency_p50_ms': latency_ms[len(latency_ms) // 2] if latency_ms else None}


def measure(width, height, setting, frames, rate_hz):
    """Run one publisher/subscriber pair in ``setting``; return the figures of the case."""
    env = _environment(setting)
    me = [sys.executable, '-m', 'hand_mesh_ros.tools.bench.middleware_probe']
    sub = subprocess.Popen(me + ['_subscribe', '--timeout', str(20 + frames / rate_hz)],
                           env=env, stdout=subprocess.PIPE, text=True)
    try:
        if sub.stdout.readline().strip() != 'ready':
            raise RuntimeError('the subscriber process did not start')
        pub = subprocess.run(me + ['_publish', '--size', '%dx%d' % (width, height),
                                   '--frames', str(frames), '--rate-hz', str(rate_hz)],
                             env=env, capture_output=True, text=True,
                             timeout=60 + frames / rate_hz)
        out, _ = sub.communicate(timeout=90)
    finally:
        if sub.poll() is None:
            sub.kill()
            sub.wait()
    if pub.returncode != 0 or sub.returncode != 0:
        raise RuntimeError('probe failed: %s %s' % (pub.stderr[-2000:], out[-2000:]))
    figures = json.loads(out.strip().splitlines()[-1])
    return dict(figures, size='%dx%d' % (width, height), setting=setting, sent=frames)


def _size(text):
    width, height = (int(v) for v in text.lower().split('x'))
    return width, height


def main(argv=None):
    """Command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('role', nargs='?', default='measure',
                        choices=('measure', '_publish', '_subscribe'))
    parser.add_argument('--frames', type=int, default=90)
    parser.add_argument('--rate-hz', type=float, default=30.0)
    parser.add_argument('--size', type=_size, default=(640, 480))
    parser.add_argument('--sizes', default=DEFAULT_SIZES)
    parser.add_argument('--settings', default=','.join(SETTINGS))
    parser.add_argument('--timeout', type=float, default=30.0, help=argparse.SUPPRESS)
    parser.add_argument('--json', action='store_true')
    args = parser.parse_args(argv)
    if args.role == '_publish':
        run_publisher(args.size[0], args.size[1], args.frames, args.rate_hz)
        return 0
    if args.role == '_subscribe':
        print(json.dumps(run_subscriber(timeout_s=args.timeout)), flush=True)
        return 0
    from hand_mesh_ros.ros import processes
    distro = os.environ.get('ROS_DISTRO') or _fast_dds_version()
    cases = []
    for setting in args.settings.split(','):
        if setting not in SETTINGS:
            parser.error('unknown setting %r (%s)' % (setting, ', '.join(SETTINGS)))
        for size in args.sizes.split(','):
            case = measure(*_size(size), setting, args.frames, args.rate_hz)
            cases.append(case)
            p50 = case['latency_p50_ms']
            print('%-11s %-10s %3d/%d received  p50 %s' % (
                setting, case['size'], case['received'], case['sent'],
                'n/a' if p50 is None else '%.1f ms' % p50), flush=True)
    if args.json:
        print(json.dumps({'middleware': distro, 'rate_hz': args.rate_hz,
                          'profile_variables': list(processes.PROFILE_VARIABLES),
                          'cases': cases}))
    return 0


def _fast_dds_version():
    """Return 'Fast DDS <version>' of this environment's wheels (or 'unknown')."""
    from importlib import metadata
    for name in ('ros-fastdds', 'ros-fastrtps'):
        try:
            return 'Fast DDS %s' % metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return 'unknown'


if __name__ == '__main__':
    sys.exit(main())
