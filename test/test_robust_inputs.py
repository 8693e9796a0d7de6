"""Bad images and bad camera_info sent to hand_mesh_node running in its own process.

The node runs its real pipeline (ONNX models) as a child process; this process publishes to it
over DDS and checks, for each kind of bad input, that the node keeps running (a good frame
afterwards is still answered with a hand), logs one clear throttled line per kind, counts the
input in /diagnostics, falls back to the configured camera mode for bad camera_info (reported
in HandPose.position_status), and never publishes a NaN or inf on any output.
"""

import math
import re
import time

import cv2
import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy', reason='ROS 2 (rclpy) is not installed')

from sensor_msgs.msg import Image  # noqa: E402,I100

from hand_mesh_ros.paths import data_dir  # noqa: E402
from hand_mesh_ros.ros.image_conversion import rgb_to_image  # noqa: E402
from hand_mesh_ros.tools.soak.soak_probe import (  # noqa: E402
    camera_info_for, load_frames, NodeProbe)

pytestmark = pytest.mark.slow

ASSUMED_FOV, WEAK_PERSPECTIVE, FULL_INTRINSICS = 1, 2, 0
THROTTLE_S = 5.0     # diagnostics.ThrottledLog period used by the node
REPEATS = 30         # copies of each bad input sent


@pytest.fixture(scope='module')
def frames():
    """Three frames of the sample video at 40% (248x432, small enough for any transport)."""
    video = load_frames(data_dir() / 'asl_hand.25fps.mp4', max_frames=120, scale=0.4)
    return [video[0], video[60], video[119]]


class Robust:
    """A node process under test plus helpers (one per fallback mode and test module)."""

    def __init__(self, tmp_dir, frames, mode):
        self.frames = frames
        self.height, self.width = frames[0].shape[:2]
        self.log_path = tmp_dir / ('node_%s.log' % mode)
        self.probe = NodeProbe(self.log_path, shared_memory=False,
                               params={'camera.fallback_mode': mode,
                                       'output.diagnostics_period_s': 0.2})
        self.start = time.monotonic()
        self.probe.wait_ready()
        self.good_count = 0
        # Before any camera_info exists: the 'missing' fallback.
        self.first_answer = self.answer(self.good_image(), info=None)

    def good_image(self, index=None):
        index = self.good_count % len(self.frames) if index is None else index
        self.good_count += 1
        return rgb_to_image(self.frames[index])

    def good_info(self):
        return camera_info_for(self.width, self.height)

    def answer(self, image, info=None, timeout_s=10.0):
        """Return the /hand/poses message answering ``image`` (sent until answered)."""
        stamp = self.probe.process_one(image, info, timeout_s=timeout_s / 5, attempts=5)
        assert stamp is not None, 'no answer; node log:\n' + self.probe.node_process.log_tail()
        assert self.probe.wait_for(lambda: self.probe.poses_for(stamp) is not None, 5.0)
        return self.probe.poses_for(stamp)

    def still_works(self):
        """Assert that a good frame with good camera_info is answered with a hand."""
        msg = self.answer(self.good_image(), self.good_info())
        assert len(msg.hands) >= 1
        assert self.probe.node_process.running()
        return msg

    def send_bad(self, make_image, info=None, repeats=REPEATS):
        """Publish ``repeats`` bad images (``make_image()`` each); return their stamps."""
        stamps = []
        for _ in range(repeats):
            stamps.append(self.probe.publish(make_image(), info))
            self.probe.spin(0.01)
        return stamps

    def counter(self, key):
        return int(self.probe.diagnostics.get(key, '0'))

    def wait_counter(self, key, at_least, timeout_s=10.0):
        assert self.probe.wait_for(lambda: self.counter(key) >= at_least, timeout_s), (
            key, self.probe.diagnostics, self.probe.node_process.log_tail())
        return self.counter(key)

    def log_lines(self, kind):
        tag = '[%s]' % kind
        return [line for line in self.probe.log_text().splitlines() if tag in line]

    def assert_logged_throttled(self, kind, words, counted):
        """One clear line per kind: present, mentions ``words``, not once per input."""
        lines = self.log_lines(kind)
        assert lines, 'no log line for %s:\n%s' % (kind, self.probe.log_text()[-3000:])
        assert all(w.lower() in lines[0].lower() for w in words), lines[0]
        elapsed = time.monotonic() - self.start
        assert len(lines) <= 1 + elapsed / THROTTLE_S, (len(lines), counted, lines)
        assert len(lines) < counted

    def assert_nothing_published_for(self, stamps):
        published = {msg.header.stamp.sec * 10 ** 9 + msg.header.stamp.nanosec
                     for msg in self.probe.received['/hand/poses']}
        assert not published & set(stamps)

    def assert_all_finite(self):
        assert self.probe.total_non_finite() == 0, self.probe.non_finite
        assert self.probe.node_process.running()

    def close(self):
        code = self.probe.close()
        assert code == 0, self.log_path.read_text()[-3000:]


