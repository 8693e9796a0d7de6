"""``hand-mesh demo``: the sample video through hand_mesh_node over real DDS, recorded.

camera_source (one process) plays the embedded sample video with its calibration file into
hand_mesh_node (a second process); this process subscribes to every output topic like any
other ROS 2 tool would, records them to a rosbag2/MCAP, writes the debug-image stream as an
overlay video plus a PNG contact sheet, and prints a summary (frames in/out, hands found,
latency, FPS). Outputs go to ``--out`` (default ``out/demo``).
"""

import argparse
import json
from pathlib import Path
import queue
import shutil
import sys
import threading
import time

import cv2
import numpy as np

from hand_mesh_ros.paths import data_dir
from hand_mesh_ros.ros import processes

#: Topics recorded to the bag (the debug images go to the overlay video instead: at ~2 MB a
#: frame they would make the bag hundreds of MB).
RECORDED = {
    '/hand/poses': 'hand_mesh_ros/msg/HandPoseArray',
    '/hand/mesh': 'hand_mesh_ros/msg/HandMeshArray',
    '/hand/markers': 'visualization_msgs/msg/MarkerArray',
    '/tf': 'tf2_msgs/msg/TFMessage',
    '/diagnostics': 'diagnostic_msgs/msg/DiagnosticArray',
    processes.CAMERA_INFO_TOPIC: 'sensor_msgs/msg/CameraInfo',
}


