"""Image / CompressedImage <-> numpy conversion over encodings, strides, sizes and bad input."""

import cv2
import numpy as np
import pytest

pytest.importorskip('rclpy', reason='ROS 2 (rclpy) is not installed: run bootstrap.sh first')

from sensor_msgs.msg import CompressedImage, Image  # noqa: E402,I100

from hand_mesh_ros.core.errors import HandMeshError, ImageConversionError  # noqa: E402
from hand_mesh_ros.ros import image_conversion as ic  # noqa: E402


def _random_rgb(height, width, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _encode(rgb, encoding, pad=0, bigendian=False):
    """Build an Image message from rgb with ``pad`` extra bytes per row (independent code)."""
    height, width = rgb.shape[:2]
    if encoding.startswith('mono'):
        planes = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[:, :, None]
    else:
        planes = {'rgb': rgb, 'bgr': rgb[:, :, ::-1]}[encoding[:3]]
        if 'a' in encoding[3:4]:
            alpha = np.full((height, width, 1), 77, np.uint8)
            planes = np.concatenate([planes, alpha], axis=2)
    if encoding.endswith('16'):
        # 16-bit: high byte = the 8-bit value, low byte = noise that must be dropped.
        low = np.random.default_rng(1).integers(0, 256, planes.shape, dtype=np.uint16)
        values = (planes.astype(np.uint16) << 8) | low
        values = values.astype('>u2' if bigendian else '<u2')
        row = values.reshape(height, -1).view(np.uint8)
    else:
        row = planes.reshape(height, -1)
    padded = np.concatenate([row, np.full((height, pad), 255, np.uint8)], axis=1)
    msg = Image(height=height, width=width, encoding=encoding, is_bigendian=int(bigendian),
                step=padded.shape[1])
    msg.data = padded.tobytes()
    return msg


def _expected(rgb, encoding):
    if encoding.startswith('mono'):
        return np.repeat(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[:, :, None], 3, axis=2)
    return rgb


@pytest.mark.parametrize('encoding', sorted(  # (lossy 4:2:2 ones: test_yuv_images.py)
    name for name, (_, _, order) in ic.ENCODINGS.items() if order not in ic.YUV422_ORDERS))
@pytest.mark.parametrize('pad', [0, 3, 64])
@pytest.mark.parametrize('size', [(4, 6), (7, 5), (480, 640), (1, 1), (1079, 619)])
def test_every_encoding_stride_and_size_round_trips(encoding, pad, size):
    rgb = _random_rgb(*size, seed=size[0] * 31 + pad)
    if encoding.endswith('16') and pad % 2:
        pad += 1  # a 16-bit row must stay aligned to whole pixels
    msg = _encode(rgb, encoding, pad=pad)
    out = ic.image_to_rgb(msg)
    assert out.shape == (size[0], size[1], 3) and out.dtype == np.uint8
    assert out.flags.c_contiguous and out.flags.writeable
    np.testing.assert_array_equal(out, _expected(rgb, encoding))


@pytest.mark.parametrize('encoding', ['rgb16', 'mono16', 'bgra16'])
def test_big_endian_16_bit(encoding):
    rgb = _random_rgb(9, 11, seed=3)
    out = ic.image_to_rgb(_encode(rgb, encoding, pad=4, bigendian=True))
    np.testing.assert_array_equal(out, _expected(rgb, encoding))


def test_result_is_writable_and_independent_of_the_message():
    rgb = _random_rgb(5, 8)
    msg = _encode(rgb, 'rgb8')
    out = ic.image_to_rgb(msg)
    out[:] = 0
    np.testing.assert_array_equal(ic.image_to_rgb(msg), rgb)


def test_matches_opencv_colour_conversions():
    rgb = _random_rgb(33, 17, seed=5)
    bgra = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGRA)
    msg = Image(height=33, width=17, encoding='bgra8', step=17 * 4)
    msg.data = bgra.tobytes()
    np.testing.assert_array_equal(ic.image_to_rgb(msg), cv2.cvtColor(bgra, cv2.COLOR_BGRA2RGB))


def _bad(msg, reason, **kwargs):
    with pytest.raises(ImageConversionError) as info:
        ic.image_to_rgb(msg, **kwargs)
    assert info.value.reason == reason
    assert isinstance(info.value, HandMeshError)
    return str(info.value)


def test_bad_inputs_raise_the_project_error_with_a_reason():
    good = _encode(_random_rgb(6, 10), 'rgb8')
    unknown = _encode(_random_rgb(6, 10), 'rgb8')
    unknown.encoding = '32FC1'
    assert '32FC1' in _bad(unknown, 'unknown_encoding')
    short_step = _encode(_random_rgb(6, 10), 'rgb8')
    short_step.step = 29
    assert 'step 29' in _bad(short_step, 'bad_step')
    truncated = _encode(_random_rgb(6, 10), 'rgb8')
    truncated.data = bytes(truncated.data)[:-1]
    _bad(truncated, 'truncated')
    empty = Image(height=0, width=10, encoding='rgb8', step=30)
    _bad(empty, 'empty')
    huge = Image(height=4320, width=7680, encoding='rgb8', step=7680 * 3)  # 8K, no data
    _bad(huge, 'too_large')
    _bad(good, 'too_large', max_pixels=59)
    assert ic.image_to_rgb(good, max_pixels=60).shape == (6, 10, 3)
    # A mismatched encoding: mono8 header on rgb8 data of the same size is not an error
    # we can detect, but rgb8 header on mono8 data is (too little data).
    mismatched = _encode(_random_rgb(6, 10), 'mono8')
    mismatched.encoding = 'rgb8'
    mismatched.step = 30
    _bad(mismatched, 'truncated')
    odd16 = _encode(_random_rgb(3, 3), 'mono16', pad=2)
    odd16.step = 7
    _bad(odd16, 'bad_step')


