"""``hand-mesh process INPUT --out DIR``: run the node's pipeline on a recording, offline.

INPUT is a video file, an image folder, or a rosbag2 directory (MCAP or sqlite3) with
``sensor_msgs/Image`` or ``CompressedImage`` and ``sensor_msgs/CameraInfo`` topics. Every
image goes through the same :class:`HandMeshPipeline` as ``hand_mesh_node`` (no DDS); the
results are written as the node would publish them (see
:mod:`hand_mesh_ros.tools.process.process_outputs`):
``DIR/results`` (rosbag2), ``DIR/hands.jsonl``,
``DIR/hands.csv``, ``DIR/overlay.mp4`` and ``DIR/summary.json``; with ``--export-mesh
{ply,glb,obj}`` also one mesh file per hand and frame in ``DIR/meshes/`` (see
:mod:`hand_mesh_ros.tools.export_mesh`).

Unlike the node, nothing is dropped for being late: every image is processed. An image on
which the pipeline raises HandMeshError gets no output (as in the node) and is counted.
Ctrl-C (or SIGTERM) stops the run and still closes every file; the summary then says
``"interrupted": true``. Without camera_info (videos, image folders, bags without a
CameraInfo topic) the node's documented fallback applies: a pinhole with an assumed
horizontal field of view (``--hfov``), principal point at the image centre; ``--camera-info
FILE.yaml`` uses a calibration file instead.
"""

import argparse
from collections import Counter
import json
from pathlib import Path
import signal
import sys
import threading
import time

import numpy as np

from hand_mesh_ros.core.camera.decision import decide_camera
from hand_mesh_ros.core.config import PipelineConfig
from hand_mesh_ros.core.errors import HandMeshError
from hand_mesh_ros.core.types import Frame
from hand_mesh_ros.ros.messages import finite_hands
from hand_mesh_ros.tools.export_mesh import FORMATS as MESH_FORMATS


class Progress:
    """Frames/s and ETA on stderr: tqdm when installed, else a plain line every second."""

    def __init__(self, total, enabled=True):
        """Start counting towards ``total`` frames (0 when unknown)."""
        self.total = int(total or 0)
        self.enabled = enabled
        self.count = 0
        self._start = time.monotonic()
        self._last = 0.0
        self._bar = None
        if enabled:
            try:
                from tqdm import tqdm
                self._bar = tqdm(total=self.total or None, unit='frame', file=sys.stderr,
                                 dynamic_ncols=True)
            except ImportError:
                self._bar = None

    def update(self, hands):
        """Count one processed frame with ``hands`` hands."""
        self.count += 1
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.set_postfix(hands=hands, refresh=False)
            self._bar.update(1)
            return
        now = time.monotonic() - self._start
        if now - self._last >= 1.0 or self.count == self.total:
            self._last = now
            rate = self.count / max(now, 1e-9)
            eta = (self.total - self.count) / rate if self.total and rate > 0 else float('nan')
            sys.stderr.write('\r%d/%s frames  %.1f frames/s  ETA %s   ' % (
                self.count, self.total or '?', rate,
                '%.0f s' % eta if np.isfinite(eta) else '?'))
            sys.stderr.flush()

    def close(self):
        """Finish the bar (or the line)."""
        if self._bar is not None:
            self._bar.close()
        elif self.enabled and self.count:
            sys.stderr.write('\n')


class RunTally:
    """What a run counts frame by frame, for ``summary.json``."""

    def __init__(self):
        """Start with nothing counted."""
        self.frames = self.with_hand = self.hands = 0
        self.errors, self.rejected, self.modes, self.depth = (Counter(), Counter(), Counter(),
                                                              Counter())
        self.track_ids = set()
        self.timings_ms = {}

    def add(self, result, hands, non_finite):
        """Count one processed frame: its FrameResult and its ``hands`` (the finite ones)."""
        self.frames += 1
        self.with_hand += bool(hands)
        self.hands += len(hands)
        self.rejected.update(result.rejected or {})
        self.rejected['non_finite'] += non_finite
        self.modes[result.position_mode] += 1
        self.depth[result.depth.label or 'none'] += 1
        self.track_ids.update(hand.track_id for hand in hands)
        for stage, value in result.timings_ms.items():
            self.timings_ms.setdefault(stage, []).append(float(value))

    def figures(self, wall_s):
        """Return the summary figures of the run (``wall_s``: its duration in seconds)."""
        return {
            'frames_processed': self.frames, 'frames_with_hand': self.with_hand,
            'hands': self.hands,
            'detection_rate': self.with_hand / self.frames if self.frames else 0.0,
            'track_ids': sorted(int(t) for t in self.track_ids),
            'position_modes': dict(self.modes), 'pipeline_errors': dict(self.errors),
            'depth_frames': dict(self.depth),
            'rejected_hands': {k: v for k, v in self.rejected.items() if v},
            'median_stage_ms': {stage: round(float(np.median(values)), 3)
                                for stage, values in self.timings_ms.items()},
            'wall_s': round(wall_s, 3),
            'frames_per_s': round(self.frames / wall_s, 3) if wall_s > 0 else None}