def contact_sheet(frames, columns=4, width_px=1280):
    """Return one BGR image tiling ``frames`` (list of RGB arrays) in a grid."""
    if not frames:
        return np.zeros((64, 64, 3), np.uint8)
    tile_w = width_px // columns
    tiles = []
    for rgb in frames:
        scale = tile_w / rgb.shape[1]
        tiles.append(cv2.resize(rgb, (tile_w, int(round(rgb.shape[0] * scale))),
                                interpolation=cv2.INTER_AREA))
    tile_h = max(t.shape[0] for t in tiles)
    rows = -(-len(tiles) // columns)
    sheet = np.full((rows * tile_h, columns * tile_w, 3), 255, np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        sheet[r * tile_h:r * tile_h + tile.shape[0], c * tile_w:(c + 1) * tile_w] = tile
    return cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)


class OverlayWriter:
    """Write debug images to a video on a background thread (the callback only queues)."""

    def __init__(self, path, fps, max_queue=16):
        """Start the writer thread; frames go to ``path`` at ``fps``."""
        self.path = Path(path)
        self.fps = fps
        self.frames = 0
        self.dropped = 0
        self.sheet_frames = []
        self._queue = queue.Queue(maxsize=max_queue)
        self._video = None
        self._thread = threading.Thread(target=self._run, name='overlay_writer', daemon=True)
        self._thread.start()

    def put(self, cdr):
        """Queue one serialised sensor_msgs/Image (dropped and counted when full)."""
        try:
            self._queue.put_nowait(cdr)
        except queue.Full:
            self.dropped += 1

    def _run(self):
        from rclpy.serialization import deserialize_message
        from sensor_msgs.msg import Image
        from hand_mesh_ros.ros.image_conversion import image_to_rgb
        while True:
            cdr = self._queue.get()
            if cdr is None:
                break
            rgb = image_to_rgb(deserialize_message(cdr, Image))
            if self._video is None:
                fourcc = cv2.VideoWriter_fourcc(*'mp4v')
                self._video = cv2.VideoWriter(str(self.path), fourcc, self.fps,
                                              (rgb.shape[1], rgb.shape[0]))
            self._video.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            if self.frames % 25 == 0 and len(self.sheet_frames) < 12:
                self.sheet_frames.append(rgb)
            self.frames += 1

    def close(self):
        """Write the queued frames and finish the video."""
        self._queue.put(None)
        self._thread.join(timeout=60.0)
        if self._video is not None:
            self._video.release()
            self._video = None


class Recorder:
    """A ROS node recording the node's outputs (as raw CDR) and measuring their latency."""

    def __init__(self, node, bag, overlay):
        """Subscribe ``node`` to every output; write to ``bag``; debug images to ``overlay``."""
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from hand_mesh_ros.ros.bag_io import message_class
        self.bag = bag
        self.overlay = overlay
        self.latency_ms = []
        self.hands_per_frame = []
        self.first_arrival = self.last_arrival = None
        self.last_diagnostics = None
        reliable = QoSProfile(depth=200, reliability=ReliabilityPolicy.RELIABLE)
        best_effort = QoSProfile(depth=50, reliability=ReliabilityPolicy.BEST_EFFORT)
        for topic, msgtype in RECORDED.items():
            qos = best_effort if topic == processes.CAMERA_INFO_TOPIC else reliable
            node.create_subscription(
                message_class(msgtype), topic,
                lambda cdr, topic=topic, msgtype=msgtype: self._on_message(topic, msgtype, cdr),
                qos, raw=True)
        node.create_subscription(message_class('sensor_msgs/msg/Image'), '/hand/debug_image',
                                 overlay.put, QoSProfile(depth=5), raw=True)
        # Only to be counted among the camera's subscribers: camera_source waits for the node
        # and this recorder before its first frame, so no camera_info is missed here.
        self.images_seen = 0
        node.create_subscription(message_class('sensor_msgs/msg/Image'),
                                 processes.IMAGE_TOPIC, self._on_image, best_effort, raw=True)

    def _on_image(self, _cdr):
        self.images_seen += 1

    def _on_message(self, topic, msgtype, cdr):
        from rclpy.serialization import deserialize_message
        from hand_mesh_ros.ros.bag_io import message_class
        now_ns = time.time_ns()
        self.bag.write(topic, msgtype, now_ns, cdr)
        if topic in ('/hand/mesh', '/hand/poses', '/diagnostics'):
            msg = deserialize_message(cdr, message_class(msgtype))
            if topic == '/hand/mesh':
                stamp_ns = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
                self.latency_ms.append((now_ns - stamp_ns) / 1e6)
                self.first_arrival = self.first_arrival or now_ns
                self.last_arrival = now_ns
            elif topic == '/hand/poses':
                self.hands_per_frame.append(len(msg.hands))
            else:
                self.last_diagnostics = msg


def diagnostics_values(msg):
    """Return {key: value} of the node's diagnostic status (first status with values)."""
    if msg is None:
        return {}
    for status in msg.status:
        if status.values:
            return {kv.key: kv.value for kv in status.values}
    return {}


def _summary(recorder, bag, overlay, out_dir, node_code, wall_s):
    """Return the demo's figures from what ``recorder``, ``bag`` and ``overlay`` collected.

    Also writes the overlay's contact sheet to ``out_dir/contact_sheet.png``.
    """
    diag = diagnostics_values(recorder.last_diagnostics)
    # Frames the node received (its last diagnostics), or those this process saw.
    frames_in = max(int(diag.get('frames_received', 0)),
                    bag.counts.get(processes.CAMERA_INFO_TOPIC, 0))
    frames_out = bag.counts.get('/hand/mesh', 0)
    cv2.imwrite(str(out_dir / 'contact_sheet.png'), contact_sheet(overlay.sheet_frames))
    latency = np.array(recorder.latency_ms) if recorder.latency_ms else np.zeros(1)
    span_s = ((recorder.last_arrival - recorder.first_arrival) / 1e9
              if recorder.first_arrival and recorder.last_arrival else 0.0)
    summary = {
        'frames_in': frames_in,
        'frames_out': frames_out,
        'frames_with_hand': int(sum(1 for n in recorder.hands_per_frame if n > 0)),
        'max_hands_in_frame': int(max(recorder.hands_per_frame, default=0)),
        'latency_p50_ms': round(float(np.percentile(latency, 50)), 2),
        'latency_p95_ms': round(float(np.percentile(latency, 95)), 2),
        'output_fps': round((frames_out - 1) / span_s, 2) if span_s > 0 else 0.0,
        'node_diagnostics': diag,
        'node_exit_code': node_code,
        'wall_s': round(wall_s, 1),
        'bag': str(bag.path), 'bag_counts': dict(bag.counts),
        'overlay_video': str(out_dir / 'overlay.mp4'),
        'overlay_frames': overlay.frames,
        'overlay_frames_dropped': overlay.dropped,
        'contact_sheet': str(out_dir / 'contact_sheet.png'),
    }
    return summary


def run_demo(out_dir, source=None, camera_info_url=None, timeout_s=240.0, max_frames=0,
             rate_hz=0.0, log=print):
    """Run the demo; return the summary dict (also written to ``out_dir/summary.json``)."""
    import rclpy
    from hand_mesh_ros.ros.bag_io import BagWriter
    from hand_mesh_ros.ros.spin import spin_node_while

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    bag_path = out_dir / 'outputs_mcap'
    if bag_path.exists():
        shutil.rmtree(bag_path)
    env = processes.dds_environment()
    source_path = Path(source or data_dir() / 'asl_hand.25fps.mp4')
    from hand_mesh_ros.tools.video_frames import video_fps
    fps = video_fps(source_path)
    # This process must use the same DDS transports as its children.
    processes.apply_dds_profile(env)
    rclpy.init()
    node = rclpy.create_node('hand_mesh_demo_recorder')
    bag = BagWriter(bag_path, storage='mcap')
    overlay = OverlayWriter(out_dir / 'overlay.mp4', fps)
    recorder = Recorder(node, bag, overlay)
    hand_node = processes.ManagedProcess('hand_mesh_node', processes.node_command(),
                                         out_dir / 'hand_mesh_node.log', env)
    camera = None
    start = time.monotonic()
    try:
        log('waiting for hand_mesh_node (pid %d) to come up ...' % hand_node.pid)
        ready = processes.wait_for(
            lambda: (node.count_publishers('/hand/mesh') > 0
                     and node.count_subscribers(processes.IMAGE_TOPIC) > 0),
            timeout_s=90.0, spin=lambda: rclpy.spin_once(node, timeout_sec=0.1))
        if not ready or not hand_node.running():
            raise RuntimeError('hand_mesh_node did not start:\n' + hand_node.log_tail())
        camera = processes.ManagedProcess(
            'camera_source',
            processes.source_command(source_path, camera_info_url,
                                     {'wait_for_subscribers': 2, 'max_frames': max_frames,
                                      'rate_hz': float(rate_hz)}),
            out_dir / 'camera_source.log', env)
        log('playing %s through camera_source (pid %d) ...' % (source_path.name, camera.pid))
        deadline = time.monotonic() + timeout_s
        # Then let the node finish the last frames.
        spin_node_while(node, lambda: camera.running() and time.monotonic() < deadline,
                        settle_s=3.0)
    finally:
        if camera is not None:
            camera.stop()
        node_code = hand_node.stop()
        overlay.close()
        bag.close()
        node.destroy_node()
        rclpy.try_shutdown()
    summary = _summary(recorder, bag, overlay, out_dir, node_code,
                       wall_s=time.monotonic() - start)
    (out_dir / 'summary.json').write_text(json.dumps(summary, indent=2))
    return summary


def main(argv=None):
    """Run the demo and print its summary (JSON last with --json); return an exit code."""
    parser = argparse.ArgumentParser(prog='hand-mesh demo', description=__doc__.split('\n')[0])
    parser.add_argument('--out', type=Path, default=Path('out/demo'), help='output directory')
    parser.add_argument('--source', type=Path, default=None,
                        help='video file or image folder (default: the sample video)')
    parser.add_argument('--camera-info', default=None,
                        help='calibration YAML (default: config/camera_sample.yaml; '
                        "'' for none: the node then uses its assumed-FOV mode)")
    parser.add_argument('--max-frames', type=int, default=0, help='stop after N frames')
    parser.add_argument('--rate-hz', type=float, default=0.0,
                        help="camera_source rate (default 0: the source's own rate)")
    parser.add_argument('--timeout', type=float, default=240.0, help='seconds to run at most')
    parser.add_argument('--json', action='store_true', help='print one JSON object last')
    args = parser.parse_args(argv)
    summary = run_demo(args.out, args.source, args.camera_info, args.timeout, args.max_frames,
                       args.rate_hz)
    print('\nhand-mesh demo: %(frames_in)d frames in, %(frames_out)d processed, '
          '%(frames_with_hand)d with a hand (max %(max_hands_in_frame)d at once)' % summary)
    print('  latency image stamp -> /hand/mesh arrival: p50 %(latency_p50_ms).1f ms, '
          'p95 %(latency_p95_ms).1f ms; output %(output_fps).1f FPS' % summary)
    print('  recorded %s: %s' % (summary['bag'], summary['bag_counts']))
    print('  overlay video %(overlay_video)s (%(overlay_frames)d frames), contact sheet '
          '%(contact_sheet)s' % summary)
    if args.json:
        print(json.dumps(summary))
    ok = summary['frames_out'] > 0 and summary['frames_with_hand'] > 0
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
