"""Fast serialisation of MarkerArrays whose markers carry large point lists (hand meshes).

Building ~10,000 geometry_msgs/Point objects per mesh costs tens of milliseconds in Python.
Instead, each large marker is built with ONE sentinel point, the MarkerArray is serialised by
rclpy (CDR), and the sentinel is replaced by the real points' bytes (a Point is three float64,
so the CDR of a point list is the uint32 count plus 24 bytes per point). Every splice moves
the rest of the message by a multiple of 8 bytes, so CDR alignment is unchanged. rclpy's
``Publisher.publish`` accepts the resulting bytes.

:func:`self_test` checks the splice once against rclpy's own (de)serialisation; callers use
the plain message path when it fails (e.g. a big-endian middleware).
"""

import struct

import numpy as np

#: Three doubles that do not occur in real marker data.
SENTINEL = (-1.2345678901234567e-301, 9.876543210987654e+287, -3.1415926535897931e-299)
_SENTINEL_BYTES = np.array(SENTINEL, dtype='<f8').tobytes()
_ONE = struct.pack('<I', 1)
_CDR_LE = b'\x00\x01'


class SerializationError(RuntimeError):
    """The serialised message does not have the expected layout."""


def sentinel_points():
    """Return the one-point list to put in a marker whose points are spliced in later."""
    from geometry_msgs.msg import Point
    return [Point(x=SENTINEL[0], y=SENTINEL[1], z=SENTINEL[2])]


def serialize_with_points(msg, point_arrays):
    """Serialise ``msg`` and splice ``point_arrays`` into its sentinel point lists.

    Args:
        msg: a message (e.g. MarkerArray) in which ``len(point_arrays)`` point lists are
            exactly :func:`sentinel_points`, in serialisation order.
        point_arrays: list of (N_i, 3) float arrays (N_i >= 1), in the same order.

    Returns:
        bytes: the CDR serialisation of ``msg`` with the real points.

    Raises:
        SerializationError: the layout is not the expected little-endian CDR.

    """
    from rclpy.serialization import serialize_message
    data = serialize_message(msg)
    if data[:2] != _CDR_LE:
        raise SerializationError('not little-endian CDR')
    parts = []
    pos = 0
    for points in point_arrays:
        at = data.find(_SENTINEL_BYTES, pos)
        if at < 0:
            raise SerializationError('sentinel point not found')
        if data[at - 4:at] == _ONE:
            count_at = at - 4
        elif data[at - 8:at - 4] == _ONE:
            count_at = at - 8   # then 4 bytes of alignment padding (not necessarily zero)
        else:
            raise SerializationError('no point count before the sentinel')
        points = np.ascontiguousarray(points, dtype='<f8').reshape(-1, 3)
        if not len(points):
            # An empty sequence has no alignment padding: the layout would change.
            raise SerializationError('cannot splice an empty point list')
        parts.append(data[pos:count_at])
        parts.append(struct.pack('<I', len(points)))
        parts.append(data[count_at + 4:at])    # alignment padding, unchanged
        parts.append(points.tobytes())
        pos = at + 24
    parts.append(data[pos:])
    return b''.join(parts)


def self_test():
    """Return True when splicing reproduces rclpy's own serialisation of a MarkerArray."""
    from geometry_msgs.msg import Point
    from rclpy.serialization import deserialize_message, serialize_message
    from visualization_msgs.msg import Marker, MarkerArray
    rng = np.random.default_rng(0)
    arrays = [rng.normal(size=(7, 3)), rng.normal(size=(2, 3)), rng.normal(size=(1, 3))]
    template, reference = MarkerArray(), MarkerArray()
    for i, points in enumerate(arrays):
        for target, pts in ((template, sentinel_points()),
                            (reference, [Point(x=float(p[0]), y=float(p[1]), z=float(p[2]))
                                         for p in points])):
            marker = Marker(ns='n' * (i + 1), id=i, text='t' * (3 * i))
            marker.header.frame_id = 'f' * (5 + i)
            marker.points = pts
            target.markers.append(marker)
    try:
        spliced = serialize_with_points(template, arrays)
    except SerializationError:
        return False
    back = deserialize_message(spliced, MarkerArray)
    # Compare content, not bytes: CDR padding bytes need not be zero.
    return (back == reference and len(spliced) == len(serialize_message(reference))
            and all(np.array_equal([[p.x, p.y, p.z] for p in m.points], a)
                    for m, a in zip(back.markers, arrays)))
