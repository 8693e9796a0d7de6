"""sensor_msgs/Image and CompressedImage <-> numpy RGB (what the core pipeline consumes).

``image_to_rgb`` returns an (H, W, 3) uint8 RGB array that owns its memory, for the encodings
rgb8, bgr8, rgba8, bgra8, mono8, the 16-bit rgb16, bgr16, rgba16, bgra16, mono16 (scaled to
8 bit by dropping the low byte, ``v >> 8``) and the YUV 4:2:2 encodings USB cameras publish
(usb_cam, v4l2_camera): ``yuv422_yuy2`` and ``yuyv`` (bytes Y0 U Y1 V), ``uyvy`` and
``yuv422`` (ROS's name for U Y0 V Y1), converted with OpenCV (BT.601); their width must be
even (two pixels share U and V). mono is replicated to three channels and alpha is dropped.
``step`` (row padding) and ``is_bigendian`` (16-bit data) are honoured.

cv_bridge is used for the 8-bit encodings when it is importable
(``CvBridge().imgmsg_to_cv2(msg, 'rgb8')``); otherwise this module's own conversion, which
gives identical results, is used. Either way the message is checked first, so a bad message
always raises :class:`hand_mesh_ros.core.errors.ImageConversionError` with a ``reason`` code.
"""

import array

import numpy as np

from hand_mesh_ros.core.errors import ImageConversionError
from hand_mesh_ros.ros.image_header import declared_image_size

#: Default largest accepted image, in pixels (4096 x 4096; an 8K frame is refused).
DEFAULT_MAX_PIXELS = 4096 * 4096

#: encoding -> (channels, bytes per channel, channel order of the data).
ENCODINGS = {
    'rgb8': (3, 1, 'rgb'),
    'bgr8': (3, 1, 'bgr'),
    'rgba8': (4, 1, 'rgba'),
    'bgra8': (4, 1, 'bgra'),
    'mono8': (1, 1, 'mono'),
    'rgb16': (3, 2, 'rgb'),
    'bgr16': (3, 2, 'bgr'),
    'rgba16': (4, 2, 'rgba'),
    'bgra16': (4, 2, 'bgra'),
    'mono16': (1, 2, 'mono'),
    'yuv422_yuy2': (2, 1, 'yuyv'),
    'yuyv': (2, 1, 'yuyv'),
    'uyvy': (2, 1, 'uyvy'),
    'yuv422': (2, 1, 'uyvy'),
}
#: Data orders of the YUV 4:2:2 encodings (two pixels share one U and one V).
YUV422_ORDERS = ('yuyv', 'uyvy')

#: The OpenCV colour conversion (cv2 constant name) to RGB of each data order but rgb.
_CV2_TO_RGB = {'bgr': 'COLOR_BGR2RGB', 'rgba': 'COLOR_RGBA2RGB', 'bgra': 'COLOR_BGRA2RGB',
               'mono': 'COLOR_GRAY2RGB', 'yuyv': 'COLOR_YUV2RGB_YUY2',
               'uyvy': 'COLOR_YUV2RGB_UYVY'}
#: The OpenCV conversion from RGB of the encodings :func:`rgb_to_image` writes but rgb8.
_CV2_FROM_RGB = {'bgr8': 'COLOR_RGB2BGR', 'yuv422_yuy2': 'COLOR_RGB2YUV_YUY2',
                 'yuyv': 'COLOR_RGB2YUV_YUY2', 'uyvy': 'COLOR_RGB2YUV_UYVY',
                 'yuv422': 'COLOR_RGB2YUV_UYVY'}

_BRIDGE = []  # [CvBridge instance or None], filled on first use


def _cv_bridge():
    """Return a shared ``CvBridge`` or None when cv_bridge is not importable."""
    if not _BRIDGE:
        try:
            from cv_bridge import CvBridge
            _BRIDGE.append(CvBridge())
        except Exception:  # noqa: B902 - absent, or a ROS 1 package of the same name
            _BRIDGE.append(None)
    return _BRIDGE[0]


