"""Hostile values at the unit level: stamps, stale camera_info, name parameters, drivers' D."""

import pytest

pytest.importorskip('rclpy', reason='ROS 2 (rclpy) is not installed: run bootstrap.sh first')

from builtin_interfaces.msg import Time  # noqa: E402,I100
from sensor_msgs.msg import CameraInfo  # noqa: E402

from hand_mesh_ros.ros import camera_info as ci  # noqa: E402
from hand_mesh_ros.ros import fusion_parameters as fusion_prm  # noqa: E402
from hand_mesh_ros.ros import parameter_names  # noqa: E402
from hand_mesh_ros.ros import parameters as prm  # noqa: E402
from hand_mesh_ros.ros.stamp_cache import stamp_to_ns  # noqa: E402


def _info(stamp_ns=0, d=(0.0,) * 5, model='plumb_bob'):
    msg = CameraInfo(width=640, height=480, distortion_model=model)
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 10 ** 9)
    msg.d = list(d)
    msg.k = [500.0, 0.0, 320.0, 0.0, 500.0, 240.0, 0.0, 0.0, 1.0]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg.p = [500.0, 0.0, 320.0, 0.0, 0.0, 500.0, 240.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    return msg


@pytest.mark.parametrize('sec, nanosec, words', [
    (2147483647, 4294967295, 'nanosec'),
    (100, 4294967295, 'nanosec'),
    (100, 1_000_000_000, 'nanosec'),
    (-1, 5, 'negative'),
    (-2147483648, 0, 'negative'),
])
def test_invalid_stamps_are_named(sec, nanosec, words):
    assert words in ci.stamp_problem(Time(sec=sec, nanosec=nanosec))


@pytest.mark.parametrize('sec, nanosec', [(0, 0), (2147483647, 999_999_999), (1, 0)])
def test_valid_stamps_round_trip_exactly(sec, nanosec):
    from hand_mesh_ros.ros.messages import ns_to_time
    stamp = Time(sec=sec, nanosec=nanosec)
    assert ci.stamp_problem(stamp) == ''
    back = ns_to_time(stamp_to_ns(stamp))
    assert (back.sec, back.nanosec) == (sec, nanosec)


class FakeClock:
    def __init__(self):
        self.now_ns = 10 ** 12

    def __call__(self):
        return self.now_ns


def test_camera_info_goes_stale_after_the_timeout_and_comes_back():
    clock = FakeClock()
    resolver = ci.CameraResolver(stale_after_s=2.0, clock_ns=clock)
    resolver.add_camera_info(_info(stamp_ns=5))
    assert resolver.resolve(6, 640, 480).status == ci.STATUS_UNPAIRED     # latest, fresh
    clock.now_ns += int(1.9e9)
    assert resolver.resolve(7, 640, 480).mode == 'full_intrinsics'
    clock.now_ns += int(0.2e9)                                            # 2.1 s: stale
    res = resolver.resolve(8, 640, 480)
    assert (res.status, res.mode) == (ci.STATUS_STALE, 'assumed_fov')
    assert 'stale' in res.problem and '2.1 s' in res.problem
    assert resolver.resolve(5, 640, 480).status == ci.STATUS_OK   # its own stamp: never stale
    resolver.stale_after_s = 0.0                                   # 0 = never stale
    assert resolver.resolve(9, 640, 480).status == ci.STATUS_UNPAIRED
    resolver.stale_after_s = 2.0
    resolver.add_camera_info(_info(stamp_ns=10))
    assert resolver.resolve(11, 640, 480).mode == 'full_intrinsics'
    # The arrival time of the image is what counts, not when the worker gets to it.
    assert resolver.resolve(12, 640, 480, received_ns=clock.now_ns + int(3e9)).status == (
        ci.STATUS_STALE)


def test_stale_uses_the_configured_fallback_mode():
    clock = FakeClock()
    resolver = ci.CameraResolver(fallback_mode='weak_perspective', stale_after_s=0.5,
                                 clock_ns=clock)
    resolver.add_camera_info(_info(stamp_ns=1))
    clock.now_ns += 10 ** 9
    res = resolver.resolve(2, 640, 480)
    assert res.camera is None and res.mode == 'weak_perspective' and res.status == 'stale'


@pytest.mark.parametrize('model, d', [
    ('rational_polynomial', (-3.9, 13.7, 0.0012, -0.0007, 11.2, -3.8, 13.5, 11.6)
     + (0.0,) * 6),                                                     # OAK-D: 14
    ('plumb_bob', (0.11, -0.23, 0.0012, -0.0009)),                      # 4
    ('plumb_bob', (0.11, -0.23, 0.0012, -0.0009, 0.07, 0.01, 0.0, 0.0)),  # 8
    ('rational_polynomial', (0.11, -0.23, 0.0012, -0.0009, 0.07)),      # 5
])
def test_drivers_camera_info_is_full_intrinsics(model, d):
    resolver = ci.CameraResolver()
    resolver.add_camera_info(_info(stamp_ns=3, d=d, model=model))
    res = resolver.resolve(3, 640, 480)
    assert (res.status, res.mode) == (ci.STATUS_OK, 'full_intrinsics'), res.problem
    assert res.camera.d.size == len(d)


BAD_NAMES = {
    'output.tf_prefix': ['hand\n', 'x' * 10000, ' hand', 'hand ', 'ha nd', '1hand',
                         'hand/right', 'hand\t', 'händ', 'hand\x00'],
    'input.default_frame_id': ['', 'cam\n', ' cam', 'cam ', 'a b', '/cam', 'cam/', 'a//b',
                               'x' * 257, 'cam\r', 'kamera\u00e9', 'cam\x00'],
    'model.models_dir': ['/models\n', 'a\x00b', 'x' * 5000],
    'model.mano_path': ['/m.pkl\r\n', 'x' * 5000],
    'input.depth_topic': ['depth\n', 'a b', '1depth', 'a//b', 'depth/', 'd' * 300],
    'input.depth_camera_info_topic': ['info\n', 'de pth/camera_info', '/', 'x' * 300],
    'fusion.frame': ['', 'world\n', ' world', '/world', 'a//b', 'x' * 257],
    'input.cameras': ['', ' ', 'cam_a,cam_a', 'cam\x00a', '1cam', 'cam_a,/'],
}
GOOD_NAMES = {
    'output.tf_prefix': ['', 'hand', 'robot1_hand', 'H'],
    'input.default_frame_id': ['camera_optical_frame', 'robot1/camera_link', 'oak-d.rgb',
                               'x' * 256],
    'model.models_dir': ['', '/opt/models dir/'],
    'model.mano_path': ['', '/home/u/MANO_RIGHT.pkl'],
    'input.depth_topic': ['', 'depth', '/camera/aligned_depth_to_color/image_raw', '~/d'],
    'input.depth_camera_info_topic': ['', 'depth/camera_info', '/oak/stereo/camera_info'],
    'fusion.frame': ['world', 'base_link'],
    'input.cameras': ['cam_a', 'cam_a,cam_b', '/cam_a/hand/poses cam_b'],
}
#: Every parameter of both nodes: hand_mesh_node's table and hand_fusion_node's.
ALL_SPECS = {spec.name: spec for spec in prm.PARAMETERS + fusion_prm.FUSION_PARAMETERS}


@pytest.mark.parametrize('name', sorted(BAD_NAMES))
def test_every_bad_name_is_refused_and_every_good_one_accepted(name):
    for value in BAD_NAMES[name]:
        assert ALL_SPECS[name].check(value), (name, value)
    for value in GOOD_NAMES[name]:
        assert ALL_SPECS[name].check(value) == '', (name, value)


def test_every_free_string_parameter_has_a_rule():
    free = {spec.name for spec in ALL_SPECS.values()
            if isinstance(spec.default, str) and not spec.choices}
    assert free == set(parameter_names.STRING_RULES)
    assert free == set(BAD_NAMES)


@pytest.mark.parametrize('value', [float('nan'), float('inf'), float('-inf')])
def test_non_finite_floats_are_refused(value):
    floats = [spec for spec in prm.PARAMETERS if isinstance(spec.default, float)]
    assert floats
    for spec in floats:
        assert 'finite' in spec.check(value), spec.name


def test_the_camera_info_timeout_parameter_is_declared_and_bounded():
    spec = prm.SPECS['input.camera_info_timeout_s']
    assert spec.default == 2.0 and not spec.read_only
    assert spec.check(0.0) == '' and spec.check(-1.0) and spec.check(1e9)


def test_huge_d_and_model_name_are_refused_by_length_and_cheaply(monkeypatch):
    msg = _info(stamp_ns=4, d=[0.0] * 1_000_000)
    fields = ci.camera_info_fields(msg)
    assert fields[3] == ('too_long', 1_000_000)
    resolver = ci.CameraResolver()
    resolver.add_camera_info(msg)
    res = resolver.resolve(4, 640, 480)
    assert res.status == ci.STATUS_INVALID and 'd has 1000000 elements' in res.problem
    msg = _info(stamp_ns=5, model='plumb_bob' * 100_000)
    resolver.add_camera_info(msg)
    res = resolver.resolve(5, 640, 480)
    assert res.status == ci.STATUS_INVALID and len(res.problem) < 200


def test_error_messages_quote_hostile_strings_briefly():
    from sensor_msgs.msg import CompressedImage, Image
    from hand_mesh_ros.core.errors import ImageConversionError
    from hand_mesh_ros.ros import image_conversion as ic
    msg = Image(width=4, height=4, encoding='x' * 100_000, step=12)
    with pytest.raises(ImageConversionError) as info:
        ic.image_to_rgb(msg)
    assert len(str(info.value)) < 300
    msg = CompressedImage(format='y' * 100_000)
    msg.data = b'\xff\xd8\xff\xc0\x00\x11\x08\x00\x10\x00\x10\x03' + b'\0' * 40
    with pytest.raises(ImageConversionError) as info:
        ic.compressed_to_rgb(msg)
    assert info.value.reason == 'decode_failed' and len(str(info.value)) < 300
