"""Read a serialized sensor_msgs/Image (CDR bytes, as a raw subscription delivers it).

:func:`read_image_cdr` reads the header, size, encoding and step of an Image from its CDR
bytes without touching the pixel data, so an oversize frame can be refused before anything
of its size is allocated, and returns the pixel data as a view into those bytes (no copy).

Layout (OMG CDR, XCDR1 and XCDR2 alike for this type: no member is wider than 4 bytes and
the type is final): a 4-byte encapsulation header (``00 00``/``00 06`` big endian,
``00 01``/``00 07`` little endian, then 2 option bytes), then, aligned to their size from the
end of that header: ``header.stamp.sec`` int32, ``header.stamp.nanosec`` uint32,
``header.frame_id`` string, ``height`` uint32, ``width`` uint32, ``encoding`` string,
``is_bigendian`` uint8, ``step`` uint32, ``data`` sequence<uint8>. A string is a uint32
length counting its terminating NUL, then the bytes and the NUL; a sequence is a uint32
count, then its elements.
"""

from collections import namedtuple
import struct

from hand_mesh_ros.core.errors import ImageConversionError
from hand_mesh_ros.ros.image_conversion import check_image_fields, DEFAULT_MAX_PIXELS

#: Encapsulation identifier -> struct byte order.
_BYTE_ORDER = {b'\x00\x00': '>', b'\x00\x06': '>', b'\x00\x01': '<', b'\x00\x07': '<'}
_HEADER_BYTES = 4
#: Longest string field read (frame ids and encodings are short; a longer one is corrupt).
MAX_STRING_BYTES = 4096

#: The fields of an Image read from CDR; ``data`` is a memoryview into the CDR bytes.
ImageStamp = namedtuple('ImageStamp', 'sec nanosec')
ImageHeader = namedtuple('ImageHeader', 'stamp frame_id')
CdrImage = namedtuple('CdrImage', 'header height width encoding is_bigendian step data')


class _CdrReader:
    """Sequential reader of aligned CDR primitives from a bytes-like buffer."""

    def __init__(self, buffer):
        self.view = memoryview(buffer).cast('B')
        if len(self.view) < _HEADER_BYTES:
            raise _truncated('its %d bytes hold no CDR header' % len(self.view))
        order = _BYTE_ORDER.get(bytes(self.view[:2]))
        if order is None:
            raise ImageConversionError(
                'serialized image has an unknown CDR encapsulation %r'
                % bytes(self.view[:2]), 'malformed')
        self.u32 = struct.Struct(order + 'I')
        self.i32 = struct.Struct(order + 'i')
        self.pos = _HEADER_BYTES

    def take(self, size, align, what):
        """Return the offset of the next ``size`` bytes aligned to ``align``; move past them."""
        start = self.pos + (-(self.pos - _HEADER_BYTES) % align)
        if start + size > len(self.view):
            raise _truncated('it ends inside %s (%d bytes needed at byte %d, %d present)'
                             % (what, size, start, len(self.view)))
        self.pos = start + size
        return start

    def number(self, fmt, what):
        return fmt.unpack_from(self.view, self.take(4, 4, what))[0]

    def string(self, what):
        length = self.number(self.u32, what)
        if not 1 <= length <= MAX_STRING_BYTES:
            raise ImageConversionError('serialized image has a %s of length %d'
                                       % (what, length), 'malformed')
        start = self.take(length, 1, what)
        return bytes(self.view[start:start + length - 1]).decode('utf-8', 'replace')


def _truncated(detail):
    return ImageConversionError('serialized image is truncated: %s' % detail, 'truncated')


def read_image_cdr(buffer):
    """Return the :data:`CdrImage` serialized in ``buffer`` (bytes-like CDR of an Image).

    The pixel data is not read or copied: ``data`` is a view into ``buffer`` (shorter than
    ``step * height`` when the message is; the converter checks). Its declared length must
    fit in the buffer.

    Raises:
        ImageConversionError: reason ``truncated`` (the bytes end before a field) or
            ``malformed`` (unknown encapsulation, absurd string length).

    """
    reader = _CdrReader(buffer)
    stamp = ImageStamp(reader.number(reader.i32, 'header.stamp.sec'),
                       reader.number(reader.u32, 'header.stamp.nanosec'))
    frame_id = reader.string('header.frame_id')
    height = reader.number(reader.u32, 'height')
    width = reader.number(reader.u32, 'width')
    encoding = reader.string('encoding')
    is_bigendian = reader.view[reader.take(1, 1, 'is_bigendian')]
    step = reader.number(reader.u32, 'step')
    size = reader.number(reader.u32, 'data length')
    start = reader.take(size, 1, 'data')
    return CdrImage(ImageHeader(stamp, frame_id), height, width, encoding, is_bigendian,
                    step, reader.view[start:start + size])


def read_usable_image_cdr(buffer, max_pixels=DEFAULT_MAX_PIXELS):
    """Return the :data:`CdrImage` in ``buffer`` once its fields pass the converter's checks.

    Only the header and the data length are read: an oversize, truncated or unknown-encoding
    frame is refused before anything of its size is allocated.

    Raises:
        ImageConversionError: as :func:`read_image_cdr` and
            :func:`~hand_mesh_ros.ros.image_conversion.check_image_fields`.

    """
    image = read_image_cdr(buffer)
    check_image_fields(image.encoding, image.width, image.height, image.step,
                       len(image.data), max_pixels=max_pixels)
    return image