def test_compressed_png_and_jpeg_decode():
    rgb = _random_rgb(21, 13, seed=9)
    ok, png = cv2.imencode('.png', rgb[:, :, ::-1])
    assert ok
    msg = CompressedImage(format='png')
    msg.data = png.tobytes()
    np.testing.assert_array_equal(ic.compressed_to_rgb(msg), rgb)
    smooth = np.zeros((64, 48, 3), np.uint8)
    smooth[:, :, 0] = 200
    smooth[:, :, 2] = 40
    ok, jpg = cv2.imencode('.jpg', smooth[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
    msg = CompressedImage(format='jpeg')
    msg.data = jpg.tobytes()
    out = ic.compressed_to_rgb(msg)
    assert out.shape == (64, 48, 3)
    assert np.abs(out.astype(int) - smooth).max() <= 3


def test_compressed_bad_inputs():
    msg = CompressedImage(format='jpeg')
    with pytest.raises(ImageConversionError) as info:
        ic.compressed_to_rgb(msg)
    assert info.value.reason == 'empty'
    msg.data = b'not a jpeg at all' * 10
    with pytest.raises(ImageConversionError) as info:
        ic.compressed_to_rgb(msg)
    assert info.value.reason == 'unsupported_format'
    msg.data = b'\xff\xd8\xff\xe0' + b'\x00' * 40      # a JPEG signature, then garbage
    with pytest.raises(ImageConversionError) as info:
        ic.compressed_to_rgb(msg)
    assert info.value.reason == 'decode_failed'
    ok, png = cv2.imencode('.png', np.zeros((20, 30, 3), np.uint8))
    msg.data = png.tobytes()
    with pytest.raises(ImageConversionError) as info:
        ic.compressed_to_rgb(msg, max_pixels=599)
    assert info.value.reason == 'too_large'


@pytest.mark.parametrize('encoding', ['rgb8', 'bgr8'])
def test_numpy_to_image_round_trip(encoding):
    rgb = _random_rgb(7, 9, seed=11)
    msg = ic.rgb_to_image(rgb, frame_id='cam', encoding=encoding)
    assert (msg.width, msg.height, msg.step, msg.encoding) == (9, 7, 27, encoding)
    assert msg.header.frame_id == 'cam'
    np.testing.assert_array_equal(ic.image_to_rgb(msg), rgb)
    if encoding == 'bgr8':
        np.testing.assert_array_equal(np.frombuffer(msg.data, np.uint8)[:3], rgb[0, 0, ::-1])
    with pytest.raises(ValueError):
        ic.rgb_to_image(rgb[:, :, 0])


class _UntouchableImage:
    """An Image whose ``data`` must not be read (a refused 8K frame would be copied)."""

    def __init__(self, width, height, encoding='rgb8', step=None):
        self.width, self.height, self.encoding = width, height, encoding
        self.step = width * 3 if step is None else step
        self.is_bigendian = 0

    @property
    def data(self):
        raise AssertionError('image data was touched before the header was checked')


@pytest.mark.parametrize('width, height, encoding, step, reason', [
    (7680, 4320, 'rgb8', None, 'too_large'),                 # 8K: 99.5 MB
    (2 ** 31 - 1, 2 ** 31 - 1, 'rgb8', None, 'too_large'),
    (16385, 1024, 'mono16', 32770, 'too_large'),              # just over 4096 x 4096
    (0, 4320, 'rgb8', None, 'empty'),
    (640, 480, 'nv21', 1280, 'unknown_encoding'),
    (641, 480, 'yuv422', 1282, 'odd_width'),
    (640, 480, 'rgb8', 1000, 'bad_step'),
    (640, 480, 'mono16', 1281, 'bad_step'),
])
def test_refused_frames_are_refused_on_their_header_without_touching_data(
        width, height, encoding, step, reason):
    with pytest.raises(ImageConversionError) as info:
        ic.image_to_rgb(_UntouchableImage(width, height, encoding, step),
                        max_pixels=4096 * 4096)
    assert info.value.reason == reason


def test_an_accepted_frame_is_an_owned_copy_of_the_used_pixels_only(monkeypatch):
    rgb = _random_rgb(48, 64, seed=3)
    padded = np.zeros((48, 64 * 3 + 5000), np.uint8)         # a huge row padding is not copied
    padded[:, :64 * 3] = rgb.reshape(48, -1)
    msg = Image(width=64, height=48, encoding='rgb8', step=64 * 3 + 5000)
    msg.data = padded.tobytes()
    monkeypatch.setattr(ic, '_cv_bridge', lambda: None)
    out = ic.image_to_rgb(msg)
    np.testing.assert_array_equal(out, rgb)
    assert out.nbytes == rgb.nbytes
    assert not np.shares_memory(out, np.frombuffer(msg.data, np.uint8))
