"""Latency plumbing: executor choice, the bench's report and its like-for-like peer settings."""

import json
from pathlib import Path
import sys

import pytest

pytest.importorskip('rclpy', reason='ROS 2 (rclpy) is not installed: run bootstrap.sh first')

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue  # noqa: E402,I100
import rclpy  # noqa: E402

from hand_mesh_ros.core.config import PipelineConfig  # noqa: E402
from hand_mesh_ros.ros.spin import create_executor  # noqa: E402
from hand_mesh_ros.tools.bench import bench  # noqa: E402


def test_the_events_executor_is_used_where_rclpy_has_it_and_python_one_elsewhere(monkeypatch):
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=230)
    try:
        executor, name = create_executor(context=context)
        assert name == 'EventsExecutor' and type(executor).__name__ == 'EventsExecutor'
        node = rclpy.create_node('latency_probe', context=context)
        fired = []
        node.create_timer(0.01, lambda: fired.append(1))
        executor.add_node(node)
        for _ in range(50):
            executor.spin_once(timeout_sec=0.05)
            if fired:
                break
        assert fired                                     # it dispatches callbacks
        executor.remove_node(node)
        node.destroy_node()
        executor.shutdown()
        # Humble / Jazzy: no rclpy.experimental.events_executor -> the Python executor.
        monkeypatch.setitem(sys.modules, 'rclpy.experimental.events_executor', None)
        executor, name = create_executor(context=context)
        assert name == 'SingleThreadedExecutor'
        assert type(executor).__name__ == 'SingleThreadedExecutor'
        executor.shutdown()
    finally:
        rclpy.shutdown(context=context)


def test_node_steps_are_read_from_the_nodes_diagnostics():
    status = DiagnosticStatus(name='hand_mesh_node: pipeline', values=[
        KeyValue(key='age_p50_ms', value='20.50'), KeyValue(key='latency_p50_ms', value='9'),
        KeyValue(key='step_receive_p50_ms', value='2.25'),
        KeyValue(key='step_pipeline_p50_ms', value='11.00'),
        KeyValue(key='step_build_p50_ms', value='n/a')])
    assert bench.node_steps_ms(status) == {'published_age': 20.5, 'receive': 2.25,
                                           'pipeline': 11.0}


def test_peer_settings_run_our_detector_as_often_as_mediapipe():
    base = PipelineConfig()
    for name, mp_hands, detection, schedule in bench.PEER_SETTINGS:
        config = base.with_values(detection)
        assert config.detection.max_hands == mp_hands
        if mp_hands > 1:   # MediaPipe detects on every frame while fewer hands are tracked
            assert config.detection.detect_interval == 1 and 'every frame' in schedule
        else:              # ... and never while its one hand is tracked; so does ours
            assert 'only while no hand' in schedule


def test_bench_reports_stages_and_keypoints_as_json(capsys):
    assert bench.main(['--no-e2e', '--max-frames', '6', '--json']) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report['frames'] == 6 and report['hands_per_frame'] == 1.0
    assert report['stages_ms']['frame_total'] > 0.0 and report['keypoints_only_ms'] > 0.0
    assert report['stages_ms']['frame_total'] >= report['stages_ms']['landmark_infer']
    assert 'e2e_latency_p50_ms' not in report and 'peer_comparison' not in report


def test_bench_compares_mesh_network_with_bare_landmark_network(capsys, monkeypatch):
    from hand_mesh_ros import inference
    threads_used = []
    real_create = inference.create_session

    def spy(path, **kwargs):
        threads_used.append((Path(path).name, kwargs.get('num_threads')))
        return real_create(path, **kwargs)

    monkeypatch.setattr(inference, 'create_session', spy)
    assert bench.main(['--no-e2e', '--max-frames', '4', '--threads', '1', '--json']) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report['num_threads'] == 1
    # --threads reaches every session the bench makes: stages, keypoints only, mesh overhead.
    names = {name for name, _ in threads_used}
    assert {'hand_mesh_full.onnx', 'hand_landmark_full.onnx', 'hand_mesh_lite.onnx',
            'hand_landmark_lite.onnx', 'palm_detection_full.onnx'} <= names
    assert {threads for _, threads in threads_used} == {1}
    for variant in ('full', 'lite'):
        row = report['mesh_network_vs_landmark'][variant]
        assert row['landmark_ms'] > 0.0 and row['mesh_ms'] > 0.0
        assert row['ratio'] == pytest.approx(row['mesh_ms'] / row['landmark_ms'], abs=2e-3)
    by_name = {check['target']: check for check in report['targets']}
    lite = by_name['lite mesh network / bare lite landmark network <= 1.5']
    assert lite['value'] == report['mesh_network_vs_landmark']['lite']['ratio']
    assert 'e2e p50 ms <= 1.25 x whole frame + 3 ms' not in by_name   # no e2e in this run


def test_target_checks_compare_each_figure_with_its_limit():
    report = {'stages_ms': {'frame_total': 8.0, 'tailor': 2.4, 'root_recovery': 0.5,
                            'landmark_pre_post': 0.9},
              'hands_per_frame': 2.0, 'node_steps_ms': {'pipeline': 9.0},
              'e2e_latency_p50_ms': 12.9, 'node_rss_mb': 310.0,
              'peer_comparison': [{'setting': '1 hand', 'ratio_full_pipeline': 0.95},
                                  {'setting': '2 hands', 'ratio_full_pipeline': 0.93},
                                  {'setting': '2 hands, peer failed'}],
              'mesh_network_vs_landmark': {'lite': {'ratio': 1.51}}}
    checks = {c['target']: (c['value'], c['limit'], c['met'])
              for c in bench.target_checks(report)}
    assert checks == {
        'e2e p50 ms <= 1.25 x whole frame + 3 ms': (12.9, 13.0, True),
        'node RSS MB < 300': (310.0, 300.0, False),
        'pipeline in the node / back to back <= 1.1': (1.125, 1.1, False),
        'crop + landmark decoding ms per hand <= 0.5': (0.45, 0.5, True),
        'root recovery ms per hand <= 0.3': (0.25, 0.3, True),
        'tailor ms per hand <= 1.0': (1.2, 1.0, False),
        'whole frame / MediaPipe at 1 hand <= 1.0': (0.95, 1.0, True),
        'whole frame / MediaPipe at 2 hands <= 0.9': (0.93, 0.9, False),
        'lite mesh network / bare lite landmark network <= 1.5': (1.51, 1.5, False)}
