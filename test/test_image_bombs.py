"""Decompression bombs and other hostile compressed images are refused before decoding."""

import zlib

import cv2
import numpy as np
import pytest

from hand_mesh_ros.core.errors import ImageConversionError
from hand_mesh_ros.ros.image_header import declared_image_size

ic = pytest.importorskip('hand_mesh_ros.ros.image_conversion')
pytest.importorskip('rclpy', reason='ROS 2 (rclpy) is not installed: run bootstrap.sh first')
from sensor_msgs.msg import CompressedImage  # noqa: E402,I100


def jpeg_bomb(width=16000, height=16000):
    """Return a small real JPEG whose frame header declares ``width`` x ``height``."""
    ok, jpg = cv2.imencode('.jpg', np.full((16, 16, 3), 90, np.uint8))
    data = bytearray(jpg.tobytes())
    pos = 2
    while data[pos + 1] not in (0xC0, 0xC2):
        pos += 2 + (data[pos + 2] << 8 | data[pos + 3])
    data[pos + 5:pos + 7] = height.to_bytes(2, 'big')
    data[pos + 7:pos + 9] = width.to_bytes(2, 'big')
    return bytes(data)


def _chunk(kind, payload):
    return (len(payload).to_bytes(4, 'big') + kind + payload
            + zlib.crc32(kind + payload).to_bytes(4, 'big'))


def png_bomb(width=16000, height=16000, rows=None):
    """Return a valid PNG of ``width`` x ``height`` black rgb8 pixels (compressed ~1000x)."""
    rows = height if rows is None else rows
    ihdr = width.to_bytes(4, 'big') + height.to_bytes(4, 'big') + bytes([8, 2, 0, 0, 0])
    zipper = zlib.compressobj(9)
    row = b'\0' * (1 + 3 * width)
    idat = b''.join(zipper.compress(row) for _ in range(rows)) + zipper.flush()
    return (b'\x89PNG\r\n\x1a\n' + _chunk(b'IHDR', ihdr) + _chunk(b'IDAT', idat)
            + _chunk(b'IEND', b''))


def _msg(data, fmt='jpeg'):
    msg = CompressedImage(format=fmt)
    msg.data = data
    return msg


@pytest.fixture
def no_decoding(monkeypatch):
    """Fail the test if anything reaches cv2.imdecode."""
    def refuse(*args, **kwargs):
        raise AssertionError('cv2.imdecode was called on a refused image')
    monkeypatch.setattr(cv2, 'imdecode', refuse)


def test_the_headers_declare_what_opencv_decodes():
    for width, height in ((16, 16), (37, 5), (5, 37)):
        ok, jpg = cv2.imencode('.jpg', np.zeros((height, width, 3), np.uint8))
        assert declared_image_size(jpg.tobytes()) == ('jpeg', width, height)
        ok, png = cv2.imencode('.png', np.zeros((height, width, 3), np.uint8))
        assert declared_image_size(png.tobytes()) == ('png', width, height)
    bomb = jpeg_bomb(40, 24)                       # a small "bomb" OpenCV really decodes
    assert declared_image_size(bomb) == ('jpeg', 40, 24)
    assert cv2.imdecode(np.frombuffer(bomb, np.uint8), cv2.IMREAD_COLOR).shape == (24, 40, 3)
    small = png_bomb(50, 30)
    assert cv2.imdecode(np.frombuffer(small, np.uint8), cv2.IMREAD_COLOR).shape == (30, 50, 3)
    assert ic.compressed_to_rgb(_msg(small, 'png')).shape == (30, 50, 3)


@pytest.mark.parametrize('make, fmt, size', [
    (lambda: jpeg_bomb(16000, 16000), 'jpeg', '16000x16000'),
    (lambda: jpeg_bomb(65535, 65535), 'jpeg', '65535x65535'),
    (lambda: png_bomb(16000, 16000, rows=4), 'png', '16000x16000'),
    (lambda: png_bomb(2 ** 31 - 1, 2 ** 31 - 1, rows=0), 'png', '2147483647x2147483647'),
])
def test_bombs_are_refused_on_their_header(no_decoding, make, fmt, size):
    data = make()
    assert len(data) < 100_000
    with pytest.raises(ImageConversionError, match=size) as info:
        ic.compressed_to_rgb(_msg(data, fmt))
    assert info.value.reason == 'too_large'


@pytest.mark.parametrize('ext', ['.webp', '.bmp', '.tiff', '.ppm', '.jp2', '.hdr', '.pfm'])
def test_other_containers_opencv_would_decode_are_refused(no_decoding, ext):
    image = np.full((64, 64, 3), 100, np.uint8)
    try:
        ok, data = cv2.imencode(ext, image.astype(np.float32) if ext in ('.hdr', '.pfm')
                                else image)
    except cv2.error:
        pytest.skip('this OpenCV cannot write %s' % ext)
    assert ok
    with pytest.raises(ImageConversionError, match='only JPEG and PNG') as info:
        ic.compressed_to_rgb(_msg(data.tobytes(), 'jpeg'))     # the format string lies
    assert info.value.reason == 'unsupported_format'


@pytest.mark.parametrize('data, reason', [
    (jpeg_bomb(0, 16), 'empty'),                               # height from a DNL marker
    (jpeg_bomb(16, 0), 'empty'),
    (b'\xff\xd8\xff', 'decode_failed'),                         # signature only
    (b'\xff\xd8\xff\xe0\x00\x01', 'decode_failed'),             # segment length < 2
    (b'\xff\xd8\xff\xda\x00\x08' + b'\0' * 20, 'decode_failed'),  # scan before any frame
    (b'\xff\xd8' + b'\xff\xe1\xff\xff' * 3, 'decode_failed'),   # APP1 longer than the data
    (b'\x89PNG\r\n\x1a\n' + b'\0' * 30, 'decode_failed'),       # no IHDR
])
def test_broken_headers_are_refused_without_decoding(no_decoding, data, reason):
    with pytest.raises(ImageConversionError) as info:
        ic.compressed_to_rgb(_msg(data))
    assert info.value.reason == reason


def test_many_segments_before_the_frame_header_are_walked_not_trusted():
    ok, jpg = cv2.imencode('.jpg', np.full((24, 32, 3), 50, np.uint8))
    data = jpg.tobytes()
    padding = b''.join(b'\xff\xee\x00\x10' + b'x' * 14 for _ in range(5000))   # APP14 x 5000
    data = data[:2] + padding + data[2:]
    assert declared_image_size(data) == ('jpeg', 32, 24)
    assert ic.compressed_to_rgb(_msg(data)).shape == (24, 32, 3)


def test_a_decoded_size_other_than_the_declared_one_is_refused(monkeypatch):
    ok, png = cv2.imencode('.png', np.zeros((20, 30, 3), np.uint8))
    monkeypatch.setattr(cv2, 'imdecode', lambda *a: np.zeros((2000, 3000, 3), np.uint8))
    with pytest.raises(ImageConversionError, match='declares 30x20') as info:
        ic.compressed_to_rgb(_msg(png.tobytes(), 'png'))
    assert info.value.reason == 'decode_failed'
