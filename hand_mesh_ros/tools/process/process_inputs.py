"""Inputs of ``hand-mesh process``: a video file, an image folder or a rosbag2 recording.

Every source yields :class:`InputFrame` items (RGB image, image stamp, frame id, the camera
model to use and why). Bags are read with the `rosbags` library (MCAP and sqlite3 storage);
images are ``sensor_msgs/Image`` or ``sensor_msgs/CompressedImage`` and are converted with the
node's own conversions. Camera_info is paired with each image by header stamp; when no
camera_info has the image's stamp the latest one before it (else the first one) is used and
the frame is marked 'unpaired', as the node does. A depth image topic registered to the colour
image (``--depth-topic``; by default the only Image topic with 'depth' in its name) is paired
by stamp within ``DEPTH_TOLERANCE_S`` and converted like the node does (16UC1 mm, 32FC1 m).
"""

import bisect
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from hand_mesh_ros.core.camera.camera import DEFAULT_HFOV_DEG
from hand_mesh_ros.tools.video_frames import iter_frames, video_fps

IMAGE_TYPES = ('sensor_msgs/msg/Image', 'sensor_msgs/msg/CompressedImage')
CAMERA_INFO_TYPE = 'sensor_msgs/msg/CameraInfo'
DEFAULT_FRAME_ID = 'camera_optical_frame'
DEPTH_TOLERANCE_S = 0.02


class InputSelectionError(ValueError):
    """The input cannot be read as asked (e.g. an ambiguous or missing topic)."""


@dataclass(frozen=True)
class InputFrame:
    """One image to process.

    Attributes:
        rgb: (H, W, 3) uint8 RGB image.
        stamp_ns: the image stamp (header stamp for bags; index / fps for videos), ns.
        frame_id: the camera optical frame id.
        camera: the CameraModel to use, or None for the pipeline's configured fallback.
        camera_status: 'ok', 'unpaired', 'missing', 'invalid', 'size_mismatch' or
            'calibration_file' (camera from ``--camera-info``).
        depth: (H, W) float32 depth in metres paired with the image, or None.

    """

    rgb: np.ndarray
    stamp_ns: int
    frame_id: str
    camera: Optional[object]
    camera_status: str
    depth: Optional[np.ndarray] = None


def is_bag(path):
    """Return True when ``path`` is a rosbag2 directory (has metadata.yaml)."""
    return Path(path).is_dir() and (Path(path) / 'metadata.yaml').is_file()


def choose_topics(topics, image_topic=None, camera_info_topic=None):
    """Return (image topic, camera_info topic or None) for a bag's ``{topic: (type, count)}``.

    The image topic defaults to the only Image/CompressedImage topic; camera_info defaults to
    the image topic's sibling ``<namespace>/camera_info`` (``.../image_raw`` ->
    ``.../camera_info``; ``/compressed`` is stripped first), else to the only CameraInfo topic.

    Raises:
        InputSelectionError: no or several image topics (listed), or a named topic is absent
            or has the wrong type.

    """
    listing = ', '.join('%s [%s, %d msgs]' % (t, mt, n) for t, (mt, n) in sorted(topics.items()))
    images = sorted(t for t, (mt, _) in topics.items() if mt in IMAGE_TYPES)
    colour = [t for t in images if not is_depth_topic(t)]
    if image_topic is None and len(colour) == 1:
        images = colour
    infos = sorted(t for t, (mt, _) in topics.items() if mt == CAMERA_INFO_TYPE)
    if image_topic is None:
        if len(images) != 1:
            raise InputSelectionError(
                '%s image topic in the bag; choose one with --image-topic. Topics: %s'
                % ('no' if not images else 'more than one', listing or 'none'))
        image_topic = images[0]
    elif image_topic not in images:
        raise InputSelectionError('%s is not an Image/CompressedImage topic of the bag. '
                                  'Topics: %s' % (image_topic, listing))
    if camera_info_topic is not None:
        if camera_info_topic not in infos:
            raise InputSelectionError('%s is not a CameraInfo topic of the bag. Topics: %s'
                                      % (camera_info_topic, listing))
        return image_topic, camera_info_topic
    base = image_topic[:-len('/compressed')] if image_topic.endswith('/compressed') \
        else image_topic
    sibling = base.rsplit('/', 1)[0] + '/camera_info'
    if sibling in infos:
        return image_topic, sibling
    return image_topic, infos[0] if len(infos) == 1 else None


