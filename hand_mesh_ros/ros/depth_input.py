"""Depth images registered to the colour image: conversion to metres and pairing by stamp.

Supported encodings: ``16UC1`` / ``mono16`` (millimetres, the RealSense / OAK-D / Kinect
convention) and ``32FC1`` (metres, ZED). 0 and NaN mean "no data". ``scale_m_per_unit``
overrides the encoding's unit (0 = from the encoding). Bad images raise
:class:`~hand_mesh_ros.core.errors.ImageConversionError` with a ``reason``.
"""

import numpy as np

from hand_mesh_ros.core.errors import ImageConversionError
from hand_mesh_ros.ros.image_conversion import check_image_size
from hand_mesh_ros.ros.stamp_cache import StampCache

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


#: Depth images paired with colour images by stamp (:meth:`StampCache.find`).
DepthPairer = StampCache
