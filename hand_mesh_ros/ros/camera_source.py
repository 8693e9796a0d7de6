"""camera_source: publish Image + CameraInfo from a video file, an image folder or a webcam.

Parameters (all read at start-up):

- ``source``: a video file, a folder of images (png/jpg/jpeg/bmp/tif/tiff, sorted by name)
  or ``webcam:N`` (OpenCV device N); '' = the sample video ``asl_hand.25fps.mp4``.
- ``camera_info_url``: a calibration YAML in the ROS camera_info format (path, file:// or
  package://); '' = no calibration: an UNCALIBRATED CameraInfo (image size, K, R, P all zero)
  is published, as camera drivers do, so hand_mesh_node runs in its assumed-FOV fallback and
  reports every position as assumed (logged clearly here too).
- ``frame_id`` (default 'camera_optical_frame'), ``encoding`` ('rgb8', 'bgr8', or a YUV
  4:2:2 encoding as USB cameras publish: 'yuv422_yuy2', 'yuyv', 'uyvy', 'yuv422').
- ``rate_hz``: publishing rate; 0 = the video's own rate (30 Hz for folders, as fast as the
  device delivers for webcams).
- ``loop``: start again at the end; ``max_frames``: stop after this many (0 = all).
- ``reliable``: reliable QoS instead of sensor_data (best effort).
- ``wait_for_subscribers``: publish only once ``image`` and ``camera_info`` each have this
  many subscribers (0 = start at once; camera.launch.py sets 1 so that no frame is published
  before hand_mesh_node listens).

Topics (relative): ``image`` (sensor_msgs/Image) and ``camera_info`` (sensor_msgs/CameraInfo),
with identical stamps. The node exits with code 0 at the end of a source when not looping.
"""

from pathlib import Path
import sys

import cv2
import rclpy
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data, QoSProfile, ReliabilityPolicy

from hand_mesh_ros.ros import calibration as calib
from hand_mesh_ros.ros.image_conversion import rgb_to_image, WRITABLE_ENCODINGS
from hand_mesh_ros.ros.spin import run_node

IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff')
FOLDER_RATE_HZ = 30.0


class FrameReader:
    """Read RGB frames ((H, W, 3) uint8) from a video, an image folder or a webcam."""

    def __init__(self, source):
        """Open ``source`` (see the module docstring); raise ValueError if it cannot be."""
        self.source = str(source)
        self._files = None
        self._index = 0
        self._capture = None
        if self.source.startswith('webcam:'):
            self.kind = 'webcam'
            self._device = int(self.source.split(':', 1)[1] or 0)
        elif Path(self.source).is_dir():
            self.kind = 'folder'
            self._files = sorted(p for p in Path(self.source).iterdir()
                                 if p.suffix.lower() in IMAGE_SUFFIXES)
            if not self._files:
                raise ValueError('no images (%s) in folder %s'
                                 % (', '.join(IMAGE_SUFFIXES), self.source))
        elif Path(self.source).is_file():
            self.kind = 'video'
        else:
            raise ValueError('source %r is not a file, a folder or webcam:N' % self.source)
        self.rewind()

    def rewind(self):
        """Go back to the first frame (reopens videos and webcams)."""
        self._index = 0
        if self.kind == 'folder':
            return
        if self._capture is not None:
            self._capture.release()
        target = self._device if self.kind == 'webcam' else self.source
        self._capture = cv2.VideoCapture(target)
        if not self._capture.isOpened():
            raise ValueError('cannot open %s %s' % (self.kind, self.source))

    def native_rate_hz(self):
        """Return the source's frame rate (0 for webcams: as fast as frames arrive)."""
        if self.kind == 'folder':
            return FOLDER_RATE_HZ
        if self.kind == 'webcam':
            return 0.0
        fps = float(self._capture.get(cv2.CAP_PROP_FPS) or 0.0)
        return fps if 0.0 < fps < 1000.0 else FOLDER_RATE_HZ

    def read(self):
        """Return the next RGB frame, or None at the end of the source."""
        if self.kind == 'folder':
            while self._index < len(self._files):
                path = self._files[self._index]
                self._index += 1
                bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
                if bgr is not None:
                    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)   # contiguous, fast
            return None
        ok, bgr = self._capture.read()
        if not ok or bgr is None:
            return None
        self._index += 1
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)   # contiguous: cheap to publish

    def close(self):
        """Release the video or device."""
        if self._capture is not None:
            self._capture.release()
            self._capture = None


def default_source():
    """Return the sample video's path."""
    from hand_mesh_ros.paths import data_dir
    return str(data_dir() / 'asl_hand.25fps.mp4')


