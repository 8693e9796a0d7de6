"""Depth images registered to the colour image: conversion to metres, pairing by stamp.

Supported encodings: ``16UC1`` / ``mono16`` (millimetres, the RealSense / OAK-D / Kinect
convention) and ``32FC1`` (metres, ZED). 0 and NaN mean "no data". ``scale_m_per_unit``
overrides the encoding's unit (0 = from the encoding). Bad images raise
:class:`~hand_mesh_ros.core.errors.ImageConversionError` with a ``reason``.
"""

import numpy as np

from hand_mesh_ros.core.errors import ImageConversionError
from hand_mesh_ros.ros.camera_info import camera_model_from_msg
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


class DepthInput:
    """Depth images and the depth camera's CameraInfo, paired with colour images by stamp.

    Thread-safe for one adding thread (the subscription callbacks) and one pairing thread.
    """

    def __init__(self, capacity=10):
        """Keep at most ``capacity`` depth images; no depth camera_info yet."""
        self.images = StampCache(capacity)
        self.camera_info = None

    def add_image(self, msg):
        """Store a depth image (sensor_msgs/Image) by its header stamp."""
        self.images.add(msg)

    def add_camera_info(self, msg):
        """Keep the depth image's own CameraInfo (used when its size differs)."""
        self.camera_info = msg

    def paired(self, stamp_ns, tolerance_s, wait_s=0.0, scale_m_per_unit=0.0,
               max_pixels=4096 * 4096):
        """Return ``(depth_m, camera)`` paired with a colour image's stamp, or None.

        ``depth_m``: (H, W) float32 metres of the depth image nearest ``stamp_ns`` within
        ``tolerance_s`` (waiting up to ``wait_s`` for a late one); ``camera``: the CameraModel
        of the depth camera_info when its size is the depth image's, else None.

        Raises:
            ImageConversionError: the paired depth image cannot be converted.
            CameraModelError: the depth camera_info of that size is unusable.

        """
        msg = self.images.find(stamp_ns, tolerance_s, wait_s=wait_s)
        if msg is None:
            return None
        depth_m = depth_to_m(msg, scale_m_per_unit, max_pixels)
        info = self.camera_info
        if info is None or (info.width, info.height) != depth_m.shape[::-1]:
            return depth_m, None
        return depth_m, camera_model_from_msg(info)
