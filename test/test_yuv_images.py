"""YUV 4:2:2 images as USB cameras publish them (usb_cam, v4l2_camera): converted, processed.

``yuv422_yuy2``/``yuyv`` (Y0 U Y1 V) and ``uyvy``/``yuv422`` (U Y0 V Y1) become RGB; a bad
one (odd width, truncated) is refused with a reason code, counted in /diagnostics, and the
node goes on. The process test runs camera_source as the USB camera (YUYV, then UYVY) and
hand_mesh_node in their own processes, plus one malformed frame from this process.
"""

import time

import cv2
from dds_cell import isolated_environment, require_models
import numpy as np
import pytest

from hand_mesh_ros.core.errors import ImageConversionError
from hand_mesh_ros.paths import data_dir
from hand_mesh_ros.ros import processes
from hand_mesh_ros.ros.image_conversion import image_to_rgb, rgb_to_image

rclpy = pytest.importorskip('rclpy', reason='ROS 2 (rclpy) is not installed')

YUV_ENCODINGS = ('yuv422_yuy2', 'yuyv', 'uyvy', 'yuv422')


def _photo_rgb():
    return cv2.cvtColor(cv2.imread(str(data_dir() / 'hands.jpg')), cv2.COLOR_BGR2RGB)


@pytest.mark.parametrize('encoding', YUV_ENCODINGS)
def test_a_real_photo_survives_the_round_trip(encoding):
    rgb = _photo_rgb()
    msg = rgb_to_image(rgb, encoding=encoding)
    assert msg.encoding == encoding and msg.step == 2 * msg.width
    back = image_to_rgb(msg)
    assert back.shape == rgb.shape and back.dtype == np.uint8
    # 4:2:2 halves the colour resolution: small differences at colour edges only.
    error = np.abs(back.astype(int) - rgb.astype(int))
    assert error.mean() < 3.0 and np.percentile(error, 99) < 40, error.mean()


def test_row_padding_is_skipped():
    rgb = _photo_rgb()
    msg = rgb_to_image(rgb, encoding='yuyv')
    rows = np.frombuffer(msg.data, np.uint8).reshape(msg.height, msg.step)
    padded = np.concatenate([rows, np.full((msg.height, 10), 255, np.uint8)], axis=1)
    msg.step, msg.data = padded.shape[1], padded.tobytes()
    unpadded = rgb_to_image(rgb, encoding='yuyv')
    np.testing.assert_array_equal(image_to_rgb(msg), image_to_rgb(unpadded))


def test_byte_orders_and_names_follow_ros_image_encodings():
    # Two pixels, Y0 = 60, Y1 = 200, U = 90, V = 240 (reddish): the two layouts and
    # their aliases give the same pixels, which differ only in brightness.
    yuyv = np.array([[[60, 90], [200, 240]]], np.uint8)
    uyvy = np.array([[[90, 60], [240, 200]]], np.uint8)

    def decode(encoding, data):
        class Msg:
            pass
        msg = Msg()
        msg.encoding, msg.width, msg.height, msg.step = encoding, 2, 1, 4
        msg.is_bigendian, msg.data = 0, data.tobytes()
        return image_to_rgb(msg)
    pixels = {name: decode(name, yuyv if name in ('yuv422_yuy2', 'yuyv') else uyvy)
              for name in YUV_ENCODINGS}
    for name in YUV_ENCODINGS:
        np.testing.assert_array_equal(pixels[name], pixels['yuyv'])
    first, second = pixels['yuyv'][0].astype(int)
    assert first[0] > first[1] and first[0] > first[2]       # red dominates (V high)
    assert np.all(second > first)                             # Y1 brighter than Y0
    # A layout mix-up is not silent: the same bytes read as UYVY give other colours.
    assert not np.array_equal(decode('uyvy', yuyv), pixels['yuyv'])


@pytest.mark.parametrize('width, data_bytes, reason', [
    (3, 12, 'odd_width'), (4, 7, 'truncated'), (0, 0, 'empty')])
def test_bad_yuv_images_are_refused_with_a_reason(width, data_bytes, reason):
    from sensor_msgs.msg import Image
    msg = Image(encoding='yuv422_yuy2', width=width, height=1, step=2 * width)
    msg.data = bytes(data_bytes)
    with pytest.raises(ImageConversionError) as info:
        image_to_rgb(msg)
    assert info.value.reason == reason


def _run_usb_camera(encoding, tmp_path, domain, env):
    """Run camera_source publishing ``encoding`` and the node; return poses and statuses."""
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
    from sensor_msgs.msg import Image
    from hand_mesh_ros.msg import HandPoseArray
    source = processes.source_command(params={'encoding': encoding, 'rate_hz': 5.0,
                                              'loop': True, 'wait_for_subscribers': 1})
    children = [processes.ManagedProcess('node', processes.node_command(),
                                         tmp_path / ('node_%s.log' % encoding), env),
                processes.ManagedProcess('source', source,
                                         tmp_path / ('source_%s.log' % encoding), env)]
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain)
    node = rclpy.create_node('usb_probe', context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    poses, bad_counts = [], {}
    node.create_subscription(HandPoseArray, '/hand/poses', lambda m: poses.append(m),
                             QoSProfile(depth=20, reliability=ReliabilityPolicy.RELIABLE))
    node.create_subscription(DiagnosticArray, '/diagnostics', lambda m: bad_counts.update(
        {kv.key: int(kv.value) for s in m.status for kv in s.values
         if kv.key.startswith('bad_input.')}), 10)
    bad = node.create_publisher(Image, processes.IMAGE_TOPIC, qos_profile_sensor_data)
    odd = Image(encoding=encoding, width=621, height=4, step=1242)
    odd.data = bytes(1242 * 4)
    odd.header.frame_id = 'camera_optical_frame'
    try:
        deadline = time.monotonic() + 120.0
        while time.monotonic() < deadline and (
                sum(1 for m in poses if m.hands) < 5
                or bad_counts.get('bad_input.image_odd_width', 0) < 1):
            if sum(1 for m in poses if m.hands) >= 2:
                odd.header.stamp = node.get_clock().now().to_msg()
                bad.publish(odd)
            executor.spin_once(timeout_sec=0.2)
            assert all(c.running() for c in children), [c.log_tail() for c in children]
    finally:
        for child in children:
            child.stop()
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)
    return poses, bad_counts, children[0].log_path.read_text()


@pytest.mark.slow
@pytest.mark.parametrize('encoding', ['yuv422_yuy2', 'uyvy'])
def test_usb_camera_yuv_frames_are_processed_and_a_bad_one_is_counted(tmp_path, encoding):
    require_models()
    env, domain = isolated_environment(shared_memory=True)
    poses, bad_counts, log = _run_usb_camera(encoding, tmp_path, domain, env)
    with_hands = [m for m in poses if m.hands]
    assert len(with_hands) >= 5, log[-2000:]
    assert all(0.1 < m.hands[0].wrist_pose.position.z < 3.0 for m in with_hands)
    assert bad_counts.get('bad_input.image_odd_width', 0) >= 1, (bad_counts, log[-2000:])
    assert 'odd width 621' in log
    assert not any(k.endswith('unknown_encoding') for k in bad_counts), bad_counts