def run_summary(source, writer, tally, statuses, wall_s, interrupted, mesh_exporter=None):
    """Return the summary dict of a finished run (what ``summary.json`` holds)."""
    summary = {'input': source.describe(), 'out_dir': str(writer.out_dir)}
    summary.update(tally.figures(wall_s))
    summary.update({
        'camera_info_status': dict(statuses),
        'unreadable_images': dict(getattr(source, 'skipped', {})),
        'interrupted': interrupted, 'topics': writer.topic_counts,
        'outputs': {'bag': str(writer.bag_path), 'jsonl': str(writer.jsonl_path),
                    'csv': str(writer.csv_path),
                    'video': str(writer.video_path) if writer.video_path else None,
                    'video_frames': writer.video_frames,
                    'meshes': mesh_exporter.summary() if mesh_exporter else None}})
    return summary


def process_source(source, pipeline, writer, progress=None, log=None, should_stop=None,
                   mesh_exporter=None):
    """Run ``pipeline`` on every frame of ``source``; write with ``writer``; return a summary.

    Args:
        source: a :class:`~hand_mesh_ros.tools.process.process_inputs.BagSource` or
            ``VideoSource``.
        pipeline: an object with ``process(Frame) -> FrameResult`` and ``config`` (a
            PipelineConfig; its ``camera`` section decides frames without a camera model).
        writer: a :class:`~hand_mesh_ros.tools.process.process_outputs.ResultWriter` (closed here).
        progress: a :class:`Progress` or None.
        log: callable(message) for one-time notes, or None.
        should_stop: callable() -> bool checked after each frame (e.g. :class:`StopRequest`).
        mesh_exporter: a :class:`~hand_mesh_ros.tools.export_mesh.MeshExporter` or None.

    ``should_stop()`` turning True or a KeyboardInterrupt stops the loop; the outputs are
    closed and the summary says ``interrupted``. Returns the summary dict (also written to
    ``summary.json``).

    """
    log = log or (lambda message: None)
    camera_cfg = pipeline.config.camera
    tally, statuses = RunTally(), Counter()
    interrupted = False
    start = time.monotonic()
    noted = set()
    try:
        for index, item in enumerate(source.frames()):
            if should_stop is not None and should_stop():
                interrupted = True
                break
            height, width = item.rgb.shape[:2]
            decision = decide_camera(width, height, item.camera, camera_cfg.fallback_mode,
                                     camera_cfg.assumed_hfov_deg)
            frame = Frame(rgb=item.rgb, stamp_ns=item.stamp_ns, frame_id=item.frame_id,
                          camera=decision.camera, depth=getattr(item, 'depth', None),
                          position_mode=decision.mode.value,
                          assumed_hfov_deg=decision.hfov_deg)
            statuses[item.camera_status] += 1
            camera, mode = decision.camera, decision.mode.value
            if mode != 'full_intrinsics' and mode not in noted:
                noted.add(mode)
                log('camera: %s mode (camera_info %s); 3D positions scale with the assumed '
                    'camera' % (mode, item.camera_status))
            try:
                result = pipeline.process(frame)
            except HandMeshError as exc:
                tally.errors[getattr(exc, 'reason', type(exc).__name__)] += 1
                if progress is not None:
                    progress.update(0)
                continue
            hands, non_finite = finite_hands(result.hands)
            writer.write(index, result, hands, item.rgb, camera)
            if mesh_exporter is not None:
                mesh_exporter.write(index, hands)
            tally.add(result, hands, non_finite)
            if progress is not None:
                progress.update(len(hands))
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if progress is not None:
            progress.close()
        writer.close()
    summary = run_summary(source, writer, tally, statuses, time.monotonic() - start,
                          interrupted, mesh_exporter)
    (Path(writer.out_dir) / 'summary.json').write_text(json.dumps(summary, indent=1) + '\n')
    return summary


class StopRequest:
    """SIGINT (Ctrl-C) and SIGTERM ask the run to stop after the current frame (context manager).

    The outputs then end on a frame boundary (every file holds the same frames). A second
    Ctrl-C raises KeyboardInterrupt at once (the outputs are still closed).
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        """Create an unset request."""
        self.requested = False
        self._previous = {}

    def _handle(self, signum, frame):
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True

    def __call__(self):
        """Return True once a stop was requested."""
        return self.requested

    def __enter__(self):
        """Install the handlers (only possible in the main thread)."""
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc):
        """Restore the previous handlers."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}


