"""Camera calibration files in the ROS camera_info YAML format, and CameraInfo messages.

The format is the one written by ``camera_calibration`` / read by ``camera_info_manager``::

    image_width: 640
    image_height: 480
    camera_name: my_camera
    camera_matrix: {rows: 3, cols: 3, data: [fx, 0, cx, 0, fy, cy, 0, 0, 1]}
    distortion_model: plumb_bob
    distortion_coefficients: {rows: 1, cols: 5, data: [k1, k2, p1, p2, k3]}
    rectification_matrix: {rows: 3, cols: 3, data: [1, 0, 0, 0, 1, 0, 0, 0, 1]}
    projection_matrix: {rows: 3, cols: 4, data: [fx, 0, cx, 0, 0, fy, cy, 0, 0, 0, 1, 0]}

Without a file, :func:`assumed_calibration` gives the documented default: a pinhole with
the horizontal field of view :data:`hand_mesh_ros.core.camera.camera.DEFAULT_HFOV_DEG` and the
principal point at the image centre.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Tuple

from hand_mesh_ros.core.camera.camera import DEFAULT_HFOV_DEG, nominal_focal_px

#: Horizontal field of view of the default (assumed) calibration, degrees.
ASSUMED_HFOV_DEG = DEFAULT_HFOV_DEG


class CalibrationError(ValueError):
    """A calibration file is missing, unreadable or malformed."""


@dataclass(frozen=True)
class Calibration:
    """The CameraInfo content of a calibration (row-major matrices as flat tuples)."""

    width: int
    height: int
    camera_name: str
    k: Tuple[float, ...]
    distortion_model: str
    d: Tuple[float, ...]
    r: Tuple[float, ...]
    p: Tuple[float, ...]
    assumed: bool = False


def _matrix(data, key, rows, cols, allow_missing=False):
    """Return the flat data of ``data[key]`` ({rows, cols, data}) checked to rows x cols."""
    entry = data.get(key)
    if entry is None:
        if allow_missing:
            return None
        raise CalibrationError('calibration has no %s' % key)
    values = entry.get('data') if isinstance(entry, dict) else entry
    try:
        values = tuple(float(v) for v in values)
    except (TypeError, ValueError) as exc:
        raise CalibrationError('%s must be a list of numbers' % key) from exc
    if cols is not None and len(values) != rows * cols:
        raise CalibrationError('%s must have %d numbers, got %d'
                               % (key, rows * cols, len(values)))
    return values


def parse_calibration(data):
    """Return a Calibration from the parsed YAML mapping ``data``.

    Raises:
        CalibrationError: a field is missing or has the wrong size.

    """
    if not isinstance(data, dict):
        raise CalibrationError('calibration must be a YAML mapping')
    try:
        width, height = int(data['image_width']), int(data['image_height'])
    except (KeyError, TypeError, ValueError) as exc:
        raise CalibrationError('calibration needs integer image_width and image_height') \
            from exc
    k = _matrix(data, 'camera_matrix', 3, 3)
    d = _matrix(data, 'distortion_coefficients', 1, None, allow_missing=True) or ()
    r = _matrix(data, 'rectification_matrix', 3, 3, allow_missing=True)
    p = _matrix(data, 'projection_matrix', 3, 4, allow_missing=True)
    if r is None:
        r = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    if p is None:
        p = (k[0], k[1], k[2], 0.0, k[3], k[4], k[5], 0.0, 0.0, 0.0, 1.0, 0.0)
    return Calibration(width=width, height=height,
                       camera_name=str(data.get('camera_name', '')), k=k,
                       distortion_model=str(data.get('distortion_model', 'plumb_bob')),
                       d=d, r=r, p=p)


def calibration_path(url):
    """Return the file path of ``url``: a path, ``file://PATH`` or ``package://PKG/REL``."""
    url = str(url)
    if url.startswith('file://'):
        return Path(url[len('file://'):])
    if url.startswith('package://'):
        package, _, rel = url[len('package://'):].partition('/')
        if package == 'hand_mesh_ros':
            from hand_mesh_ros.paths import data_dir
            root = data_dir().parent
            if (root / rel).exists():
                return root / rel
        try:
            from ament_index_python.packages import get_package_share_directory
            return Path(get_package_share_directory(package)) / rel
        except Exception as exc:  # noqa: B902 - ament index absent or package unknown
            raise CalibrationError('cannot resolve %s: %s' % (url, exc)) from exc
    return Path(url)


def load_calibration(url):
    """Read a calibration YAML file (path, file:// or package:// URL).

    Raises:
        CalibrationError: the file is missing, not YAML, or malformed.

    """
    import yaml
    path = calibration_path(url)
    try:
        text = path.read_text()
    except OSError as exc:
        raise CalibrationError('cannot read calibration %s: %s' % (path, exc)) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CalibrationError('calibration %s is not valid YAML: %s' % (path, exc)) from exc
    return parse_calibration(data)


def assumed_calibration(width, height, hfov_deg=ASSUMED_HFOV_DEG):
    """Return the default calibration: given horizontal FOV, centred, no distortion."""
    focal_px = nominal_focal_px(width, hfov_deg)
    cx, cy = width / 2.0, height / 2.0
    return Calibration(width=int(width), height=int(height), camera_name='assumed',
                       k=(focal_px, 0.0, cx, 0.0, focal_px, cy, 0.0, 0.0, 1.0),
                       distortion_model='plumb_bob', d=(0.0,) * 5,
                       r=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0),
                       p=(focal_px, 0.0, cx, 0.0, 0.0, focal_px, cy, 0.0, 0.0, 0.0, 1.0, 0.0),
                       assumed=True)


def uncalibrated_calibration(width, height):
    """Return what a camera driver publishes without a calibration: K, R, P and D all zero.

    ``camera_info_manager`` publishes this for an uncalibrated camera; hand_mesh_node
    recognises it (K all zero) and reports its assumed-FOV fallback as assumed.
    """
    return Calibration(width=int(width), height=int(height), camera_name='uncalibrated',
                       k=(0.0,) * 9, distortion_model='', d=(), r=(0.0,) * 9, p=(0.0,) * 12,
                       assumed=True)


def camera_info_msg(calibration, stamp, frame_id):
    """Return a sensor_msgs/CameraInfo of ``calibration`` with the given stamp and frame."""
    from sensor_msgs.msg import CameraInfo
    msg = CameraInfo()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.width, msg.height = calibration.width, calibration.height
    msg.distortion_model = calibration.distortion_model
    msg.d = list(calibration.d)
    msg.k = list(calibration.k)
    msg.r = list(calibration.r)
    msg.p = list(calibration.p)
    return msg
