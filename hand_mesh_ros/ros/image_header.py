"""Read a compressed image's declared size from its header, without decoding it.

A 631-byte JPEG can declare 16000 x 16000 pixels: decoding it first and checking the size
afterwards costs gigabytes and seconds. :func:`declared_image_size` reads the size the way the
decoder will (the JPEG frame header SOFn, the PNG IHDR chunk) so the caller can refuse first.

The format is recognised from the data's signature (magic bytes), never from the message's
``format`` string, and only JPEG and PNG (what ``image_transport``'s compressed publisher
writes) are recognised: data in any other container (WebP, TIFF, BMP, JPEG 2000, OpenEXR, ...,
all of which OpenCV would decode) raises :class:`ImageConversionError` with reason
``unsupported_format`` before a decoder sees it.
"""

from hand_mesh_ros.core.errors import ImageConversionError

PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
JPEG_SIGNATURE = b'\xff\xd8\xff'

#: JPEG start-of-frame markers (baseline, extended, progressive, lossless; Huffman and
#: arithmetic). C4 (DHT), C8 (JPG) and CC (DAC) are not frame headers.
_SOF_MARKERS = frozenset((0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD,
                          0xCE, 0xCF))
#: Markers without a length field.
_STANDALONE = frozenset([0x01, 0xD8] + list(range(0xD0, 0xD8)))


def _corrupt(message):
    return ImageConversionError('corrupt compressed image: ' + message, 'decode_failed')


def jpeg_size(data):
    """Return (width, height) from the first SOFn segment of JPEG ``data`` (bytes-like)."""
    size = len(data)
    pos = 2                                   # after SOI (FF D8)
    while pos < size:
        if data[pos] != 0xFF:
            raise _corrupt('JPEG has no marker at byte %d' % pos)
        while pos < size and data[pos] == 0xFF:   # fill bytes
            pos += 1
        if pos >= size:
            break
        marker = data[pos]
        pos += 1
        if marker in _STANDALONE:
            continue
        if marker in (0xD9, 0xDA):            # end of image / start of scan before a frame
            raise _corrupt('JPEG has no frame header (SOF) before its scan data')
        if pos + 2 > size:
            break
        length = (data[pos] << 8) | data[pos + 1]
        if length < 2:
            raise _corrupt('JPEG segment at byte %d has length %d' % (pos, length))
        if marker in _SOF_MARKERS:
            if pos + 7 > size:
                break
            height = (data[pos + 3] << 8) | data[pos + 4]
            width = (data[pos + 5] << 8) | data[pos + 6]
            return width, height
        pos += length
    raise _corrupt('JPEG ends before its frame header (SOF)')


def png_size(data):
    """Return (width, height) from the IHDR chunk of PNG ``data`` (bytes-like)."""
    if len(data) < 24 or bytes(data[12:16]) != b'IHDR':
        raise _corrupt('PNG does not start with an IHDR chunk')
    width = int.from_bytes(bytes(data[16:20]), 'big')
    height = int.from_bytes(bytes(data[20:24]), 'big')
    return width, height


def declared_image_size(data):
    """Return ``(format, width, height)`` declared by compressed image ``data``.

    Args:
        data: the compressed bytes (bytes, bytearray, memoryview or uint8 array).

    Raises:
        ImageConversionError: reason ``unsupported_format`` for anything but JPEG or PNG,
            ``decode_failed`` for a header that cannot be read.

    """
    head = bytes(data[:8])
    if head.startswith(JPEG_SIGNATURE):
        return ('jpeg',) + jpeg_size(data)
    if head == PNG_SIGNATURE:
        return ('png',) + png_size(data)
    raise ImageConversionError(
        'compressed image format not supported (data starts with %r): only JPEG and PNG are '
        'decoded' % head, 'unsupported_format')
