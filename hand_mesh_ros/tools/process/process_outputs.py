"""Outputs of ``hand-mesh process``: a rosbag2 of the node's topics, JSON lines, CSV, video.

Files written under the output directory:

- ``results/``: rosbag2 (MCAP by default, or sqlite3) with the node's output topics, built
  by the node's own :class:`~hand_mesh_ros.ros.outputs.OutputBuilder` (one for the run, so
  TF frame names stay the same for a track's life, as the node publishes them):
  ``/hand/poses`` (HandPoseArray) and ``/hand/mesh`` (HandMeshArray), one message per
  processed image (empty arrays when no hand is seen); ``/tf`` (tf2_msgs/TFMessage) per image
  with hands; ``/hand/markers`` (MarkerArray) per image with hands and once more to delete
  markers of hands that disappeared. The bag timestamp of each message is the image stamp.
- ``hands.jsonl``: one JSON object per processed image (stamp, hands with joints, keypoints,
  root, scores; per-stage timings; rejected hands).
- ``hands.csv``: one row per hand and image: stamp, track, side, root xyz, 21 joints xyz
  (camera optical frame, metres), reprojection error (px) and position mode.
- ``overlay.mp4``: the input images with the hands drawn (the node's debug image).
"""

from contextlib import ExitStack
import csv
import json
from pathlib import Path

import numpy as np

from hand_mesh_ros.ros import messages
from hand_mesh_ros.ros.outputs import OUTPUT_TOPICS, OUTPUT_TYPES, OutputBuilder

#: The node's outputs written to the bag (the debug image goes to ``overlay.mp4``).
BAG_OUTPUTS = ('poses', 'mesh', 'tf', 'markers')
N_JOINTS = 21
#: Row-major wrist position covariance columns of hands.csv (m^2, camera optical frame).
COVARIANCE_COLUMNS = ['cov_%s%s_m2' % (a, b) for a in 'xyz' for b in 'xyz']


def csv_header():
    """Return the column names of ``hands.csv``."""
    joints = ['j%d_%s_m' % (j, axis) for j in range(N_JOINTS) for axis in 'xyz']
    return (['stamp_ns', 'track_id', 'side', 'score', 'root_x_m', 'root_y_m', 'root_z_m']
            + joints + ['reprojection_error_px', 'hand_length_m', 'position_mode',
                        'confidence'] + COVARIANCE_COLUMNS)


def hand_root_m(hand):
    """Return (3,) the wrist bone origin in the camera frame (HandPose.wrist_pose position)."""
    bone = messages.wrist_bone_index(hand.bone_names)
    return np.asarray(hand.bone_transforms[bone], dtype=np.float64)[:3, 3]


def _rounded(values, digits):
    return np.round(np.asarray(values, dtype=np.float64), digits).tolist()


def hand_record(hand):
    """Return the JSON-ready dict of one HandEstimate (metres, pixels)."""
    return {'track_id': int(hand.track_id), 'side': hand.side,
            'side_score': round(float(hand.side_score), 4), 'score': round(float(hand.score), 4),
            'root_m': _rounded(hand_root_m(hand), 6),
            'joints_m': _rounded(hand.joints_m, 6),
            'keypoints_px': _rounded(hand.keypoints_px, 2),
            'observed_keypoints_px': _rounded(hand.observed_keypoints_px, 2),
            'hand_length_m': round(float(hand.hand_length_m), 5),
            'reprojection_error_px': round(float(hand.reprojection_error_px), 3),
            'position_mode': hand.position_mode,
            'confidence': round(float(hand.confidence), 4),
            'position_covariance_m2': [float('%.4g' % v) for v in
                                       np.asarray(hand.position_covariance_m2).ravel()]}


def csv_row(stamp_ns, hand):
    """Return one ``hands.csv`` row (see :func:`csv_header`)."""
    root = hand_root_m(hand)
    joints = np.asarray(hand.joints_m, dtype=np.float64).ravel()
    return ([int(stamp_ns), int(hand.track_id), hand.side, '%.4f' % hand.score]
            + ['%.6f' % v for v in root] + ['%.6f' % v for v in joints]
            + ['%.3f' % hand.reprojection_error_px, '%.5f' % hand.hand_length_m,
               hand.position_mode, '%.4f' % hand.confidence]
            + ['%.4g' % v for v in np.asarray(hand.position_covariance_m2).ravel()])