@pytest.fixture(scope='module')
def node(tmp_path_factory, frames):
    robust = Robust(tmp_path_factory.mktemp('robust_assumed'), frames, 'assumed_fov')
    yield robust
    robust.close()


@pytest.fixture(scope='module')
def weak_node(tmp_path_factory, frames):
    robust = Robust(tmp_path_factory.mktemp('robust_weak'), frames, 'weak_perspective')
    yield robust
    robust.close()


def image_msg(width, height, encoding, data, step=None, is_bigendian=0):
    msg = Image(width=width, height=height, encoding=encoding, is_bigendian=is_bigendian)
    msg.step = step if step is not None else 0
    msg.data = bytes(data)
    return msg


# ---------------------------------------------------------------------- bad images
BAD_IMAGES = {
    # kind: (make(frame) -> Image, words the log line must contain)
    'image_unknown_encoding': (
        lambda rgb: image_msg(rgb.shape[1], rgb.shape[0], '32FC1', rgb.tobytes(),
                              rgb.shape[1] * 3), ('unsupported image encoding', '32FC1')),
    'image_bad_step': (
        # Says rgb8 but holds mono8 data (rows a third as long): a mismatched encoding.
        lambda rgb: image_msg(rgb.shape[1], rgb.shape[0], 'rgb8', rgb[:, :, 0].tobytes(),
                              rgb.shape[1]), ('step', 'smaller than', 'rgb8')),
    'image_truncated': (
        lambda rgb: image_msg(rgb.shape[1], rgb.shape[0], 'rgb8', rgb.tobytes()[:5000],
                              rgb.shape[1] * 3), ('data has 5000 bytes',)),
    'image_empty': (lambda rgb: image_msg(0, 0, 'rgb8', b''), ('zero size',)),
    # 8K (7680x4320 rgb8 = 99.5 MB) is refused on its header, before any data is touched.
    'image_too_large': (lambda rgb: image_msg(7680, 4320, 'rgb8', b'\0' * 64, 7680 * 3),
                        ('7680x4320', 'input.max_image_pixels')),
}