def check_image_size(width, height, max_pixels=DEFAULT_MAX_PIXELS):
    """Raise ImageConversionError for a zero or absurd image size."""
    width, height = int(width), int(height)
    if width <= 0 or height <= 0:
        raise ImageConversionError('image has zero size (%dx%d)' % (width, height), 'empty')
    if width * height > int(max_pixels):
        raise ImageConversionError(
            'image is %dx%d = %d pixels, more than the limit of %d (input.max_image_pixels)'
            % (width, height, width * height, int(max_pixels)), 'too_large')


def check_image_fields(encoding, width, height, step, data_bytes=None,
                       max_pixels=DEFAULT_MAX_PIXELS):
    """Check an Image's declared fields; return ``(channels, bytes per channel, order)``.

    Reads only the fields (never the data), so a frame can be refused on its header.

    Raises:
        ImageConversionError: unknown encoding, zero or absurd size, odd width of a YUV 4:2:2
            image, step smaller than a row
            (or not a multiple of the channel size), ``data_bytes`` (when given) fewer
            than ``step * height``.

    """
    if str(encoding).lower() not in ENCODINGS:
        raise ImageConversionError(
            'unsupported image encoding %r (supported: %s)'
            % (str(encoding)[:40], ', '.join(sorted(ENCODINGS))), 'unknown_encoding')
    width, height, step = int(width), int(height), int(step)
    check_image_size(width, height, max_pixels)
    channels, depth_bytes, order = ENCODINGS[str(encoding).lower()]
    if order in YUV422_ORDERS and width % 2:
        raise ImageConversionError('%s image has an odd width %d (4:2:2 pairs pixels)'
                                   % (encoding, width), 'odd_width')
    row_bytes = width * channels * depth_bytes
    if step < row_bytes:
        raise ImageConversionError(
            'step %d is smaller than a %s row of width %d (%d bytes)'
            % (step, encoding, width, row_bytes), 'bad_step')
    if depth_bytes > 1 and step % depth_bytes:
        raise ImageConversionError('step %d is not a multiple of %d for %s'
                                   % (step, depth_bytes, encoding), 'bad_step')
    if data_bytes is not None and data_bytes < step * height:
        raise ImageConversionError(
            'image data has %d bytes, %dx%d %s with step %d needs %d'
            % (data_bytes, width, height, encoding, step, step * height), 'truncated')
    return channels, depth_bytes, order


def image_to_rgb(msg, max_pixels=DEFAULT_MAX_PIXELS, use_cv_bridge=True):
    """Convert a sensor_msgs/Image to an (H, W, 3) uint8 RGB array (a new, owned array).

    Args:
        msg: sensor_msgs/Image (or any object with its fields).
        max_pixels: the largest accepted width * height.
        use_cv_bridge: use cv_bridge for 8-bit encodings when it is importable.

    Raises:
        ImageConversionError: unknown encoding, step smaller than a row, truncated data,
            zero or absurd size.

    """
    check_image_fields(msg.encoding, msg.width, msg.height, msg.step, max_pixels=max_pixels)
    data = np.frombuffer(msg.data, dtype=np.uint8)
    channels, depth_bytes, order = check_image_fields(
        msg.encoding, msg.width, msg.height, msg.step, data.size, max_pixels)
    width, height, step = int(msg.width), int(msg.height), int(msg.step)
    bridge = (_cv_bridge() if use_cv_bridge and depth_bytes == 1
              and order not in YUV422_ORDERS else None)
    if bridge is not None:
        return np.ascontiguousarray(bridge.imgmsg_to_cv2(msg, 'rgb8'), dtype=np.uint8)
    return _convert(data, width, height, step, channels, depth_bytes, order,
                    bool(msg.is_bigendian))


