"""Measure what crosses between processes per middleware setting: images locally, results remotely.

    python -m hand_mesh_ros.tools.bench.middleware_probe [--frames 90] [--rate-hz 30]
        [--sizes 640x480,1920x1080] [--settings default,recommended] [--no-remote] [--json]

A publisher process sends ``--frames`` rgb8 images at ``--rate-hz`` with the sensor_data QoS
(best effort, depth 5), as a camera driver does, and with each image one HandMeshArray of a
real hand mesh (reliable, depth 10, as hand_mesh_node publishes /hand/mesh). A local
subscriber process (sensor_data QoS, like hand_mesh_node) counts the images that arrive. A
remote subscriber process, whose participant has UDPv4 only (``config/fastdds_remote_udp.xml``:
the stand-in for RViz or a controller on another computer), counts the meshes. The publisher
and the local subscriber start with the same environment:

- ``default``: no Fast DDS profile, the middleware's default transports, as a camera
  driver's process has;
- ``recommended``: the robot-cell profile ``config/fastdds_shm.xml`` (16 MB shared memory
  beside UDPv4) in the variable the installed Fast DDS reads (``FASTDDS_DEFAULT_PROFILES_FILE``
  on 3.x/Kilted, ``FASTRTPS_DEFAULT_PROFILES_FILE`` on 2.x/Humble/Jazzy).

The ROS distribution is the interpreter's (run it with each venv's python). Prints one line
per case (images received / sent, receive-to-stamp latency p50, meshes received remotely) and,
with ``--json``, one JSON object.
"""

import argparse
import json
import os
import subprocess
import sys
import time

SETTINGS = ('default', 'recommended')
DEFAULT_SIZES = '640x480,1920x1080'


def _environment(setting):
    from hand_mesh_ros.ros import dds_profile, processes
    env = dict(os.environ)
    for name in dds_profile.PROFILE_VARIABLES:
        env.pop(name, None)
    if setting == 'recommended':
        env = dds_profile.with_profile(env, processes.config_file('fastdds_shm.xml'))
    env['RCUTILS_LOGGING_BUFFERED_STREAM'] = '1'
    return env


def _result_qos():
    """Return reliable QoS with room for 100 samples.

    A counting subscriber starved of CPU for a second (Python builds a HandPoseArray's
    nested messages slowly) must not drop from its own history what the transport
    delivered.
    """
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    return QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)


def _mesh_message():
    """Return a HandMeshArray with one hand of the shipped hand model (its real size)."""
    import numpy as np
    from hand_mesh_ros.core.hand.hand_model import load_hand_model
    from hand_mesh_ros.msg import HandMesh, HandMeshArray
    model = load_hand_model()
    out = model.forward(np.zeros((model.n_bones, 3)), side='right')
    hand = HandMesh(track_id=1, side=HandMesh.SIDE_RIGHT, hand_model='anny',
                    vertices=np.asarray(out.vertices, np.float32).ravel().tolist(),
                    triangles=np.asarray(out.faces, np.uint32).ravel().tolist())
    return HandMeshArray(hands=[hand])


def _qos():
    from rclpy.qos import qos_profile_sensor_data
    return qos_profile_sensor_data


def run_publisher(width, height, frames, rate_hz, remotes=1, wait_s=20.0):
    """Publish ``frames`` images and meshes once the subscribers match; return the number."""
    import numpy as np
    import rclpy
    from sensor_msgs.msg import Image
    rclpy.init()
    node = rclpy.create_node('middleware_probe_publisher')
    pub = node.create_publisher(Image, 'probe_image', _qos())
    mesh_pub = node.create_publisher(type(_mesh_message()), 'probe_mesh', _result_qos())
    mesh = _mesh_message()
    deadline = time.monotonic() + wait_s
    while ((pub.get_subscription_count() < 1 or mesh_pub.get_subscription_count() < remotes)
           and time.monotonic() < deadline):
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
        mesh.header = msg.header
        mesh_pub.publish(mesh)
    time.sleep(1.0)
    node.destroy_node()
    rclpy.shutdown()
    return frames


#: Message types a subscriber can count: name -> (module, class).
MESSAGE_TYPES = {'image': ('sensor_msgs.msg', 'Image'),
                 'mesh': ('hand_mesh_ros.msg', 'HandMeshArray'),
                 'poses': ('hand_mesh_ros.msg', 'HandPoseArray')}


def _message_class(name):
    import importlib
    module, cls = MESSAGE_TYPES[name]
    return getattr(importlib.import_module(module), cls)