def is_depth_topic(topic):
    """Return True for a topic name that names a depth image (e.g. aligned_depth_to_color)."""
    return 'depth' in topic.lower()


def choose_depth_topic(topics, depth_topic=None, image_topic=None):
    """Return the depth Image topic of a bag, or None ('' = none; None = the only one).

    Raises:
        InputSelectionError: a named depth topic is not an Image topic of the bag.

    """
    images = sorted(t for t, (mt, _) in topics.items() if mt == IMAGE_TYPES[0])
    if depth_topic == '':
        return None
    if depth_topic is not None:
        if depth_topic not in images:
            raise InputSelectionError('%s is not an Image topic of the bag' % depth_topic)
        return depth_topic
    depth = [t for t in images if is_depth_topic(t) and t != image_topic]
    return depth[0] if len(depth) == 1 else None


class DepthStream:
    """A bag's depth messages read alongside the images (stamps in order), paired by stamp."""

    def __init__(self, path, topic, tolerance_s=DEPTH_TOLERANCE_S):
        """Open the depth topic of the bag at ``path``."""
        from hand_mesh_ros.ros.bag_io import read_bag
        from hand_mesh_ros.ros.depth_input import DepthInput
        self._messages = read_bag(path, [topic])
        self._depth = DepthInput(capacity=8)
        self._tolerance_s = tolerance_s
        self._last_ns = None

    def depth_for(self, stamp_ns):
        """Return (H, W) float32 metres paired with ``stamp_ns``, or None."""
        from rclpy.serialization import deserialize_message
        from hand_mesh_ros.ros.bag_io import message_class
        from hand_mesh_ros.ros.stamp_cache import stamp_to_ns
        limit = stamp_ns + int(self._tolerance_s * 1e9)
        while self._messages is not None and (self._last_ns is None or self._last_ns <= limit):
            item = next(self._messages, None)
            if item is None:
                self._messages = None
                break
            msg = deserialize_message(item[3], message_class(item[1]))
            self._last_ns = stamp_to_ns(msg.header.stamp)
            self._depth.add_image(msg)
        paired = self._depth.paired(stamp_ns, self._tolerance_s)
        return None if paired is None else paired[0]

    def close(self):
        """Close the bag reader."""
        close = getattr(self._messages, 'close', None)
        if close is not None:
            close()


class CameraInfoPairing:
    """Camera_info messages of a recording by header stamp, with the node's fallbacks."""

    def __init__(self, messages, fallback_mode='assumed_fov', assumed_hfov_deg=DEFAULT_HFOV_DEG):
        """Index ``messages`` (sensor_msgs/CameraInfo) by their header stamps."""
        from hand_mesh_ros.ros.camera_info import CameraResolver
        from hand_mesh_ros.ros.stamp_cache import stamp_to_ns
        by_stamp = {stamp_to_ns(m.header.stamp): m for m in messages}
        self._stamps = sorted(by_stamp)
        self._messages = [by_stamp[s] for s in self._stamps]
        self._resolver = CameraResolver(capacity=1, fallback_mode=fallback_mode,
                                        assumed_hfov_deg=assumed_hfov_deg)

    def __len__(self):
        """Return the number of distinct camera_info stamps."""
        return len(self._stamps)

    def resolve(self, stamp_ns, width, height):
        """Return the node's CameraResolution for an image (exact stamp, else latest before)."""
        if self._stamps:
            index = bisect.bisect_right(self._stamps, int(stamp_ns)) - 1
            # A one-message cache: the resolver sees only the chosen message, so it reports
            # 'ok' for an exact stamp and 'unpaired' otherwise, with memoised conversions.
            self._resolver.add_camera_info(self._messages[max(index, 0)])
        return self._resolver.resolve(stamp_ns, width, height)