@pytest.mark.parametrize('kind', sorted(BAD_IMAGES))
def test_bad_images_are_dropped_counted_and_logged_once(node, kind):
    make, words = BAD_IMAGES[kind]
    node.still_works()
    before = node.counter('bad_input.' + kind)
    stamps = node.send_bad(lambda: make(node.frames[0]), node.good_info())
    counted = node.wait_counter('bad_input.' + kind, before + REPEATS // 2) - before
    node.still_works()
    assert counted <= REPEATS
    node.assert_logged_throttled(kind, words, counted)
    node.assert_nothing_published_for(stamps)
    node.assert_all_finite()


def test_a_wrong_step_with_extra_data_and_other_mismatches_share_one_counter(node):
    rgb = node.frames[0]
    before = node.counter('bad_input.image_bad_step')
    # mono16 needs an even step; bgra8 rows are longer than the rgb8 data's step.
    node.send_bad(lambda: image_msg(rgb.shape[1], rgb.shape[0], 'mono16',
                                    b'\0' * (rgb.shape[1] * 2 + 1) * rgb.shape[0],
                                    rgb.shape[1] * 2 + 1), repeats=5)
    node.send_bad(lambda: image_msg(rgb.shape[1], rgb.shape[0], 'bgra8', rgb.tobytes(),
                                    rgb.shape[1] * 3), repeats=5)
    node.wait_counter('bad_input.image_bad_step', before + 6)
    node.still_works()
    node.assert_all_finite()


def _answer_with(node, rgb=None, image=None):
    image = image if image is not None else rgb_to_image(rgb)
    info = camera_info_for(image.width, image.height)
    return node.answer(image, info)


def test_row_padding_big_endian_16_bit_and_mono_are_converted_and_find_the_hand(node):
    # 160x280: even bgra16 (358 kB) fits the default shared-memory segment of any transport.
    rgb = cv2.resize(node.frames[1], (160, 280), interpolation=cv2.INTER_AREA)
    height, width = rgb.shape[:2]
    padded = np.zeros((height, width * 3 + 7), np.uint8)     # step > row: honoured
    padded[:, :width * 3] = rgb.reshape(height, -1)
    msg = image_msg(width, height, 'rgb8', padded.tobytes(), width * 3 + 7)
    assert len(_answer_with(node, image=msg).hands) == 1
    rgb16 = rgb.astype('>u2') * 257
    msg = image_msg(width, height, 'rgb16', rgb16.tobytes(), width * 6, is_bigendian=1)
    assert len(_answer_with(node, image=msg).hands) == 1
    bgra16 = np.concatenate([rgb[:, :, ::-1], np.full((height, width, 1), 255, np.uint8)],
                            axis=2).astype('<u2') * 257
    msg = image_msg(width, height, 'bgra16', bgra16.tobytes(), width * 8)
    assert len(_answer_with(node, image=msg).hands) == 1
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    msg = image_msg(width, height, 'mono8', gray.tobytes(), width)    # colour expected
    assert len(_answer_with(node, image=msg).hands) == 1
    msg = image_msg(width, height, 'mono16', (gray.astype('<u2') * 257).tobytes(), width * 2)
    assert len(_answer_with(node, image=msg).hands) == 1
    node.assert_all_finite()


def test_odd_sizes_and_flat_images_are_processed_without_nan(node):
    hand = cv2.cvtColor(node.frames[2], cv2.COLOR_RGB2GRAY)
    canvas = np.full((479, 641), 120, np.uint8)               # 641x479: odd width and height
    canvas[20:20 + hand.shape[0], 200:200 + hand.shape[1]] = hand
    msg = image_msg(641, 479, 'mono8', canvas.tobytes(), 641)   # mono8: fits any transport
    assert len(_answer_with(node, image=msg).hands) == 1
    odd = cv2.resize(node.frames[2], (331, 241), interpolation=cv2.INTER_AREA)
    assert len(_answer_with(node, odd).hands) <= 1             # odd step (993 bytes)
    noise = np.random.default_rng(0).integers(0, 256, (241, 331, 3), dtype=np.uint8)
    assert len(_answer_with(node, noise).hands) <= 1
    for value in (0, 255):
        flat = np.full((240, 320, 3), value, np.uint8)
        assert len(_answer_with(node, flat).hands) == 0       # processed: no hand
    node.still_works()
    node.assert_all_finite()


def test_images_too_small_for_the_pipeline_are_counted_not_published(node):
    before = node.counter('errors.pipeline_too_small')
    stamps = node.send_bad(lambda: rgb_to_image(np.full((17, 33, 3), 128, np.uint8)),
                           camera_info_for(33, 17), repeats=10)
    stamps += node.send_bad(lambda: rgb_to_image(np.full((1, 1, 3), 9, np.uint8)),
                            camera_info_for(1, 1), repeats=10)
    counted = node.wait_counter('errors.pipeline_too_small', before + 10) - before
    node.still_works()
    node.assert_logged_throttled('pipeline_too_small', ('smaller than 32 px',), counted)
    node.assert_nothing_published_for(stamps)
    node.assert_all_finite()


def test_a_burst_of_bad_frames_logs_a_handful_of_lines_not_one_per_frame(node):
    before = node.counter('bad_input.image_unknown_encoding')
    lines_before = len(node.log_lines('image_unknown_encoding'))
    node.send_bad(lambda: image_msg(4, 4, 'nv21', b'\0' * 32, 8), repeats=100)
    counted = node.wait_counter('bad_input.image_unknown_encoding', before + 50) - before
    lines = len(node.log_lines('image_unknown_encoding')) - lines_before
    assert lines <= 2 < counted
    node.still_works()


# ---------------------------------------------------------------------- bad camera_info
def _info(node, **changes):
    info = node.good_info()
    for name, value in changes.items():
        setattr(info, name, value)
    return info


def _k(fx, fy=None, cx=124.0, cy=216.0):
    return [fx, 0.0, cx, 0.0, fx if fy is None else fy, cy, 0.0, 0.0, 1.0]


BAD_INFOS = {
    # name: (CameraInfo field changes, diagnostics status, words of the camera_problem)
    'all_zeros': ({'k': [0.0] * 9, 'd': [0.0] * 5, 'r': [0.0] * 9, 'p': [0.0] * 12,
                   'width': 0, 'height': 0}, 'invalid', ('not positive',)),
    'nan_focal': ({'k': _k(float('nan'))}, 'invalid', ('nan or inf',)),
    'inf_distortion': ({'d': [0.1, float('inf'), 0.0, 0.0, 0.0]}, 'invalid', ('nan or inf',)),
    'negative_focal': ({'k': _k(-300.0)}, 'invalid', ('focal lengths must be positive',)),
    'zero_focal': ({'k': _k(0.0, 0.0)}, 'invalid', ('focal lengths must be positive',)),
    'unknown_distortion': ({'distortion_model': 'kannala_magic'}, 'invalid',
                           ('unknown distortion_model',)),
    'size_mismatch': ({'width': 640, 'height': 480}, 'size_mismatch', ('640x480',)),
}


@pytest.mark.parametrize('mode', ['assumed_fov', 'weak_perspective'])
def test_missing_camera_info_uses_the_fallback_mode(node, weak_node, mode):
    robust = node if mode == 'assumed_fov' else weak_node
    expected = ASSUMED_FOV if mode == 'assumed_fov' else WEAK_PERSPECTIVE
    msg = robust.first_answer
    assert len(msg.hands) == 1
    assert msg.hands[0].position_status == expected
    robust.wait_counter('camera_status.missing', 1)
    robust.assert_logged_throttled('camera_info_missing', ('no camera_info', mode), 2)
    assert 0.05 < msg.hands[0].wrist_pose.position.z < 10.0
    robust.assert_all_finite()


@pytest.mark.parametrize('mode', ['assumed_fov', 'weak_perspective'])
@pytest.mark.parametrize('name', sorted(BAD_INFOS))
def test_bad_camera_info_falls_back_and_says_so(node, weak_node, mode, name):
    robust = node if mode == 'assumed_fov' else weak_node
    expected = ASSUMED_FOV if mode == 'assumed_fov' else WEAK_PERSPECTIVE
    changes, status, words = BAD_INFOS[name]
    assert robust.still_works().hands[0].position_status == FULL_INTRINSICS
    key = 'bad_input.camera_info_' + status
    before = robust.counter(key)
    answers = [robust.answer(robust.good_image(), _info(robust, **changes)) for _ in range(3)]
    assert [len(m.hands) for m in answers] == [1, 1, 1]
    assert {h.position_status for m in answers for h in m.hands} == {expected}
    for msg in answers:
        z = msg.hands[0].wrist_pose.position.z
        assert math.isfinite(z) and 0.05 < z < 10.0
    counted = robust.wait_counter(key, before + 3) - before
    assert robust.probe.diagnostics['camera_mode'] == mode
    problem = robust.probe.diagnostics['camera_problem'].lower()
    assert all(w in problem for w in words), problem
    robust.assert_logged_throttled('camera_info_' + status, ('using %s mode' % mode,), counted)
    # Good camera_info again: full intrinsics come back.
    assert robust.still_works().hands[0].position_status == FULL_INTRINSICS
    robust.assert_all_finite()


def test_camera_info_changing_mid_stream_is_followed(node):
    near = _info(node, k=_k(300.0), p=[300.0, 0, 124.0, 0, 0, 300.0, 216.0, 0, 0, 0, 1, 0])
    far = _info(node, k=_k(600.0), p=[600.0, 0, 124.0, 0, 0, 600.0, 216.0, 0, 0, 0, 1, 0])
    image = node.frames[1]
    depth = []
    sequence = [near] * 3 + [far] * 12 + [_info(node, k=_k(float('inf')))] + [near] * 12
    for info in sequence:
        msg = node.answer(rgb_to_image(image), info)
        assert len(msg.hands) == 1
        depth.append((msg.hands[0].position_status, msg.hands[0].wrist_pose.position.z))
    statuses = [s for s, _ in depth]
    assert statuses == [0] * 15 + [ASSUMED_FOV] + [0] * 12
    # Monocular depth scales with the focal length: doubling it doubles the depth at once
    # (no motion is inferred from a calibration change), and going back brings it back.
    z = [d for _, d in depth]
    assert 1.8 < z[3] / z[2] < 2.2, z
    assert 0.9 < z[16] / z[2] < 1.1, z
    assert max(z) < 2.2 * z[2], z
    # The image size changing under a fixed camera_info: a size mismatch, then recovered.
    bigger = cv2.cvtColor(cv2.resize(image, (372, 648)), cv2.COLOR_RGB2GRAY)   # 241 kB mono8
    before = node.counter('bad_input.camera_info_size_mismatch')
    msg = node.answer(image_msg(372, 648, 'mono8', bigger.tobytes(), 372), near)
    assert [h.position_status for h in msg.hands] == [ASSUMED_FOV]
    node.wait_counter('bad_input.camera_info_size_mismatch', before + 1)
    node.still_works()
    node.assert_all_finite()


def test_no_nan_or_inf_on_any_output_and_every_output_was_seen(node, weak_node):
    for robust in (node, weak_node):
        robust.still_works()
        probe = robust.probe
        assert probe.total_non_finite() == 0, probe.non_finite
        for topic in ('/hand/poses', '/hand/mesh', '/tf', '/hand/markers', '/diagnostics'):
            assert probe.counts[topic] > 0, topic
        log = probe.log_text()
        assert 'Traceback' not in log
        assert not re.search(r'unexpected error', log)