def run_subscriber(idle_s=2.0, timeout_s=30.0, topic='probe_image', message='image'):
    """Count messages on ``topic`` until ``idle_s`` without one; return the figures.

    Images are subscribed with the sensor_data QoS, results (``mesh``, ``poses``) reliable.
    Messages are counted once per (stamp, frame id).
    """
    import rclpy
    rclpy.init()
    node = rclpy.create_node('middleware_probe_subscriber')
    received, latency_ms, last = set(), [], [None]

    def on_image(msg):
        now_ns = node.get_clock().now().nanoseconds
        stamp_ns = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        received.add((stamp_ns, msg.header.frame_id))
        latency_ms.append((now_ns - stamp_ns) / 1e6)
        last[0] = time.monotonic()

    node.create_subscription(_message_class(message), topic, on_image,
                             _qos() if message == 'image' else _result_qos())
    print('ready', flush=True)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
        if last[0] is not None and time.monotonic() - last[0] > idle_s:
            break
    node.destroy_node()
    rclpy.shutdown()
    latency_ms.sort()
    return {'received': len(received), 'stamps_ns': sorted(stamp for stamp, _ in received),
            'latency_p50_ms': latency_ms[len(latency_ms) // 2] if latency_ms else None}


def start_subscriber(env, timeout_s, topic, message):
    """Start a subscriber process counting ``topic``; return it once it listens.

    ``env`` chooses its transports (e.g. ``remote_environment()``: UDPv4 only).
    """
    me = [sys.executable, '-m', 'hand_mesh_ros.tools.bench.middleware_probe']
    sub = subprocess.Popen(me + ['_subscribe', '--timeout', str(timeout_s), '--topic', topic,
                                 '--message', message],
                           env=env, stdout=subprocess.PIPE, text=True)
    if sub.stdout.readline().strip() != 'ready':
        raise RuntimeError('a subscriber process did not start')
    return sub


def remote_environment(base=None):
    """Return the environment of a participant on another computer: UDPv4 only."""
    from hand_mesh_ros.ros import dds_profile, processes
    return dds_profile.with_profile(dict(os.environ if base is None else base),
                                    processes.config_file('fastdds_remote_udp.xml'))


def subscriber_figures(sub):
    """Wait for a subscriber process to finish; return its figures (received, latency)."""
    out, _ = sub.communicate(timeout=90)
    if sub.returncode != 0:
        raise RuntimeError('probe subscriber failed: %s' % out[-2000:])
    return json.loads(out.strip().splitlines()[-1])


def measure(width, height, setting, frames, rate_hz, remote=True):
    """Run one publisher with a local (and a UDP-only) subscriber; return the case's figures."""
    env = _environment(setting)
    me = [sys.executable, '-m', 'hand_mesh_ros.tools.bench.middleware_probe']
    timeout_s = 20 + frames / rate_hz
    subs = []
    try:
        subs.append(start_subscriber(env, timeout_s, 'probe_image', 'image'))
        if remote:
            subs.append(start_subscriber(remote_environment(env), timeout_s, 'probe_mesh',
                                         'mesh'))
        pub = subprocess.run(me + ['_publish', '--size', '%dx%d' % (width, height),
                                   '--frames', str(frames), '--rate-hz', str(rate_hz),
                                   '--remotes', str(int(remote))],
                             env=env, capture_output=True, text=True,
                             timeout=60 + frames / rate_hz)
        if pub.returncode != 0:
            raise RuntimeError('probe publisher failed: %s' % pub.stderr[-2000:])
        figures = [subscriber_figures(sub) for sub in subs]
    finally:
        for sub in subs:
            if sub.poll() is None:
                sub.kill()
                sub.wait()
    case = dict(figures[0], size='%dx%d' % (width, height), setting=setting, sent=frames)
    if remote:
        case['remote_meshes_received'] = figures[1]['received']
    return case


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
    parser.add_argument('--topic', default='probe_image', help=argparse.SUPPRESS)
    parser.add_argument('--message', default='image', choices=sorted(MESSAGE_TYPES),
                        help=argparse.SUPPRESS)
    parser.add_argument('--remotes', type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument('--no-remote', action='store_true',
                        help='no UDP-only subscriber of the meshes (images only)')
    parser.add_argument('--json', action='store_true')
    args = parser.parse_args(argv)
    if args.role == '_publish':
        run_publisher(args.size[0], args.size[1], args.frames, args.rate_hz, args.remotes)
        return 0
    if args.role == '_subscribe':
        print(json.dumps(run_subscriber(timeout_s=args.timeout, topic=args.topic,
                                        message=args.message)), flush=True)
        return 0
    from hand_mesh_ros.ros import dds_profile
    distro = os.environ.get('ROS_DISTRO') or _fast_dds_version()
    cases = []
    for setting in args.settings.split(','):
        if setting not in SETTINGS:
            parser.error('unknown setting %r (%s)' % (setting, ', '.join(SETTINGS)))
        for size in args.sizes.split(','):
            case = measure(*_size(size), setting, args.frames, args.rate_hz,
                           remote=not args.no_remote)
            cases.append(case)
            p50 = case['latency_p50_ms']
            remote = ('' if args.no_remote else '  meshes to a UDP-only peer %d/%d'
                      % (case['remote_meshes_received'], case['sent']))
            print('%-11s %-10s images %3d/%d received  p50 %s%s' % (
                setting, case['size'], case['received'], case['sent'],
                'n/a' if p50 is None else '%.1f ms' % p50, remote), flush=True)
    if args.json:
        print(json.dumps({'middleware': distro, 'rate_hz': args.rate_hz,
                          'profile_variables': sorted(dds_profile.profile_variables('')),
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