class BagSource:
    """Images (+ camera_info) of a rosbag2 recording, in time order."""

    def __init__(self, path, image_topic=None, camera_info_topic=None, max_frames=None,
                 calibration=None, fallback_mode='assumed_fov',
                 assumed_hfov_deg=DEFAULT_HFOV_DEG, depth_topic=None):
        """Open the bag and choose its topics (see :func:`choose_topics`)."""
        from hand_mesh_ros.ros.bag_io import bag_topics
        self.path = Path(path)
        topics = bag_topics(self.path)
        self.image_topic, self.camera_info_topic = choose_topics(topics, image_topic,
                                                                 camera_info_topic)
        self.image_type = topics[self.image_topic][0]
        self.depth_topic = choose_depth_topic(topics, depth_topic, self.image_topic)
        self.max_frames = max_frames
        self.calibration = calibration
        count = topics[self.image_topic][1]
        self.total = count if max_frames is None else min(count, max_frames)
        self._fallback = (fallback_mode, assumed_hfov_deg)
        self.fps = self._first_stamps_fps()
        self.skipped = {}   # ImageConversionError reason -> images skipped

    def _first_stamps_fps(self, n=30):
        """Return the image rate from the first ``n`` bag timestamps of the image topic."""
        from hand_mesh_ros.ros.bag_io import read_bag
        stamps = []
        messages = read_bag(self.path, [self.image_topic])
        try:
            for _, _, stamp_ns, _ in messages:
                stamps.append(stamp_ns)
                if len(stamps) >= n:
                    break
        finally:
            messages.close()
        return estimate_fps(stamps)

    def describe(self):
        """Return a one-line description of what is read."""
        info = self.camera_info_topic or 'none (assumed camera)'
        if self.calibration is not None:
            info = 'calibration file (overrides the bag)'
        return 'bag %s: images %s [%s], camera_info %s, depth %s' % (
            self.path, self.image_topic, self.image_type.split('/')[-1], info,
            self.depth_topic or 'none')

    def _camera_infos(self):
        from rclpy.serialization import deserialize_message
        from hand_mesh_ros.ros.bag_io import message_class, read_bag
        if self.camera_info_topic is None or self.calibration is not None:
            return []
        return [deserialize_message(cdr, message_class(msgtype))
                for _, msgtype, _, cdr in read_bag(self.path, [self.camera_info_topic])]

    def frames(self):
        """Yield :class:`InputFrame` per image message (at most ``max_frames``)."""
        from hand_mesh_ros.ros.bag_io import message_class
        pairing = CameraInfoPairing(self._camera_infos(), *self._fallback)
        cls = message_class(self.image_type)
        depth = None if self.depth_topic is None else DepthStream(self.path, self.depth_topic)
        try:
            yield from self._frames(pairing, cls, depth)
        finally:
            if depth is not None:
                depth.close()

    def _frames(self, pairing, cls, depth):
        from rclpy.serialization import deserialize_message
        from hand_mesh_ros.core.errors import ImageConversionError
        from hand_mesh_ros.ros import image_conversion
        from hand_mesh_ros.ros.bag_io import read_bag
        from hand_mesh_ros.ros.stamp_cache import stamp_to_ns
        produced = 0
        for _, _, _, cdr in read_bag(self.path, [self.image_topic]):
            if self.max_frames is not None and produced >= self.max_frames:
                break
            msg = deserialize_message(cdr, cls)
            try:
                if hasattr(msg, 'encoding'):
                    rgb = image_conversion.image_to_rgb(msg)
                else:
                    rgb = image_conversion.compressed_to_rgb(msg)
            except ImageConversionError as exc:   # the node drops such images too
                self.skipped[exc.reason] = self.skipped.get(exc.reason, 0) + 1
                continue
            stamp_ns = stamp_to_ns(msg.header.stamp)
            frame_id = msg.header.frame_id or DEFAULT_FRAME_ID
            if self.calibration is not None:
                camera, status = calibration_camera(self.calibration, rgb, stamp_ns,
                                                    frame_id), 'calibration_file'
            else:
                resolution = pairing.resolve(stamp_ns, rgb.shape[1], rgb.shape[0])
                camera, status = resolution.camera, resolution.status
            produced += 1
            depth_m = None
            if depth is not None:
                try:
                    depth_m = depth.depth_for(stamp_ns)
                except ImageConversionError as exc:
                    key = 'depth_' + exc.reason
                    self.skipped[key] = self.skipped.get(key, 0) + 1
            yield InputFrame(rgb, stamp_ns, frame_id, camera, status, depth_m)