def bag_topic(output):
    """Return the bag topic of a node output: its name without a namespace (``/hand/poses``)."""
    return '/' + OUTPUT_TOPICS[output].lstrip('/')


class ResultWriter:
    """Write every output of one run; :meth:`close` leaves valid files (also after Ctrl-C)."""

    def __init__(self, out_dir, storage='mcap', video=True, fps=25.0, tf_prefix=''):
        """Create the output directory and open the bag, JSON lines and CSV files.

        Raises:
            FileExistsError: ``out_dir/results`` already exists (a bag is never overwritten).

        """
        from hand_mesh_ros.ros.bag_io import BagWriter
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.bag_path = self.out_dir / 'results'
        if self.bag_path.exists():
            raise FileExistsError('%s exists; choose another --out or remove it'
                                  % self.bag_path)
        self.jsonl_path = self.out_dir / 'hands.jsonl'
        self.csv_path = self.out_dir / 'hands.csv'
        self.video_path = self.out_dir / 'overlay.mp4' if video else None
        self.fps = float(fps) if fps else 25.0
        self._closing = ExitStack()   # closes what was opened, last opened first
        self._bag = BagWriter(self.bag_path, storage=storage)
        self._closing.callback(self._bag.close)
        self._jsonl = self._closing.enter_context(open(self.jsonl_path, 'w'))
        self._csv = csv.writer(self._closing.enter_context(open(self.csv_path, 'w', newline='')))
        self._csv.writerow(csv_header())
        self._closing.callback(self._close_video)
        self._outputs = OutputBuilder(tf_prefix=tf_prefix)
        self._video = None
        self._video_size = None
        self.video_frames = 0

    def write(self, index, result, hands, rgb, camera):
        """Write the outputs of one processed image.

        Args:
            index: the input frame index.
            result: the pipeline's FrameResult.
            hands: its finite hands (the ones that are published).
            rgb: (H, W, 3) uint8 input image (for the overlay).
            camera: the camera model used (None in weak-perspective mode).

        """
        stamp_ns = int(result.stamp_ns)
        self._write_bag(stamp_ns, result.frame_id, hands)
        record = {'frame': int(index), 'stamp_ns': stamp_ns, 'frame_id': result.frame_id,
                  'image_size': list(result.image_size), 'position_mode': result.position_mode,
                  'hands': [hand_record(h) for h in hands],
                  'timings_ms': {k: round(float(v), 3) for k, v in result.timings_ms.items()},
                  'rejected': dict(result.rejected),
                  'depth': result.depth.label}
        self._jsonl.write(json.dumps(record) + '\n')
        for hand in hands:
            self._csv.writerow(csv_row(stamp_ns, hand))
        if self.video_path is not None:
            self._write_video(rgb, hands, camera)

    def _write_bag(self, stamp_ns, frame_id, hands):
        """Write the node's messages of one image to the bag at the image stamp."""
        from rclpy.serialization import serialize_message
        header = messages.make_header(stamp_ns, frame_id)
        for output, message in self._outputs.build(header, hands, BAG_OUTPUTS):
            cdr = message if isinstance(message, bytes) else serialize_message(message)
            self._bag.write(bag_topic(output), OUTPUT_TYPES[output], stamp_ns, cdr)

    def _write_video(self, rgb, hands, camera):
        import cv2
        from hand_mesh_ros.ros.debug_image import draw_hands
        drawn = draw_hands(rgb, hands, camera)
        height, width = drawn.shape[:2]
        if self._video is None:
            self._video_size = (width, height)
            self._video = cv2.VideoWriter(str(self.video_path), cv2.VideoWriter_fourcc(*'mp4v'),
                                          self.fps, self._video_size)
            if not self._video.isOpened():
                raise RuntimeError('cannot open a video writer for %s' % self.video_path)
        if (width, height) != self._video_size:
            drawn = cv2.resize(drawn, self._video_size, interpolation=cv2.INTER_AREA)
        self._video.write(cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR))
        self.video_frames += 1

    def _close_video(self):
        if self._video is not None:
            self._video.release()
            self._video = None

    @property
    def topic_counts(self):
        """Return {topic: messages written}."""
        return dict(self._bag.counts)

    def close(self):
        """Close the video, the text files and the bag (safe to call twice)."""
        self._closing.close()