def _convert(data, width, height, step, channels, depth_bytes, order, is_bigendian):
    """Return (H, W, 3) uint8 RGB from raw bytes (already checked)."""
    rows = data[:step * height].reshape(height, step)[:, :width * channels * depth_bytes]
    if depth_bytes == 2:
        dtype = np.dtype('>u2' if is_bigendian else '<u2')
        pixels = (rows.copy().view(dtype) >> 8).astype(np.uint8)
    else:
        pixels = rows
    pixels = pixels.reshape(height, width, channels)
    if order == 'rgb':
        return np.array(pixels, dtype=np.uint8, order='C', copy=True)
    import cv2   # one pass in C; numpy's strided channel shuffle is ~10x slower
    return cv2.cvtColor(np.ascontiguousarray(pixels), getattr(cv2, _CV2_TO_RGB[order]))


def compressed_to_rgb(msg, max_pixels=DEFAULT_MAX_PIXELS):
    """Decode a sensor_msgs/CompressedImage (jpeg, png, ...) to (H, W, 3) uint8 RGB.

    The size the data declares (JPEG SOFn, PNG IHDR) is checked against ``max_pixels``
    *before* decoding (:func:`hand_mesh_ros.ros.image_header.declared_image_size`): a small
    file declaring a huge image is refused without allocating it. Only JPEG and PNG are
    decoded, recognised by their signature (the ``format`` string is not trusted).

    Raises:
        ImageConversionError: empty data, a format other than JPEG or PNG, undecodable data,
            zero or absurd (declared or decoded) size.

    """
    import cv2
    data = np.frombuffer(msg.data, dtype=np.uint8)
    if data.size == 0:
        raise ImageConversionError('compressed image has no data', 'empty')
    kind, width, height = declared_image_size(memoryview(data))
    check_image_size(width, height, max_pixels)
    try:
        bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
    except cv2.error as exc:
        raise ImageConversionError('cannot decode compressed image (format %r): %s'
                                   % (str(msg.format)[:40], exc), 'decode_failed') from exc
    if bgr is None:
        raise ImageConversionError('cannot decode compressed image (format %r)'
                                   % str(msg.format)[:40],
                                   'decode_failed')
    if sorted(bgr.shape[:2]) != sorted((height, width)):   # EXIF orientation may transpose
        raise ImageConversionError(
            'decoded %s is %dx%d but its header declares %dx%d'
            % (kind, bgr.shape[1], bgr.shape[0], width, height), 'decode_failed')
    return np.ascontiguousarray(bgr[:, :, ::-1])


#: Encodings :func:`rgb_to_image` writes.
WRITABLE_ENCODINGS = ('rgb8',) + tuple(_CV2_FROM_RGB)


def rgb_to_image(rgb, stamp=None, frame_id='', encoding='rgb8'):
    """Return a sensor_msgs/Image holding ``rgb`` ((H, W, 3) uint8 RGB) in ``encoding``.

    Args:
        rgb: (H, W, 3) uint8 RGB image (not modified; even width for the YUV encodings).
        stamp: builtin_interfaces/Time for the header, or None.
        frame_id: header frame id.
        encoding: one of :data:`WRITABLE_ENCODINGS`: rgb8, bgr8 (channels reordered) or a
            YUV 4:2:2 encoding as a USB camera publishes it (yuv422_yuy2, yuyv, uyvy, yuv422).

    """
    from sensor_msgs.msg import Image
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError('rgb must be (H, W, 3) uint8, got %r %s' % (rgb.shape, rgb.dtype))
    if encoding not in WRITABLE_ENCODINGS:
        raise ValueError('encoding must be one of %s, got %r'
                         % (', '.join(WRITABLE_ENCODINGS), encoding))
    if ENCODINGS[encoding][2] in YUV422_ORDERS and rgb.shape[1] % 2:
        raise ValueError('%s needs an even width, got %d' % (encoding, rgb.shape[1]))
    pixels = rgb
    if encoding != 'rgb8':
        import cv2
        pixels = cv2.cvtColor(np.ascontiguousarray(rgb), getattr(cv2, _CV2_FROM_RGB[encoding]))
    msg = Image()
    if stamp is not None:
        msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.height, msg.width = int(rgb.shape[0]), int(rgb.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = ENCODINGS[encoding][0] * msg.width
    data = array.array('B')
    data.frombytes(np.ascontiguousarray(pixels).data)   # one copy (bytes -> array is slow)
    msg.data = data
    return msg
