"""Depth images in the ROS layer: conversion to metres, units override, pairing by stamp."""

import threading
import time

from builtin_interfaces.msg import Time
import numpy as np
import pytest
from sensor_msgs.msg import Image

from hand_mesh_ros.core.errors import ImageConversionError  # noqa: I100
from hand_mesh_ros.ros import parameters
from hand_mesh_ros.ros.depth_input import depth_to_m
from hand_mesh_ros.ros.stamp_cache import StampCache


def _image(values, encoding, stamp_ns=0, bigendian=False):
    values = np.asarray(values)
    msg = Image(height=values.shape[0], width=values.shape[1], encoding=encoding,
                is_bigendian=bigendian, step=values.shape[1] * values.itemsize)
    msg.data = values.tobytes()
    msg.header.stamp = Time(sec=stamp_ns // 10 ** 9, nanosec=stamp_ns % 10 ** 9)
    return msg


def test_16uc1_is_millimetres_and_zero_is_no_data():
    mm = np.array([[0, 500, 1234], [65535, 1, 2]], np.uint16)
    out = depth_to_m(_image(mm, '16UC1'))
    assert out.dtype == np.float32 and out.shape == (2, 3)
    np.testing.assert_allclose(out, mm * 1e-3, rtol=1e-6)
    big = depth_to_m(_image(mm.astype('>u2'), '16UC1', bigendian=True))
    np.testing.assert_allclose(big, out)


def test_32fc1_is_metres_and_nan_becomes_no_data():
    m = np.array([[0.5, np.nan, np.inf], [1.25, 0.0, 3.0]], np.float32)
    out = depth_to_m(_image(m, '32FC1'))
    np.testing.assert_allclose(out, [[0.5, 0.0, 0.0], [1.25, 0.0, 3.0]])


def test_scale_override_changes_the_units():
    mm = np.array([[100, 200], [300, 400]], np.uint16)
    out = depth_to_m(_image(mm, '16UC1'), scale_m_per_unit=1e-4)   # 0.1 mm units
    np.testing.assert_allclose(out, mm * 1e-4, rtol=1e-6)
    assert parameters.SPECS['input.depth_scale_m_per_unit'].default == 0.0


def test_bad_depth_images_raise_one_clear_error():
    with pytest.raises(ImageConversionError) as err:
        depth_to_m(_image(np.zeros((2, 2), np.uint8), 'mono8'))
    assert err.value.reason == 'unknown_encoding'
    msg = _image(np.zeros((4, 4), np.uint16), '16UC1')
    msg.data = msg.data[:10]
    with pytest.raises(ImageConversionError) as err:
        depth_to_m(msg)
    assert err.value.reason == 'truncated'
    msg = _image(np.zeros((4, 4), np.uint16), '16UC1')
    msg.step = 3
    with pytest.raises(ImageConversionError):
        depth_to_m(msg)


def test_pairing_by_stamp_within_the_tolerance():
    pairer = StampCache(capacity=3)
    for stamp in (1_000_000_000, 1_033_000_000, 1_066_000_000, 1_100_000_000):
        pairer.add(_image(np.zeros((2, 2), np.uint16), '16UC1', stamp))
    assert len(pairer) == 3                    # bounded
    got = pairer.find(1_070_000_000, 0.02)
    assert got.header.stamp.nanosec == 66_000_000
    assert pairer.find(1_050_000_000, 0.01) is None      # 16 ms away: outside 10 ms
    assert pairer.find(1_050_000_000, 0.02) is not None
    assert pairer.find(1_000_000_000, 0.02) is None      # dropped from the buffer


def test_pairing_waits_for_a_late_depth_image():
    pairer = StampCache()
    pairer.add(_image(np.zeros((2, 2), np.uint16), '16UC1', 1_000_000_000))
    late = _image(np.zeros((2, 2), np.uint16), '16UC1', 2_000_000_000)
    threading.Timer(0.05, pairer.add, args=(late,)).start()
    start = time.monotonic()
    assert pairer.find(2_000_000_000, 0.01, wait_s=2.0) is late
    assert time.monotonic() - start < 1.5
    assert pairer.find(3_000_000_000, 0.01, wait_s=0.05) is None


def test_the_stamp_cache_pairs_exact_stamps_and_falls_back_to_the_latest():
    cache = StampCache(capacity=3)
    assert cache.lookup(5) == (None, False)
    assert cache.find(5, 1.0) is None
    msgs = {stamp: _image(np.full((2, 2), stamp, np.uint16), '16UC1', stamp)
            for stamp in (10, 20, 30, 40)}
    for msg in msgs.values():
        cache.add(msg)
    assert len(cache) == 3
    assert cache.lookup(20) == (msgs[20], True)
    assert cache.lookup(10) == (msgs[40], False)         # evicted: the latest, not exact
    again = _image(np.zeros((2, 2), np.uint16), '16UC1', 30)
    cache.add(again)                                     # the same stamp replaces
    assert len(cache) == 3 and cache.lookup(30) == (again, True)
    assert cache.lookup(99) == (again, False)            # the latest added