def estimate_fps(stamps_ns, default=25.0):
    """Return the frame rate from the median stamp difference (``default`` if undefined)."""
    steps = np.diff(np.asarray(stamps_ns, dtype=np.float64))
    steps = steps[steps > 0]
    return float(1e9 / np.median(steps)) if len(steps) else default


def calibration_camera(calibration, rgb, stamp_ns, frame_id):
    """Return the CameraModel of a loaded calibration for an image (checks the size)."""
    from hand_mesh_ros.ros.calibration import camera_info_msg
    from hand_mesh_ros.ros.camera_info import camera_model_from_msg
    from hand_mesh_ros.ros.messages import ns_to_time
    camera = camera_model_from_msg(camera_info_msg(calibration, ns_to_time(stamp_ns), frame_id))
    camera.check_image_size(rgb.shape[1], rgb.shape[0])
    return camera


class VideoSource:
    """Frames of a video file or an image folder (stamps from 0 at the file's rate)."""

    def __init__(self, path, max_frames=None, calibration=None, frame_id=DEFAULT_FRAME_ID):
        """Open nothing yet; count the frames for the progress bar."""
        import cv2
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError('no such input: %s' % self.path)
        self.max_frames = max_frames
        self.calibration = calibration
        self.frame_id = frame_id
        self.fps = video_fps(self.path)
        if self.path.is_dir():
            from hand_mesh_ros.tools.video_frames import IMAGE_SUFFIXES
            count = sum(1 for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            capture = cv2.VideoCapture(str(self.path))
            count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if capture.isOpened() else 0
            capture.release()
        self.total = count if max_frames is None else min(count, max_frames)
        self._camera = None

    def describe(self):
        """Return a one-line description of what is read."""
        kind = 'image folder' if self.path.is_dir() else 'video'
        camera = ('calibration file' if self.calibration is not None
                  else 'no calibration: assumed field of view')
        return '%s %s (%.2f fps), camera: %s' % (kind, self.path, self.fps, camera)

    def frames(self):
        """Yield :class:`InputFrame` per image."""
        for _, stamp_ns, rgb in iter_frames(self.path, max_frames=self.max_frames):
            camera, status = None, 'missing'
            if self.calibration is not None:
                if self._camera is None:
                    self._camera = calibration_camera(self.calibration, rgb, stamp_ns,
                                                      self.frame_id)
                camera, status = self._camera, 'calibration_file'
            yield InputFrame(rgb, stamp_ns, self.frame_id, camera, status)


def open_source(path, image_topic=None, camera_info_topic=None, max_frames=None,
                calibration=None, fallback_mode='assumed_fov',
                assumed_hfov_deg=DEFAULT_HFOV_DEG, frame_id=DEFAULT_FRAME_ID, depth_topic=None):
    """Return a :class:`BagSource` or :class:`VideoSource` for ``path``."""
    if is_bag(path):
        return BagSource(path, image_topic, camera_info_topic, max_frames, calibration,
                         fallback_mode, assumed_hfov_deg, depth_topic)
    if image_topic is not None or camera_info_topic is not None:
        raise InputSelectionError('--image-topic / --camera-info-topic need a rosbag2 input; '
                                  '%s is not one (no metadata.yaml)' % path)
    return VideoSource(path, max_frames, calibration, frame_id)