def build_parser():
    """Return the argument parser of ``hand-mesh process``."""
    parser = argparse.ArgumentParser(prog='hand-mesh process',
                                     description=__doc__.split('\n\n')[0].replace('``', ''))
    parser.add_argument('input', help='video file, image folder or rosbag2 directory')
    parser.add_argument('--out', required=True, help='output directory')
    parser.add_argument('--image-topic', default=None,
                        help='bag image topic (default: the only Image/CompressedImage topic)')
    parser.add_argument('--camera-info-topic', default=None,
                        help='bag CameraInfo topic (default: next to the image topic, or the '
                             'only one)')
    parser.add_argument('--depth-topic', default=None,
                        help='bag: depth Image topic registered to the colour image (default: '
                             "the only Image topic named *depth*; '' = none)")
    parser.add_argument('--camera-info', default=None, metavar='YAML',
                        help='calibration file (camera_info YAML) to use instead')
    parser.add_argument('--hfov', type=float, default=None,
                        help='assumed horizontal field of view (deg) without calibration')
    parser.add_argument('--frame-id', default='camera_optical_frame',
                        help='frame id for video / folder input')
    parser.add_argument('--variant', choices=('full', 'lite'), default='full',
                        help='network size, as model.variant (default: full)')
    parser.add_argument('--backend', choices=('auto', 'onnxruntime', 'tensorrt'), default='auto',
                        help='inference backend, as model.backend (default: auto)')
    parser.add_argument('--models-dir', default='', help='default: the package models')
    parser.add_argument('--max-frames', type=int, default=None,
                        help='stop after N images (default: all)')
    parser.add_argument('--storage', choices=('mcap', 'sqlite3'), default='mcap',
                        help='rosbag2 storage of DIR/results (default: mcap)')
    parser.add_argument('--no-video', action='store_true', help='do not write overlay.mp4')
    parser.add_argument('--export-mesh', choices=MESH_FORMATS, default=None,
                        help='also write each hand of each frame as a mesh file in DIR/meshes '
                             '(camera optical frame, metres)')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    parser.add_argument('--json', action='store_true', help='print one JSON object last')
    return parser


def pipeline_config(args):
    """Return the PipelineConfig for the parsed arguments."""
    values = {'model.variant': args.variant, 'model.backend': args.backend,
              'model.models_dir': args.models_dir}
    if args.hfov is not None:
        values['camera.assumed_hfov_deg'] = float(args.hfov)
    return PipelineConfig().with_values(values)


def main(argv=None, pipeline_factory=None):
    """Run ``hand-mesh process``; return an exit code (0 also when interrupted).

    ``pipeline_factory(config)`` replaces :class:`HandMeshPipeline` (tests, benchmarks).
    """
    from hand_mesh_ros.ros.calibration import CalibrationError, load_calibration
    from hand_mesh_ros.tools.process.process_inputs import InputSelectionError, open_source
    from hand_mesh_ros.tools.process.process_outputs import ResultWriter
    args = build_parser().parse_args(argv)
    config = pipeline_config(args)

    def note(message):
        print('hand-mesh process: %s' % message, file=sys.stderr)

    try:
        calibration = load_calibration(args.camera_info) if args.camera_info else None
        source = open_source(args.input, args.image_topic, args.camera_info_topic,
                             args.max_frames, calibration, config.camera.fallback_mode,
                             config.camera.assumed_hfov_deg, args.frame_id, args.depth_topic)
    except (CalibrationError, InputSelectionError, FileNotFoundError, ValueError) as exc:
        note('error: %s' % exc)
        return 2
    note(source.describe())
    try:
        if pipeline_factory is None:
            from hand_mesh_ros.core.pipeline import HandMeshPipeline
            pipeline = HandMeshPipeline(config, log=lambda level, message: note(message))
        else:
            pipeline = pipeline_factory(config)
    except (HandMeshError, RuntimeError) as exc:   # InferenceError is a RuntimeError
        note('error: cannot start the pipeline: %s' % exc)
        return 2
    try:
        writer = ResultWriter(args.out, storage=args.storage, video=not args.no_video,
                              fps=source.fps or 25.0)
    except FileExistsError as exc:
        note('error: %s' % exc)
        return 2
    mesh_exporter = None
    if args.export_mesh:
        from hand_mesh_ros.tools.export_mesh import MeshExporter
        try:
            mesh_exporter = MeshExporter(args.out, args.export_mesh)
        except RuntimeError as exc:
            writer.close()
            getattr(pipeline, 'close', lambda: None)()
            note('error: %s' % exc)
            return 2
    progress = Progress(source.total, enabled=not args.no_progress)
    try:
        with StopRequest() as stop:
            summary = process_source(source, pipeline, writer, progress, log=note,
                                     should_stop=stop, mesh_exporter=mesh_exporter)
    finally:
        close = getattr(pipeline, 'close', None)
        if close is not None:
            close()
    note('%d frames, hand in %d, %.1f frames/s%s; outputs in %s' % (
        summary['frames_processed'], summary['frames_with_hand'],
        summary['frames_per_s'] or 0.0, ' (interrupted)' if summary['interrupted'] else '',
        args.out))
    if args.json:
        print(json.dumps(summary))
    return 0


if __name__ == '__main__':
    sys.exit(main())
