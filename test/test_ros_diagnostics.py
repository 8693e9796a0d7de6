"""Latest-frame-wins slot and worker, throttled logging, /diagnostics content, debug image."""

import threading
import time

import numpy as np
import pytest

pytest.importorskip('rclpy', reason='ROS 2 (rclpy) is not installed: run bootstrap.sh first')

from diagnostic_msgs.msg import DiagnosticStatus  # noqa: E402,I100

from hand_mesh_ros.core.camera.camera import CameraModel  # noqa: E402
from hand_mesh_ros.ros import diagnostics as dg  # noqa: E402
from hand_mesh_ros.ros.camera_info import CameraResolution  # noqa: E402
from hand_mesh_ros.ros.debug_image import draw_hands, project_vertices  # noqa: E402
from hand_mesh_ros.ros.messages import make_header  # noqa: E402
from hand_mesh_ros.ros.worker import FrameWorker, LatestSlot  # noqa: E402


def test_latest_slot_keeps_only_the_newest_item_and_counts_replacements():
    slot = LatestSlot()
    assert slot.take(timeout_s=0.0) == (False, None)
    assert slot.put(1) is False
    assert slot.put(2) is True          # 1 was never taken: dropped
    assert slot.take(timeout_s=0.0) == (True, 2)
    assert slot.put(3) is False
    slot.close()
    assert slot.take(timeout_s=0.0) == (False, None)


def test_worker_survives_exceptions_and_stops():
    seen, errors = [], []
    done = threading.Event()

    def handle(item):
        if item == 'boom':
            raise RuntimeError('bug')
        seen.append(item)
        if item == 'last':
            done.set()

    worker = FrameWorker(handle, errors.append)
    worker.start()
    worker.submit('boom')
    time.sleep(0.2)
    worker.submit('last')
    assert done.wait(5.0)
    assert seen == ['last'] and [str(e) for e in errors] == ['bug']
    assert worker.stop() and not worker.is_alive()


def test_throttled_log_says_how_many_were_skipped():
    now = [0.0]
    throttle = dg.ThrottledLog(period_s=5.0, clock=lambda: now[0])
    assert throttle('image_bad_step', 'bad step') == '[image_bad_step] bad step'
    assert throttle('image_bad_step', 'bad step') == ''
    assert throttle('image_truncated', 'short') == '[image_truncated] short'
    now[0] = 4.9
    assert throttle('image_bad_step', 'bad step') == ''
    now[0] = 5.1
    assert throttle('image_bad_step', 'x') == '[image_bad_step] x (2 more since the last report)'


def test_diagnostics_values_and_levels():
    clock = [0]
    stats = dg.NodeStats(clock_ns=lambda: clock[0])
    for i in range(10):
        clock[0] = i * 100_000_000
        stats.image_received(dropped=i % 2 == 1)
        if i % 2 == 0:
            stats.published(latency_ms=10.0 + i, age_ms=20.0)
    stats.camera(CameraResolution(None, 'full_intrinsics', 'ok'))
    header = make_header(5, 'cam')
    snapshot = stats.snapshot()
    msg = dg.diagnostic_array(snapshot, header, 'onnxruntime')
    status = msg.status[0]
    values = {kv.key: kv.value for kv in status.values}
    assert status.level == DiagnosticStatus.OK and status.hardware_id == 'cam'
    assert values['frames_received'] == '10' and values['frames_dropped'] == '5'
    assert values['frames_processed'] == '5' and values['backend'] == 'onnxruntime'
    assert values['input_rate_hz'] == '2.00' and values['output_rate_hz'] == '1.00'
    assert values['latency_p50_ms'] == '14.00'
    stats.count(stats.bad_input, 'image_truncated')
    stats.camera(CameraResolution(None, 'assumed_fov', 'invalid', 'camera_info rejected: nan'))
    msg = dg.diagnostic_array(stats.snapshot(), header, 'onnxruntime', previous=snapshot)
    status = msg.status[0]
    values = {kv.key: kv.value for kv in status.values}
    assert status.level == DiagnosticStatus.WARN
    assert 'bad_input' in status.message and 'assumed_fov' in status.message
    assert values['bad_input.image_truncated'] == '1'
    assert values['camera_status.invalid'] == '1'
    assert 'shape_sources.refit_2d' not in values
    stats.count(stats.shape_sources, 'refit_2d', 3)
    values = {kv.key: kv.value for kv in dg.diagnostic_array(
        stats.snapshot(), header, 'onnxruntime').status[0].values}
    assert values['shape_sources.refit_2d'] == '3'


def test_node_steps_are_reported_as_medians_without_renaming_the_status():
    stats = dg.NodeStats()
    for pipeline_ms in (9.0, 30.0, 10.0):
        stats.steps({'receive': 2.0, 'queue': 0.5, 'convert': 0.25, 'pipeline': pipeline_ms,
                     'build': 0.75, 'publish': 0.4})
    snapshot = stats.snapshot()
    assert snapshot['steps_p50_ms'] == {'receive': 2.0, 'queue': 0.5, 'convert': 0.25,
                                        'pipeline': 10.0, 'build': 0.75, 'publish': 0.4}
    status = dg.diagnostic_array(snapshot, make_header(5, 'cam'), 'onnxruntime').status[0]
    values = {kv.key: kv.value for kv in status.values}
    assert status.name == 'hand_mesh_node: pipeline'
    assert values['step_pipeline_p50_ms'] == '10.00' and values['step_queue_p50_ms'] == '0.50'
    assert [k for k in values if k.startswith('step_')] == [
        'step_%s_p50_ms' % name for name in dg.STEP_NAMES]
    assert 'step_receive_p50_ms' not in {
        kv.key for kv in dg.diagnostic_array(dg.NodeStats().snapshot(), make_header(5, 'c'),
                                             'x').status[0].values}


def _hand():
    from test_ros_messages import make_hand  # the same test data as the message tests
    return make_hand(track_id=2, seed=4)


def test_debug_image_draws_hands_without_touching_the_input():
    hand = _hand()
    rgb = np.full((480, 640, 3), 40, np.uint8)
    camera = CameraModel.from_camera_info_fields(
        640, 480, 'plumb_bob', [0.0] * 5, [600.0, 0, 320.0, 0, 600.0, 240.0, 0, 0, 1],
        np.eye(3).ravel(), np.zeros(12))
    px = project_vertices(hand, camera)
    uvw = hand.vertices_m @ np.array([[600.0, 0, 320.0], [0, 600.0, 240.0], [0, 0, 1]]).T
    np.testing.assert_allclose(px, uvw[:, :2] / uvw[:, 2:], atol=1e-6)
    weak = project_vertices(hand, None)     # scale + offset fitted to the keypoints
    assert np.median(np.linalg.norm(weak - px, axis=1)) < 5.0
    for cam in (camera, None):
        out = draw_hands(rgb, [hand], cam)
        assert out.shape == rgb.shape and np.all(rgb == 40)
        changed = np.any(out != 40, axis=2)
        u, v = np.round(hand.keypoints_px[0]).astype(int)
        assert changed[v, u]                              # the wrist is drawn
        assert changed.mean() > 0.01 and not changed[0:10, 0:10].any()
    np.testing.assert_array_equal(draw_hands(rgb, [], camera), rgb)
