"""Ctrl-C and SIGTERM stop hand_mesh_node and camera_source cleanly while they are busy.

Both run in their own processes (the sample video looping from camera_source into the node,
whose outputs this process receives); each gets the signal mid-stream and must exit by itself
with code 0 (no thread left hanging, which would block the exit) and without a traceback.
"""

import signal

import pytest

from hand_mesh_ros.ros import processes
from hand_mesh_ros.tools.soak.soak_probe import NodeProbe

pytest.importorskip('rclpy', reason='ROS 2 (rclpy) is not installed')

pytestmark = pytest.mark.slow

EXIT_TIMEOUT_S = 15.0


@pytest.mark.parametrize('sig', [signal.SIGINT, signal.SIGTERM], ids=['sigint', 'sigterm'])
def test_node_and_camera_source_exit_cleanly_on_a_signal_while_busy(tmp_path, sig):
    probe = NodeProbe(tmp_path / 'node.log', shared_memory=False, keep=())
    source = None
    try:
        probe.wait_ready()
        source = processes.ManagedProcess(
            'camera_source', processes.source_command(params={'loop': True, 'rate_hz': 25.0}),
            tmp_path / 'source.log', probe.env)
        # Busy: the node has answered several frames of the looping video.
        assert probe.wait_for(lambda: probe.counts['/hand/mesh'] >= 5, 60.0), (
            probe.node_process.log_tail(), source.log_tail())
        assert source.running() and probe.node_process.running()
        for proc in (source, probe.node_process):
            proc.proc.send_signal(sig)
        codes = [proc.wait(EXIT_TIMEOUT_S) for proc in (source, probe.node_process)]
    finally:
        if source is not None:
            source.stop(timeout_s=2.0)
        probe.close(timeout_s=2.0)
    logs = {'camera_source': (tmp_path / 'source.log').read_text(), 'node': probe.log_text()}
    assert codes == [0, 0], (codes, logs)
    for text in logs.values():
        assert 'Traceback' not in text, logs
    assert 'unexpected error' not in logs['node']
    assert probe.total_non_finite() == 0


def test_idle_node_exits_cleanly_on_sigterm(tmp_path):
    probe = NodeProbe(tmp_path / 'node.log', shared_memory=False, keep=())
    try:
        probe.wait_ready()
        probe.node_process.proc.send_signal(signal.SIGTERM)
        code = probe.node_process.wait(EXIT_TIMEOUT_S)
    finally:
        probe.close(timeout_s=2.0)
    assert code == 0, probe.log_text()
    assert 'Traceback' not in probe.log_text()
