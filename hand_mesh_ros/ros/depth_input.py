"""Depth images registered to the colour image: conversion to metres and pairing by stamp.

Supported encodings: ``16UC1`` / ``mono16`` (millimetres, the RealSense / OAK-D / Kinect
convention) and ``32FC1`` (metres, ZED). 0 and NaN mean "no data". ``scale_m_per_unit``
overrides the encoding's unit (0 = from the encoding). Bad images raise
:class:`~hand_mesh_ros.core.errors.ImageConversionError` with a ``reason``.
"""

from collections import deque
import threading

import numpy as np

from hand_mesh_ros.core.errors import ImageConversionError
from hand_mesh_ros.ros.camera_info import stamp_to_ns
from hand_mesh_ros.ros.image_conversion import check_image_size

#: encoding -> (numpy dtype name, metres per unit).
DEPTH_ENCODINGS = {'16uc1': ('u2', 1e-3), 'mono16': ('u2', 1e-3), '32fc1': ('f4', 1.0)}


def depth_to_m(msg, scale_m_per_unit=0.0, max_pixels=4096 * 4096):
    """Return (H, W) float32 depth in metres of a sensor_msgs/Image (a new array).

    No-data pixels (0, NaN, inf) become 0.

    Raises:
        ImageConversionError: unknown encoding ('depth_unknown_encoding'), bad step,
            truncated or empty data.

    """
    encoding = str(msg.encoding).lower()
    if encoding not in DEPTH_ENCODINGS:
        raise ImageConversionError('unsupported depth encoding %r (supported: 16UC1, mono16 '
                                   'in mm; 32FC1 in m)' % msg.encoding, 'unknown_encoding')
    width, height, step = int(msg.width), int(msg.height), int(msg.step)
    check_image_size(width, height, max_pixels)
    kind, unit = DEPTH_ENCODINGS[encoding]
    item = np.dtype(kind).itemsize
    if step < width * item or step % item:
        raise ImageConversionError('depth step %d does not fit a %s row of width %d'
                                   % (step, encoding, width), 'bad_step')
    data = np.frombuffer(msg.data, dtype=np.uint8)
    if data.size < step * height:
        raise ImageConversionError('depth data has %d bytes, needs %d'
                                   % (data.size, step * height), 'truncated')
    dtype = np.dtype(('>' if msg.is_bigendian else '<') + kind)
    rows = data[:step * height].reshape(height, step)[:, :width * item]
    values = rows.copy().view(dtype).reshape(height, width).astype(np.float32)
    values *= np.float32(scale_m_per_unit if scale_m_per_unit > 0.0 else unit)
    values[~np.isfinite(values)] = 0.0
    return values


class DepthPairer:
    """Keep recent depth images; find the one paired with a colour image's stamp.

    Thread-safe: the subscription callback adds, the worker finds (and may wait up to the
    tolerance for a depth image that has not arrived yet).
    """

    def __init__(self, capacity=10):
        """Keep at most ``capacity`` depth messages."""
        self._items = deque(maxlen=int(capacity))
        self._cond = threading.Condition()

    def __len__(self):
        """Return the number of stored depth messages."""
        return len(self._items)

    def add(self, msg):
        """Store a depth message (keyed by its header stamp)."""
        with self._cond:
            self._items.append((stamp_to_ns(msg.header.stamp), msg))
            self._cond.notify_all()

    def _nearest(self, stamp_ns):
        best = min(self._items, key=lambda item: abs(item[0] - stamp_ns), default=None)
        return (None, None) if best is None else (abs(best[0] - stamp_ns), best[1])

    def find(self, stamp_ns, tolerance_s, wait_s=0.0):
        """Return the depth message nearest ``stamp_ns`` within ``tolerance_s``, or None.

        When none is within the tolerance yet and the newest depth is older than the image,
        wait up to ``wait_s`` for one to arrive.
        """
        tol_ns = int(round(float(tolerance_s) * 1e9))
        with self._cond:
            gap, msg = self._nearest(stamp_ns)
            if (gap is None or gap > tol_ns) and wait_s > 0.0 and self._items:
                if self._items[-1][0] < stamp_ns:
                    self._cond.wait_for(lambda: self._items[-1][0] >= stamp_ns - tol_ns,
                                        timeout=wait_s)
                    gap, msg = self._nearest(stamp_ns)
        return msg if gap is not None and gap <= tol_ns else None
