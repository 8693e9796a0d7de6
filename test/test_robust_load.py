"""Overload and long run of hand_mesh_node in its own process (``hand-mesh soak``).

Short versions of the soak runs (the full ones, 60 s and 10,000 frames, are run by hand:
``hand-mesh soak --json``). Each test runs the real command line in a child process and reads
its JSON report.
"""

import json
import subprocess
import sys

import pytest

from hand_mesh_ros.tools.soak import soak
from hand_mesh_ros.tools.soak.soak_probe import OUTPUT_TOPICS

pytest.importorskip('rclpy', reason='ROS 2 (rclpy) is not installed')


def run_soak(*args, timeout_s=400):
    """Run ``hand-mesh soak ... --json``; return (exit code, report dict, output)."""
    proc = subprocess.run([sys.executable, '-m', 'hand_mesh_ros.tools.cli', 'soak', '--json',
                           '--scale', '0.5'] + list(args),
                          capture_output=True, text=True, timeout=timeout_s)
    output = proc.stdout + proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.startswith('{')]
    assert lines, output
    return proc.returncode, json.loads(lines[-1]), output


@pytest.mark.slow
def test_overload_keeps_memory_flat_latency_bounded_and_counts_drops():
    code, report, output = run_soak('--mode', 'overload', '--duration', '15')
    assert code == 0, output
    run = report['overload']
    assert run['node_exit_code'] == 0
    assert run['non_finite_values'] == 0
    assert run['publish_rate_hz'] > 1000.0 / run['processing_ms'], run   # really overloaded
    assert run['node_dropped'] > 0, run                     # latest frame wins, counted
    assert run['node_processed'] > 0 and run['mesh_messages'] > 0
    assert run['node_processed'] + run['node_dropped'] <= run['node_received'] <= \
        run['images_sent']
    assert run['rss_growth_mb'] < 50.0, run
    assert run['rss_max_mb'] - run['rss_start_mb'] < 50.0, run
    first, last = run['latency_first_third_p95_ms'], run['latency_last_third_p95_ms']
    assert first is not None and last is not None, run
    assert last < 2.0 * first + 100.0, run                  # no queue building up


@pytest.mark.slow
def test_long_run_memory_track_ids_and_no_nan():
    code, report, output = run_soak('--mode', 'long', '--frames', '1000')
    assert code == 0, output
    run = report['long']
    assert run['node_exit_code'] == 0
    assert run['frames_answered'] >= 950, run
    assert run['hands_published'] >= 900, run              # the video shows a hand throughout
    assert run['rss_growth_mb'] < 50.0, run
    assert 1 <= run['distinct_track_ids'] <= 3, run          # one hand, three loops of the video
    assert run['non_finite_values'] == 0, run
    assert set(run['messages_by_topic']) == set(OUTPUT_TOPICS)
    assert all(count > 0 for count in run['messages_by_topic'].values()), run


def test_latency_by_third_splits_the_run_by_arrival_time():
    samples = [(10.0 + i, 10.0 * i) for i in range(30)]     # one sample a second
    result = soak.latency_by_third(samples, 10.0, 40.0)
    assert result['latency_first_third_p50_ms'] == 45.0
    assert result['latency_last_third_p50_ms'] == 245.0
    assert result['latency_samples'] == 20
    assert soak.latency_by_third([], 0.0, 3.0)['latency_first_third_p95_ms'] is None


def test_failed_reports_name_each_problem():
    good = {'long': {'node_exit_code': 0, 'non_finite_values': 0, 'frames_answered': 9}}
    assert soak.failed(good) == []
    bad = {'overload': {'node_exit_code': -9, 'non_finite_values': 3, 'mesh_messages': 0}}
    reasons = soak.failed(bad)
    assert len(reasons) == 3 and 'exit code -9' in reasons[0] and '3 NaN' in reasons[1]
