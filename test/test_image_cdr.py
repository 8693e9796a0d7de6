"""An Image read from its CDR bytes matches rclpy's deserialisation, and bad bytes are refused."""

import struct

import numpy as np
import pytest

pytest.importorskip('rclpy', reason='ROS 2 (rclpy) is not installed: run bootstrap.sh first')

from rclpy.serialization import deserialize_message, serialize_message  # noqa: E402,I100
from sensor_msgs.msg import Image  # noqa: E402
from test_image_conversion import _encode, _random_rgb  # noqa: E402

from hand_mesh_ros.core.errors import ImageConversionError  # noqa: E402
from hand_mesh_ros.ros import image_conversion as ic  # noqa: E402
from hand_mesh_ros.ros.image_cdr import read_image_cdr, read_usable_image_cdr  # noqa: E402

CASES = [  # (height, width, encoding, row padding, big endian data, frame id)
    (1, 1, 'rgb8', 0, False, ''),
    (5, 7, 'bgr8', 3, False, 'c'),
    (23, 37, 'mono8', 1, False, 'cam'),
    (6, 10, 'rgba8', 0, False, 'camera_optical_frame'),
    (9, 4, 'bgra8', 2, False, 'x' * 255),
    (8, 3, 'rgb16', 2, True, 'ab'),
    (4, 5, 'mono16', 0, False, 'cam_a/optical'),
    (3, 6, 'bgra16', 4, True, 'abcd'),
    (480, 640, 'rgb8', 0, False, 'camera_color_optical_frame'),
]


def _message(height, width, encoding, pad, bigendian, frame_id, seed=0):
    msg = _encode(_random_rgb(height, width, seed), encoding, pad=pad, bigendian=bigendian)
    msg.header.frame_id = frame_id
    msg.header.stamp.sec, msg.header.stamp.nanosec = 1700000000 + seed, 999999999 - seed
    return msg


def _big_endian_cdr(msg):
    """Serialise ``msg`` as big-endian CDR (independent writer for the other byte order)."""
    out = bytearray(b'\x00\x00\x00\x00')

    def align(size):
        out.extend(b'\0' * (-(len(out) - 4) % size))

    def u32(value, fmt='>I'):
        align(4)
        out.extend(struct.pack(fmt, value))

    def string(text):
        u32(len(text) + 1)
        out.extend(text.encode() + b'\0')

    u32(msg.header.stamp.sec, '>i')
    u32(msg.header.stamp.nanosec)
    string(msg.header.frame_id)
    u32(msg.height)
    u32(msg.width)
    string(msg.encoding)
    out.append(msg.is_bigendian)
    u32(msg.step)
    u32(len(msg.data))
    out.extend(bytes(msg.data))
    return bytes(out)


def _assert_matches(image, msg):
    assert (image.header.stamp.sec, image.header.stamp.nanosec) == (
        msg.header.stamp.sec, msg.header.stamp.nanosec)
    assert image.header.frame_id == msg.header.frame_id
    assert (image.height, image.width, image.encoding, image.is_bigendian, image.step) == (
        msg.height, msg.width, msg.encoding, msg.is_bigendian, msg.step)
    assert bytes(image.data) == bytes(msg.data)


@pytest.mark.parametrize('case', CASES)
def test_fields_read_from_cdr_match_rclpy_deserialisation(case):
    msg = _message(*case)
    cdr = serialize_message(msg)
    image = read_image_cdr(cdr)
    _assert_matches(image, deserialize_message(cdr, Image))
    _assert_matches(image, msg)
    np.testing.assert_array_equal(ic.image_to_rgb(image, use_cv_bridge=False),
                                  ic.image_to_rgb(msg, use_cv_bridge=False))


@pytest.mark.parametrize('case', CASES[:4])
def test_big_endian_cdr_reads_the_same_fields(case):
    msg = _message(*case)
    _assert_matches(read_image_cdr(_big_endian_cdr(msg)), msg)


def test_the_data_is_a_view_of_the_cdr_bytes_and_the_rgb_owns_its_pixels():
    cdr = serialize_message(_message(*CASES[2]))
    image = read_image_cdr(cdr)
    data = np.frombuffer(image.data, np.uint8)
    assert np.shares_memory(data, np.frombuffer(cdr, np.uint8))
    assert not np.shares_memory(ic.image_to_rgb(image, use_cv_bridge=False), data)


def test_every_truncation_is_refused_as_truncated():
    cdr = serialize_message(_message(5, 7, 'bgr8', 3, False, 'cam'))
    for length in range(len(cdr)):
        with pytest.raises(ImageConversionError) as info:
            read_image_cdr(cdr[:length])
        assert info.value.reason == 'truncated', length


def test_unknown_encapsulation_and_absurd_string_length_are_malformed():
    cdr = bytearray(serialize_message(_message(*CASES[1])))
    with pytest.raises(ImageConversionError) as info:
        read_image_cdr(b'\x00\x42' + bytes(cdr[2:]))
    assert info.value.reason == 'malformed'
    cdr[12:16] = struct.pack('<I', 0)          # frame_id length 0: not even its NUL
    with pytest.raises(ImageConversionError) as info:
        read_image_cdr(bytes(cdr))
    assert info.value.reason == 'malformed'


@pytest.mark.parametrize('width, height, encoding, step, data, reason', [
    (7680, 4320, 'rgb8', 7680 * 3, b'\0' * 64, 'too_large'),
    (2 ** 31 - 1, 2 ** 31 - 1, 'rgb8', 2 ** 32 - 1, b'', 'too_large'),
    (640, 480, 'nv21', 1280, b'\0' * 16, 'unknown_encoding'),
    (641, 480, 'yuv422_yuy2', 1282, b'\0' * 16, 'odd_width'),
    (640, 480, 'rgb8', 1000, b'\0' * 16, 'bad_step'),
    (64, 48, 'rgb8', 64 * 3, b'\0' * (64 * 3 * 48 - 1), 'truncated'),
])
def test_an_unusable_frame_is_refused_on_its_header(
        width, height, encoding, step, data, reason):
    msg = Image(width=width, height=height, encoding=encoding, step=step)
    msg.data = data
    with pytest.raises(ImageConversionError) as info:
        read_usable_image_cdr(serialize_message(msg), max_pixels=4096 * 4096)
    assert info.value.reason == reason


def test_max_pixels_decides_what_is_usable():
    cdr = serialize_message(_message(6, 10, 'rgb8', 0, False, 'cam'))
    assert read_usable_image_cdr(cdr, max_pixels=60).width == 10
    with pytest.raises(ImageConversionError) as info:
        read_usable_image_cdr(cdr, max_pixels=59)
    assert info.value.reason == 'too_large'
