"""CameraInfo -> CameraModel, stamp pairing cache and the documented fallbacks."""

import math

import pytest

pytest.importorskip('rclpy', reason='ROS 2 (rclpy) is not installed: run bootstrap.sh first')

from sensor_msgs.msg import CameraInfo  # noqa: E402,I100

from hand_mesh_ros.ros import camera_info as ci  # noqa: E402
from hand_mesh_ros.ros.stamp_cache import StampCache  # noqa: E402


def _info(stamp_ns=0, width=640, height=480, fx=500.0, fy=510.0, cx=300.0, cy=250.0,
          model='plumb_bob', d=(0.1, -0.05, 0.001, 0.002, 0.0)):
    msg = CameraInfo(width=width, height=height, distortion_model=model)
    msg.header.stamp.sec = stamp_ns // 1_000_000_000
    msg.header.stamp.nanosec = stamp_ns % 1_000_000_000
    msg.header.frame_id = 'cam'
    msg.d = list(d)
    msg.k = [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg.p = [fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return msg


def test_full_camera_info_becomes_a_camera_model_with_its_own_principal_point():
    camera = ci.camera_model_from_msg(_info())
    assert (camera.fx, camera.fy, camera.cx, camera.cy) == (500.0, 510.0, 300.0, 250.0)
    assert camera.distortion_model == 'plumb_bob'
    assert camera.d[0] == pytest.approx(0.1)


def test_binning_and_roi_are_passed_through():
    msg = _info(width=1280, height=960, fx=1000.0, fy=1000.0, cx=640.0, cy=480.0)
    msg.binning_x = msg.binning_y = 2
    camera = ci.camera_model_from_msg(msg)
    assert (camera.width, camera.height) == (640, 480)
    assert camera.fx == pytest.approx(500.0) and camera.cx == pytest.approx(320.0)


def test_cache_pairs_by_stamp_is_bounded_and_falls_back_to_latest():
    cache = StampCache(capacity=3)
    assert cache.lookup(5) == (None, False)
    for stamp in (10, 20, 30, 40):
        cache.add(_info(stamp_ns=stamp, fx=100.0 + stamp))
    assert len(cache) == 3
    msg, exact = cache.lookup(20)
    assert exact and msg.k[0] == 120.0
    msg, exact = cache.lookup(10)  # evicted: the latest one is returned, not exact
    assert not exact and msg.k[0] == 140.0


def test_resolver_modes_and_statuses():
    resolver = ci.CameraResolver(capacity=4, fallback_mode='assumed_fov', assumed_hfov_deg=90.0)
    res = resolver.resolve(1, 640, 480)
    assert (res.mode, res.status) == ('assumed_fov', ci.STATUS_MISSING)
    assert res.camera.fx == pytest.approx(320.0 / math.tan(math.radians(45.0)))
    assert (res.camera.cx, res.camera.cy) == (320.0, 240.0)
    resolver.add_camera_info(_info(stamp_ns=7))
    res = resolver.resolve(7, 640, 480)
    assert (res.mode, res.status, res.problem) == ('full_intrinsics', ci.STATUS_OK, '')
    assert res.camera.cx == 300.0
    res = resolver.resolve(8, 640, 480)
    assert (res.mode, res.status) == ('full_intrinsics', ci.STATUS_UNPAIRED)
    res = resolver.resolve(7, 320, 240)
    assert (res.mode, res.status) == ('assumed_fov', ci.STATUS_SIZE_MISMATCH)
    assert res.camera.width == 320
    resolver.set_fallback('weak_perspective', 60.0)
    res = resolver.resolve(7, 320, 240)
    assert res.camera is None and res.mode == 'weak_perspective'


@pytest.mark.parametrize('bad', [
    {'fx': 0.0, 'fy': 0.0, 'cx': 0.0, 'cy': 0.0, 'd': ()},      # all zeros
    {'fx': float('nan')},
    {'fy': float('inf')},
    {'fx': -500.0},
    {'model': 'kannala_brandt_unknown'},
])
def test_bad_camera_info_falls_back_and_says_why(bad):
    resolver = ci.CameraResolver(fallback_mode='assumed_fov')
    resolver.add_camera_info(_info(stamp_ns=3, **bad))
    res = resolver.resolve(3, 640, 480)
    assert res.status == ci.STATUS_INVALID and res.mode == 'assumed_fov'
    assert res.problem.startswith('camera_info rejected')
    assert math.isfinite(res.camera.fx)


def test_camera_info_changing_mid_stream_is_followed():
    resolver = ci.CameraResolver()
    resolver.add_camera_info(_info(stamp_ns=1, fx=400.0))
    resolver.add_camera_info(_info(stamp_ns=2, fx=800.0))
    assert resolver.resolve(1, 640, 480).camera.fx == 400.0
    assert resolver.resolve(2, 640, 480).camera.fx == 800.0
    resolver.add_camera_info(_info(stamp_ns=3, fx=float('nan')))
    assert resolver.resolve(3, 640, 480).status == ci.STATUS_INVALID
    assert resolver.resolve(2, 640, 480).camera.fx == 800.0