class CameraSourceNode(Node):
    """Publish frames of a FrameReader as Image + CameraInfo with one stamp per frame."""

    def __init__(self, **kwargs):
        """Declare parameters, open the source, load the calibration and start the timer."""
        super().__init__('camera_source', **kwargs)
        log = self.get_logger()
        source = self.declare_parameter('source', '').value or default_source()
        url = self.declare_parameter('camera_info_url', '').value
        self.frame_id = self.declare_parameter('frame_id', 'camera_optical_frame').value
        self.encoding = self.declare_parameter('encoding', 'rgb8').value
        from rcl_interfaces.msg import ParameterDescriptor
        rate_hz = float(self.declare_parameter(
            'rate_hz', 0.0, ParameterDescriptor(
                description='Publishing rate in Hz (0 = the source rate).',
                dynamic_typing=True)).value)
        self.loop = bool(self.declare_parameter('loop', False).value)
        self.max_frames = int(self.declare_parameter('max_frames', 0).value)
        reliable = bool(self.declare_parameter('reliable', False).value)
        self.wait_for_subscribers = int(self.declare_parameter('wait_for_subscribers', 0).value)
        if self.encoding not in WRITABLE_ENCODINGS:
            raise ValueError('encoding must be one of %s, got %r'
                             % (', '.join(WRITABLE_ENCODINGS), self.encoding))
        self.reader = FrameReader(source)
        self.calibration = calib.load_calibration(url) if url else None
        if self.calibration is None:
            log.warning('no camera_info_url given: publishing an UNCALIBRATED camera_info (K all '
                        'zero, as a camera driver without calibration does); hand_mesh_node '
                        'then uses an ASSUMED field of view and reports positions as assumed')
        else:
            log.info('calibration %s: %dx%d fx=%.1f fy=%.1f cx=%.1f cy=%.1f %s'
                     % (url, self.calibration.width, self.calibration.height,
                        self.calibration.k[0], self.calibration.k[4], self.calibration.k[2],
                        self.calibration.k[5], self.calibration.distortion_model))
        qos = qos_profile_sensor_data if not reliable else QoSProfile(
            depth=10, reliability=ReliabilityPolicy.RELIABLE)
        from sensor_msgs.msg import CameraInfo, Image
        self.image_pub = self.create_publisher(Image, 'image', qos)
        self.info_pub = self.create_publisher(CameraInfo, 'camera_info', qos)
        self.rate_hz = rate_hz if rate_hz > 0.0 else self.reader.native_rate_hz()
        period_s = 1.0 / self.rate_hz if self.rate_hz > 0.0 else 0.001
        self.published = 0
        self.done = False
        self._size_warned = False
        self._timer = self.create_timer(period_s, self._tick)
        log.info('publishing %s %s at %s, loop=%s, max_frames=%d' % (
            self.reader.kind, source,
            '%.2f Hz' % self.rate_hz if self.rate_hz > 0 else 'the device rate',
            self.loop, self.max_frames))

    def _calibration_for(self, width, height):
        if self.calibration is None:
            if (self._assumed_size() != (width, height)):
                self._assumed = calib.uncalibrated_calibration(width, height)
            return self._assumed
        if (self.calibration.width, self.calibration.height) != (width, height) \
                and not self._size_warned:
            self._size_warned = True
            self.get_logger().warning(
                'calibration is for %dx%d but the source gives %dx%d; publishing it anyway '
                '(hand_mesh_node will report the mismatch and fall back)'
                % (self.calibration.width, self.calibration.height, width, height))
        return self.calibration

    def _assumed_size(self):
        assumed = getattr(self, '_assumed', None)
        return None if assumed is None else (assumed.width, assumed.height)

    def _tick(self):
        if self.done:
            return
        if min(self.image_pub.get_subscription_count(),
               self.info_pub.get_subscription_count()) < self.wait_for_subscribers:
            return
        if self.max_frames and self.published >= self.max_frames:
            self._finish('published max_frames=%d' % self.max_frames)
            return
        rgb = self.reader.read()
        if rgb is None and self.loop and self.published:
            self.reader.rewind()
            rgb = self.reader.read()
        if rgb is None:
            self._finish('end of %s after %d frames' % (self.reader.kind, self.published))
            return
        self.publish_frame(rgb)

    def publish_frame(self, rgb):
        """Publish one RGB frame and its camera_info with the current time as stamp."""
        stamp = self.get_clock().now().to_msg()
        height, width = rgb.shape[:2]
        info = calib.camera_info_msg(self._calibration_for(width, height), stamp, self.frame_id)
        image = rgb_to_image(rgb, stamp=stamp, frame_id=self.frame_id, encoding=self.encoding)
        self.info_pub.publish(info)
        self.image_pub.publish(image)
        self.published += 1

    def _finish(self, why):
        self.done = True
        self.get_logger().info('camera_source done: %s' % why)

    def wait_for_acknowledgements(self, timeout_s=10.0):
        """Wait (reliable QoS only) until subscribers acknowledged every published frame."""
        from rclpy.duration import Duration
        for pub in (self.image_pub, self.info_pub):
            pub.wait_for_all_acked(Duration(seconds=timeout_s))

    def close(self):
        """Release the source."""
        self.reader.close()


def main(argv=None):
    """Run camera_source until the source ends (not looping), Ctrl-C or SIGTERM."""
    rclpy.init(args=argv)

    def finish(node):
        if node.done:
            node.wait_for_acknowledgements()

    return run_node('camera_source', CameraSourceNode, lambda node: node.done,
                    (ValueError, calib.CalibrationError), finish=finish)


if __name__ == '__main__':
    sys.exit(main())
